/**
 * RTCP (RFC 3550 section 6): SR/RR + SDES CNAME compound packets, BYE, a validating parser, and the NTP
 * arithmetic for round-trip time.
 *
 * Writers are allocation-free so a worker can emit RTCP for many calls from reused argument objects.
 * The parser allocates (it runs a few times per call-second) but never throws on arbitrary bytes.
 */

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;
export const RTCP_APP = 204;

export const SDES_END = 0;
export const SDES_CNAME = 1;

export const RTCP_HEADER_BYTES = 4;
export const SENDER_INFO_BYTES = 20;
export const REPORT_BLOCK_BYTES = 24;
/** RC and SC are 5-bit fields. */
export const MAX_REPORT_BLOCKS = 31;

/** Seconds from the NTP epoch (1900-01-01) to the Unix epoch. */
export const NTP_UNIX_OFFSET_SECONDS = 2208988800;

const CUMULATIVE_LOST_MAX = 0x7fffff;
const CUMULATIVE_LOST_MIN = -0x800000;

export interface ReportBlock {
  ssrc: number;
  /** Fixed point, lost/expected in the interval times 256: 0..255. */
  fractionLost: number;
  /** Signed 24-bit on the wire (duplicates can make it negative); writers clamp to that range. */
  cumulativeLost: number;
  extendedHighestSeq: number;
  /** Interarrival jitter in timestamp units. */
  jitter: number;
  /** Middle 32 bits of the last SR's NTP timestamp, 0 when none was received. */
  lastSr: number;
  /** Units of 1/65536 s. */
  delaySinceLastSr: number;
}

export interface SenderInfo {
  ntpSeconds: number;
  ntpFraction: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
}

export interface SdesChunk {
  ssrc: number;
  cname: string | null;
}

export type RtcpPacket =
  | { type: 'sr'; ssrc: number; sender: SenderInfo; reports: ReportBlock[] }
  | { type: 'rr'; ssrc: number; reports: ReportBlock[] }
  | { type: 'sdes'; chunks: SdesChunk[] }
  | { type: 'bye'; ssrcs: number[]; reason: string | null }
  /** `length` is the packet's size in bytes including its 4-byte header. */
  | { type: 'other'; packetType: number; length: number };

export type RtcpReport =
  | { kind: 'sr'; ssrc: number; sender: SenderInfo; reports: ReportBlock[] }
  | { kind: 'rr'; ssrc: number; reports: ReportBlock[] };

function putU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = v >>> 16;
  buf[at + 2] = v >>> 8;
  buf[at + 3] = v;
}

function u32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

function putHeader(buf: Uint8Array, at: number, count: number, packetType: number, totalBytes: number): void {
  buf[at] = 0x80 | count;
  buf[at + 1] = packetType;
  const words = totalBytes / 4 - 1;
  buf[at + 2] = words >>> 8;
  buf[at + 3] = words;
}

/**
 * UTF-8 byte length of a string without materialising the bytes; lone surrogates count as U+FFFD (3 bytes),
 * which is what writeUtf8 emits for them.
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && isLowSurrogate(s.charCodeAt(i + 1))) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** TextEncoder.encodeInto needs a subarray (an allocation) to write at an offset; this does not. */
function writeUtf8(buf: Uint8Array, at: number, s: string): number {
  let o = at;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[o++] = c;
    } else if (c < 0x800) {
      buf[o++] = 0xc0 | (c >>> 6);
      buf[o++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && isLowSurrogate(next)) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          buf[o++] = 0xf0 | (cp >>> 18);
          buf[o++] = 0x80 | ((cp >>> 12) & 0x3f);
          buf[o++] = 0x80 | ((cp >>> 6) & 0x3f);
          buf[o++] = 0x80 | (cp & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      buf[o++] = 0xe0 | (c >>> 12);
      buf[o++] = 0x80 | ((c >>> 6) & 0x3f);
      buf[o++] = 0x80 | (c & 0x3f);
    }
  }
  return o - at;
}

