/**
 * Shared memory between the coordinator and the media threads, for the two things that cannot wait for a task's
 * result: the stop signal (Ctrl-C, the end of the run) and live progress counters. Final numbers never come
 * from here: they come back as task results.
 *
 * Layout: an Int32 header (stop flag, next free slot), one Float64 slot per media thread, and one stop byte per
 * call index (a capacity search ends single calls of a running population). Each thread slot has a single writer
 * (its thread), so plain stores are enough; the coordinator only reads them for the progress line and timeline.
 */
export const MAX_THREADS = 64;

const HEADER_INTS = 4;
const STOP = 0;
const NEXT_SLOT = 1;

/** Progress fields of one thread's slot. Cumulative since the thread started, except where noted. */
export const P_SENT = 0;
export const P_RECEIVED = 1;
export const P_LOST_A3 = 2; // live streams' RFC 3550 lost + that of finished streams
export const P_RTCP_SENT = 3;
export const P_RTCP_RECEIVED = 4;
export const P_LIVE_CALLS = 5; // current, not cumulative
export const P_LATENESS_MAX_MS = 6; // worst send lateness over the last flush interval
export const P_MALFORMED = 7;
export const SLOT_FIELDS = 8;

const HEADER_BYTES = HEADER_INTS * 4;
const SLOT_BYTES = SLOT_FIELDS * 8;
/** Call indexes a run can stop one by one (the plan's --calls limit). */
export const MAX_CALL_INDEXES = 100_000;

export function createControl(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + MAX_THREADS * SLOT_BYTES + MAX_CALL_INDEXES);
}

export class ControlView {
  private readonly header: Int32Array;
  private readonly slots: Float64Array;
  private readonly callStops: Uint8Array;

  constructor(buffer: SharedArrayBuffer) {
    this.header = new Int32Array(buffer, 0, HEADER_INTS);
    this.slots = new Float64Array(buffer, HEADER_BYTES, MAX_THREADS * SLOT_FIELDS);
    this.callStops = new Uint8Array(buffer, HEADER_BYTES + MAX_THREADS * SLOT_BYTES, MAX_CALL_INDEXES);
  }

  /** Ends one call's media at its thread's next tick, as if its end time had come (not an interruption). */
  stopCall(index: number): void {
    Atomics.store(this.callStops, index, 1);
  }

  /** HOT (once per call per tick). */
  callStopped(index: number): boolean {
    return this.callStops[index] !== 0;
  }

  requestStop(): void {
    Atomics.store(this.header, STOP, 1);
  }

  get stopRequested(): boolean {
    return Atomics.load(this.header, STOP) !== 0;
  }

  /** Each media thread claims one slot when it loads. */
  claimSlot(): number {
    const slot = Atomics.add(this.header, NEXT_SLOT, 1);
    if (slot >= MAX_THREADS) throw new Error(`rtp-bench supports at most ${MAX_THREADS} media threads`);
    return slot;
  }

  write(slot: number, field: number, value: number): void {
    this.slots[slot * SLOT_FIELDS + field] = value;
  }

  /** Sum of a field over all claimed slots (or the max, for fields where a sum means nothing). */
  total(field: number, combine: 'sum' | 'max' = 'sum'): number {
    const used = Math.min(Atomics.load(this.header, NEXT_SLOT), MAX_THREADS);
    let acc = 0;
    for (let s = 0; s < used; s++) {
      const v = this.slots[s * SLOT_FIELDS + field] ?? 0;
      acc = combine === 'sum' ? acc + v : Math.max(acc, v);
    }
    return acc;
  }
}
