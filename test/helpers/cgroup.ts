/** A CPU-capped cgroup of the test's own (cgroup v1 cpu controller, or v2 cpu.max), for starving a process on purpose. */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface CappedCgroup {
  /** The cgroup's folder. */
  path: string;
  /** Writing a PID here moves that process in (v1 `tasks` takes one thread; `cgroup.procs` the whole process). */
  procsFile: string;
  /** Removes the cgroup; its processes must have ended. */
  remove(): void;
}

/**
 * A new cgroup allowing `cores` of CPU (e.g. 0.05 = 5 ms per 100 ms), or a string saying why none could be made
 * (the caller skips with it).
 */
export function cpuCappedCgroup(cores: number): CappedCgroup | string {
  const name = `rtp-bench-test-${randomBytes(3).toString('hex')}`;
  const period = 100_000;
  const quota = Math.round(cores * period);
  const v1 = '/sys/fs/cgroup/cpu';
  try {
    if (existsSync(join(v1, 'cpu.cfs_quota_us'))) {
      const path = join(v1, name);
      mkdirSync(path);
      writeFileSync(join(path, 'cpu.cfs_period_us'), String(period));
      writeFileSync(join(path, 'cpu.cfs_quota_us'), String(quota));
      return { path, procsFile: join(path, 'cgroup.procs'), remove: () => rmdirSync(path) };
    }
    const v2 = '/sys/fs/cgroup';
    if (existsSync(join(v2, 'cgroup.controllers')) && readFileSync(join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) {
      if (!readFileSync(join(v2, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('cpu')) writeFileSync(join(v2, 'cgroup.subtree_control'), '+cpu');
      const path = join(v2, name);
      mkdirSync(path);
      writeFileSync(join(path, 'cpu.max'), `${quota} ${period}`);
      return { path, procsFile: join(path, 'cgroup.procs'), remove: () => rmdirSync(path) };
    }
    return 'no cgroup v1 cpu controller at /sys/fs/cgroup/cpu and no cgroup v2 cpu controller at /sys/fs/cgroup';
  } catch (err) {
    return `cannot make a CPU-capped cgroup here: ${(err as Error).message}`;
  }
}

/** The command prefix that moves the started shell (and so what it execs) into the cgroup first. */
export function inCgroup(cgroup: CappedCgroup): string[] {
  return ['sh', '-c', `echo $$ > ${cgroup.procsFile} && exec "$@"`, 'sh'];
}
