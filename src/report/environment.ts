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
  rtpengine: {
    kind: 'embedded' | 'remote' | 'mesh' | 'none';
    workers: { name: string; version: string | null }[];
    /** The Redis the workers replicated their calls through (--redis); null: none. Absent in results written before --redis. */
    redis?: EnvironmentRedis | null;
  };
}

export interface EnvironmentRedis {
  /** own: a redis-server rtp-bench started for the run; external: one given with --redis HOST:PORT. */
  kind: 'own' | 'external';
  /** "host:port". */
  address: string;
  version: string | null;
  /** Each worker's DB, in the order of `workers` (each followed all the others). */
  dbs: number[];
  /** notify-keyspace-events during the run. */
  keyspaceEvents: string;
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
      redis: stack?.redis ? { kind: stack.redis.kind, address: `${stack.redis.host}:${stack.redis.port}`, version: stack.redis.version, dbs: stack.redis.dbs, keyspaceEvents: stack.redis.keyspaceEvents } : null,
    },
  };
}
