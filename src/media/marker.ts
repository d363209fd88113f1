/**
 * Audio delay measured in the audio itself, without sequence numbers.
 *
 * Every pre-encoded loop carries a marker: frame 0 (of 25, so every 500 ms) holds the marker tone instead of the
 * stream's tone (src/media/codec.ts fillToneLoopFrame, frequency from markerFrequencyHz). The sender notes when it
 * sends each frame 0 (MarkerSendLog); the receiver decodes the stream and finds, in the decoded audio, the sample
 * where the marker starts (MarkerOnsetDetector). Onset time minus send time is how late the audio edge plays out
 * relative to the packet that carried it: network and relay delay, plus whatever a transcoder holds back, plus the
 * codec's own algorithmic delay (opus: 312 samples at 48 kHz = 6.5 ms), which a sequence-number match cannot see.
 *
 * Pure code, no I/O; nothing allocates per packet.
 */
import { markerFrequencyHz } from './tone.js';

/** Decoded audio is 8 kHz mono (src/media/codec.ts DECODED_SAMPLE_RATE). */
export const MARKER_SAMPLE_RATE = 8000;
const SAMPLES_PER_MS = MARKER_SAMPLE_RATE / 1000;

/**
 * Sliding DFT window: 80 samples, 10 ms. Tone, marker and both their images are orthogonal over it (every sum and
 * difference of two grid frequencies 1000 Hz apart is a multiple of its 100 Hz bin), so a window of pure tone
 * shows exactly nothing at the marker and vice versa. Half a table period, which the phase arithmetic uses.
 */
const WINDOW = 80;
/** Cos/sin tables: 160 samples (20 ms) hold whole periods of every frequency on the 50 Hz grid. */
const TABLE = 160;
/** Ring of recent samples; must reach from the fit's first sample to the evaluation (176 samples). */
const RING = 256;
const RING_MASK = RING - 1;
/** Ring of per-sample "clean tone window" flags; must reach back from the evaluation to the pre gate (112). */
const FLAGS = 128;
const FLAGS_MASK = FLAGS - 1;
/** Boundaries tried on either side of the coarse onset. */
const SEARCH = 16;
/** Samples fitted on either side of the searched range: tone before the edge, marker after it. */
const FIT_SIDE = 64;
const FIT_SPAN = 2 * (SEARCH + FIT_SIDE);
/** Gate windows stay this far clear of the coarse edge (covers its error and a codec's smear). */
const GUARD = 16;
/** A window of tone (before) and of marker (after) must hold at least this share of its energy at that frequency. */
const MIN_FRACTION = 0.8;
/** Residual energy of the two-sine fit over the whole fit span, relative to the span's energy. */
const MAX_FIT_RESIDUAL = 0.1;
/** The same within LOCAL samples either side of the edge found, where a garbled edge shows first. */
const MAX_LOCAL_RESIDUAL = 0.25;
const LOCAL = 16;
/** Recent packets remembered to map a sample back to its packet's arrival time. */
const PACKETS = 8;
/** Running sums are recomputed from the ring this often (samples), so float rounding never accumulates. */
const RECOMPUTE_EVERY = 8000;

/**
 * From the coarse onset (the sample where the tone's magnitude fell to half, minus half a window) to the sample at
 * which the candidate is evaluated: the end of the post-gate window, which starts GUARD samples after the edge.
 */
const EVAL_AFTER_ONSET = WINDOW - 1 + GUARD;
/** How far before the coarse onset the data must be continuous (pre-gate window start). */
const VALID_BEFORE_ONSET = WINDOW + GUARD;

