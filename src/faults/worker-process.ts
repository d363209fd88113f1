/**
 * What a worker fault does to an embedded rtpengine process: signals to its PID (never by name: only the daemon
 * rtp-bench started), waiting on its exit where the fault is a death, and starting it again with its exact
 * command line for a restart (Stack.restart).
 */
import { performance } from 'node:perf_hooks';
import type { Stack, Worker } from '../stack/stack.js';
import { waitNgReady, type LocalRtpengine } from '../stack/rtpengine.js';
import { spawnDaemon } from '../stack/daemon.js';

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

function local(worker: Worker): LocalRtpengine {
  if (worker.local === null) throw new Error(`${worker.name} is not an rtpengine rtp-bench started`);
  return worker.local;
}

/** SIGKILL, as a crash would be; resolves once the process has exited. Returns when the signal went, epoch ms. */
export async function killWorker(worker: Worker): Promise<number> {
  const daemon = local(worker);
  const at = epochNow();
  process.kill(daemon.pid, 'SIGKILL');
  // stop() waits for the exit it sees coming (its SIGTERM then reaches nothing); the daemon's exit hook is spent.
  await daemon.stop();
  return at;
}

/** SIGSTOP: the process keeps its sockets (packets queue in them) but does nothing until resumed. */
export function pauseWorker(worker: Worker): number {
  const at = epochNow();
  process.kill(local(worker).pid, 'SIGSTOP');
  return at;
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
export async function restartWorker(stack: Stack, index: number, binary: string): Promise<{ atEpochMs: number; readyEpochMs: number; pid: number }> {
  const worker = stack.workers[index]!;
  const atEpochMs = await killWorker(worker);
  const restarted = await startAgain(local(worker), binary);
  worker.local = restarted;
  worker.cap?.add(restarted.pid);
  return { atEpochMs, readyEpochMs: epochNow(), pid: restarted.pid };
}

/** A stopped daemon's exact command line started again; ready when it answers an ng ping (as at the run's start). */
async function startAgain(old: LocalRtpengine, binary: string): Promise<LocalRtpengine> {
  const daemon = await spawnDaemon([binary, ...old.args]);
  try {
    await waitNgReady(old.address, old.ngPort, READY_TIMEOUT_MS, () => daemon.exitStatus() !== null, daemon.exited);
  } catch (err) {
    await daemon.stop();
    throw new Error(`rtpengine restarted on ${old.address}:${old.ngPort} (pid ${daemon.pid}) did not answer: ${(err as Error).message}; its last log lines: ${daemon.logTail(5).join(' | ')}`);
  }
  return { ...old, pid: daemon.pid, logTail: (lines = 20) => daemon.logTail(lines), stop: daemon.stop };
}

const READY_TIMEOUT_MS = 10_000;
