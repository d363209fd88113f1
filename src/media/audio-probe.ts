/**
 * What a receiving leg learns from the audio itself: that it is the far leg's tone (the tone check, which proves a
 * transcoded stream is audio and not noise), and how late the audio plays out (the marker's onset against the far
 * leg's send time of the marker frame: the audio delay, src/media/marker.ts), independently of sequence numbers.
 *
 * Decoding costs (opus: tens of us a packet), so the probe listens in windows: the first WINDOW_FRAMES packets of
 * the stream, then again every WINDOW_EVERY_FRAMES packets, each with a fresh decoder and detector, closed between
 * windows. Through a transcoder the delay changes during a call (it ratchets up with late input), and the windows
 * see that. Pure code over decoded samples: no I/O; per packet it allocates nothing beyond the decoder's own work.
 */
import { createDecoder, DECODED_SAMPLE_RATE, type FrameDecoder } from './codec.js';
import { markerAudioDelayMs, MarkerOnsetDetector, type MarkerSendLog } from './marker.js';
import { markerFrequencyHz, ToneDetector } from './tone.js';
import type { CodecProfile } from '../profile.js';

/** Packets skipped at the stream's start before the tone check (codec warm-up, a jitter buffer's first fill). */
export const TONE_SKIP_FRAMES = 5;
/** Packets the tone check reads. */
export const TONE_CHECK_FRAMES = 50;
/** A listening window: 1.5 s at 20 ms, three markers. */
export const WINDOW_FRAMES = 75;
/** A window starts every this many packets: 10 s at 20 ms (15% of the packets decoded). */
export const WINDOW_EVERY_FRAMES = 500;

export interface AudioProbeResult {
  /** Tone check: blocks checked and the share of their energy at the far tone (null: nothing checked yet). */
  toneFrames: number;
  toneRatio: number | null;
  /** Audio delay: markers found and their delays. */
  delays: number;
  delayMeanMs: number | null;
  delayMaxMs: number | null;
}

export class AudioProbe {
  private readonly tone: ToneDetector;
  private readonly markers: MarkerOnsetDetector;
  private decoder: FrameDecoder | null = null;
  /** Packets handed to the probe so far (unique, in the stream's own order). */
  private packets = 0;
  private lastSeq = -1;
  private delaySum = 0;
  private delayCount = 0;
  private delayMax = 0;

  constructor(
    private readonly codec: CodecProfile,
    toneHz: number,
    /** Called with each audio delay found (the thread's histogram). */
    private readonly onDelay: (delayMs: number) => void,
  ) {
    this.tone = new ToneDetector(toneHz, DECODED_SAMPLE_RATE, { excludeHz: markerFrequencyHz(toneHz) });
    this.markers = new MarkerOnsetDetector(toneHz);
  }

  /**
   * HOT. One unique packet of the stream, in arrival order, with its payload (valid only during the call).
   * `farMarkers`: the far leg's marker send times (same clock as arrivalMs).
   */
  onPacket(seq: number, payload: Uint8Array, arrivalMs: number, farMarkers: MarkerSendLog | null): void {
    const n = this.packets++;
    const inWindow = n % WINDOW_EVERY_FRAMES < WINDOW_FRAMES;
    if (!inWindow) {
      if (this.decoder !== null) this.endWindow();
      return;
    }
    let gap = this.lastSeq < 0 || ((this.lastSeq + 1) & 0xffff) !== seq;
    if (this.decoder === null) {
      // A fresh decoder starts cold: the detector must not join its output to anything before.
      this.decoder = createDecoder(this.codec);
      this.markers.reset();
      gap = true;
    }
    this.lastSeq = seq;
    const pcm = this.decoder.decode(payload);
    if (pcm.length === 0) {
      this.lastSeq = -1;
      return;
    }
    if (n >= TONE_SKIP_FRAMES && this.tone.blocks < TONE_CHECK_FRAMES) this.tone.add(pcm);
    const onset = this.markers.push(pcm, arrivalMs, gap);
    if (onset === onset && farMarkers !== null) {
      const delay = markerAudioDelayMs(onset, farMarkers);
      if (delay === delay) {
        this.delaySum += delay;
        this.delayCount++;
        if (delay > this.delayMax) this.delayMax = delay;
        this.onDelay(delay);
      }
    }
  }

  /** A packet of the stream that will not be decoded (late, reordered): the next decoded one follows a gap. */
  skip(): void {
    this.lastSeq = -1;
  }

  /** The stream's source changed (new SSRC): its audio restarts, so the decoder and the marker search do too. */
  newSource(): void {
    if (this.decoder !== null) this.endWindow();
  }

  private endWindow(): void {
    this.decoder?.close();
    this.decoder = null;
    this.markers.reset();
    this.lastSeq = -1;
  }

  /** Frees the decoder (opus holds WASM memory); the probe can be read after. */
  close(): void {
    this.decoder?.close();
    this.decoder = null;
  }

  result(): AudioProbeResult {
    return {
      toneFrames: this.tone.blocks,
      toneRatio: this.tone.blocks > 0 ? this.tone.ratio : null,
      delays: this.delayCount,
      delayMeanMs: this.delayCount > 0 ? this.delaySum / this.delayCount : null,
      delayMaxMs: this.delayCount > 0 ? this.delayMax : null,
    };
  }
}
