/**
 * Pure failover arithmetic: which worker takes a dead one's calls, and what one call's media did through a fault
 * (CallFailover) from what its two legs measured.
 */
import type { CallMediaResult, FaultSilence, FaultWatch, ReceivedStream } from '../media/task.js';
import type { CallFailover } from './model.js';

/**
 * The silence a leg heard across a fault: from the last packet before it (fromEpochMs) to the first after it
 * (toEpochMs). lostAudioMs: the audio time that went missing with it, from the receiver's audio clock (FaultWatch):
 * its lowest deficit from the gap's end on, minus its deficit just before the gap. Audio that comes late in a burst
 * (a paused worker's backlog) is not lost; 60 ms packets instead of 20 ms ones lose nothing; a frame the survivor
 * never had is 20 ms.
 */
export interface FaultGap {
  fromEpochMs: number;
  toEpochMs: number;
  ms: number;
  lostAudioMs: number;
}

/**
 * The gap across a fault whose worker was certainly down (dead, or stopped) at `boundaryEpochMs`: every packet after
 * it came from after the fault (a survivor, the worker restarted or resumed), every one before it from before.
 * When the boundary lies beyond the kept arrivals (the old worker forwarded for longer than they cover), the gap is
 * the longest silence since the watch started if that silence spans the boundary (it starts at or before it and
 * ends after it): then its two ends are exactly the last packet before the boundary and the first after it, as if
 * every arrival had been kept. Null when no packet came after it among those kept and that silence does not span
 * it (the gap there was not the longest: unknown), or when no packet came before it.
 */
export function faultGapAt(watch: FaultWatch, boundaryEpochMs: number): FaultGap | null {
  const { arrivalsEpochMs: at, deficitsMs: deficit } = watch;
  const after = at.findIndex((t) => t > boundaryEpochMs);
  if (after < 0) return silenceAcross(watch.longestSilence, boundaryEpochMs);
  if (after === 0) return null;
  let lowest = watch.laterMinDeficitMs ?? Number.POSITIVE_INFINITY;
  for (let k = after; k < deficit.length; k++) lowest = Math.min(lowest, deficit[k]!);
  return {
    fromEpochMs: at[after - 1]!,
    toEpochMs: at[after]!,
    ms: at[after]! - at[after - 1]!,
    lostAudioMs: Math.max(0, lowest - deficit[after - 1]!),
  };
}

/**
 * The longest silence as the gap at the boundary, when it spans it. A silence that starts after the boundary is
 * not the gap there (the packet that starts it came after the boundary, so media was already back), nor is one that
 * ended before it.
 */
function silenceAcross(silence: FaultSilence | null, boundaryEpochMs: number): FaultGap | null {
  if (silence === null || silence.fromEpochMs > boundaryEpochMs || silence.toEpochMs <= boundaryEpochMs) return null;
  return {
    fromEpochMs: silence.fromEpochMs,
    toEpochMs: silence.toEpochMs,
    ms: silence.toEpochMs - silence.fromEpochMs,
    lostAudioMs: Math.max(0, silence.laterMinDeficitMs - silence.fromDeficitMs),
  };
}

/**
 * The worker that takes dead worker `dead`'s calls (0-based indexes): the next one up after it, wrapping around,
 * so that with two workers it is the other one and with more the choice is fixed and said. Null: none is up.
 */
export function survivorIndex(dead: number, workers: number, down: ReadonlySet<number>): number | null {
  for (let k = 1; k < workers; k++) {
    const i = (dead + k) % workers;
    if (!down.has(i)) return i;
  }
  return null;
}

interface Direction {
  resumed: boolean;
  gapMs: number | null;
  lostAudioMs: number | null;
  /** When media came back, epoch ms; null: it did not. */
  backAtEpochMs: number | null;
}

/** One direction, as its receiving leg measured it: media came back if any packet arrived after the boundary. */
function direction(rx: ReceivedStream, boundaryEpochMs: number): Direction {
  const resumed = rx.lastPacketEpochMs !== null && rx.lastPacketEpochMs > boundaryEpochMs;
  const gap = resumed && rx.faultWatch !== null ? faultGapAt(rx.faultWatch, boundaryEpochMs) : null;
  return { resumed, gapMs: gap?.ms ?? null, lostAudioMs: gap?.lostAudioMs ?? null, backAtEpochMs: gap?.toEpochMs ?? null };
}

export interface FailoverInput {
  fault: string;
  worker: string;
  survivor: string | null;
  /** When the fault was made (the signal), epoch ms. */
  faultAtEpochMs: number;
  /** When the worker was certainly down (its exit seen, or its stopped state), epoch ms: see faultGapAt. */
  boundaryEpochMs: number;
  media: CallMediaResult;
  deleted: boolean;
}

/** One call through a fault on its worker: direction a is what leg A sent (leg B received it), b the other way. */
export function callFailover(input: FailoverInput): CallFailover {
  const [legA, legB] = input.media.legs;
  const a = direction(legB.received, input.boundaryEpochMs);
  const b = direction(legA.received, input.boundaryEpochMs);
  const resumed = a.resumed && b.resumed;
  return {
    fault: input.fault,
    worker: input.worker,
    survivor: input.survivor,
    gapMs: { a: a.gapMs, b: b.gapMs },
    lostAudioMs: { a: a.lostAudioMs, b: b.lostAudioMs },
    resumed,
    deleted: input.deleted,
    recoverMs: a.backAtEpochMs !== null && b.backAtEpochMs !== null ? Math.max(a.backAtEpochMs, b.backAtEpochMs) - input.faultAtEpochMs : null,
  };
}

/** Whether a fault at `atEpochMs` hit a call whose media ran from start to end. */
export function duringMedia(atEpochMs: number, media: Pick<CallMediaResult, 'mediaStartEpochMs' | 'mediaEndEpochMs'>): boolean {
  return atEpochMs >= media.mediaStartEpochMs && atEpochMs < media.mediaEndEpochMs;
}