/**
 * Finds the onsets of the marker tone in one continuous stream of decoded audio, each to a fraction of a sample,
 * and reports when each onset arrived.
 *
 * Feed it every decoded packet in stream order (push). Per sample it keeps a sliding DFT of the last 10 ms at the
 * tone and the marker frequency. When the tone's magnitude falls to half its level in the last clean tone window,
 * the window straddles an edge about halfway (within a few samples, whatever the marker's level). Once 10 ms of
 * marker have followed, it locates the edge exactly with a least-squares fit of "tone, then marker" to the waveform
 * around it (each side a sine of free amplitude and phase at its known frequency), trying every boundary within
 * 2 ms of the coarse one. Fitting the waveform rather than thresholding an
 * envelope makes the result independent of level: G.711 and opus keep the waveform but not the exact amplitude
 * around the edge (opus brings the marker in at ~90% and lets it creep up over the next ms; an envelope crossing
 * read that as up to 7 samples late). Measured on every grid tone: 0.00 samples off through G.711, within 0.37
 * samples (46 us) of the codec's 52-sample delay through opus.
 *
 * An onset is reported only if all of these hold, else it counts in `rejected`:
 * - the 10 ms window ending GUARD samples before the edge held >= 80% tone, the one starting GUARD samples after
 *   it >= 80% marker (so a phase jump, a burst of noise, decoder warm-up or silence are not edges);
 * - the fit leaves <= 10% of the energy over its 20 ms and <= 25% within 2 ms of the edge (a codec that garbles the
 *   edge, e.g. an opus mode switch, is skipped rather than measured);
 * - the edge is not at the end of the searched range;
 * - all of that audio came after the last discontinuity the caller signalled (push with gap = true, or reset()).
 *
 * Onset time = arrival time of the packet whose decoded samples hold the onset (its sample, rounded) + the onset's
 * offset into that packet's samples / 8000 s (fractional, and a hair negative when the edge falls exactly on the
 * packet's first sample, as in G.711). With the tone before the edge at least 12 ms and the marker after it 20 ms, a stream
 * of 20 ms packets reports one onset per loop unless a gap falls within ~12 ms before to ~12 ms after the edge.
 */
export class MarkerOnsetDetector {
  readonly toneHz: number;
  readonly markerHz: number;
  /** cos/sin(2 pi f p / 8000) for p = 0..159 (shared by every detector of that frequency): tone, marker. */
  private readonly toneCos: Float64Array;
  private readonly toneSin: Float64Array;
  private readonly markCos: Float64Array;
  private readonly markSin: Float64Array;

  // The stream: sample index n counts every sample pushed since construction (a float64: exact for millennia).
  private index = 0;
  /** index mod TABLE. */
  private phase = 0;
  /** First sample after the last discontinuity. */
  private validFrom = 0;
  private readonly samples = new Int16Array(RING);
  /** Per sample: 1 if the window ending there was clean tone (>= MIN_FRACTION of its energy at the tone). */
  private readonly cleanTone = new Uint8Array(FLAGS);
  private toneRe = 0;
  private toneIm = 0;
  private markRe = 0;
  private markIm = 0;
  private windowEnergy = 0;
  private sinceRecompute = 0;

  /** A clean tone window was seen since the last candidate: the next drop of the tone may be an onset. */
  private armed = false;
  /** |DFT|^2 at the tone of the latest clean tone window: the level the drop is measured against. */
  private toneRef = 0;
  /** Coarse onset of the pending candidate, evaluated at sample coarse + EVAL_AFTER_ONSET; NaN when none. */
  private coarse = Number.NaN;

  // Recent packets: first sample index, sample count, arrival time.
  private readonly packetStart = new Float64Array(PACKETS);
  private readonly packetLength = new Float64Array(PACKETS);
  private readonly packetArrival = new Float64Array(PACKETS);
  private packetNext = 0;

  private onsetCount = 0;
  private rejectedCount = 0;
  private lastOnset = Number.NaN;
  private lastResidual = Number.NaN;

  /** markerHz defaults to markerFrequencyHz(toneHz); both must be on the 50 Hz grid. */
  constructor(toneHz: number, markerHz: number = markerFrequencyHz(toneHz)) {
    for (const [name, f] of [['tone', toneHz], ['marker', markerHz]] as const) {
      if (!Number.isInteger(f) || f % 50 !== 0 || f <= 0 || f >= MARKER_SAMPLE_RATE / 2) {
        throw new RangeError(`${name} must be a multiple of 50 Hz below 4000 Hz, got ${f}`);
      }
    }
    if (markerHz === toneHz) throw new RangeError(`marker and tone are both ${toneHz} Hz`);
    this.toneHz = toneHz;
    this.markerHz = markerHz;
    [this.toneCos, this.toneSin] = tables(toneHz);
    [this.markCos, this.markSin] = tables(markerHz);
  }

