import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildAudioSdp, parseAudioSdp, SdpError, type AudioSdp } from '../src/sdp.js';

const PCMU = { payloadType: 0, encoding: 'PCMU', clockRate: 8000 };
const OPUS = { payloadType: 111, encoding: 'opus', clockRate: 48000, channels: 2, fmtp: 'minptime=10;useinbandfec=1' };

test('builds a PCMU offer with CRLF lines in the order rtpengine expects', () => {
  const sdp = buildAudioSdp({ sessionId: '1001', address: '127.0.0.1', port: 20000, codecs: [PCMU], ptimeMs: 20 });
  assert.equal(
    sdp,
    'v=0\r\n' +
      'o=- 1001 1001 IN IP4 127.0.0.1\r\n' +
      's=rtp-bench\r\n' +
      'c=IN IP4 127.0.0.1\r\n' +
      't=0 0\r\n' +
      'm=audio 20000 RTP/AVP 0\r\n' +
      'a=rtpmap:0 PCMU/8000\r\n' +
      'a=ptime:20\r\n' +
      'a=sendrecv\r\n',
  );
});

test('builds opus with channels and fmtp, a=rtcp and a direction; mono channels are not written', () => {
  const sdp = buildAudioSdp({
    sessionId: 'call-7-a',
    address: '127.0.0.2',
    port: 20002,
    rtcpPort: 20011,
    codecs: [OPUS, { payloadType: 8, encoding: 'PCMA', clockRate: 8000, channels: 1, fmtp: null }],
    ptimeMs: 20,
    direction: 'sendonly',
  });
  assert.equal(
    sdp,
    'v=0\r\no=- call-7-a call-7-a IN IP4 127.0.0.2\r\ns=rtp-bench\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n' +
      'm=audio 20002 RTP/AVP 111 8\r\n' +
      'a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n' +
      'a=rtpmap:8 PCMA/8000\r\n' +
      'a=ptime:20\r\na=rtcp:20011\r\na=sendonly\r\n',
  );
});

test('builds IPv6 addresses as IP6', () => {
  const sdp = buildAudioSdp({ sessionId: '1', address: '::1', port: 20000, codecs: [PCMU] });
  assert.match(sdp, /^o=- 1 1 IN IP6 ::1\r$/m);
  assert.match(sdp, /^c=IN IP6 ::1\r$/m);
});

test('refuses to build what no one could answer', () => {
  assert.throws(() => buildAudioSdp({ sessionId: '1', address: '127.0.0.1', port: 20000, codecs: [] }), SdpError);
  assert.throws(() => buildAudioSdp({ sessionId: '1', address: '127.0.0.1', port: 0, codecs: [PCMU] }), /port 0/);
  assert.throws(() => buildAudioSdp({ sessionId: '1', address: '127.0.0.1', port: 70000, codecs: [PCMU] }), /port 70000/);
  assert.throws(() => buildAudioSdp({ sessionId: 'a b', address: '127.0.0.1', port: 20000, codecs: [PCMU] }), /session id/);
  assert.throws(() => buildAudioSdp({ sessionId: '1', address: '127.0.0.1', port: 20000, codecs: [{ ...PCMU, payloadType: 128 }] }), /outside 0-127/);
});

test('parses what it builds', () => {
  const sdp = buildAudioSdp({ sessionId: '9', address: '127.0.0.1', port: 20000, rtcpPort: 20005, codecs: [OPUS, PCMU], ptimeMs: 20, direction: 'recvonly' });
  const expected: AudioSdp = {
    address: '127.0.0.1',
    port: 20000,
    rtcpAddress: '127.0.0.1',
    rtcpPort: 20005,
    rtcpMux: false,
    codecs: [OPUS, { ...PCMU, fmtp: null }],
    ptimeMs: 20,
    direction: 'recvonly',
    protocol: 'RTP/AVP',
  };
  assert.deepEqual(parseAudioSdp(sdp), expected);
});

// Captured from rtpengine 10.5.3.5: leg A offered opus only with codec {mask: ["opus"], transcode: ["PCMU"]}.
const RTPENGINE_OFFER_REPLY =
  'v=0\r\no=- 1001 1 IN IP4 127.0.0.1\r\ns=rtp-bench\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n' +
  'm=audio 41136 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=rtcp:41137\r\na=ptime:20\r\n';
// ... and its answer reply after leg B answered PCMU: leg A gets its opus back.
const RTPENGINE_ANSWER_REPLY =
  'v=0\r\no=- 1002 1 IN IP4 127.0.0.1\r\ns=rtp-bench\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n' +
  'm=audio 41150 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n' +
  'a=sendrecv\r\na=rtcp:41151\r\na=ptime:20\r\n';

test('reads rtpengine\'s transcoding offer reply: leg B sees only PCMU, PT 0', () => {
  assert.deepEqual(parseAudioSdp(RTPENGINE_OFFER_REPLY), {
    address: '127.0.0.1',
    port: 41136,
    rtcpAddress: '127.0.0.1',
    rtcpPort: 41137,
    rtcpMux: false,
    codecs: [{ payloadType: 0, encoding: 'PCMU', clockRate: 8000, fmtp: null }],
    ptimeMs: 20,
    direction: 'sendrecv',
    protocol: 'RTP/AVP',
  });
});

test('reads rtpengine\'s transcoding answer reply: leg A keeps opus', () => {
  const a = parseAudioSdp(RTPENGINE_ANSWER_REPLY);
  assert.equal(a.port, 41150);
  assert.equal(a.rtcpPort, 41151);
  assert.deepEqual(a.codecs, [OPUS]);
});

