/**
 * A media thread's scheduling (--media-priority). Real-time priority keeps the thread's 0.5 ms tick from waiting
 * behind the process's helper threads (see setThreadPriority in workers/native/src/transport.cc for the
 * mechanism); the plan decides where it is wanted, this applies it to the calling thread and says what it got.
 */
import { nativeTransportError, setThreadPriority } from './native/transport.js';
import type { MediaPriority } from '../src/run-plan.js';

/** SCHED_FIFO priority: above every normal thread, below the kernel's own real-time threads (which use 50 and up). */
const FIFO_PRIORITY = 10;

/** Applies `wanted` to the calling thread; returns what it has, in words for the report ('realtime', 'normal ...'). */
export function applyMediaPriority(wanted: MediaPriority): string {
  if (wanted === 'normal') return 'normal';
  if (nativeTransportError() !== null) return 'normal (realtime needs the native addon: npm run build:native)';
  const refused = setThreadPriority(FIFO_PRIORITY);
  return refused === '' ? 'realtime' : `normal (realtime refused: ${refused}; run as root or with CAP_SYS_NICE)`;
}
