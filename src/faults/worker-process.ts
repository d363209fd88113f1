/**
 * What a worker fault does to the processes rtp-bench started: signals to their PIDs (never by name: only daemons
 * rtp-bench started), each followed by a wait for the effect to be observable (the exit reaped, the stopped state
 * in /proc), whose time is the boundary the gap measurement needs: every packet after it came from after the fault.
 *
 * The fault runtime asks a WorkerFaultMaker: for the embedded stack the processes are this process's children
 * (embeddedFaultMaker); with --mesh local they are the children of the rtp-bench process that built the mesh, which
 * makes the fault on the runtime's behalf (src/mesh/local/control.ts) with the same functions.
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Stack } from '../stack/stack.js';

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A signal sent (atEpochMs) and when its effect was seen (downEpochMs). */
export interface Signalled {
  atEpochMs: number;
  downEpochMs: number;
  /** What was signalled, e.g. "pid 1234" or "rtpengine pid 1234 and its l7mp sidecar pid 1240". */
  what: string;
}

export interface Restarted extends Signalled {
  /** When the new process answered (ng for rtpengine, REST for a proxy), epoch ms. */
  readyEpochMs: number;
  pid: number;
}

/** A process rtp-bench started and can wait for. */
export interface OwnProcess {
  pid: number;
  /** Resolves once it has exited (SIGTERM first if it still runs). */
  stop(): Promise<void>;
}

/**
 * The faults a run can make on its workers (0-based indexes) and, with --mesh local, on the ingress proxy. kill:
 * the worker dies for good (with --mesh local its pod: rtpengine and its l7mp sidecar); restart: rtpengine killed
 * and started again in place; pause/resume: SIGSTOP/SIGCONT to rtpengine.
 */
export interface WorkerFaultMaker {
  kill(index: number): Promise<Signalled>;
  restart(index: number): Promise<Restarted>;
  pause(index: number): Promise<Signalled>;
  /** Epoch ms of the SIGCONT. */
  resume(index: number): Promise<number>;
  /** Kills the ingress proxy and starts it again, empty (null: this run has none of its own). */
  restartIngress: (() => Promise<Restarted>) | null;
}

/** SIGKILL to every process at once, as a crash would be; resolves once all have exited. */
export async function killProcesses(processes: readonly OwnProcess[]): Promise<{ atEpochMs: number; downEpochMs: number }> {
  const atEpochMs = epochNow();
  for (const p of processes) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Gone already: stop() below returns at once.
    }
  }
  // stop() waits for the exit it sees coming (its SIGTERM then reaches nothing).
  await Promise.all(processes.map((p) => p.stop()));
  return { atEpochMs, downEpochMs: epochNow() };
}

/** How long a SIGSTOP may take to show in /proc before the pause is said to have failed. */
const STOP_SEEN_WITHIN_MS = 2000;

/** SIGSTOP: the process keeps its sockets (packets queue in them) but does nothing until resumed. */
export async function pauseProcess(pid: number): Promise<{ atEpochMs: number; downEpochMs: number }> {
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

export function resumeProcess(pid: number): number {
  const at = epochNow();
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // Gone meanwhile: nothing to resume.
  }
  return at;
}

/** The embedded stack's workers: rtpengine daemons this process started. */
export function embeddedFaultMaker(stack: Stack): WorkerFaultMaker {
  const daemon = (index: number): OwnProcess => {
    const local = stack.workers[index]?.local ?? null;
    if (local === null) throw new Error(`worker ${index + 1} is not an rtpengine rtp-bench started`);
    return local;
  };
  return {
    kill: async (index) => {
      const { pid } = daemon(index);
      return { ...(await killProcesses([daemon(index)])), what: `pid ${pid}` };
    },
    restart: async (index) => {
      const { pid } = daemon(index);
      const killed = await killProcesses([daemon(index)]);
      // Its exact command line (same address, ports, Redis DB); resolves once it answers ng.
      const restarted = await stack.restart(index);
      return { ...killed, what: `pid ${pid}`, readyEpochMs: epochNow(), pid: restarted.local!.pid };
    },
    pause: async (index) => {
      const { pid } = daemon(index);
      return { ...(await pauseProcess(pid)), what: `pid ${pid}` };
    },
    resume: async (index) => resumeProcess(daemon(index).pid),
    restartIngress: null,
  };
}
