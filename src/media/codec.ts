/**
 * Frame encoders and decoders per codec profile: G.711 through g711.ts, opus through the libopus WASM build that
 * the `opusscript` package ships.
 *
 * Why not the OpusScript class itself: its JS wrapper keeps typed-array views on the WASM heap that it never
 * refreshes, and it indexes a 16-bit view with a byte address (so it reads and writes at twice the allocated
 * address). With about 80 live instances in one thread the doubled address runs off the heap and encode throws
 * "offset is out of bounds"; once the heap grows, every existing instance throws "detached ArrayBuffer". A worker
 * holds a decoder per call, so that breaks at a few dozen calls. The binding below drives the same native
 * handler with correctly sized allocations and re-reads the heap views on every call.
 */

import { createRequire } from 'node:module';
import type { CodecProfile } from '../profile.js';
import { decodeAlaw, decodeUlaw, encodeAlaw, encodeUlaw } from './g711.js';
import { TONE_AMPLITUDE_MINUS_10_DBFS, fillTone, markerFrequencyHz } from './tone.js';

export interface FrameEncoder {
  /** pcm: one ptime of mono samples at profile.sampleRate. Returns a new array the caller owns. */
  encode(pcm: Int16Array): Uint8Array;
}

export interface FrameDecoder {
  /**
   * Mono PCM at 8000 Hz whatever the codec, so the tone check does not depend on it. The result is a view into
   * a buffer the decoder owns and reuses (no allocation per packet): it is valid until the next decode() call;
   * copy it to keep it. An empty or undecodable payload gives an empty array (and counts in `errors` if invalid).
   */
  decode(payload: Uint8Array): Int16Array;
  close(): void;
  /** Payloads the codec rejected. */
  readonly errors: number;
}

/** Sample rate of every FrameDecoder's output. */
export const DECODED_SAMPLE_RATE = 8000;

/** Samples in one ptime of mono PCM at the profile's sample rate (what FrameEncoder.encode takes). */
export function frameSamples(profile: CodecProfile): number {
  return Math.round((profile.sampleRate * profile.ptimeMs) / 1000);
}

const EMPTY_PCM = new Int16Array(0);

// libopus request codes (opus_defines.h).
const OPUS_APPLICATION_VOIP = 2048;
const OPUS_SET_BITRATE = 4002;
/** OPUS_SET_FORCE_MODE_REQUEST (opus_private.h, handled by opus_encoder_ctl; opus_demo's -forcemode). */
const OPUS_SET_FORCE_MODE = 11002;
/** MODE_HYBRID (opus_private.h): SILK below 8 kHz plus CELT above, what VOIP at 32 kbit/s fullband mostly picks. */
const OPUS_MODE_HYBRID = 1001;
const OPUS_RATES: readonly number[] = [8000, 12000, 16000, 24000, 48000];
/** opus_encode's output bound in the opusscript build. */
const OPUS_MAX_PACKET = 1276 * 3;
/** 120 ms at 48 kHz: the most samples an encoder frame can hold. */
const OPUS_MAX_FRAME = 5760;
/** 120 ms at the decoder's 8 kHz: the most samples one packet can decode to. */
const OPUS_MAX_DECODED = (DECODED_SAMPLE_RATE * 120) / 1000;
const OPUS_ERRORS: Record<number, string> = {
  [-1]: 'bad argument',
  [-2]: 'buffer too small',
  [-3]: 'internal error',
  [-4]: 'invalid packet',
  [-5]: 'unimplemented',
  [-6]: 'invalid state',
  [-7]: 'memory allocation failed',
};

/** The parts of opusscript's Emscripten module used here (it ships no types for them). */
interface OpusHandler {
  /** Packs `samples` int16 values, stored one byte per 16-bit slot (lo, hi), in place, then calls opus_encode. */
  _encode(inputPtr: number, samples: number, outputPtr: number, frameSize: number): number;
  /** opus_decode, then writes each sample as two 16-bit slots (lo, hi); returns samples per channel or < 0. */
  _decode(inputPtr: number, bytes: number, outputPtr: number): number;
  _encoder_ctl(ctl: number, arg: number): number;
  _decoder_ctl(ctl: number, arg: number): number;
}

interface OpusNative {
  OpusScriptHandler: {
    new (sampleRate: number, channels: number, application: number): OpusHandler;
    destroy_handler(handler: OpusHandler): void;
  };
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  /** Replaced by the module when memory grows: read it at use, never cache it. */
  HEAPU8: Uint8Array;
  HEAP16: Int16Array;
}