  /**
   * HOT. One decoded packet: its 8 kHz mono samples (only read during the call) and its arrival time in ms.
   * gap: this packet does not follow the previous one pushed (a packet lost, reordered, or not decoded in between,
   * or a new source); nothing before it is used again. Returns the onset time (ms, on the arrival times' clock) of a
   * marker whose onset this packet confirmed, NaN if none. (At most one per 500 ms of audio; if a very long push
   * confirms several, the last is returned and `onsets` counts all.)
   */
  push(pcm: Int16Array, arrivalMs: number, gap = false): number {
    if (gap) this.discontinuity();
    const n = pcm.length;
    if (n === 0) return Number.NaN;
    if (this.sinceRecompute >= RECOMPUTE_EVERY) this.recompute();
    this.sinceRecompute += n;
    const slot = this.packetNext;
    this.packetStart[slot] = this.index;
    this.packetLength[slot] = n;
    this.packetArrival[slot] = arrivalMs;
    this.packetNext = (slot + 1) % PACKETS;

    const ring = this.samples;
    const tc = this.toneCos;
    const ts = this.toneSin;
    const mc = this.markCos;
    const ms = this.markSin;
    let tr = this.toneRe;
    let ti = this.toneIm;
    let mr = this.markRe;
    let mi = this.markIm;
    let e = this.windowEnergy;
    let index = this.index;
    let p = this.phase;
    let found = Number.NaN;
    for (let i = 0; i < n; i++) {
      const x = pcm[i]!;
      const pos = index & RING_MASK;
      // The sample leaving the window (zero if it predates the last discontinuity: the ring is cleared then).
      const old = ring[(index - WINDOW) & RING_MASK]!;
      ring[pos] = x;
      const po = p >= WINDOW ? p - WINDOW : p + WINDOW;
      tr += x * tc[p]! - old * tc[po]!;
      ti += x * ts[p]! - old * ts[po]!;
      mr += x * mc[p]! - old * mc[po]!;
      mi += x * ms[p]! - old * ms[po]!;
      e += x * x - old * old;
      const t2 = tr * tr + ti * ti;
      // A whole window since the last discontinuity, not silent.
      const full = e > 0 && index - this.validFrom >= WINDOW - 1;
      // (2/N)|X|^2 / energy: the share of the window's energy at the tone (1 for a clean tone).
      const clean = full && t2 * 2 >= MIN_FRACTION * WINDOW * e;
      this.cleanTone[index & FLAGS_MASK] = clean ? 1 : 0;
      if (clean) {
        this.armed = true;
        this.toneRef = t2;
      } else if (full && this.armed && t2 < 0.25 * this.toneRef) {
        // The tone's magnitude fell to half its clean level: as many samples of the window are past the edge as
        // before it, whatever the marker's level (so a marker much quieter or louder than the tone is not
        // mislocated). Whatever replaced the tone, the gates and the fit decide.
        this.armed = false;
        this.coarse = index - WINDOW / 2 + 1;
      }
      if (index === this.coarse + EVAL_AFTER_ONSET) {
        // The post gate is the window ending here: clean marker.
        const m2 = mr * mr + mi * mi;
        const onset = m2 * 2 >= MIN_FRACTION * WINDOW * e && e > 0 ? this.evaluate(this.coarse) : Number.NaN;
        this.coarse = Number.NaN;
        if (onset === onset) {
          found = onset;
          this.onsetCount++;
          this.lastOnset = onset;
        } else {
          this.rejectedCount++;
        }
      }
      index++;
      p = p === TABLE - 1 ? 0 : p + 1;
    }
    this.toneRe = tr;
    this.toneIm = ti;
    this.markRe = mr;
    this.markIm = mi;
    this.windowEnergy = e;
    this.index = index;
    this.phase = p;
    return found;
  }

  /** Forget the audio so far (a new stream or decoder); counters and lastOnsetMs stay. */
  reset(): void {
    this.discontinuity();
  }