function clampInt(v: number, lo: number, hi: number): number {
  // NaN compares false both ways; map it to lo so garbage statistics never reach the wire as NaN -> 0 surprises.
  if (!(v >= lo)) return lo;
  return v > hi ? hi : Math.trunc(v);
}

function writeReportBlock(buf: Uint8Array, at: number, r: ReportBlock): void {
  putU32(buf, at, r.ssrc >>> 0);
  buf[at + 4] = clampInt(r.fractionLost, 0, 255);
  // Two's complement in 24 bits: the top byte of the 32-bit pattern is dropped by the Uint8Array stores.
  const lost = clampInt(r.cumulativeLost, CUMULATIVE_LOST_MIN, CUMULATIVE_LOST_MAX);
  buf[at + 5] = lost >> 16;
  buf[at + 6] = lost >> 8;
  buf[at + 7] = lost;
  putU32(buf, at + 8, r.extendedHighestSeq >>> 0);
  putU32(buf, at + 12, clampInt(r.jitter, 0, 0xffffffff) >>> 0);
  putU32(buf, at + 16, r.lastSr >>> 0);
  putU32(buf, at + 20, r.delaySinceLastSr >>> 0);
}

/** Size of an SDES packet holding one chunk with one CNAME item and the terminating null octet(s). */
export function sdesCnameBytes(cnameUtf8Bytes: number): number {
  // SSRC + type + length + text + at least one null octet, padded to the next 32-bit boundary.
  return RTCP_HEADER_BYTES + 4 + ((2 + cnameUtf8Bytes + 1 + 3) & ~3);
}

/** Bytes writeCompound will need for this report and CNAME. */
export function compoundBytes(report: RtcpReport, cname: string): number {
  const first =
    RTCP_HEADER_BYTES + 4 + (report.kind === 'sr' ? SENDER_INFO_BYTES : 0) + REPORT_BLOCK_BYTES * report.reports.length;
  return first + sdesCnameBytes(utf8Length(cname));
}

/**
 * Writes SR or RR followed by SDES with one CNAME chunk at offset 0; returns the bytes written.
 * RangeError when the buffer is too small, there are more than 31 report blocks, or the CNAME exceeds 255 bytes.
 */
export function writeCompound(buf: Uint8Array, report: RtcpReport, cname: string): number {
  const blocks = report.reports.length;
  if (blocks > MAX_REPORT_BLOCKS) throw new RangeError(`at most ${MAX_REPORT_BLOCKS} report blocks, got ${blocks}`);
  const cnameLen = utf8Length(cname);
  if (cnameLen > 255) throw new RangeError(`CNAME is ${cnameLen} bytes, SDES items hold at most 255`);
  const firstLen = RTCP_HEADER_BYTES + 4 + (report.kind === 'sr' ? SENDER_INFO_BYTES : 0) + REPORT_BLOCK_BYTES * blocks;
  const sdesLen = sdesCnameBytes(cnameLen);
  const total = firstLen + sdesLen;
  if (buf.length < total) throw new RangeError(`RTCP compound needs ${total} bytes, buffer has ${buf.length}`);

  putHeader(buf, 0, blocks, report.kind === 'sr' ? RTCP_SR : RTCP_RR, firstLen);
  putU32(buf, 4, report.ssrc >>> 0);
  let at = 8;
  if (report.kind === 'sr') {
    const s = report.sender;
    putU32(buf, 8, s.ntpSeconds >>> 0);
    putU32(buf, 12, s.ntpFraction >>> 0);
    putU32(buf, 16, s.rtpTimestamp >>> 0);
    putU32(buf, 20, s.packetCount >>> 0);
    putU32(buf, 24, s.octetCount >>> 0);
    at = 28;
  }
  for (let i = 0; i < blocks; i++, at += REPORT_BLOCK_BYTES) writeReportBlock(buf, at, report.reports[i]!);

  putHeader(buf, at, 1, RTCP_SDES, sdesLen);
  putU32(buf, at + 4, report.ssrc >>> 0);
  buf[at + 8] = SDES_CNAME;
  buf[at + 9] = cnameLen;
  const textEnd = at + 10 + writeUtf8(buf, at + 10, cname);
  // Null octets end the item list and pad the chunk; the caller's buffer may hold stale bytes there.
  buf.fill(0, textEnd, at + sdesLen);
  return total;
}

