/**
 * Properties of parseAudioSdp (src/sdp.ts), which reads the SDP in rtpengine's offer and answer replies: what
 * buildAudioSdp writes reads back the same, and any text (noise, SDP-shaped lines, valid SDP cut and shuffled, very
 * long lines, thousands of m= lines) is either read or refused with SdpError. Any other exception would escape
 * placeCall's error handling as a bug, not as a failed call.
 *
 * Bounded work, by structure: one split into lines, one pass over them, and per line only anchored patterns whose
 * quantified parts cannot overlap (a run of digits, then blanks, then non-blanks), so no line is retried from
 * several starts. The long-line arbitraries would push a backtracking pattern past the property's budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildAudioSdp, parseAudioSdp, SdpError, type AudioSdp, type AudioSdpOptions, type SdpCodec } from '../../src/sdp.js';
import { checkProperty } from '../helpers/fuzz.js';

/** The parse, or null for SdpError; anything else thrown fails the property. */
function parseOrReject(sdp: string): AudioSdp | null {
  try {
    return parseAudioSdp(sdp);
  } catch (err) {
    if (err instanceof SdpError) return null;
    throw err;
  }
}

/** A token as SDP fields carry them: no blanks, no '/', nothing a line split would cut. */
const token = fc.stringMatching(/^[!-.0-~]{1,12}$/);

/**
 * fmtp values of anything but line ends, blanks inside (a lone CR and U+2028 too, which only CRLF and LF do not
 * end); the ends are trimmed as a parser trims each line.
 */
const fmtp = fc
  .array(fc.oneof(fc.constantFrom(' ', '\t', '\r', '\u2028', '\u00a0', ';', '='), fc.string({ unit: 'binary', minLength: 1, maxLength: 4 })), { maxLength: 12 })
  .map((parts) => parts.join('').replace(/\n/g, '').trim());

const codec: fc.Arbitrary<SdpCodec> = fc.record(
  {
    payloadType: fc.integer({ min: 0, max: 127 }),
    encoding: token,
    clockRate: fc.integer({ min: 1, max: 192000 }),
    channels: fc.integer({ min: 1, max: 8 }),
    fmtp: fc.option(fmtp, { nil: null }),
  },
  { requiredKeys: ['payloadType', 'encoding', 'clockRate'], noNullPrototype: true },
);

const options: fc.Arbitrary<AudioSdpOptions> = fc.record(
  {
    sessionId: token,
    address: fc.oneof(fc.ipV4(), fc.ipV6(), token),
    port: fc.integer({ min: 1, max: 65535 }),
    rtcpPort: fc.integer({ min: 1, max: 65535 }),
    codecs: fc.uniqueArray(codec, { minLength: 1, maxLength: 8, selector: (c) => c.payloadType }),
    ptimeMs: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0.125, max: 1e6, noNaN: true })),
    direction: fc.constantFrom('sendrecv' as const, 'sendonly' as const, 'recvonly' as const, 'inactive' as const),
  },
  { requiredKeys: ['sessionId', 'address', 'port', 'codecs'], noNullPrototype: true },
);

test('SDP: what buildAudioSdp writes, parseAudioSdp reads back', (t) => {
  checkProperty(
    t,
    'SDP round trip',
    fc.property(options, (o) => {
      const got = parseAudioSdp(buildAudioSdp(o));
      assert.deepEqual(got, {
        address: o.address,
        port: o.port,
        rtcpAddress: o.address,
        rtcpPort: o.rtcpPort ?? o.port + 1,
        rtcpMux: false,
        codecs: o.codecs.map((c) => {
          const want: SdpCodec = { payloadType: c.payloadType, encoding: c.encoding, clockRate: c.clockRate };
          // Mono is the default the builder leaves out; an absent or empty fmtp is not written.
          if (c.channels !== undefined && c.channels > 1) want.channels = c.channels;
          want.fmtp = c.fmtp ? c.fmtp : null;
          return want;
        }),
        ptimeMs: o.ptimeMs ?? null,
        direction: o.direction ?? 'sendrecv',
        protocol: 'RTP/AVP',
      });
    }),
    3000,
  );
});

