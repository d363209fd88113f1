/**
 * How much audio one RTP payload carries, in ms, from the payload alone. Loss across a failover must be counted in
 * audio time, not packets: a survivor that transcodes may send opus in 60 ms packets (one packet where there were
 * three), with a new SSRC and new timestamps, and a packet count would call a healthy failover 67% loss.
 * Pure and allocation-free: it runs once per received packet.
 */
import type { MediaKind } from '../profile.js';

/**
 * Frame duration in tenths of a ms for each opus TOC configuration (RFC 6716 section 3.1, Table 2): 0-11 SILK
 * (NB, MB, WB: 10/20/40/60 ms), 12-15 hybrid (SWB, FB: 10/20 ms), 16-31 CELT (NB, WB, SWB, FB: 2.5/5/10/20 ms).
 * Tenths keep 2.5 ms exact in integers.
 */
const OPUS_FRAME_TENTHS_MS = new Uint16Array([
  100, 200, 400, 600, 100, 200, 400, 600, 100, 200, 400, 600,
  100, 200, 100, 200,
  25, 50, 100, 200, 25, 50, 100, 200, 25, 50, 100, 200, 25, 50, 100, 200,
]);

/** RFC 6716 section 3.2.5: a packet carries at most 120 ms of audio. */
const OPUS_MAX_PACKET_MS = 120;

/**
 * Audio in one opus packet (payload bytes [offset, end)), ms: the TOC byte's frame size times its frame count
 * (code 0: one frame, 1 and 2: two, 3: the count in the next byte's low 6 bits). 0 for what is not a valid opus
 * packet (empty, code 3 without its count byte, a count of 0, more than 120 ms).
 */
export function opusDurationMs(payload: Uint8Array, offset: number, end: number): number {
  if (end <= offset) return 0;
  const toc = payload[offset]!;
  const frameTenths = OPUS_FRAME_TENTHS_MS[toc >> 3]!;
  const code = toc & 0x03;
  let frames: number;
  if (code === 0) frames = 1;
  else if (code !== 3) frames = 2;
  else {
    if (end - offset < 2) return 0;
    frames = payload[offset + 1]! & 0x3f;
  }
  const ms = (frameTenths * frames) / 10;
  return ms > OPUS_MAX_PACKET_MS ? 0 : ms;
}

/** G.711 (either law): one byte per sample at 8 kHz, so bytes / 8 ms. */
export function g711DurationMs(offset: number, end: number): number {
  return end > offset ? (end - offset) / 8 : 0;
}

/** Audio in one RTP payload of `media`, ms (see opusDurationMs and g711DurationMs). */
export function audioDurationMs(media: MediaKind, payload: Uint8Array, offset: number, end: number): number {
  return media === 'opus' ? opusDurationMs(payload, offset, end) : g711DurationMs(offset, end);
}
