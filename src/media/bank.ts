/**
 * Pre-encoded audio: for every (codec, tone) the run needs, a loop of encoded frames. Encoding opus costs about
 * 170 us a frame, far too much to do live for hundreds of streams, so the coordinator encodes each loop once
 * before the first call and hands the bank to every media thread; the threads only copy frames into packets.
 */
import type { CodecProfile } from '../profile.js';
import { encodeToneLoop } from './codec.js';

/** 25 frames of 20 ms: long enough that encoder state varies, short enough to encode quickly. A tone at a
 * multiple of 50 Hz has whole periods in every 20 ms frame, so the loop joins without a click. Frame 0 of every
 * loop carries the marker tone (codec.ts MARKER_FRAME, marker.ts), so the audio holds an edge every
 * LOOP_FRAMES x 20 ms = 500 ms: the period within which marker.ts's audio delay is unambiguous. */
export const LOOP_FRAMES = 25;

export type MediaBank = Record<string, Uint8Array[]>;

export function bankKey(codecName: string, toneHz: number): string {
  return `${codecName}@${toneHz}`;
}

export interface BankEntry {
  codec: CodecProfile;
  toneHz: number;
}

export function buildMediaBank(entries: Iterable<BankEntry>, frames = LOOP_FRAMES): MediaBank {
  const bank: MediaBank = {};
  for (const { codec, toneHz } of entries) {
    const key = bankKey(codec.name, toneHz);
    if (!(key in bank)) bank[key] = encodeToneLoop(codec, toneHz, frames);
  }
  return bank;
}

/** Frames for a stream; a tone missing from the bank is encoded on the spot (slow, but never wrong). */
export function framesFromBank(bank: MediaBank, codec: CodecProfile, toneHz: number): Uint8Array[] {
  const key = bankKey(codec.name, toneHz);
  let frames = bank[key];
  if (frames === undefined) {
    frames = encodeToneLoop(codec, toneHz, LOOP_FRAMES);
    bank[key] = frames;
  }
  return frames;
}