let opusNative: OpusNative | undefined;

/** One WASM instance per thread, loaded on first use so G.711-only workers never compile it. */
function loadOpus(): OpusNative {
  if (opusNative) return opusNative;
  const require = createRequire(import.meta.url);
  const factory = require('opusscript/build/opusscript_native_wasm.js') as () => OpusNative;
  opusNative = factory();
  return opusNative;
}

function opusError(code: number): string {
  return OPUS_ERRORS[code] ?? `error ${code}`;
}

function checkOpusRate(rate: number): void {
  if (!OPUS_RATES.includes(rate)) throw new RangeError(`opus sample rate must be one of ${OPUS_RATES.join(', ')}, got ${rate}`);
}

class OpusFrameEncoder implements FrameEncoder {
  private readonly native: OpusNative;
  private handler: OpusHandler | null;
  private readonly inPtr: number;
  private readonly outPtr: number;

  /** forceMode: an OPUS_SET_FORCE_MODE value, or undefined to let the encoder choose per frame. */
  constructor(
    private readonly sampleRate: number,
    bitrate: number,
    forceMode?: number,
  ) {
    checkOpusRate(sampleRate);
    this.native = loadOpus();
    this.handler = new this.native.OpusScriptHandler(sampleRate, 1, OPUS_APPLICATION_VOIP);
    const rc = this.handler._encoder_ctl(OPUS_SET_BITRATE, bitrate);
    if (rc < 0) {
      this.native.OpusScriptHandler.destroy_handler(this.handler);
      throw new RangeError(`opus bitrate ${bitrate}: ${opusError(rc)}`);
    }
    if (forceMode !== undefined) {
      const mode = this.handler._encoder_ctl(OPUS_SET_FORCE_MODE, forceMode);
      if (mode < 0) {
        this.native.OpusScriptHandler.destroy_handler(this.handler);
        throw new RangeError(`opus mode ${forceMode}: ${opusError(mode)}`);
      }
    }
    // Two 16-bit slots per input sample (the handler's byte-per-slot convention).
    this.inPtr = this.native._malloc(OPUS_MAX_FRAME * 4);
    this.outPtr = this.native._malloc(OPUS_MAX_PACKET);
  }

  encode(pcm: Int16Array): Uint8Array {
    const handler = this.handler;
    if (handler === null) throw new Error('opus encoder is closed');
    const n = pcm.length;
    // Opus frames are 2.5, 5, 10, 20, 40 or 60 ms; count in 2.5 ms units.
    const units = (n * 400) / this.sampleRate;
    if (units !== 1 && units !== 2 && units !== 4 && units !== 8 && units !== 16 && units !== 24) {
      throw new RangeError(`${n} samples at ${this.sampleRate} Hz is not an opus frame duration`);
    }
    const heap16 = this.native.HEAP16;
    const base = this.inPtr >> 1;
    for (let i = 0; i < n; i++) {
      const s = pcm[i]!;
      heap16[base + 2 * i] = s & 0xff;
      heap16[base + 2 * i + 1] = s >> 8;
    }
    const len = handler._encode(this.inPtr, n, this.outPtr, n);
    if (len < 0) throw new Error(`opus encode failed: ${opusError(len)}`);
    // slice() copies into a fresh ArrayBuffer: the packet outlives the WASM heap view and can be transferred.
    return this.native.HEAPU8.slice(this.outPtr, this.outPtr + len);
  }

  close(): void {
    if (this.handler === null) return;
    this.native.OpusScriptHandler.destroy_handler(this.handler);
    this.native._free(this.inPtr);
    this.native._free(this.outPtr);
    this.handler = null;
  }
}

class OpusFrameDecoder implements FrameDecoder {
  private readonly native: OpusNative;
  private handler: OpusHandler | null;
  private readonly inPtr: number;
  private readonly outPtr: number;
  private readonly pcm = new Int16Array(OPUS_MAX_DECODED);
  private view: Int16Array = EMPTY_PCM;
  private errorCount = 0;

  constructor() {
    this.native = loadOpus();
    this.handler = new this.native.OpusScriptHandler(DECODED_SAMPLE_RATE, 1, OPUS_APPLICATION_VOIP);
    this.inPtr = this.native._malloc(OPUS_MAX_PACKET);
    // Two 16-bit slots per output sample, as the handler writes them.
    this.outPtr = this.native._malloc(OPUS_MAX_DECODED * 4);
  }

