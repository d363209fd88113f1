import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callStats, type CallStats, type NgDict } from '../../src/ng/client.js';
import { decodeNgMessage } from '../../src/ng/message.js';
import { summarizeDeleteStats } from '../../src/stats/rtpengine-stats.js';

const Q = { MOS: 43, 'round-trip time': 577, 'round-trip time leg': 326, jitter: 5, 'packet loss': 0 };

function stream(port: number, peer: number, kind: 'RTP' | 'RTCP', ssrc: number, packets: number, bytes: number): NgDict {
  const ep = { family: 'IPv4', address: '127.0.0.1', port: peer };
  return {
    'local port': port,
    'local address': '127.0.0.1',
    family: 'IPv4',
    endpoint: ep,
    'advertised endpoint': ep,
    'last packet': 1795817907,
    flags: [kind, 'filled'],
    SSRC: ssrc,
    stats: { packets, bytes, errors: 0 },
  };
}

/**
 * A delete reply from rtpengine 10.5.3.5 for a PCMU call that carried 30 RTP packets and 3 RTCP SRs each way
 * (captured with test/ng/client.test.ts's call; the stream entries are rebuilt with stream() to keep this short).
 */
const DELETE_REPLY: NgDict = {
  created: 1795817906,
  created_us: 676452,
  'last signal': 1795817906,
  SSRC: {
    '572662306': {
      'cumulative loss': 1,
      'average MOS': { ...Q, samples: 1 },
      'lowest MOS': { ...Q, 'reported at': 1795817906 },
      'highest MOS': { ...Q, 'reported at': 1795817906 },
      'MOS progression': { interval: 0, entries: [{ ...Q, 'reported at': 1795817906 }] },
    },
  },
  tags: {
    'tag-a': {
      tag: 'tag-a',
      label: 'caller',
      created: 1795817906,
      subscriptions: [{ tag: 'tag-b', type: 'offer/answer' }],
      subscribers: [{ tag: 'tag-b', type: 'offer/answer' }],
      medias: [
        {
          index: 1,
          type: 'audio',
          protocol: 'RTP/AVP',
          codec: 'PCMU/8000',
          streams: [stream(25202, 44927, 'RTP', 286331153, 30, 5160), stream(25203, 37681, 'RTCP', 286331153, 3, 156)],
          flags: ['initialized', 'send', 'recv'],
        },
      ],
    },
    'tag-b': {
      tag: 'tag-b',
      label: 'callee',
      created: 1795817906,
      subscriptions: [{ tag: 'tag-a', type: 'offer/answer' }],
      subscribers: [{ tag: 'tag-a', type: 'offer/answer' }],
      medias: [
        {
          index: 1,
          type: 'audio',
          protocol: 'RTP/AVP',
          codec: 'PCMU/8000',
          streams: [stream(25190, 50614, 'RTP', 572662306, 30, 5160), stream(25191, 51786, 'RTCP', 572662306, 3, 156)],
          flags: ['initialized', 'send', 'recv', 'ICE controlling'],
        },
      ],
    },
  },
  totals: { RTP: { packets: 60, bytes: 10320, errors: 0 }, RTCP: { packets: 6, bytes: 312, errors: 0 } },
  result: 'ok',
};