  /** Onsets reported so far. */
  get onsets(): number {
    return this.onsetCount;
  }

  /** Candidate edges that failed a check (see the class comment). */
  get rejected(): number {
    return this.rejectedCount;
  }

  /** The most recent onset time reported, NaN before the first. */
  get lastOnsetMs(): number {
    return this.lastOnset;
  }

  /** Fit residual share of the most recent candidate evaluated (diagnostics), NaN before the first. */
  get lastFitResidual(): number {
    return this.lastResidual;
  }

  private discontinuity(): void {
    this.validFrom = this.index;
    this.samples.fill(0);
    this.toneRe = 0;
    this.toneIm = 0;
    this.markRe = 0;
    this.markIm = 0;
    this.windowEnergy = 0;
    this.sinceRecompute = 0;
    this.armed = false;
    this.toneRef = 0;
    this.coarse = Number.NaN;
  }

  /** Recomputes the running sums from the ring (they only ever drift by float rounding). */
  private recompute(): void {
    let tr = 0;
    let ti = 0;
    let mr = 0;
    let mi = 0;
    let e = 0;
    let p = this.phase;
    for (let k = 1; k <= WINDOW; k++) {
      p = p === 0 ? TABLE - 1 : p - 1;
      const x = this.samples[(this.index - k) & RING_MASK]!;
      tr += x * this.toneCos[p]!;
      ti += x * this.toneSin[p]!;
      mr += x * this.markCos[p]!;
      mi += x * this.markSin[p]!;
      e += x * x;
    }
    this.toneRe = tr;
    this.toneIm = ti;
    this.markRe = mr;
    this.markIm = mi;
    this.windowEnergy = e;
    this.sinceRecompute = 0;
  }

  /**
   * Runs at sample coarse + EVAL_AFTER_ONSET (the current one), whose window passed the post gate (clean marker).
   * Returns the onset time, NaN if rejected.
   */
  private evaluate(coarse: number): number {
    this.lastResidual = Number.NaN;
    if (coarse - VALID_BEFORE_ONSET < this.validFrom) return Number.NaN;
    // Pre gate: clean tone in the window ending GUARD before the edge.
    if (this.cleanTone[(coarse - 1 - GUARD) & FLAGS_MASK] !== 1) return Number.NaN;

    // Prefix sums over the fit span [lo, lo + FIT_SPAN).
    const lo = coarse - SEARCH - FIT_SIDE;
    const ft = FIT_TONE;
    const fm = FIT_MARK;
    let p = ((lo % TABLE) + TABLE) % TABLE;
    let yy = 0;
    for (let k = 0; k < 5; k++) {
      ft[k] = 0;
      fm[k] = 0;
    }
    for (let j = 0; j < FIT_SPAN; j++) {
      const y = this.samples[(lo + j) & RING_MASK]!;
      yy += y * y;
      const a = 5 * j;
      const b = a + 5;
      const c1 = this.toneCos[p]!;
      const s1 = this.toneSin[p]!;
      ft[b] = ft[a]! + y * c1;
      ft[b + 1] = ft[a + 1]! + y * s1;
      ft[b + 2] = ft[a + 2]! + c1 * c1;
      ft[b + 3] = ft[a + 3]! + c1 * s1;
      ft[b + 4] = ft[a + 4]! + s1 * s1;
      const c2 = this.markCos[p]!;
      const s2 = this.markSin[p]!;
      fm[b] = fm[a]! + y * c2;
      fm[b + 1] = fm[a + 1]! + y * s2;
      fm[b + 2] = fm[a + 2]! + c2 * c2;
      fm[b + 3] = fm[a + 3]! + c2 * s2;
      fm[b + 4] = fm[a + 4]! + s2 * s2;
      p = p === TABLE - 1 ? 0 : p + 1;
    }
    if (!(yy > 0)) return Number.NaN;

    // Residual for every boundary: samples before it fitted by the tone, from it on by the marker.
    const r = RESIDUALS;
    let best = 0;
    for (let k = 0; k <= 2 * SEARCH; k++) {
      const j = FIT_SIDE + k;
      r[k] = yy - projection(ft, 0, j) - projection(fm, j, FIT_SPAN);
      if (r[k]! < r[best]!) best = k;
    }
    this.lastResidual = r[best]! / yy;
    if (best === 0 || best === 2 * SEARCH) return Number.NaN;
    if (!(r[best]! <= MAX_FIT_RESIDUAL * yy)) return Number.NaN;

    // The residual grows about linearly with each sample put on the wrong side: interpolate the V's apex. The
    // boundary b (first marker sample) stands for an edge between samples b-1 and b, hence the - 1/2; a sample
    // exactly on the edge (our tone and marker are both 0 there) fits either side and flattens the bottom across
    // b and b+1, which the interpolation puts on the sample itself.
    const rm = r[best - 1]!;
    const rp = r[best + 1]!;
    const rb = r[best]!;
    const rise = Math.max(rm, rp) - rb;
    const apex = rise > 0 ? (rm - rp) / (2 * rise) : 0;
    const boundary = coarse - SEARCH + best;
    const onset = boundary + apex - 0.5;

    // Local check: the fit within LOCAL samples of the boundary.
    if (!this.localFitOk(lo, FIT_SIDE + best)) return Number.NaN;

    return this.timeOf(onset);
  }