  decode(payload: Uint8Array): Int16Array {
    const handler = this.handler;
    if (handler === null) throw new Error('opus decoder is closed');
    const bytes = payload.length;
    // An empty payload would make libopus conceal a whole 120 ms; rtpengine drops such packets silently too.
    if (bytes === 0) return EMPTY_PCM;
    if (bytes > OPUS_MAX_PACKET) {
      this.errorCount++;
      return EMPTY_PCM;
    }
    this.native.HEAPU8.set(payload, this.inPtr);
    const samples = handler._decode(this.inPtr, bytes, this.outPtr);
    if (samples < 0) {
      this.errorCount++;
      return EMPTY_PCM;
    }
    const heap16 = this.native.HEAP16;
    const base = this.outPtr >> 1;
    const out = samples === this.view.length ? this.view : (this.view = this.pcm.subarray(0, samples));
    // Int16Array stores wrap modulo 2^16, which restores the sign of (hi << 8) | lo.
    for (let i = 0; i < samples; i++) out[i] = (heap16[base + 2 * i + 1]! << 8) | (heap16[base + 2 * i]! & 0xff);
    return out;
  }

  get errors(): number {
    return this.errorCount;
  }

  close(): void {
    if (this.handler === null) return;
    this.native.OpusScriptHandler.destroy_handler(this.handler);
    this.native._free(this.inPtr);
    this.native._free(this.outPtr);
    this.handler = null;
  }
}

type BlockEncode = (pcm: Int16Array, out: Uint8Array) => void;
type BlockDecode = (code: Uint8Array, out: Int16Array) => void;

class G711FrameEncoder implements FrameEncoder {
  constructor(private readonly encodeBlock: BlockEncode) {}

  encode(pcm: Int16Array): Uint8Array {
    const out = new Uint8Array(pcm.length);
    this.encodeBlock(pcm, out);
    return out;
  }

  close(): void {}
}

class G711FrameDecoder implements FrameDecoder {
  private pcm = new Int16Array(160);
  private view: Int16Array = EMPTY_PCM;

  constructor(private readonly decodeBlock: BlockDecode) {}

  decode(payload: Uint8Array): Int16Array {
    const n = payload.length;
    if (n === 0) return EMPTY_PCM;
    if (n !== this.view.length) {
      if (n > this.pcm.length) this.pcm = new Int16Array(n);
      this.view = this.pcm.subarray(0, n);
    }
    this.decodeBlock(payload, this.view);
    return this.view;
  }

  /** Every byte is a valid G.711 code word. */
  get errors(): number {
    return 0;
  }

  close(): void {}
}

function checkG711(profile: CodecProfile): void {
  if (profile.sampleRate !== DECODED_SAMPLE_RATE) {
    throw new RangeError(`${profile.name}: G.711 runs at 8000 Hz, profile says ${profile.sampleRate}`);
  }
}

/**
 * An encoder for one stream. Opus is encoded mono (an opus/48000/2 receiver decodes mono packets fine) with the
 * VOIP application at profile.bitrate. close() frees the native state; G.711's close is a no-op.
 */
export function createEncoder(profile: CodecProfile): FrameEncoder & { close(): void } {
  switch (profile.media) {
    case 'g711-ulaw':
      checkG711(profile);
      return new G711FrameEncoder(encodeUlaw);
    case 'g711-alaw':
      checkG711(profile);
      return new G711FrameEncoder(encodeAlaw);
    case 'opus':
      return new OpusFrameEncoder(profile.sampleRate, profile.bitrate);
  }
}

/** A decoder for one received stream; opus decodes straight to 8000 Hz mono (libopus resamples internally). */
export function createDecoder(profile: CodecProfile): FrameDecoder {
  switch (profile.media) {
    case 'g711-ulaw':
      checkG711(profile);
      return new G711FrameDecoder(decodeUlaw);
    case 'g711-alaw':
      checkG711(profile);
      return new G711FrameDecoder(decodeAlaw);
    case 'opus':
      return new OpusFrameDecoder();
  }
}

/** Added to one sample per frame (see markToneFrame): about a fifth of the tone's peak. */
const FRAME_MARK = 2048;

/**
 * Makes frame k of a tone loop unique. A 50 Hz-multiple tone repeats exactly every 20 ms, so G.711 frames would be
 * byte-identical and a payload delivered under the wrong sequence number would go unnoticed. G.711 codes sample by
 * sample, so a small click at sample k (a different place in every frame) is enough; one sample in 160 holds
 * well under 1% of the frame's energy, so the tone check does not notice it.
 */
