/**
 * Receive-side tracking of one RTP stream: sequence extension, loss, duplicates and reordering (RFC 3550 A.1,
 * A.3), interarrival jitter (A.8), and transit jitter from the generator's own send times.
 *
 * onPacket runs once per received packet on the worker's hot path, so all state lives in preallocated typed
 * arrays and numbers.
 *
 * Departures from A.1, and why:
 * - No probation (MIN_SEQUENTIAL): the streams are our own, so the first packet is trusted and counted.
 * - MAX_MISORDER is 4096 instead of 100 so that duplicates and late packets are classified exactly within the
 *   whole duplicate window; A.1's 100 would call a packet 101 behind a "jump".
 * - A "jump" (3000 or more ahead, or more than 4096 behind) is handled as A.1 does: the packet is ARRIVAL_INVALID
 *   and not counted; if the next packet continues from it (seq + 1), the source is taken to have restarted and
 *   the tracker resynchronises on that packet. Unlike A.1's init_seq, counters are kept across a restart: the
 *   expected count of the old run is banked and the new run adds to it, so loss over the whole stream still adds up.
 * - A late packet older than the first one received lowers the base, so `expected` grows to include it and
 *   reordering at the start of a stream never makes loss negative.
 */

import type { ReportBlock } from './rtcp.js';

export const ARRIVAL_NEW = 0;
export const ARRIVAL_DUPLICATE = 1;
/** A unique packet that arrived after a higher sequence number (reordered). */
export const ARRIVAL_LATE = 2;
/** Outside every window (a jump); not counted, see the module comment. */
export const ARRIVAL_INVALID = 3;

export const MAX_DROPOUT = 3000;
export const MAX_MISORDER = 4096;
const SEQ_MOD = 65536;
/** Bits kept behind the highest sequence number; must exceed MAX_MISORDER and MAX_DROPOUT. */
const WINDOW_BITS = 8192;
const WINDOW_MASK = WINDOW_BITS - 1;
/**
 * Extended sequence numbers are kept offset by one cycle internally so a late packet from before the first one
 * (even across a wrap) still has a non-negative extended number.
 */
const EXT_OFFSET = SEQ_MOD;

export class ReceiveTracker {
  readonly clockRate: number;
  private readonly seen = new Uint32Array(WINDOW_BITS / 32);
  private started = false;
  private maxSeq = 0;
  /** EXT_OFFSET + cycles * 65536: the high part of the extended highest sequence number. */
  private cycleBase = EXT_OFFSET;
  private baseExt = 0;
  private badSeq = -1;
  private bankedExpected = 0;
  private restartCount = 0;
  private receivedCount = 0;
  private duplicateCount = 0;
  private lateCount = 0;
  private invalidCount = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;

  private hasPrev = false;
  private prevArrivalMs = 0;
  private prevTs = 0;
  private jitter = 0;
  private jitterSum = 0;
  private jitterSamples = 0;
  private jitterMax = 0;

  private prevTransitMs = Number.NaN;
  private transitJitter = 0;
  private transitJitterSum = 0;
  private transitJitterSamples = 0;
  private transitJitterMax = 0;

  constructor(clockRate: number) {
    if (!(clockRate > 0)) throw new RangeError(`clock rate must be positive, got ${clockRate}`);
    this.clockRate = clockRate;
  }

  /**
   * HOT. Classifies one received packet and updates every statistic; returns one of the ARRIVAL_* codes.
   * arrivalMs and sendMs are on the same clock (performance.now()); sendMs is the actual send time of this seq,
   * or NaN when unknown (it then only skips the transit jitter update). rtpTimestamp may be the unsigned or the
   * int32 form (only differences modulo 2^32 are used).
   */
  onPacket(seq: number, rtpTimestamp: number, arrivalMs: number, sendMs: number): number {
    seq &= 0xffff;
    if (!this.started) {
      this.resync(seq);
      this.started = true;
      this.receivedCount = 1;
      this.timing(rtpTimestamp, arrivalMs, sendMs);
      return ARRIVAL_NEW;
    }
    const udelta = (seq - this.maxSeq) & 0xffff;
    let result: number;
    if (udelta === 0) {
      this.duplicateCount++;
      return ARRIVAL_DUPLICATE;
    } else if (udelta < MAX_DROPOUT) {
      const oldExt = this.cycleBase + this.maxSeq;
      if (seq < this.maxSeq) this.cycleBase += SEQ_MOD;
      this.maxSeq = seq;
      const ext = this.cycleBase + seq;
      // Slots between the old and new highest now stand for packets one window newer: clear them.
      for (let e = oldExt + 1; e < ext; e++) this.clearBit(e);
      this.setBit(ext);
      this.badSeq = -1;
      result = ARRIVAL_NEW;
    } else if (udelta >= SEQ_MOD - MAX_MISORDER) {
      const ext = this.cycleBase + this.maxSeq - (SEQ_MOD - udelta);
      if (ext >= this.baseExt && this.testBit(ext)) {
        this.duplicateCount++;
        return ARRIVAL_DUPLICATE;
      }
      if (ext < this.baseExt) {
        // Older than anything seen: the bits between it and the old base are stale, clear them too.
        for (let e = ext; e < this.baseExt; e++) this.clearBit(e);
        this.baseExt = ext;
      }
      this.setBit(ext);
      this.lateCount++;
      result = ARRIVAL_LATE;
    } else if (seq === this.badSeq) {
      // Two in a row continuing the jump: the sender restarted its sequence (A.1). Bank the old run.
      this.bankedExpected += this.cycleBase + this.maxSeq - this.baseExt + 1;
      this.restartCount++;
      this.resync(seq);
      this.hasPrev = false;
      this.prevTransitMs = Number.NaN;
      result = ARRIVAL_NEW;
    } else {
      this.badSeq = (seq + 1) & 0xffff;
      this.invalidCount++;
      return ARRIVAL_INVALID;
    }
    this.receivedCount++;
    this.timing(rtpTimestamp, arrivalMs, sendMs);
    return result;
  }