/**
 * Writes one BYE packet for `ssrc` at `offset` (8 bytes) and returns the bytes written. A BYE must not open a
 * compound datagram (RFC 3550 6.1), so it normally goes right after writeCompound's output:
 * `n = writeCompound(buf, report, cname); n += writeBye(buf, ssrc, n)`.
 */
export function writeBye(buf: Uint8Array, ssrc: number, offset = 0): number {
  if (offset < 0 || buf.length < offset + 8) throw new RangeError(`RTCP BYE needs 8 bytes at offset ${offset}`);
  putHeader(buf, offset, 1, RTCP_BYE, 8);
  putU32(buf, offset + 4, ssrc >>> 0);
  return 8;
}

function readReportBlock(buf: Uint8Array, at: number): ReportBlock {
  return {
    ssrc: u32(buf, at),
    fractionLost: buf[at + 4]!,
    // Sign-extend the 24-bit field by shifting it into the top of an int32 and back.
    cumulativeLost: ((buf[at + 5]! << 24) | (buf[at + 6]! << 16) | (buf[at + 7]! << 8)) >> 8,
    extendedHighestSeq: u32(buf, at + 8),
    jitter: u32(buf, at + 12),
    lastSr: u32(buf, at + 16),
    delaySinceLastSr: u32(buf, at + 20),
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Parses SDES chunks in [start, end); null when an item or chunk runs past the end. */
function parseSdes(buf: Uint8Array, start: number, end: number, count: number): SdesChunk[] | null {
  const chunks: SdesChunk[] = [];
  let at = start;
  for (let c = 0; c < count; c++) {
    if (at + 4 > end) return null;
    const ssrc = u32(buf, at);
    at += 4;
    let cname: string | null = null;
    for (;;) {
      if (at >= end) return null;
      const type = buf[at]!;
      if (type === SDES_END) {
        // The null octet ends the list; the chunk then pads to the next 32-bit boundary (relative to the packet).
        at = start + ((at - start + 4) & ~3);
        if (at > end) return null;
        break;
      }
      if (at + 2 > end) return null;
      const len = buf[at + 1]!;
      if (at + 2 + len > end) return null;
      if (type === SDES_CNAME && cname === null) cname = utf8.decode(buf.subarray(at + 2, at + 2 + len));
      at += 2 + len;
    }
    chunks.push({ ssrc, cname });
  }
  return chunks;
}

function parseBye(buf: Uint8Array, start: number, end: number, count: number): RtcpPacket | null {
  if (start + 4 * count > end) return null;
  const ssrcs: number[] = [];
  for (let i = 0; i < count; i++) ssrcs.push(u32(buf, start + 4 * i));
  let at = start + 4 * count;
  let reason: string | null = null;
  if (at < end) {
    const len = buf[at]!;
    if (at + 1 + len > end) return null;
    reason = utf8.decode(buf.subarray(at + 1, at + 1 + len));
  }
  return { type: 'bye', ssrcs, reason };
}

/**
 * Parses a compound RTCP datagram with the RFC 3550 A.2 validity checks: version 2 in every packet, the first
 * packet SR or RR, packet lengths adding up exactly to the datagram, and the padding bit set only on the last
 * packet (with a padding count that fits). Also null when a known packet's content is shorter than its counts
 * require. Unknown packet types (APP, XR, feedback) come back as 'other'.
 */
export function parseCompound(buf: Uint8Array): RtcpPacket[] | null {
  const len = buf.length;
  if (len < 8) return null;
  const out: RtcpPacket[] = [];
  let at = 0;
  while (at < len) {
    if (at + RTCP_HEADER_BYTES > len) return null;
    const b0 = buf[at]!;
    if (b0 >>> 6 !== 2) return null;
    const count = b0 & 0x1f;
    const pt = buf[at + 1]!;
    if (at === 0 && pt !== RTCP_SR && pt !== RTCP_RR) return null;
    const pktLen = 4 * (((buf[at + 2]! << 8) | buf[at + 3]!) + 1);
    const pktEnd = at + pktLen;
    if (pktEnd > len) return null;
    let contentEnd = pktEnd;
    if ((b0 & 0x20) !== 0) {
      if (pktEnd !== len) return null;
      const pad = buf[pktEnd - 1]!;
      if (pad === 0 || pad > pktLen - RTCP_HEADER_BYTES) return null;
      contentEnd = pktEnd - pad;
    }
    const body = at + RTCP_HEADER_BYTES;
    switch (pt) {
      case RTCP_SR: {
        if (body + 4 + SENDER_INFO_BYTES + REPORT_BLOCK_BYTES * count > contentEnd) return null;
        const sender: SenderInfo = {
          ntpSeconds: u32(buf, body + 4),
          ntpFraction: u32(buf, body + 8),
          rtpTimestamp: u32(buf, body + 12),
          packetCount: u32(buf, body + 16),
          octetCount: u32(buf, body + 20),
        };
        const reports: ReportBlock[] = [];
        for (let i = 0; i < count; i++) reports.push(readReportBlock(buf, body + 24 + REPORT_BLOCK_BYTES * i));
        out.push({ type: 'sr', ssrc: u32(buf, body), sender, reports });
        break;
      }
      case RTCP_RR: {
        if (body + 4 + REPORT_BLOCK_BYTES * count > contentEnd) return null;
        const reports: ReportBlock[] = [];
        for (let i = 0; i < count; i++) reports.push(readReportBlock(buf, body + 4 + REPORT_BLOCK_BYTES * i));
        out.push({ type: 'rr', ssrc: u32(buf, body), reports });
        break;
      }
      case RTCP_SDES: {
        const chunks = parseSdes(buf, body, contentEnd, count);
        if (chunks === null) return null;
        out.push({ type: 'sdes', chunks });
        break;
      }
      case RTCP_BYE: {
        const bye = parseBye(buf, body, contentEnd, count);
        if (bye === null) return null;
        out.push(bye);
        break;
      }
      default:
        out.push({ type: 'other', packetType: pt, length: pktLen });
    }
    at = pktEnd;
  }
  return out;
}

/** Unix time in ms to a 64-bit NTP timestamp (seconds wrap modulo 2^32, i.e. NTP era 0 then era 1 from 2036). */
export function ntpFromUnixMs(ms: number): { seconds: number; fraction: number } {
  const wholeSeconds = Math.floor(ms / 1000);
  const remainderMs = ms - wholeSeconds * 1000;
  // Floor (not round) keeps the fraction below 2^32 without a carry into the seconds.
  const fraction = Math.min(0xffffffff, Math.floor(remainderMs * 4294967.296));
  return { seconds: (wholeSeconds + NTP_UNIX_OFFSET_SECONDS) >>> 0, fraction: fraction >>> 0 };
}

/** The middle 32 bits of an NTP timestamp, as carried in LSR (16.16 fixed point seconds). */
export function ntpMiddle32(seconds: number, fraction: number): number {
  return (((seconds & 0xffff) << 16) | (fraction >>> 16)) >>> 0;
}

/**
 * Round-trip time in ms from a report block (RFC 3550 6.4.1): A - LSR - DLSR in 1/65536 s units.
 * A - LSR is taken modulo 2^32, so it is right across the 16.16 clock's wrap every 65536 s.
 * NaN when lastSr is 0 (the peer has not seen an SR yet). Clamped at 0: on loopback the true RTT is below
 * the 15 us resolution and rounding can make the difference slightly negative.
 */
export function rttMs(arrivalMiddle32: number, lastSr: number, delaySinceLastSr: number): number {
  if (lastSr >>> 0 === 0) return Number.NaN;
  const sinceSr = (arrivalMiddle32 - lastSr) >>> 0;
  const units = sinceSr - (delaySinceLastSr >>> 0);
  return units <= 0 ? 0 : (units * 1000) / 65536;
}
