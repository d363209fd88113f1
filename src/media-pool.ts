/**
 * The media thread pool (piscina): one task per call, running for the whole call. The coordinator talks to the
 * threads through task arguments and results, plus a shared control block for stop and live progress.
 */
import { Piscina } from 'piscina';
import { randomBytes } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { createControl, ControlView } from './media/control.js';
import type { MediaBank } from './media/bank.js';
import type { CallMediaResult, CallMediaTask, MemoryQuery, ThreadMemory } from './media/task.js';
import type { IoChoice, MediaPriority } from './run-plan.js';
import type { MediaWorkerData } from '../workers/media-worker.js';

export class MediaPool {
  readonly control: ControlView;
  /** The BroadcastChannel name of fault messages to and from the threads (RepointMessage: src/faults/repoint.ts). */
  readonly faultChannel = `rtp-bench-faults-${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly memoryChannel: BroadcastChannel;
  private nextMemoryQuery = 1;
  private readonly pool: Piscina<CallMediaTask, CallMediaResult>;
  /** Resolves once every thread has loaded the media module (each says so on `loadedChannel`). */
  private readonly loaded: Promise<void>;
  private readonly loadedChannel: BroadcastChannel;

  /** `timelineChannel`: the BroadcastChannel name the threads post their per-second histograms on. */
  constructor(threads: number, bank: MediaBank, io: IoChoice, priority: MediaPriority, readonly timelineChannel: string) {
    const buffer = createControl();
    this.control = new ControlView(buffer);
    const loadedName = `rtp-bench-loaded-${process.pid}-${randomBytes(4).toString('hex')}`;
    const memoryName = `rtp-bench-memory-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.memoryChannel = new BroadcastChannel(memoryName);
    this.memoryChannel.unref();
    this.loadedChannel = new BroadcastChannel(loadedName);
    this.loadedChannel.unref();
    const seen = new Set<number>();
    this.loaded = new Promise<void>((resolve) => {
      this.loadedChannel.onmessage = (event: unknown) => {
        seen.add((event as { data: number }).data);
        if (seen.size >= threads) resolve();
      };
    });
    this.pool = new Piscina({
      filename: new URL('../workers/media-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      // A task lasts a whole call, so a thread holds as many as there are calls; the least-busy balancer spreads them.
      concurrentTasksPerWorker: 100_000,
      idleTimeout: Number.POSITIVE_INFINITY,
      // In the default mode an idle thread blocks in Atomics.wait and stops servicing its sockets and timers.
      atomics: 'disabled',
      workerData: { control: buffer, bank, io, priority, timelineChannel, faultChannel: this.faultChannel, loadedChannel: loadedName, memoryChannel: memoryName } satisfies MediaWorkerData,
      maxQueue: Number.POSITIVE_INFINITY,
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  run(task: CallMediaTask): Promise<CallMediaResult> {
    return this.pool.run(task);
  }

  /**
   * Each thread's V8 heap (after a collection with `gc`): the answers that came within MEMORY_ANSWER_MS, one per
   * thread. For the soak bench; nothing on the media path.
   */
  memory(gc: boolean): Promise<ThreadMemory[]> {
    const id = this.nextMemoryQuery++;
    const answers: ThreadMemory[] = [];
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.memoryChannel.onmessage = () => undefined;
        resolve(answers);
      };
      const timer = setTimeout(done, MEMORY_ANSWER_MS);
      this.memoryChannel.onmessage = (event: unknown) => {
        const m = (event as { data: MemoryQuery | ThreadMemory }).data;
        if (m.type !== 'memory-report' || m.id !== id) return;
        answers.push(m);
        if (answers.length >= this.threads) done();
      };
      this.memoryChannel.postMessage({ type: 'memory', id, gc } satisfies MemoryQuery);
    });
  }

  /** Every call's media ends at once (its task still returns its measurements). */
  stopAll(): void {
    this.control.requestStop();
  }

  /**
   * Waits (at most LOAD_WAIT_MS) until every thread has loaded its module before ending the pool: Node 20 aborts the
   * whole process ("IsGraphAsync must be used on an instantiated module") when a thread is ended while piscina is
   * still loading the ES module into it, as a run that fails at once (an unreachable Redis) would do.
   */
  async close(): Promise<void> {
    await Promise.race([this.loaded, sleep(LOAD_WAIT_MS, undefined, { ref: false })]);
    this.loadedChannel.close();
    this.memoryChannel.close();
    await this.pool.close({ force: false });
  }
}

/** How long memory() waits for the threads' answers. */
const MEMORY_ANSWER_MS = 2000;

/** How long close() waits for threads still loading their module. */
const LOAD_WAIT_MS = 10_000;
