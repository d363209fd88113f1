/**
 * A CPU cap for a local rtpengine worker (`--worker-cpu CORES`): a cgroup of the run's own with a CFS bandwidth
 * limit, the daemon moved into it once started, removed when the daemon has gone. So that scaling shows on a small
 * machine: two workers capped at 0.4 core each are two workers, not two daemons sharing whatever the machine has.
 * cgroup v2 (`cpu.max`) where the cpu controller is there, else v1 (`cpu.cfs_quota_us`); a clear error when neither
 * can be written (no root, a read-only /sys/fs/cgroup in a container).
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class CpuCapError extends Error {
  override readonly name = 'CpuCapError';
}

export interface CpuCap {
  /** The cgroup's folder. */
  readonly path: string;
  readonly version: 1 | 2;
  readonly cores: number;
  /** Moves a process (all its threads) into the cgroup. */
  add(pid: number): void;
  /** Time the kernel held the cgroup back for its quota so far, ms (null when unreadable). */
  throttledMs(): number | null;
  /** Removes the cgroup; its processes must have exited (or moved). Never throws. */
  remove(): void;
}

/** CFS period: 100 ms, the kernel's default; the quota is cores x period. */
const PERIOD_US = 100_000;
/** Below a hundredth of a core the quota would be under a millisecond per period (the kernel's minimum is 1 ms). */
export const MIN_CORES = 0.01;

/** Which cgroup hierarchy can take a CPU limit under `root` (the cgroup mount, /sys/fs/cgroup). */
export function cgroupFlavour(root: string): { version: 1 | 2; base: string } | null {
  if (existsSync(join(root, 'cgroup.controllers')) && readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) {
    return { version: 2, base: root };
  }
  for (const mount of ['cpu', 'cpu,cpuacct']) {
    if (existsSync(join(root, mount, 'cpu.cfs_quota_us'))) return { version: 1, base: join(root, mount) };
  }
  return null;
}

/** A new cgroup `name` allowing `cores` of CPU. Throws CpuCapError saying why it cannot and what to do. */
export function createCpuCap(name: string, cores: number, root = '/sys/fs/cgroup'): CpuCap {
  if (!(cores >= MIN_CORES)) throw new CpuCapError(`a CPU cap of ${cores} cores is below the ${MIN_CORES} the kernel can enforce`);
  const flavour = cgroupFlavour(root);
  if (flavour === null) {
    throw new CpuCapError(`no cgroup CPU controller under ${root} (neither v2 cpu.max nor v1 cpu.cfs_quota_us): --worker-cpu needs one; run without it, or where cgroups are mounted`);
  }
  const path = join(flavour.base, name);
  const quota = Math.round(cores * PERIOD_US);
  try {
    if (flavour.version === 2) {
      // A child's cpu.max exists only once the parent hands the cpu controller down.
      const control = join(flavour.base, 'cgroup.subtree_control');
      if (!readFileSync(control, 'utf8').split(/\s+/).includes('cpu')) writeFileSync(control, '+cpu');
      mkdirSync(path);
      writeFileSync(join(path, 'cpu.max'), `${quota} ${PERIOD_US}`);
    } else {
      mkdirSync(path);
      writeFileSync(join(path, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(join(path, 'cpu.cfs_quota_us'), String(quota));
    }
  } catch (err) {
    try {
      rmdirSync(path);
    } catch {
      // Never made.
    }
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? `${e.code}: --worker-cpu needs root and a writable cgroup filesystem` : e.message;
    throw new CpuCapError(`cannot make the CPU cap cgroup ${path}: ${why}`);
  }
  const version = flavour.version;
  return {
    path,
    version,
    cores,
    add(pid: number): void {
      try {
        writeFileSync(join(path, 'cgroup.procs'), String(pid));
      } catch (err) {
        throw new CpuCapError(`cannot move process ${pid} into ${path}: ${(err as Error).message}`);
      }
    },
    throttledMs(): number | null {
      try {
        const stat = readFileSync(join(path, 'cpu.stat'), 'utf8');
        const v1 = /^throttled_time (\d+)$/m.exec(stat);
        if (v1) return Number(v1[1]) / 1e6;
        const v2 = /^throttled_usec (\d+)$/m.exec(stat);
        return v2 ? Number(v2[1]) / 1e3 : null;
      } catch {
        return null;
      }
    },
    remove(): void {
      try {
        rmdirSync(path);
      } catch {
        // Busy (a process still in it) or gone: a later cleanup, or the next boot, takes it.
      }
    },
  };
}
