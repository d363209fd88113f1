/** What the figures were measured on: results from different machines or versions should not be compared blindly. */
import os from 'node:os';
import { packageVersion } from '../paths.js';
import type { Stack } from '../stack/stack.js';

export interface Environment {
  rtpBench: string;
  node: string;
  platform: string;
  kernel: string;
  cpu: { model: string; cores: number };
  memoryGiB: number;
  rtpengine: { kind: 'embedded' | 'remote' | 'mesh' | 'none'; workers: { name: string; version: string | null }[] };
}

export async function describeEnvironment(stack: Stack | null): Promise<Environment> {
  const cpus = os.cpus();
  return {
    rtpBench: packageVersion(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    cpu: { model: cpus[0]?.model.trim() ?? 'unknown', cores: os.availableParallelism() },
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    rtpengine: {
      kind: stack === null ? 'none' : stack.kind,
      workers: stack === null ? [] : stack.workers.map((w) => ({ name: w.name, version: w.version })),
    },
  };
}
