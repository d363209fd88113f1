/**
 * What kept the generator from the CPU it needed, so a starved run can name the cause instead of blaming the system
 * under test: a CPU cap on the generator's own cgroup (the kernel throttles it), or other processes holding the
 * cores (its threads sat runnable in the run queue). Read from /proc and the cgroup filesystem at two moments; the
 * arithmetic between two readings is pure (contentionBetween).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface CpuCap {
  /** The cgroup whose limit applies (the tightest on the way up). */
  cgroup: string;
  /** Cores the cap allows, e.g. 0.05 for a quota of 5 ms per 100 ms. */
  cores: number;
}

export interface ContentionSample {
  atMs: number;
  /** Time this process's threads waited runnable for a core, summed over threads (schedstat), ms; null if unknown. */
  runQueueWaitMs: number | null;
  /** Time the kernel throttled the generator's cgroup (CFS bandwidth), ms; null without a cap or when unknown. */
  throttledMs: number | null;
  cap: CpuCap | null;
}

export interface Contention {
  /** Run-queue wait per second of the window, summed over threads, ms/s (1000 = one thread always waiting). */
  runQueueWaitMsPerSec: number | null;
  /** Share of the window the cgroup spent throttled, 0..1. */
  throttledShare: number | null;
  cap: CpuCap | null;
}

export function contentionBetween(a: ContentionSample, b: ContentionSample): Contention {
  const seconds = (b.atMs - a.atMs) / 1000;
  const per = (x: number | null, y: number | null): number | null => (x === null || y === null || !(seconds > 0) ? null : Math.max(0, y - x) / seconds);
  const throttledPerSec = per(a.throttledMs, b.throttledMs);
  return {
    runQueueWaitMsPerSec: per(a.runQueueWaitMs, b.runQueueWaitMs),
    throttledShare: throttledPerSec === null ? null : Math.min(1, throttledPerSec / 1000),
    cap: b.cap ?? a.cap,
  };
}

/** Reads the process's contention figures now. Never throws: what cannot be read is null. */
export function sampleContention(atMs: number, root = '/'): ContentionSample {
  const cap = findCpuCap(root);
  return { atMs, runQueueWaitMs: runQueueWaitMs(root), throttledMs: cap === null ? null : throttledMs(root, cap.cgroup), cap };
}

/** Sum over this process's threads of the second /proc/<tid>/schedstat field (ns spent runnable, waiting), in ms. */
function runQueueWaitMs(root: string): number | null {
  const dir = join(root, 'proc/self/task');
  let total = 0;
  try {
    for (const tid of readdirSync(dir)) {
      try {
        const fields = readFileSync(join(dir, tid, 'schedstat'), 'utf8').trim().split(/\s+/);
        total += Number(fields[1]) / 1e6;
      } catch {
        // The thread ended between the listing and the read.
      }
    }
  } catch {
    return null;
  }
  return Number.isFinite(total) ? total : null;
}

/** Where the cgroup filesystem has this process's CPU controller: [mount folder, path inside it, version]. */
function cpuCgroupDir(root: string): { dir: string; version: 1 | 2 } | null {
  let lines: string[];
  try {
    lines = readFileSync(join(root, 'proc/self/cgroup'), 'utf8').trim().split('\n');
  } catch {
    return null;
  }
  for (const line of lines) {
    const [, controllers = '', path = '/'] = line.split(':');
    if (controllers.split(',').includes('cpu')) {
      const name = controllers.split(',').sort().join(',');
      for (const mount of [`sys/fs/cgroup/${name}`, 'sys/fs/cgroup/cpu', 'sys/fs/cgroup/cpu,cpuacct']) {
        const dir = join(root, mount, path);
        if (exists(join(dir, 'cpu.cfs_quota_us'))) return { dir, version: 1 };
      }
    }
  }
  const unified = lines.find((l) => l.startsWith('0::'));
  if (unified !== undefined) {
    const path = unified.slice(3);
    for (const mount of ['sys/fs/cgroup', 'sys/fs/cgroup/unified']) {
      const dir = join(root, mount, path);
      if (exists(join(dir, 'cpu.max'))) return { dir, version: 2 };
    }
  }
  return null;
}

function exists(file: string): boolean {
  try {
    readFileSync(file);
    return true;
  } catch {
    return false;
  }
}

/** The tightest CPU bandwidth limit from the process's cgroup up to the root of its hierarchy, or null. */
export function findCpuCap(root = '/'): CpuCap | null {
  const found = cpuCgroupDir(root);
  if (found === null) return null;
  let best: CpuCap | null = null;
  const top = join(root, 'sys/fs/cgroup');
  for (let dir = found.dir; dir.startsWith(top) && dir.length > top.length; dir = join(dir, '..')) {
    const cores = capCores(dir, found.version);
    if (cores !== null && (best === null || cores < best.cores)) best = { cgroup: dir.slice(root.length - (root.endsWith('/') ? 1 : 0)), cores };
  }
  return best;
}

function capCores(dir: string, version: 1 | 2): number | null {
  try {
    if (version === 1) {
      const quota = Number(readFileSync(join(dir, 'cpu.cfs_quota_us'), 'utf8'));
      const period = Number(readFileSync(join(dir, 'cpu.cfs_period_us'), 'utf8'));
      return quota > 0 && period > 0 ? quota / period : null;
    }
    const [quota = 'max', period = '100000'] = readFileSync(join(dir, 'cpu.max'), 'utf8').trim().split(/\s+/);
    return quota === 'max' ? null : Number(quota) / Number(period);
  } catch {
    return null;
  }
}

/** Throttled time of a cgroup so far, ms (v1 cpu.stat throttled_time in ns, v2 throttled_usec). */
function throttledMs(root: string, cgroup: string): number | null {
  try {
    const stat = readFileSync(join(root, cgroup, 'cpu.stat'), 'utf8');
    const v1 = /^throttled_time (\d+)$/m.exec(stat);
    if (v1) return Number(v1[1]) / 1e6;
    const v2 = /^throttled_usec (\d+)$/m.exec(stat);
    if (v2) return Number(v2[1]) / 1e3;
  } catch {
    // Unreadable: unknown.
  }
  return null;
}
