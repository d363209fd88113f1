/**
 * Per-call test tones and their detection: each leg of each call sends its own sine, and the receiver checks
 * (Goertzel) that the decoded audio is that sine. This proves a transcoded stream carries the right audio, which
 * packet counters alone cannot.
 */

/** Tones are multiples of this, so a 20 ms frame (and any multiple of it) holds whole periods. */
export const TONE_STEP_HZ = 50;
export const TONE_MIN_HZ = 300;
export const TONE_MAX_HZ = 3400;
/** Leg a uses 300..1800 Hz, leg b the same slot shifted up by this much, so the two never meet. */
export const TONE_LEG_B_OFFSET_HZ = 1550;
/** Slots per leg: 300, 350, ..., 1800. */
export const TONE_SLOTS = 31;
/** Coprime with TONE_SLOTS, so consecutive calls sit 350 Hz apart and 31 calls in a row all differ. */
const TONE_STRIDE = 7;
/** Call 0 leg a gets slot 14 = 1000 Hz, the classic test tone. */
const TONE_SLOT_OFFSET = 14;

/**
 * A frequency for one leg of one call: a multiple of 50 Hz in 300..3400 Hz. The two legs of a call are
 * 1550 Hz apart (and leg a frequencies never equal leg b frequencies of any call); calls whose indexes differ by
 * less than 31 get different frequencies. Deterministic.
 */
export function toneFrequencyHz(callIndex: number, leg: 'a' | 'b'): number {
  const i = Math.trunc(callIndex) % TONE_SLOTS;
  const slot = (((i * TONE_STRIDE + TONE_SLOT_OFFSET) % TONE_SLOTS) + TONE_SLOTS) % TONE_SLOTS;
  const a = TONE_MIN_HZ + TONE_STEP_HZ * slot;
  return leg === 'a' ? a : a + TONE_LEG_B_OFFSET_HZ;
}

/** The marker tone sits this far from the stream's tone (see markerFrequencyHz). */
export const MARKER_OFFSET_HZ = 1000;
/** Tones below this get their marker above them, the others below: leg a's tones (300..1800) go up, leg b's down. */
const MARKER_SPLIT_HZ = 1850;

/**
 * The marker frequency for a stream whose tone is `toneHz`: frame 0 of every pre-encoded loop carries it instead of
 * the tone (src/media/codec.ts encodeToneLoop), so the audio itself holds an edge every 500 ms whose arrival time
 * src/media/marker.ts measures. toneHz + 1000 for tones below 1850 Hz, toneHz - 1000 from there, so for every tone
 * on the 50 Hz grid in 300..3400 Hz the marker is:
 * - on the 50 Hz grid too: whole periods in every 20 ms frame, so the marker frame starts and ends at phase 0 like
 *   the tone frames around it (no seam);
 * - inside 300..3400 Hz (850..2800 Hz in fact), where G.711 and opus keep it;
 * - 1000 Hz from the tone: 5 bins of a 5 ms DFT window (200 Hz) and exactly 10 of the detector's 10 ms window, where
 *   tone and marker (and their images) are orthogonal because every difference and sum of the two is a multiple of
 *   100 Hz;
 * - never either tone of its own call (legs are 1550 Hz apart, 1550 is not a multiple of 100).
 * Throws RangeError for a tone off that grid, which could not carry a seamless marker.
 */
export function markerFrequencyHz(toneHz: number): number {
  if (!Number.isInteger(toneHz) || toneHz % TONE_STEP_HZ !== 0 || toneHz < TONE_MIN_HZ || toneHz > TONE_MAX_HZ) {
    throw new RangeError(`a marker needs a tone on the ${TONE_STEP_HZ} Hz grid in ${TONE_MIN_HZ}..${TONE_MAX_HZ} Hz, got ${toneHz}`);
  }
  return toneHz < MARKER_SPLIT_HZ ? toneHz + MARKER_OFFSET_HZ : toneHz - MARKER_OFFSET_HZ;
}

/** 10^(-10/20) of full scale: a -10 dBFS sine peak, loud enough to dwarf G.711 noise, far from clipping. */
export const TONE_AMPLITUDE_MINUS_10_DBFS = 10362;

/**
 * Fills `out` with round(amplitude * sin(2 pi f n / rate)) for n = startSample, startSample + 1, ...
 * Consecutive calls with startSample advanced by out.length continue the same sine without a seam.
 */
export function fillTone(out: Int16Array, freqHz: number, sampleRate: number, amplitude: number, startSample: number): void {
  const amp = amplitude > 32767 ? 32767 : amplitude < -32767 ? -32767 : amplitude;
  const n = out.length;
  if (Number.isInteger(freqHz) && Number.isInteger(sampleRate) && Number.isInteger(startSample)) {
    // Reduce the phase exactly (integer arithmetic) so precision does not decay after hours of samples.
    const step = ((freqHz % sampleRate) + sampleRate) % sampleRate;
    let phase = ((((startSample % sampleRate) * step) % sampleRate) + sampleRate) % sampleRate;
    const w = (2 * Math.PI) / sampleRate;
    for (let i = 0; i < n; i++) {
      out[i] = Math.round(amp * Math.sin(w * phase));
      phase += step;
      if (phase >= sampleRate) phase -= sampleRate;
    }
    return;
  }
  const w = (2 * Math.PI * freqHz) / sampleRate;
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin(w * (startSample + i)));
}