test('media-level c= wins over session level; a=rtcp with its own address', () => {
  const a = parseAudioSdp(
    'v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n' +
      'm=audio 5004 RTP/AVP 8\r\nc=IN IP4 192.0.2.7/127\r\na=rtcp:6000 IN IP4 192.0.2.9\r\n',
  );
  assert.equal(a.address, '192.0.2.7');
  assert.equal(a.rtcpAddress, '192.0.2.9');
  assert.equal(a.rtcpPort, 6000);
  assert.deepEqual(a.codecs, [{ payloadType: 8, encoding: 'PCMA', clockRate: 8000, fmtp: null }]);
});

test('session-level c=, ptime and direction apply when the media has none; LF-only lines are read too', () => {
  const a = parseAudioSdp('v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\na=ptime:30\na=inactive\nm=audio 7000 RTP/AVP 18 3 13\n');
  assert.equal(a.address, '1.2.3.4');
  assert.equal(a.ptimeMs, 30);
  assert.equal(a.direction, 'inactive');
  assert.equal(a.rtcpPort, 7001, 'without a=rtcp, RTCP goes to port + 1');
  assert.deepEqual(
    a.codecs.map((c) => `${c.payloadType} ${c.encoding}/${c.clockRate}`),
    ['18 G729/8000', '3 GSM/8000', '13 CN/8000'],
  );
  assert.equal(parseAudioSdp('c=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 0\r\n').ptimeMs, null);
});

test('static payload types: an rtpmap overrides the RFC 3551 name; stereo static L16 keeps its channels', () => {
  const a = parseAudioSdp('c=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 0 10\r\na=rtpmap:0 PCMU/8000\r\n');
  assert.deepEqual(a.codecs, [
    { payloadType: 0, encoding: 'PCMU', clockRate: 8000, fmtp: null },
    { payloadType: 10, encoding: 'L16', clockRate: 44100, channels: 2, fmtp: null },
  ]);
});

test('rtcp-mux without a=rtcp sends RTCP to the RTP port', () => {
  const a = parseAudioSdp('c=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 0\r\na=rtcp-mux\r\n');
  assert.equal(a.rtcpMux, true);
  assert.equal(a.rtcpPort, 7000);
  const b = parseAudioSdp('c=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 0\r\na=rtcp:7000\r\na=rtcp-mux\r\n');
  assert.equal(b.rtcpPort, 7000);
});

test('reads the first m=audio only, skipping video before it', () => {
  const a = parseAudioSdp(
    'c=IN IP4 1.2.3.4\r\nm=video 9000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n' +
      'm=audio 7000 RTP/AVP 0\r\nm=audio 8000 RTP/AVP 8\r\n',
  );
  assert.equal(a.port, 7000);
  assert.equal(a.direction, 'sendrecv');
  assert.deepEqual(a.codecs.map((c) => c.encoding), ['PCMU']);
});

const broken: [string, string, RegExp][] = [
  ['no m=audio', 'v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 9000 RTP/AVP 96\r\n', /no m=audio line/],
  ['an empty SDP', '', /no m=audio line.*\(empty\)/],
  ['no c= anywhere', 'v=0\r\nm=audio 7000 RTP/AVP 0\r\n', /no c= line/],
  ['c= only for another media', 'm=video 9000 RTP/AVP 96\r\nc=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 0\r\n', /no c= line/],
  ['port 0', 'c=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n', /port 0: the audio stream was rejected/],
  ['a port that is not a number', 'c=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n', /no valid port/],
  ['a dynamic PT without rtpmap', 'c=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 111\r\n', /payload type 111 is dynamic but has no a=rtpmap/],
  ['no payload types', 'c=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP\r\n', /lists no payload types/],
  ['a bad payload type', 'c=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 0 x\r\n', /invalid payload type "x"/],
  ['a bad a=rtcp', 'c=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 0\r\na=rtcp:abc\r\n', /invalid a=rtcp:abc/],
  ['a bad c= line', 'c=IN IP4\r\nm=audio 7000 RTP/AVP 0\r\n', /unreadable connection line/],
];

for (const [name, sdp, message] of broken) {
  test(`rejects an SDP with ${name}`, () => {
    assert.throws(() => parseAudioSdp(sdp), (err: unknown) => err instanceof SdpError && message.test(err.message));
  });
}

test('an fmtp value with a lone CR or U+2028 inside is kept whole, also behind a long run of blanks (test/fuzz/sdp.test.ts round trip)', () => {
  // Lines split at CRLF or LF only, so a lone CR stays inside the line. The old pattern /^fmtp:(\d+)\s+(.*)$/ could
  // not match "." across it: it dropped the fmtp and, behind n blanks, backtracked n^2 steps (a 60 KB line held the
  // event loop for seconds).
  const sdp = (fmtp: string): string => `c=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 ${fmtp}\r\n`;
  assert.equal(parseAudioSdp(sdp('useinbandfec=1;\rminptime=10')).codecs[0]!.fmtp, 'useinbandfec=1;\rminptime=10');
  assert.equal(parseAudioSdp(sdp('a\u2028b')).codecs[0]!.fmtp, 'a\u2028b');
  assert.equal(parseAudioSdp(sdp(`${' '.repeat(60_000)}x\ry`)).codecs[0]!.fmtp, 'x\ry');
});
