/**
 * What a worker fault does to an embedded rtpengine process: signals to its PID (never by name: only the daemon
 * rtp-bench started), each followed by a wait for the effect to be observable (the exit reaped, the stopped state
 * in /proc), whose time is the boundary the gap measurement needs: every packet after it came from after the fault.
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Stack, Worker } from '../stack/stack.js';
import type { LocalRtpengine } from '../stack/rtpengine.js';

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A signal sent (atEpochMs) and when its effect was seen (downEpochMs). */
export interface Signalled {
  atEpochMs: number;
  downEpochMs: number;
}

function local(worker: Worker): LocalRtpengine {
  if (worker.local === null) throw new Error(`${worker.name} is not an rtpengine rtp-bench started`);
  return worker.local;
}

/** SIGKILL, as a crash would be; resolves once the process has exited. */
export async function killWorker(worker: Worker): Promise<Signalled> {
  const daemon = local(worker);
  const atEpochMs = epochNow();
  process.kill(daemon.pid, 'SIGKILL');
  // stop() waits for the exit it sees coming (its SIGTERM then reaches nothing); the daemon's exit hook is spent.
  await daemon.stop();
  return { atEpochMs, downEpochMs: epochNow() };
}

/** How long a SIGSTOP may take to show in /proc before the pause is said to have failed. */
const STOP_SEEN_WITHIN_MS = 2000;

/** SIGSTOP: the process keeps its sockets (packets queue in them) but does nothing until resumed. */
export async function pauseWorker(worker: Worker): Promise<Signalled> {
  const { pid } = local(worker);
  const atEpochMs = epochNow();
  process.kill(pid, 'SIGSTOP');
  // The signal is queued at once but takes effect when the kernel next schedules the process: wait until it shows.
  while (!(await stopped(pid))) {
    if (epochNow() - atEpochMs > STOP_SEEN_WITHIN_MS) throw new Error(`pid ${pid} was sent SIGSTOP but did not stop within ${STOP_SEEN_WITHIN_MS} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { atEpochMs, downEpochMs: epochNow() };
}

/** /proc/PID/stat's state is the field after the command name in parentheses: T when stopped by a signal. */
async function stopped(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'T';
}

export function resumeWorker(worker: Worker): number {
  const at = epochNow();
  try {
    process.kill(local(worker).pid, 'SIGCONT');
  } catch {
    // Gone meanwhile: nothing to resume.
  }
  return at;
}

/** SIGKILL, then the same command line again (same address, ports, Redis DB); resolves once it answers ng. */
export async function restartWorker(stack: Stack, index: number): Promise<Signalled & { readyEpochMs: number; pid: number }> {
  const killed = await killWorker(stack.workers[index]!);
  const restarted = await stack.restart(index);
  return { ...killed, readyEpochMs: epochNow(), pid: local(restarted).pid };
}