export function markToneFrame(pcm: Int16Array, k: number): void {
  const i = k % pcm.length;
  pcm[i] = Math.max(-32768, Math.min(32767, pcm[i]! + (pcm[i]! >= 0 ? -FRAME_MARK : FRAME_MARK)));
}

/** The frame of every tone loop that carries the marker tone instead of the stream's tone. */
export const MARKER_FRAME = 0;

/**
 * PCM of frame k of a tone loop: the -10 dBFS tone, or in the marker frame (k === MARKER_FRAME, when `marker`) the
 * marker tone (markerFrequencyHz) at the same level and inverted, -sin; then markToneFrame. Both sines have whole
 * periods in a 20 ms frame and start every frame at phase 0, so the waveform stays continuous (value 0 at every
 * frame boundary) and the audio switches tone -> marker exactly at the first sample of frame 0 and back at the first
 * sample of frame 1.
 *
 * Why inverted: right after the edge the marker's first samples then have the opposite sign of the tone's would-be
 * continuation, so src/media/marker.ts can tell on which side of the edge every sample lies. With the same sign, a
 * tone and marker summing to about 4 kHz (1500 and 2500 Hz) have nearly equal first samples and the edge blurs
 * (measured over every grid tone, worst onset error: same sign 1 sample in G.711 and in opus; inverted 0.00 samples
 * in G.711, 0.37 through opus).
 */
export function fillToneLoopFrame(pcm: Int16Array, sampleRate: number, toneHz: number, k: number, marker: boolean): void {
  if (marker && k === MARKER_FRAME) {
    fillTone(pcm, markerFrequencyHz(toneHz), sampleRate, -TONE_AMPLITUDE_MINUS_10_DBFS, k * pcm.length);
  } else {
    fillTone(pcm, toneHz, sampleRate, TONE_AMPLITUDE_MINUS_10_DBFS, k * pcm.length);
  }
  markToneFrame(pcm, k);
}

export interface ToneLoopOptions {
  /**
   * Frame MARKER_FRAME carries the marker tone (see fillToneLoopFrame); default true for loops of 2 frames or more
   * (a 1-frame loop has no edge to mark and stays the plain tone). Needs a tone on the 50 Hz grid in 300..3400 Hz.
   */
  marker?: boolean;
}

/**
 * `frames` consecutive ptime frames of a -10 dBFS tone, frame 0 carrying the marker (ToneLoopOptions), each payload
 * its own ArrayBuffer (safe to transfer or keep). With a frequency that fits whole periods in a frame (multiples of
 * 50 Hz at 20 ms) the loop joins cleanly when replayed. The encoder is closed before returning.
 *
 * Opus specifics, both for a loop that replays like one continuous stream:
 * - The encoder is run over the loop once before the frames that are kept (pre-roll). Opus looks 312 samples
 *   (6.5 ms at 48 kHz) ahead, so packet k holds the end of frame k-1 and most of frame k; from a fresh encoder
 *   packet 0 would hold 6.5 ms of the encoder's start-up silence instead of the end of the last frame, a gap at
 *   every loop seam (every 500 ms) right before the marker.
 * - The mode is forced to hybrid (what VOIP at 32 kbit/s picks for these tones at first anyway). Left free, the
 *   speech/music classifier flips hybrid and CELT from frame to frame after a few hundred ms of pure tone, and a
 *   mode switch at the marker garbles its edge (measured: onsets off by 20 samples).
 */
export function encodeToneLoop(profile: CodecProfile, freqHz: number, frames: number, options: ToneLoopOptions = {}): Uint8Array[] {
  const marker = options.marker ?? frames >= 2;
  const opus = profile.media === 'opus';
  const encoder = opus ? new OpusFrameEncoder(profile.sampleRate, profile.bitrate, OPUS_MODE_HYBRID) : createEncoder(profile);
  try {
    const samples = frameSamples(profile);
    const pcm = new Int16Array(samples);
    if (opus) {
      for (let k = 0; k < frames; k++) {
        fillToneLoopFrame(pcm, profile.sampleRate, freqHz, k, marker);
        encoder.encode(pcm);
      }
    }
    const out: Uint8Array[] = [];
    for (let k = 0; k < frames; k++) {
      fillToneLoopFrame(pcm, profile.sampleRate, freqHz, k, marker);
      out.push(encoder.encode(pcm));
    }
    return out;
  } finally {
    encoder.close();
  }
}
