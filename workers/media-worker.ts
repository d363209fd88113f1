/**
 * The piscina task: run one call's media and return its measurements. Module scope holds what a thread shares
 * across its calls: the pre-encoded media bank, the control block and the one pacing scheduler.
 *
 * The pool runs with atomics disabled, so an idle thread keeps servicing its sockets and timers, and with many
 * concurrent tasks per thread: a task stays pending for the whole call while its sockets live on the event loop.
 */
import { workerData } from 'piscina';
import { ControlView } from '../src/media/control.js';
import { framesFromBank, type MediaBank } from '../src/media/bank.js';
import type { CallMediaResult, CallMediaTask } from '../src/media/task.js';
import { CallMedia } from './call-media.js';
import { Scheduler } from './scheduler.js';
import { createMediaIo } from './media-io.js';
import { applyMediaPriority } from './thread-priority.js';
import type { IoChoice, MediaPriority } from '../src/run-plan.js';

export interface MediaWorkerData {
  control: SharedArrayBuffer;
  bank: MediaBank;
  io: IoChoice;
  priority: MediaPriority;
}

const data = workerData as MediaWorkerData;
const control = new ControlView(data.control);
const { io } = createMediaIo(data.io);
const scheduler = new Scheduler(control, control.claimSlot(), io);
// Piscina runs this module in the thread itself: the priority applies to this media thread only.
const priority = applyMediaPriority(data.priority);

export default async function callMedia(task: CallMediaTask): Promise<CallMediaResult> {
  const call = new CallMedia(task, (leg) => framesFromBank(data.bank, leg.send.codec, leg.send.toneHz), scheduler.counters, scheduler.metrics, io);
  try {
    await call.open();
  } catch (err) {
    return { ...call.result(), priority, error: { cause: 'local socket', message: (err as Error).message } };
  }
  scheduler.add(call);
  await call.finished;
  return { ...call.result(), priority };
}