/** Lines an SDP may hold, well-formed or not, with a random tail where a value belongs. */
const sdpLine = fc.oneof(
  fc.constantFrom('v=0', 's=-', 't=0 0', 'a=rtcp-mux', 'a=sendonly', 'a=inactive', 'm=audio', 'c=IN', 'a=rtpmap:', 'a=fmtp:', 'a=ptime:', 'a=rtcp:'),
  fc.tuple(fc.constantFrom('c=IN IP4 ', 'c=IN IP6 ', 'c=IN  IP4\t', 'c=IN IP4 /'), fc.string({ maxLength: 20 })).map(([a, b]) => a + b),
  fc.tuple(fc.constantFrom('m=audio ', 'm=video ', 'm=audio  '), fc.array(fc.oneof(fc.nat({ max: 70000 }).map(String), token, fc.constantFrom('RTP/AVP', '0/2', '-1', '')), { maxLength: 8 }))
    .map(([m, fields]) => m + fields.join(' ')),
  fc.tuple(fc.constantFrom('a=rtpmap:', 'a=fmtp:', 'a=ptime:', 'a=rtcp:'), fc.nat({ max: 300 }), fc.string({ maxLength: 20 })).map(([a, n, rest]) => `${a}${n} ${rest}`),
  fc.string({ maxLength: 30 }),
);

const eol = fc.constantFrom('\r\n', '\n', '\r', '\r\r\n');

/** An SDP: lines of the shapes above, or a built one cut, with lines dropped, doubled or swapped. */
const sdpText = fc.oneof(
  fc.string({ maxLength: 200, size: 'medium' }),
  fc.tuple(fc.array(sdpLine, { maxLength: 30, size: 'medium' }), eol).map(([lines, e]) => lines.join(e)),
  fc.tuple(options, fc.array(fc.tuple(fc.nat(), fc.constantFrom('drop', 'twice', 'swap', 'cut')), { maxLength: 4 }), eol).map(([o, edits, e]) => {
    const lines = buildAudioSdp(o).split('\r\n');
    for (const [at, edit] of edits) {
      const i = at % lines.length;
      if (edit === 'drop') lines.splice(i, 1);
      else if (edit === 'twice') lines.splice(i, 0, lines[i]!);
      else if (edit === 'swap' && i + 1 < lines.length) [lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!];
      else if (edit === 'cut') lines[i] = lines[i]!.slice(0, at % (lines[i]!.length + 1));
    }
    return lines.join(e);
  }),
);

test('SDP: any text is read or refused with SdpError, and what is read is usable', (t) => {
  let read = 0;
  checkProperty(
    t,
    'SDP arbitrary and mutated text',
    fc.property(sdpText, (sdp) => {
      const got = parseOrReject(sdp);
      if (got === null) return;
      read++;
      // What placeCall relies on when it is not refused: a port to send to and payload types a packet can carry.
      assert.ok(Number.isInteger(got.port) && got.port >= 1 && got.port <= 65535);
      assert.ok(Number.isInteger(got.rtcpPort) && got.rtcpPort >= 1 && got.rtcpPort <= 65536);
      assert.ok(got.codecs.length >= 1);
      for (const c of got.codecs) assert.ok(Number.isInteger(c.payloadType) && c.payloadType >= 0 && c.payloadType <= 127);
      assert.ok(got.address.length > 0);
    }),
    10000,
  );
  assert.ok(read > 1000, `only ${read} SDPs read: the arbitraries do not reach the deep paths`);
});

test('SDP: very long lines and thousands of m= lines are read or refused like short ones', (t) => {
  const blanks = fc.constantFrom(' ', '\t', ' \t');
  const longLine = fc.tuple(
    fc.constantFrom('a=fmtp:96', 'a=rtpmap:96', 'a=rtcp:9', 'c=IN IP4', 'm=audio 7000 RTP/AVP', 'a=ptime:', 'a=x'),
    blanks,
    fc.integer({ min: 1000, max: 60_000 }),
    fc.constantFrom('x\ry', 'x\u2028y', 'x', '1.2.3.4/', 'opus/48000', '', '96 x'),
  ).map(([head, blank, n, tail]) => head + blank.repeat(Math.ceil(n / blank.length)) + tail);
  const base = 'v=0\r\nc=IN IP4 1.2.3.4\r\n';
  const audio = 'm=audio 7000 RTP/AVP 96 0\r\na=rtpmap:96 opus/48000/2\r\n';
  checkProperty(
    t,
    'SDP long lines and many m= lines',
    fc.property(
      fc.oneof(
        fc.tuple(longLine, fc.boolean()).map(([line, before]) => (before ? `${base}${line}\r\n${audio}` : `${base}${audio}${line}\r\n`)),
        fc.tuple(fc.integer({ min: 100, max: 5000 }), fc.constantFrom('m=video 9 RTP/AVP 96', 'm=audio 0 RTP/AVP 0', 'm=application 9 x'), fc.boolean()).map(
          ([n, m, audioLast]) => `${base}${`${m}\r\n`.repeat(n)}${audioLast ? audio : ''}`,
        ),
      ),
      (sdp) => {
        parseOrReject(sdp);
      },
    ),
    300,
  );
});