/**
 * A block is left out of a ToneDetector built with `excludeHz` when at least this share of its energy is at that
 * frequency: a 160-sample block with 16 or more samples of the marker (at the same amplitude as the tone) reaches it,
 * a clean tone block, G.711 noise or opus coding noise stay far below (orthogonal frequencies on the 50 Hz grid).
 */
export const TONE_EXCLUDE_FRACTION = 0.01;

export interface ToneDetectorOptions {
  /**
   * The stream's marker frequency (markerFrequencyHz): blocks that hold the marker are left out of the ratio instead
   * of counting as audio that is not the tone. Bounded: at most two blocks plus one in eight of the counted ones are
   * left out (a marker holds 1 or 2 blocks in 25), so a stream that is all at that frequency cannot hide behind it,
   * its blocks count and its ratio is ~0.
   */
  excludeHz?: number;
}

/**
 * Goertzel detector for one frequency, accumulated over blocks.
 *
 * ratio = sum over blocks of (2/N)|X(f)|^2 / sum of block energy. By Parseval (2/N)|X(f)|^2 is the energy of
 * the block's component at +-f, so a clean tone with whole periods in the block gives 1, silence gives 0 (defined
 * as such), a tone at another whole-period frequency gives ~0 and white noise about 2/N.
 *
 * Without options every block counts (the original semantics). With `excludeHz`, see ToneDetectorOptions.
 */
export class ToneDetector {
  readonly freqHz: number;
  readonly sampleRate: number;
  /** The excluded (marker) frequency, NaN when none. */
  readonly excludeHz: number;
  private readonly coeff: number;
  private readonly excludeCoeff: number;
  private blockCount = 0;
  private excludedCount = 0;
  private toneEnergy = 0;
  private totalEnergy = 0;
  private lastRatio = 0;

  constructor(freqHz: number, sampleRate: number, options: ToneDetectorOptions = {}) {
    if (!(sampleRate > 0)) throw new RangeError(`sample rate must be positive, got ${sampleRate}`);
    this.freqHz = freqHz;
    this.sampleRate = sampleRate;
    this.coeff = 2 * Math.cos((2 * Math.PI * freqHz) / sampleRate);
    const exclude = options.excludeHz;
    if (exclude !== undefined && !(exclude > 0 && exclude !== freqHz)) {
      throw new RangeError(`excluded frequency must be positive and differ from ${freqHz} Hz, got ${exclude}`);
    }
    this.excludeHz = exclude ?? Number.NaN;
    this.excludeCoeff = exclude === undefined ? Number.NaN : 2 * Math.cos((2 * Math.PI * exclude) / sampleRate);
  }

  /** HOT. Treats `samples` as one block; empty blocks are ignored. */
  add(samples: Int16Array): void {
    const n = samples.length;
    if (n === 0) return;
    const c = this.coeff;
    let s1 = 0;
    let s2 = 0;
    let energy = 0;
    const ec = this.excludeCoeff;
    if (ec === ec) {
      let e1 = 0;
      let e2 = 0;
      for (let i = 0; i < n; i++) {
        const x = samples[i]!;
        const s0 = x + c * s1 - s2;
        s2 = s1;
        s1 = s0;
        const e0 = x + ec * e1 - e2;
        e2 = e1;
        e1 = e0;
        energy += x * x;
      }
      const excluded = ((e1 * e1 + e2 * e2 - ec * e1 * e2) * 2) / n;
      if (excluded >= TONE_EXCLUDE_FRACTION * energy && energy > 0 && this.excludedCount < 2 + this.blockCount / 8) {
        this.excludedCount++;
        return;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const x = samples[i]!;
        const s0 = x + c * s1 - s2;
        s2 = s1;
        s1 = s0;
        energy += x * x;
      }
    }
    const tone = ((s1 * s1 + s2 * s2 - c * s1 * s2) * 2) / n;
    this.blockCount++;
    this.toneEnergy += tone;
    this.totalEnergy += energy;
    this.lastRatio = energy > 0 ? tone / energy : 0;
  }

  /** Blocks counted in the ratio (excluded ones are not). */
  get blocks(): number {
    return this.blockCount;
  }

  /** Blocks left out because they held the excluded frequency (always 0 without excludeHz). */
  get excludedBlocks(): number {
    return this.excludedCount;
  }

  /** Accumulated ratio over every counted block so far, 0 before any energy arrived. */
  get ratio(): number {
    return this.totalEnergy > 0 ? this.toneEnergy / this.totalEnergy : 0;
  }

  /** Ratio of the most recent counted block alone. */
  get lastBlockRatio(): number {
    return this.lastRatio;
  }

  reset(): void {
    this.blockCount = 0;
    this.excludedCount = 0;
    this.toneEnergy = 0;
    this.totalEnergy = 0;
    this.lastRatio = 0;
  }
}