  /** Residual of the fitted tone (before j) and marker (from j) within LOCAL samples of j, against the energy. */
  private localFitOk(lo: number, j: number): boolean {
    const coef = FIT_COEF;
    if (!coefficients(FIT_TONE, 0, j, coef)) return false;
    const ta = coef[0]!;
    const tb = coef[1]!;
    if (!coefficients(FIT_MARK, j, FIT_SPAN, coef)) return false;
    const ma = coef[0]!;
    const mb = coef[1]!;
    let energy = 0;
    let residual = 0;
    let p = (((lo + j - LOCAL) % TABLE) + TABLE) % TABLE;
    for (let k = j - LOCAL; k < j + LOCAL; k++) {
      const y = this.samples[(lo + k) & RING_MASK]!;
      const model = k < j ? ta * this.toneCos[p]! + tb * this.toneSin[p]! : ma * this.markCos[p]! + mb * this.markSin[p]!;
      energy += y * y;
      residual += (y - model) * (y - model);
      p = p === TABLE - 1 ? 0 : p + 1;
    }
    return energy > 0 && residual <= MAX_LOCAL_RESIDUAL * energy;
  }

  /** Arrival time of the packet holding sample round(onset) + the onset's offset into it. */
  private timeOf(onset: number): number {
    const s = Math.round(onset);
    for (let k = 1; k <= PACKETS; k++) {
      const slot = (this.packetNext - k + PACKETS) % PACKETS;
      const start = this.packetStart[slot]!;
      const length = this.packetLength[slot]!;
      if (length === 0) break;
      if (start <= s) {
        if (s >= start + length) break;
        return this.packetArrival[slot]! + (onset - start) / SAMPLES_PER_MS;
      }
    }
    return Number.NaN;
  }
}

/** cos/sin tables per frequency, shared by all detectors of a thread (built once per frequency). */
const TABLES = new Map<number, readonly [Float64Array, Float64Array]>();

function tables(freqHz: number): readonly [Float64Array, Float64Array] {
  let t = TABLES.get(freqHz);
  if (t === undefined) {
    const cos = new Float64Array(TABLE);
    const sin = new Float64Array(TABLE);
    for (let p = 0; p < TABLE; p++) {
      // Reduced exactly first: the phase of sample p is (f p mod 8000) / 8000 of a turn.
      const w = (2 * Math.PI * ((freqHz * p) % MARKER_SAMPLE_RATE)) / MARKER_SAMPLE_RATE;
      cos[p] = Math.cos(w);
      sin[p] = Math.sin(w);
    }
    t = [cos, sin];
    TABLES.set(freqHz, t);
  }
  return t;
}

// Fit scratch, shared by the thread's detectors (an evaluation runs start to end within one push): prefix sums over
// the fit span, 5 per row (y cos, y sin, cos^2, cos sin, sin^2), at the tone and at the marker; the residual per
// boundary tried; a fitted sine's two coefficients.
const FIT_TONE = new Float64Array(5 * (FIT_SPAN + 1));
const FIT_MARK = new Float64Array(5 * (FIT_SPAN + 1));
const RESIDUALS = new Float64Array(2 * SEARCH + 1);
const FIT_COEF = new Float64Array(2);

