/**
 * The piscina task: run one call's media and return its measurements. Module scope holds what a thread shares
 * across its calls: the pre-encoded media bank, the control block and the one pacing scheduler.
 *
 * The pool runs with atomics disabled, so an idle thread keeps servicing its sockets and timers, and with many
 * concurrent tasks per thread: a task stays pending for the whole call while its sockets live on the event loop.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';
import { workerData } from 'piscina';
import { ControlView } from '../src/media/control.js';
import { framesFromBank, type MediaBank } from '../src/media/bank.js';
import type { CallMediaResult, CallMediaTask, MemoryQuery, RepointMessage, RepointedMessage, ThreadMemory } from '../src/media/task.js';
import { CallMedia } from './call-media.js';
import { Scheduler } from './scheduler.js';
import { createMediaIo, type SocketOpenError } from './media-io.js';
import { emptyReceived, LOCAL_PORT_IN_USE } from '../src/media/task.js';
import { applyMediaPriority } from './thread-priority.js';
import type { IoChoice, MediaPriority } from '../src/run-plan.js';

export interface MediaWorkerData {
  control: SharedArrayBuffer;
  /** The BroadcastChannel the coordinator's timeline listens on (TimelinePart messages). */
  timelineChannel: string;
  /** The BroadcastChannel of fault messages (RepointMessage in, RepointedMessage out). */
  faultChannel: string;
  /** This thread posts its threadId here once this module is loaded (MediaPool.close waits for it). */
  loadedChannel: string;
  /** The BroadcastChannel of memory queries (MemoryQuery in, ThreadMemory out: MediaPool.memory). */
  memoryChannel: string;
  bank: MediaBank;
  io: IoChoice;
  priority: MediaPriority;
}

const data = workerData as MediaWorkerData;
const control = new ControlView(data.control);
const { io } = createMediaIo(data.io);
const timeline = new BroadcastChannel(data.timelineChannel);
// Posting must not keep a thread alive; the pool decides when threads end.
timeline.unref();
const scheduler = new Scheduler(control, control.claimSlot(), io, (part) => timeline.postMessage(part));
// Piscina runs this module in the thread itself: the priority applies to this media thread only.
const priority = applyMediaPriority(data.priority);

/** This thread's calls from the moment their legs exist until their task returns: what a re-point moves. */
const live = new Set<CallMedia>();
/** Dead worker address -> survivor address, for calls whose task arrives after the re-point. */
const redirects = new Map<string, string>();
const faults = new BroadcastChannel(data.faultChannel);
faults.unref();
faults.onmessage = (event: unknown) => {
  const message = (event as { data: RepointMessage | RepointedMessage }).data;
  // The other threads' answers come by too.
  if (message.type !== 'repoint') return;
  redirects.set(message.from, message.to);
  let legs = 0;
  for (const call of live) legs += call.repoint(message.from, message.to);
  const answer: RepointedMessage = { type: 'repointed', id: message.id, legs, atEpochMs: performance.timeOrigin + performance.now() };
  faults.postMessage(answer);
};

const memory = new BroadcastChannel(data.memoryChannel);
memory.unref();
/** gc(), made available only when a query asks for it (the soak bench): a flag set now applies to new contexts. */
let collect: (() => void) | null = null;
memory.onmessage = (event: unknown) => {
  const message = (event as { data: MemoryQuery | ThreadMemory }).data;
  if (message.type !== 'memory') return;
  if (message.gc) {
    if (collect === null) {
      v8.setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
    collect();
  }
  const heap = v8.getHeapStatistics();
  const answer: ThreadMemory = { type: 'memory-report', id: message.id, threadId, heapUsed: heap.used_heap_size, heapTotal: heap.total_heap_size, calls: live.size };
  memory.postMessage(answer);
};

/**
 * Never rejects for a call's own trouble: a call whose media cannot start (no room in this thread, a port taken)
 * returns an error result and fails alone; the run goes on.
 */
export default async function callMedia(task: CallMediaTask): Promise<CallMediaResult> {
  for (const leg of task.legs) leg.remoteAddress = redirects.get(leg.remoteAddress) ?? leg.remoteAddress;
  let call: CallMedia;
  try {
    call = new CallMedia(task, (leg) => framesFromBank(data.bank, leg.send.codec, leg.send.toneHz), scheduler.counters, scheduler.metrics, io, scheduler.timeline);
  } catch (err) {
    return failedResult(task, 'thread full', err);
  }
  live.add(call);
  try {
    try {
      await call.open();
    } catch (err) {
      return { ...call.result(), priority, error: socketFailure(err) };
    }
    scheduler.add(call);
    await call.finished;
    return { ...call.result(), priority };
  } finally {
    live.delete(call);
  }
}

/** A call that never got its legs: nothing measured, and why. */
function failedResult(task: CallMediaTask, cause: string, err: unknown): CallMediaResult {
  const none = (leg: 'a' | 'b'): CallMediaResult['legs'][0] => ({
    leg,
    sent: { packets: 0, bytes: 0, failed: 0, skipped: 0, lastSeq: -1, lastFailed: false, refused: 0 },
    received: emptyReceived(),
    rtcp: { sent: 0, received: 0, malformed: 0, lastReport: null },
  });
  const { histograms, outliers } = scheduler.metrics.takeEncoded();
  return {
    callId: task.callId,
    error: { cause, message: (err as Error).message },
    mediaStartEpochMs: Number.NaN,
    mediaEndEpochMs: Number.NaN,
    phaseMs: 0,
    stoppedEarly: false,
    legs: [none('a'), none('b')],
    histograms,
    outliers,
    io: io.name,
    priority,
  };
}

/** Why a socket could not be opened, in words a user can act on. */
function socketFailure(err: unknown): { cause: string; message: string } {
  const e = err as SocketOpenError;
  if (e.code === 'EADDRINUSE') return { cause: LOCAL_PORT_IN_USE, message: `${e.message}: another program (or another run) holds it; give this run other client ports with --local-ports` };
  if (e.code === 'EADDRNOTAVAIL') return { cause: 'local address unusable', message: `${e.message}: --local-ip must be an address of this machine (or of the namespace the run is in)` };
  return { cause: 'local socket', message: e.message ?? String(err) };
}

// Last: the module is loaded and instantiated, so the pool may now end this thread safely.
{
  const loaded = new BroadcastChannel(data.loadedChannel);
  loaded.postMessage(threadId);
  loaded.close();
}
