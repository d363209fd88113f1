/**
 * The media thread pool (piscina): one task per call, running for the whole call. The coordinator talks to the
 * threads through task arguments and results, plus a shared control block for stop and live progress.
 */
import { Piscina } from 'piscina';
import { randomBytes } from 'node:crypto';
import { createControl, ControlView } from './media/control.js';
import type { MediaBank } from './media/bank.js';
import type { CallMediaResult, CallMediaTask } from './media/task.js';
import type { IoChoice, MediaPriority } from './run-plan.js';
import type { MediaWorkerData } from '../workers/media-worker.js';

export class MediaPool {
  readonly control: ControlView;
  /** The BroadcastChannel name of fault messages to and from the threads (RepointMessage: src/faults/repoint.ts). */
  readonly faultChannel = `rtp-bench-faults-${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly pool: Piscina<CallMediaTask, CallMediaResult>;

  /** `timelineChannel`: the BroadcastChannel name the threads post their per-second histograms on. */
  constructor(threads: number, bank: MediaBank, io: IoChoice, priority: MediaPriority, readonly timelineChannel: string) {
    const buffer = createControl();
    this.control = new ControlView(buffer);
    this.pool = new Piscina({
      filename: new URL('../workers/media-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      // A task lasts a whole call, so a thread holds as many as there are calls; the least-busy balancer spreads them.
      concurrentTasksPerWorker: 100_000,
      idleTimeout: Number.POSITIVE_INFINITY,
      // In the default mode an idle thread blocks in Atomics.wait and stops servicing its sockets and timers.
      atomics: 'disabled',
      workerData: { control: buffer, bank, io, priority, timelineChannel, faultChannel: this.faultChannel } satisfies MediaWorkerData,
      maxQueue: Number.POSITIVE_INFINITY,
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  run(task: CallMediaTask): Promise<CallMediaResult> {
    return this.pool.run(task);
  }

  /** Every call's media ends at once (its task still returns its measurements). */
  stopAll(): void {
    this.control.requestStop();
  }

  async close(): Promise<void> {
    await this.pool.close({ force: false });
  }
}