const PROJECTION_COEF = new Float64Array(2);

/**
 * Least-squares projection energy of y onto {cos, sin} over prefix-sum rows [i0, i1) of `sums` (5 per row:
 * y cos, y sin, cos^2, cos sin, sin^2): the part of the segment's energy one sine of free amplitude and phase explains.
 * With v = (y.cos, y.sin) and c = M^-1 v the fitted coefficients, that energy is v^T M^-1 v = c . v.
 */
function projection(sums: Float64Array, i0: number, i1: number): number {
  if (!coefficients(sums, i0, i1, PROJECTION_COEF)) return 0;
  const a = 5 * i0;
  const b = 5 * i1;
  return PROJECTION_COEF[0]! * (sums[b]! - sums[a]!) + PROJECTION_COEF[1]! * (sums[b + 1]! - sums[a + 1]!);
}

/** The fitted sine's cos and sin coefficients over rows [i0, i1) into out[0], out[1]; false if degenerate. */
function coefficients(sums: Float64Array, i0: number, i1: number, out: Float64Array): boolean {
  const a = 5 * i0;
  const b = 5 * i1;
  const yc = sums[b]! - sums[a]!;
  const ys = sums[b + 1]! - sums[a + 1]!;
  const cc = sums[b + 2]! - sums[a + 2]!;
  const cs = sums[b + 3]! - sums[a + 3]!;
  const ss = sums[b + 4]! - sums[a + 4]!;
  const det = cc * ss - cs * cs;
  if (!(det > 0)) return false;
  out[0] = (yc * ss - ys * cs) / det;
  out[1] = (ys * cc - yc * cs) / det;
  return true;
}

/**
 * Send times of a stream's marker frames (frame 0 of every loop), newest last, in a fixed ring: the sender calls
 * record(performance.now()) right when it sends each frame 0; the receiver of the far leg looks up the one its
 * onset belongs to. Times must not decrease. 16 entries (8 s of markers) by default.
 */
export class MarkerSendLog {
  private readonly times: Float64Array;
  private next = 0;
  private count = 0;

  constructor(capacity = 16) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.times = new Float64Array(capacity);
  }

  record(atMs: number): void {
    this.times[this.next] = atMs;
    this.next = (this.next + 1) % this.times.length;
    if (this.count < this.times.length) this.count++;
  }

  /** The latest recorded time <= tMs, NaN if none is still held. */
  latestAtOrBefore(tMs: number): number {
    const cap = this.times.length;
    for (let k = 1; k <= this.count; k++) {
      const t = this.times[(this.next - k + cap) % cap]!;
      if (t <= tMs) return t;
    }
    return Number.NaN;
  }

  /** Send times held (at most the capacity). */
  get size(): number {
    return this.count;
  }

  clear(): void {
    this.next = 0;
    this.count = 0;
  }
}

/**
 * An onset may come out a fraction of a sample before the packet that carried it (a sample exactly on the edge fits
 * either side); the marker send it belongs to is looked up this much past the onset, so a delay near 0 reads as
 * ~0 and not as one loop period.
 */
export const MARKER_ONSET_SLACK_MS = 1;

/**
 * Audio delay of one onset: onsetMs - the latest marker send at or before onsetMs + MARKER_ONSET_SLACK_MS (ms), NaN
 * when the log holds none. Both times must come from the same clock (performance.now() in one process).
 *
 * Unambiguous only while the true delay is below the marker period, the loop's 25 frames x 20 ms = 500 ms (minus the
 * 1 ms slack): a marker sent 500 ms later looks the same, so a delay of 520 ms reads as 20 ms. Can be slightly
 * negative (down to -1 ms) for a delay of ~0.
 */
export function markerAudioDelayMs(onsetMs: number, sends: MarkerSendLog): number {
  return onsetMs - sends.latestAtOrBefore(onsetMs + MARKER_ONSET_SLACK_MS);
}