test('types rtpengine 10.5\'s delete reply: times in Unix ms, ingress counters, MOS divided by 10', () => {
  const s = callStats(DELETE_REPLY);
  const quality = { mos: 4.3, roundTripUs: 577, roundTripLegUs: 326, jitterMs: 5, packetLossPct: 0 };
  const expected: CallStats = {
    created: 1795817906676.452,
    lastSignal: 1795817906000,
    tags: {
      'tag-a': {
        tag: 'tag-a',
        label: 'caller',
        created: 1795817906000,
        subscribers: ['tag-b'],
        medias: [
          {
            index: 1,
            type: 'audio',
            protocol: 'RTP/AVP',
            codec: 'PCMU/8000',
            flags: ['initialized', 'send', 'recv'],
            streams: [
              {
                localAddress: '127.0.0.1',
                localPort: 25202,
                endpoint: { family: 'IPv4', address: '127.0.0.1', port: 44927 },
                advertisedEndpoint: { family: 'IPv4', address: '127.0.0.1', port: 44927 },
                rtp: true,
                rtcp: false,
                flags: ['RTP', 'filled'],
                ssrc: 286331153,
                lastPacket: 1795817907000,
                ingress: { packets: 30, bytes: 5160, errors: 0 },
              },
              {
                localAddress: '127.0.0.1',
                localPort: 25203,
                endpoint: { family: 'IPv4', address: '127.0.0.1', port: 37681 },
                advertisedEndpoint: { family: 'IPv4', address: '127.0.0.1', port: 37681 },
                rtp: false,
                rtcp: true,
                flags: ['RTCP', 'filled'],
                ssrc: 286331153,
                lastPacket: 1795817907000,
                ingress: { packets: 3, bytes: 156, errors: 0 },
              },
            ],
          },
        ],
      },
      'tag-b': s.tags['tag-b']!,
    },
    totals: { RTP: { packets: 60, bytes: 10320, errors: 0 }, RTCP: { packets: 6, bytes: 312, errors: 0 } },
    ssrc: [
      {
        ssrc: 572662306,
        cumulativeLoss: 1,
        average: { ...quality, reportedAt: null, samples: 1 },
        lowest: { ...quality, reportedAt: 1795817906000 },
        highest: { ...quality, reportedAt: 1795817906000 },
        progression: [{ ...quality, reportedAt: 1795817906000 }],
      },
    ],
  };
  assert.deepEqual(s, expected);
  assert.equal(s.tags['tag-b']!.label, 'callee');
  assert.deepEqual(s.tags['tag-b']!.medias[0]!.streams.map((x) => [x.localPort, x.ingress.packets]), [[25190, 30], [25191, 3]]);
});

test('an SSRC rtpengine lists without any receiver report gets no quality, not zeros', () => {
  const s = callStats({ created: 1, SSRC: { '42': {} }, result: 'ok' });
  assert.deepEqual(s.ssrc, [{ ssrc: 42, cumulativeLoss: 0, average: null, lowest: null, highest: null, progression: [] }]);
});

test('a sparse reply gets defaults instead of an exception: the call is gone by then, its numbers should not be', () => {
  const s = callStats({ result: 'ok', tags: { '': { medias: [{ streams: [{ flags: ['RTP', 'RTCP'] }] }] } } });
  assert.equal(s.created, 0);
  assert.deepEqual(s.totals, { RTP: { packets: 0, bytes: 0, errors: 0 }, RTCP: { packets: 0, bytes: 0, errors: 0 } });
  const st = s.tags['']!.medias[0]!.streams[0]!;
  assert.equal(st.rtp && st.rtcp, true, 'a muxed stream carries both');
  assert.equal(st.endpoint, null);
  assert.equal(st.ssrc, null);
  assert.equal(st.lastPacket, null);
});

test('a tag named __proto__ keeps its ingress counters as a field of its own (found by test/fuzz/ng.test.ts)', () => {
  // The delete reply's bytes as they would come off the socket: one tag, named "__proto__", 7 RTP packets in.
  const wire = Buffer.from(
    'c1 d6:result2:ok4:tagsd9:__proto__d3:tag9:__proto__6:mediasld7:streamsld5:flagsl3:RTPe5:statsd7:packetsi7e5:bytesi1204e6:errorsi0eeeeeeeee',
    'latin1',
  );
  const raw = decodeNgMessage(wire).body;
  const summary = summarizeDeleteStats({ warning: null, stats: callStats(raw), raw });
  assert.ok(summary !== null);
  assert.deepEqual(Object.entries(summary.ingress), [['__proto__', { packets: 7, bytes: 1204, errors: 0 }]]);
  assert.equal(Object.getPrototypeOf(summary.ingress), Object.prototype);
});
