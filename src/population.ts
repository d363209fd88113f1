/**
 * A running population of calls that grows and shrinks: the calls of a capacity search, whose steps change how
 * many calls are up without ending the others. A call is placed open-ended (its media runs until told to end) and
 * ended through its stop flag in the control block, after which it is deleted as any call is (src/call.ts).
 * Growth follows the ramp rate; shrinking ends the newest calls first.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { placeCall, type CallContext, type CallRecord } from './call.js';
import type { ControlView } from './media/control.js';

/** How often growTo looks whether the calls it placed are set up. */
const SETUP_POLL_MS = 20;

interface LiveCall {
  index: number;
  done: Promise<CallRecord>;
  ended: boolean;
}

export class Population {
  private readonly live: LiveCall[] = [];
  private nextIndex = 0;
  /** Every call's record, as each ended (or failed to start). */
  readonly records: CallRecord[] = [];
  /** Call indexes whose setup is done (their media about to run or running). */
  private readonly established = new Set<number>();
  /** Calls that ended as failed so far. */
  private failed = 0;

  constructor(
    private readonly ctx: CallContext,
    private readonly control: ControlView,
    private readonly rampPerSec: number,
    private readonly signal: AbortSignal,
    /** The most call indexes it may use (the control block's stop flags, the plan's --max). */
    private readonly maxIndexes: number,
  ) {
    ctx.onEstablished = (record) => this.established.add(record.index);
  }

  /** Calls placed so far. */
  get placed(): number {
    return this.nextIndex;
  }

  /** Calls placed and not ended (being set up, or carrying media). */
  get size(): number {
    return this.live.filter((c) => !c.ended).length;
  }

  /**
   * Places calls at the ramp rate until `n` are up (calls that fail to start end at once and are replaced). Gives
   * up, returning false, when as many calls failed as were asked for (at least 5): the system refuses them.
   */
  async growTo(n: number): Promise<boolean> {
    const failedBefore = this.failed;
    const gapMs = 1000 / this.rampPerSec;
    let due = performance.now();
    while (!this.signal.aborted) {
      while (this.size < n && !this.signal.aborted) {
        if (this.failed - failedBefore >= Math.max(5, n) || this.nextIndex >= this.maxIndexes) return false;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait, undefined, { signal: this.signal }).catch(() => undefined);
        if (this.signal.aborted) break;
        this.place(performance.timeOrigin + due);
        due = Math.max(due + gapMs, performance.now());
      }
      // Calls still being set up count as up; once each is set up or has failed, the count is real.
      while (this.live.some((c) => !c.ended && !this.established.has(c.index)) && !this.signal.aborted) {
        await sleep(SETUP_POLL_MS);
      }
      if (this.size >= n) break;
    }
    return !this.signal.aborted;
  }

  /** Ends the newest calls until `n` are up, and waits until they are deleted. */
  async shrinkTo(n: number): Promise<void> {
    const ending: Promise<CallRecord>[] = [];
    for (let i = this.live.length - 1; i >= 0 && this.size > n; i--) {
      const c = this.live[i]!;
      if (c.ended) continue;
      c.ended = true;
      this.control.stopCall(c.index);
      ending.push(c.done);
    }
    await Promise.all(ending);
  }

  /** Ends every call and waits for all of them (their deletes included). */
  async endAll(): Promise<void> {
    await this.shrinkTo(0);
    // Calls told to end earlier may still be deleting: they stay in `live` until their record is in.
    await Promise.all(this.live.map((c) => c.done));
  }

  private place(dueEpochMs: number): LiveCall {
    const index = this.nextIndex++;
    const call: LiveCall = { index, ended: false, done: placeCall(this.ctx, index, dueEpochMs) };
    this.live.push(call);
    void call.done.then((record) => {
      call.ended = true;
      this.established.delete(index);
      if (record.status === 'failed') this.failed++;
      this.records.push(record);
      const at = this.live.indexOf(call);
      if (at >= 0) this.live.splice(at, 1);
    });
    return call;
  }
}
