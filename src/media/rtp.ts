/**
 * RTP fixed header (RFC 3550 section 5.1), read and written in place.
 *
 * The generator sends from pre-built packets and only patches seq, timestamp and marker per send, so the setters
 * and readers below work on the caller's buffer and never allocate. Readers assume the buffer already passed
 * rtpPayloadOffset() >= 0 (or at least holds 12 bytes); on shorter input they return garbage, never throw.
 */

export const RTP_HEADER_BYTES = 12;
export const RTP_VERSION = 2;

export interface RtpHeaderFields {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  /** Unsigned 32-bit; larger or negative values wrap modulo 2^32. */
  timestamp: number;
  /** Unsigned 32-bit. */
  ssrc: number;
}

export interface RtpHeaderExtension {
  /** The 16-bit "defined by profile" field (0xBEDE for RFC 8285 one-byte headers). */
  profile: number;
  /** Length in 32-bit words, as on the wire (excluding the 4-byte extension header). */
  lengthWords: number;
  data: Uint8Array;
}

/** A decoded packet; every Uint8Array is a view into the parsed buffer, not a copy. */
export interface RtpPacketView {
  version: 2;
  padding: boolean;
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcs: number[];
  extension: RtpHeaderExtension | null;
  payload: Uint8Array;
  /** Padding octets at the end, including the count octet itself (0 when P is clear). */
  paddingBytes: number;
}

function u32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

function putU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = v >>> 16;
  buf[at + 2] = v >>> 8;
  buf[at + 3] = v;
}

/** Writes a 12-byte header at offset 0: V=2, no padding, no extension, no CSRC. */
export function writeRtpHeader(buf: Uint8Array, fields: RtpHeaderFields): void {
  if (buf.length < RTP_HEADER_BYTES) throw new RangeError(`RTP header needs 12 bytes, buffer has ${buf.length}`);
  buf[0] = 0x80;
  buf[1] = (fields.marker ? 0x80 : 0) | (fields.payloadType & 0x7f);
  buf[2] = fields.sequenceNumber >>> 8;
  buf[3] = fields.sequenceNumber;
  putU32(buf, 4, fields.timestamp >>> 0);
  putU32(buf, 8, fields.ssrc >>> 0);
}

/** HOT. Only the low 16 bits of seq are used. */
export function setRtpSequence(buf: Uint8Array, seq: number): void {
  buf[2] = seq >>> 8;
  buf[3] = seq;
}

/** HOT. `ts` may run past 2^32 (a sample counter); it is written modulo 2^32. */
export function setRtpTimestamp(buf: Uint8Array, ts: number): void {
  // ToUint32 is exact modulo 2^32 for every integer a double holds, so a free-running counter needs no masking.
  putU32(buf, 4, ts >>> 0);
}

/** HOT. */
export function setRtpMarker(buf: Uint8Array, on: boolean): void {
  buf[1] = on ? buf[1]! | 0x80 : buf[1]! & 0x7f;
}

/** HOT. */
export function setRtpSsrc(buf: Uint8Array, ssrc: number): void {
  putU32(buf, 8, ssrc >>> 0);
}

/** HOT. */
export function setRtpPayloadType(buf: Uint8Array, payloadType: number): void {
  buf[1] = (buf[1]! & 0x80) | (payloadType & 0x7f);
}

/** HOT. */
export function rtpSequence(buf: Uint8Array): number {
  return (buf[2]! << 8) | buf[3]!;
}

/** HOT. Unsigned. */
export function rtpTimestamp(buf: Uint8Array): number {
  return u32(buf, 4);
}

/**
 * HOT. The timestamp's 32 bits as a signed int32. V8 boxes a returned number >= 2^31 as a heap number when the
 * call is not inlined (about 16 bytes per call, measured); an int32 never is. Anything that only uses timestamp
 * differences modulo 2^32, like ReceiveTracker.onPacket, accepts this form unchanged.
 */
export function rtpTimestampInt32(buf: Uint8Array): number {
  return (buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!;
}

/** HOT. Unsigned. */
export function rtpSsrc(buf: Uint8Array): number {
  return u32(buf, 8);
}

/** HOT. The SSRC as a signed int32 (same bits): V8 keeps it unboxed, so comparing SSRCs allocates nothing. */
export function rtpSsrcInt32(buf: Uint8Array): number {
  return (buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!;
}

/** HOT. */
export function rtpPayloadType(buf: Uint8Array): number {
  return buf[1]! & 0x7f;
}

/** HOT. */
export function rtpMarker(buf: Uint8Array): boolean {
  return (buf[1]! & 0x80) !== 0;
}

/**
 * HOT. Where the payload starts (after CSRCs and the header extension), or -1 when the bytes are not valid RTP:
 * shorter than 12, version != 2, CSRC list or extension running past the end, or the padding count is 0 or larger
 * than what follows the header. This is the one validity check the receive path runs per packet. `length`: the
 * datagram's length when `buf` is a longer view (a receive arena slot).
 */
export function rtpPayloadOffset(buf: Uint8Array, length: number = buf.length): number {
  const len = length;
  if (len < RTP_HEADER_BYTES) return -1;
  const b0 = buf[0]!;
  if (b0 >>> 6 !== RTP_VERSION) return -1;
  let off = RTP_HEADER_BYTES + 4 * (b0 & 0x0f);
  if (off > len) return -1;
  if ((b0 & 0x10) !== 0) {
    if (off + 4 > len) return -1;
    off += 4 + 4 * ((buf[off + 2]! << 8) | buf[off + 3]!);
    if (off > len) return -1;
  }
  if ((b0 & 0x20) !== 0) {
    // Padding count includes itself (RFC 3550 5.1), so 0 is malformed; it may consume the whole payload, no more.
    const pad = buf[len - 1]!;
    if (pad === 0 || off + pad > len) return -1;
  }
  return off;
}

/** HOT. End of the payload (length minus padding), or -1 when the packet is not valid RTP. */
export function rtpPayloadEnd(buf: Uint8Array, length: number = buf.length): number {
  if (rtpPayloadOffset(buf, length) < 0) return -1;
  const len = length;
  return (buf[0]! & 0x20) !== 0 ? len - buf[len - 1]! : len;
}

/** Allocating full decode, for tests and diagnostics; null when the bytes are not valid RTP. */
export function parseRtp(buf: Uint8Array): RtpPacketView | null {
  const start = rtpPayloadOffset(buf);
  if (start < 0) return null;
  const end = rtpPayloadEnd(buf);
  const b0 = buf[0]!;
  const cc = b0 & 0x0f;
  const csrcs: number[] = [];
  for (let i = 0; i < cc; i++) csrcs.push(u32(buf, RTP_HEADER_BYTES + 4 * i));
  let extension: RtpHeaderExtension | null = null;
  if ((b0 & 0x10) !== 0) {
    const at = RTP_HEADER_BYTES + 4 * cc;
    const lengthWords = (buf[at + 2]! << 8) | buf[at + 3]!;
    extension = {
      profile: (buf[at]! << 8) | buf[at + 1]!,
      lengthWords,
      data: buf.subarray(at + 4, at + 4 + 4 * lengthWords),
    };
  }
  return {
    version: 2,
    padding: (b0 & 0x20) !== 0,
    marker: rtpMarker(buf),
    payloadType: rtpPayloadType(buf),
    sequenceNumber: rtpSequence(buf),
    timestamp: rtpTimestamp(buf),
    ssrc: rtpSsrc(buf),
    csrcs,
    extension,
    payload: buf.subarray(start, end),
    paddingBytes: buf.length - end,
  };
}
