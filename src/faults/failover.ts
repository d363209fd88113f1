/**
 * Pure failover arithmetic: which worker takes a dead one's calls, and what one call's media did through a fault
 * (CallFailover) from what its two legs measured.
 */
import type { CallMediaResult, ReceivedStream } from '../media/task.js';
import type { CallFailover } from './model.js';

/**
 * A packet that arrived later than this after the fault came from after it (the survivor, or the worker back from
 * a pause or a restart): what a dead worker forwarded before it died is on loopback within a fraction of a ms.
 */
export const RESUME_MARGIN_MS = 5;

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
  gapMs: number | null;
  lostAudioMs: number | null;
  /** When media came back, epoch ms; null: it did not. */
  backAtEpochMs: number | null;
}

/** One direction, as its receiving leg measured it, against the fault's time. */
function direction(rx: ReceivedStream, faultAtEpochMs: number): Direction {
  const gap = rx.faultGap;
  const resumed = gap !== null && rx.lastPacketEpochMs !== null && rx.lastPacketEpochMs > faultAtEpochMs + RESUME_MARGIN_MS && gap.toEpochMs > faultAtEpochMs;
  if (!resumed) return { gapMs: null, lostAudioMs: null, backAtEpochMs: null };
  return { gapMs: gap.ms, lostAudioMs: gap.lostAudioMs, backAtEpochMs: gap.toEpochMs };
}

export interface FailoverInput {
  fault: string;
  worker: string;
  survivor: string | null;
  faultAtEpochMs: number;
  media: CallMediaResult;
  deleted: boolean;
}

/** One call through a fault on its worker: direction a is what leg A sent (leg B received it), b the other way. */
export function callFailover(input: FailoverInput): CallFailover {
  const [legA, legB] = input.media.legs;
  const a = direction(legB.received, input.faultAtEpochMs);
  const b = direction(legA.received, input.faultAtEpochMs);
  const resumed = a.backAtEpochMs !== null && b.backAtEpochMs !== null;
  return {
    fault: input.fault,
    worker: input.worker,
    survivor: input.survivor,
    gapMs: { a: a.gapMs, b: b.gapMs },
    lostAudioMs: { a: a.lostAudioMs, b: b.lostAudioMs },
    resumed,
    deleted: input.deleted,
    recoverMs: resumed ? Math.max(a.backAtEpochMs!, b.backAtEpochMs!) - input.faultAtEpochMs : null,
  };
}

/** Whether a fault at `atEpochMs` hit a call whose media ran from start to end. */
export function duringMedia(atEpochMs: number, media: Pick<CallMediaResult, 'mediaStartEpochMs' | 'mediaEndEpochMs'>): boolean {
  return atEpochMs >= media.mediaStartEpochMs && atEpochMs < media.mediaEndEpochMs;
}