  /**
   * The stream's SSRC changed: RFC 3550 keeps jitter per source, so the next packet must not be compared with the
   * previous source's timing (its timestamps have an unrelated base). Counts and the estimate so far are kept.
   */
  newSource(): void {
    this.hasPrev = false;
    this.prevTransitMs = Number.NaN;
  }

  private resync(seq: number): void {
    this.seen.fill(0);
    this.maxSeq = seq;
    this.cycleBase = EXT_OFFSET;
    this.baseExt = EXT_OFFSET + seq;
    this.badSeq = -1;
    this.setBit(this.baseExt);
  }

  private setBit(ext: number): void {
    const i = ext & WINDOW_MASK;
    this.seen[i >>> 5] = this.seen[i >>> 5]! | (1 << (i & 31));
  }

  private clearBit(ext: number): void {
    const i = ext & WINDOW_MASK;
    this.seen[i >>> 5] = this.seen[i >>> 5]! & ~(1 << (i & 31));
  }

  private testBit(ext: number): boolean {
    const i = ext & WINDOW_MASK;
    return (this.seen[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  private timing(ts: number, arrivalMs: number, sendMs: number): void {
    if (this.hasPrev) {
      // D(i,j) = (Rj - Ri) - (Sj - Si). The timestamp difference is taken as a signed 32-bit value, so a
      // timestamp wrap (or a reordered packet) gives the small true difference, never +-2^32.
      const tsDelta = (ts - this.prevTs) | 0;
      const d = ((arrivalMs - this.prevArrivalMs) * this.clockRate) / 1000 - tsDelta;
      this.jitter += ((d < 0 ? -d : d) - this.jitter) / 16;
      this.jitterSum += this.jitter;
      this.jitterSamples++;
      if (this.jitter > this.jitterMax) this.jitterMax = this.jitter;
    }
    this.hasPrev = true;
    this.prevArrivalMs = arrivalMs;
    this.prevTs = ts >>> 0;

    const transit = arrivalMs - sendMs;
    if (transit === transit) {
      const prev = this.prevTransitMs;
      if (prev === prev) {
        const d = transit - prev;
        this.transitJitter += ((d < 0 ? -d : d) - this.transitJitter) / 16;
        this.transitJitterSum += this.transitJitter;
        this.transitJitterSamples++;
        if (this.transitJitter > this.transitJitterMax) this.transitJitterMax = this.transitJitter;
      }
    }
    // An unknown send time breaks the pair: the next D must not span it.
    this.prevTransitMs = transit;
  }

  /**
   * Whether the packet with this 16-bit sequence number has arrived: within the window behind the highest sequence
   * number (and not before the first one); a number ahead of the highest has not.
   */
  hasSeq(seq: number): boolean {
    if (!this.started) return false;
    const behind = (this.maxSeq - (seq & 0xffff)) & 0xffff;
    if (behind >= WINDOW_BITS) return false;
    const ext = this.cycleBase + this.maxSeq - behind;
    return ext >= this.baseExt && this.testBit(ext);
  }

  /** Unique packets counted (new + late). */
  get received(): number {
    return this.receivedCount;
  }

  get duplicates(): number {
    return this.duplicateCount;
  }

  get late(): number {
    return this.lateCount;
  }

  /** Packets dropped as a sequence jump (see the module comment). */
  get invalid(): number {
    return this.invalidCount;
  }

  /** Times the tracker resynchronised on a restarted sequence. */
  get restarts(): number {
    return this.restartCount;
  }

  /** The lowest sequence number of the current run (A.1 base_seq), -1 before any packet. */
  get firstSeq(): number {
    return this.started ? this.baseExt & 0xffff : -1;
  }

  /**
   * cycles * 65536 + highest seq (the report block field, before the 32-bit wrap), counting cycles from the
   * base's cycle so that expected = extendedHighestSeq - firstSeq + 1 holds; -1 before any packet.
   */
  get extendedHighestSeq(): number {
    if (!this.started) return -1;
    return this.cycleBase + this.maxSeq - SEQ_MOD * Math.floor(this.baseExt / SEQ_MOD);
  }

  /**
   * The highest sequence number extended in the tracker's own numbering: unlike extendedHighestSeq, it does not
   * move when a late packet lowers the base below a cycle boundary, so it can index a sender's frames for the
   * whole stream (it renumbers only on a sequence restart). -1 before any packet.
   */
  get highestIndex(): number {
    return this.started ? this.cycleBase + this.maxSeq : -1;
  }

  /** A.3 expected: extended highest - base + 1 (summed over restarts); 0 before any packet. */
  get expected(): number {
    if (!this.started) return 0;
    return this.bankedExpected + this.cycleBase + this.maxSeq - this.baseExt + 1;
  }

  /** A.3 cumulative loss: expected - received (duplicates are not counted as received, so never negative). */
  get lostA3(): number {
    return this.expected - this.receivedCount;
  }

  /** A.8 interarrival jitter J in timestamp units (what a report block carries, before truncation). */
  get jitterUnits(): number {
    return this.jitter;
  }

  get jitterMs(): number {
    return (this.jitter * 1000) / this.clockRate;
  }

  /** Mean of J (in ms) over every update so far; 0 before the second packet. */
  get meanJitterMs(): number {
    return this.jitterSamples === 0 ? 0 : (this.jitterSum * 1000) / this.clockRate / this.jitterSamples;
  }

  get maxJitterMs(): number {
    return (this.jitterMax * 1000) / this.clockRate;
  }

  /** A.8 smoothing of D = (Rj - Sj) - (Ri - Si) with actual send times: jitter the system added, in ms. */
  get transitJitterMs(): number {
    return this.transitJitter;
  }

  get meanTransitJitterMs(): number {
    return this.transitJitterSamples === 0 ? 0 : this.transitJitterSum / this.transitJitterSamples;
  }

  get maxTransitJitterMs(): number {
    return this.transitJitterMax;
  }

  /**
   * Fills `out` with a report block about this stream (A.3): fraction lost since the previous call, cumulative
   * loss clamped to 24 bits, extended highest seq, jitter. Advances the interval, so call it once per RTCP report.
   */
  reportBlock(ssrc: number, lastSr: number, delaySinceLastSr: number, out: ReportBlock): ReportBlock {
    const expected = this.expected;
    const expectedInterval = expected - this.expectedPrior;
    this.expectedPrior = expected;
    const receivedInterval = this.receivedCount - this.receivedPrior;
    this.receivedPrior = this.receivedCount;
    const lostInterval = expectedInterval - receivedInterval;
    out.ssrc = ssrc >>> 0;
    out.fractionLost =
      expectedInterval <= 0 || lostInterval <= 0 ? 0 : Math.min(255, Math.floor((lostInterval * 256) / expectedInterval));
    const lost = expected - this.receivedCount;
    out.cumulativeLost = lost > 0x7fffff ? 0x7fffff : lost < -0x800000 ? -0x800000 : lost;
    out.extendedHighestSeq = this.started ? this.extendedHighestSeq >>> 0 : 0;
    out.jitter = Math.floor(this.jitter) >>> 0;
    out.lastSr = lastSr >>> 0;
    out.delaySinceLastSr = delaySinceLastSr >>> 0;
    return out;
  }
}

/**
 * The send time of each recently sent sequence number, so the receiver can compute one-way latency and transit
 * jitter. A ring keyed by seq; each slot also stores its seq so a slot reused by a newer packet is not mistaken
 * for the one asked about.
 */
export class SendHistory {
  readonly size: number;
  private readonly mask: number;
  private readonly seqs: Int32Array;
  private readonly times: Float64Array;

  /** size: a power of two up to 65536, so that slots follow seq across its wrap and hold exactly the last `size`. */
  constructor(size = 4096) {
    if (!Number.isInteger(size) || size < 1 || size > SEQ_MOD || (size & (size - 1)) !== 0) {
      throw new RangeError(`send history size must be a power of two in 1..65536, got ${size}`);
    }
    this.size = size;
    this.mask = size - 1;
    this.seqs = new Int32Array(size).fill(-1);
    this.times = new Float64Array(size);
  }

  /** HOT. */
  record(seq: number, sendMs: number): void {
    seq &= 0xffff;
    const i = seq & this.mask;
    this.seqs[i] = seq;
    this.times[i] = sendMs;
  }

  /** HOT. NaN when the seq was never recorded or its slot has since been reused. */
  sendTimeOf(seq: number): number {
    seq &= 0xffff;
    const i = seq & this.mask;
    return this.seqs[i] === seq ? this.times[i]! : Number.NaN;
  }
}
