/**
 * Arbitrary RTP and RTCP datagrams for the fuzz tests: valid packets with every optional part, and what a socket may
 * deliver instead (noise, plausible headers over noise, valid packets mutated). test/fuzz/rtp.test.ts and
 * rtcp.test.ts check the parsers on them; test/fuzz/media-receive.test.ts sends them to a leg over UDP.
 */
import fc from 'fast-check';
import { RTP_HEADER_BYTES, writeRtpHeader, type RtpHeaderFields } from '../../src/media/rtp.js';
import { MAX_REPORT_BLOCKS, compoundBytes, writeBye, writeCompound, type ReportBlock, type RtcpReport } from '../../src/media/rtcp.js';
import { mutated } from './fuzz.js';

/** The fixed header's fields and every optional part RFC 3550 5.1 allows. */
export interface RtpSpec extends RtpHeaderFields {
  csrcs: number[];
  extension: { profile: number; data: Uint8Array } | null;
  payload: Uint8Array;
  /** Padding octets including the count octet; 0 without padding. */
  padding: number;
}

export const u32 = fc.integer({ min: 0, max: 0xffffffff });

export const rtpSpec: fc.Arbitrary<RtpSpec> = fc.record({
  marker: fc.boolean(),
  payloadType: fc.integer({ min: 0, max: 127 }),
  sequenceNumber: fc.integer({ min: 0, max: 0xffff }),
  timestamp: u32,
  ssrc: u32,
  csrcs: fc.array(u32, { maxLength: 15 }),
  extension: fc.option(
    fc.record({ profile: fc.integer({ min: 0, max: 0xffff }), data: fc.nat({ max: 8 }).chain((w) => fc.uint8Array({ minLength: 4 * w, maxLength: 4 * w })) }),
    { nil: null },
  ),
  payload: fc.uint8Array({ maxLength: 200, size: 'medium' }),
  padding: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })),
});

/** A packet with every optional part RFC 3550 5.1 allows, written by hand (the generator itself writes only V=2 headers). */
export function buildRtp(s: RtpSpec): Uint8Array {
  const ext = s.extension === null ? 0 : 4 + s.extension.data.length;
  const headerBytes = RTP_HEADER_BYTES + 4 * s.csrcs.length + ext;
  const b = new Uint8Array(headerBytes + s.payload.length + s.padding);
  writeRtpHeader(b, s);
  b[0] = 0x80 | (s.padding > 0 ? 0x20 : 0) | (s.extension !== null ? 0x10 : 0) | s.csrcs.length;
  const view = new DataView(b.buffer);
  s.csrcs.forEach((c, i) => view.setUint32(RTP_HEADER_BYTES + 4 * i, c));
  if (s.extension !== null) {
    const at = RTP_HEADER_BYTES + 4 * s.csrcs.length;
    view.setUint16(at, s.extension.profile);
    view.setUint16(at + 2, s.extension.data.length / 4);
    b.set(s.extension.data, at + 4);
  }
  b.set(s.payload, headerBytes);
  if (s.padding > 0) b[b.length - 1] = s.padding;
  return b;
}

/** Byte 0 (CC, X, P) and the extension's length word: where a count or a length sits in an RTP packet. */
function rtpLengthFields(p: Uint8Array): number[] {
  const fields = [0];
  const cc = (p[0] ?? 0) & 0x0f;
  const ext = RTP_HEADER_BYTES + 4 * cc;
  if (((p[0] ?? 0) & 0x10) !== 0) fields.push(ext + 2, ext + 3);
  if (p.length > 0) fields.push(p.length - 1);
  return fields;
}

/** Anything a socket may hand the receive path: noise, noise with a V=2 first byte, valid packets and their mutations. */
export const rtpDatagram: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 300, size: 'medium' }),
  fc.tuple(fc.integer({ min: 0x80, max: 0xbf }), fc.uint8Array({ minLength: 3, maxLength: 120, size: 'medium' })).map(([b0, rest]) => Uint8Array.from([b0, ...rest])),
  rtpSpec.map(buildRtp),
  mutated(rtpSpec.map(buildRtp), rtpLengthFields),
);

// ---- RTCP ----------------------------------------------------------------------------------------------------------

/** A report block with every field inside what the wire carries: it must come back unchanged. */
export const wireBlock: fc.Arbitrary<ReportBlock> = fc.record({
  ssrc: u32,
  fractionLost: fc.integer({ min: 0, max: 255 }),
  cumulativeLost: fc.integer({ min: -0x800000, max: 0x7fffff }),
  extendedHighestSeq: u32,
  jitter: u32,
  lastSr: u32,
  delaySinceLastSr: u32,
}, { noNullPrototype: true });

/** CNAMEs of any UTF-16 (lone surrogates too), at most 255 UTF-8 bytes as SDES allows. */
export const cname = fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: 'grapheme-ascii', maxLength: 255, size: 'max' }), fc.string({ maxLength: 80 })).filter((s) => Buffer.byteLength(s) <= 255);

export const report: fc.Arbitrary<RtcpReport> = fc.oneof(
  fc.record({
    kind: fc.constant('sr' as const),
    ssrc: u32,
    sender: fc.record({ ntpSeconds: u32, ntpFraction: u32, rtpTimestamp: u32, packetCount: u32, octetCount: u32 }, { noNullPrototype: true }),
    reports: fc.array(wireBlock, { maxLength: MAX_REPORT_BLOCKS, size: 'medium' }),
  }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('rr' as const), ssrc: u32, reports: fc.array(wireBlock, { maxLength: MAX_REPORT_BLOCKS, size: 'medium' }) }, { noNullPrototype: true }),
);

/** What writeCompound (+ writeBye when `bye`) produced, as bytes. */
export function compound(r: RtcpReport, name: string, bye: boolean): Uint8Array {
  const buf = new Uint8Array(compoundBytes(r, name) + 8);
  let n = writeCompound(buf, r, name);
  if (bye) n += writeBye(buf, r.ssrc, n);
  return buf.slice(0, n);
}

const validCompound = fc.tuple(report, cname, fc.boolean()).map(([r, name, bye]) => compound(r, name, bye));

/** Byte 0 (V, P, count) and the length word of every packet in the compound, found by walking the lengths. */
function rtcpLengthFields(p: Uint8Array): number[] {
  const fields: number[] = [];
  for (let at = 0; at + 4 <= p.length; at += 4 * (((p[at + 2]! << 8) | p[at + 3]!) + 1)) fields.push(at, at + 2, at + 3);
  return fields;
}

/** Anything a socket may hand the RTCP receive path: noise, noise behind a V=2 SR/RR header, valid compounds and mutations. */
export const rtcpDatagram: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 200, size: 'medium' }),
  // Noise behind a plausible first header (V=2, SR or RR), so the walk gets past the first checks.
  fc
    .tuple(fc.integer({ min: 0x80, max: 0xbf }), fc.constantFrom(200, 201), fc.nat({ max: 40 }), fc.uint8Array({ maxLength: 200, size: 'medium' }))
    .map(([b0, pt, words, rest]) => Uint8Array.from([b0, pt, 0, words, ...rest])),
  validCompound,
  mutated(validCompound, rtcpLengthFields),
);
