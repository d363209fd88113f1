/**
 * Where the calls go: the rtpengine workers of a run, each with its ng client, and which worker takes the next
 * call. Embedded workers are started here and stopped at the end; remote ones are only pinged.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { createCpuCap, type CpuCap } from './cpu-cap.js';
import { NgClient } from '../ng/client.js';
import { restartRtpengine, startRtpengine, rtpengineVersion, type LocalRtpengine } from './rtpengine.js';
import { prepareRedis, removeRunKeys, startRedis, REDIS_KEYSPACE_EVENTS, type LocalRedis } from './redis.js';
import { RedisClient, RedisUnreachableError } from './redis-client.js';
import { PORTS_PER_CALL } from '../ports.js';
import type { Endpoint, RunPlan, Target } from '../run-plan.js';
import type { MeshWorker } from '../mesh/model.js';

export interface Worker {
  /** "host:port" of its ng control socket. */
  name: string;
  ng: NgClient;
  local: LocalRtpengine | null;
  /** Its Prometheus page (rtpengine --listen-http), scraped each second; null: none known. */
  metricsUrl: string | null;
  /** Its CPU cap (--worker-cpu), a cgroup removed when it stops; null: uncapped or not local. */
  cap: CpuCap | null;
  activeCalls: number;
  version: string | null;
  /** Behind a mesh: the worker (pod) the call's objects pin its media to, the one whose rtpengine took the offer. */
  mesh: MeshWorker | null;
  /** With --redis: the DB this worker writes its own calls to (every other worker follows it); null without. */
  redisDb: number | null;
}

/**
 * The Redis the embedded workers replicate their calls through (--redis): each worker writes its own calls to its
 * DB and follows every other worker's, so any survivor holds every call (docs/rtpengine-redis.md).
 */
export interface StackRedis {
  /** own: a redis-server rtp-bench started for the run (stopped with it; with --mesh local, by the process that built the mesh); external: one given with --redis HOST:PORT. */
  kind: 'own' | 'external';
  host: string;
  port: number;
  /** Worker i's DB, in worker order (the same as workers[i].redisDb). */
  dbs: number[];
  /** The server's redis_version; null if it did not say. */
  version: string | null;
  /** notify-keyspace-events during the run (what rtpengine's followers need), and as rtp-bench found it. */
  keyspaceEvents: string;
  keyspaceEventsBefore: string;
  /** The redis-server process (kind own), with its PID; null for an external server. */
  local: LocalRedis | null;
}

/** A worker of a mesh, with where its rtpengine's ng is reachable. */
export type MeshStackWorker = MeshWorker & { ng: Endpoint };

/**
 * Embedded workers' media ports: below the client side's default 20000-29999 and below Linux's ephemeral range
 * (32768-60999), where the kernel would hand the same ports to other sockets.
 */
const EMBEDDED_PORT_BASE = 10000;
const EMBEDDED_PORT_TOP = 19999;
/** Headroom over 4 ports per call: rtpengine hands ports out in no particular order and frees them with the call. */
const PORT_HEADROOM = 1.25;

export class StackError extends Error {}

const NONE: ReadonlySet<Worker> = new Set();

type EmbeddedTarget = Extract<Target, { kind: 'embedded' }>;

export class Stack {
  private next = 0;

  /** With --redis (embedded workers only); null without. */
  redis: StackRedis | null = null;

  private constructor(
    readonly workers: Worker[],
    readonly kind: 'embedded' | 'remote' | 'mesh',
    /** Whose keys the end of the run removes from Redis: the run's call-ids (src/call-id.ts). */
    private readonly runId: string | null,
  ) {}

  /**
   * Starts (embedded) or reaches (remote, mesh) every worker; on any failure, stops what it started and throws.
   * A mesh target's workers come from the mesh (its description, or the cluster) and are passed in.
   */
  static async start(plan: RunPlan, onStatus: (line: string) => void = () => undefined, meshWorkers: MeshStackWorker[] = [], runId: string | null = null): Promise<Stack> {
    const target = plan.target;
    if (target.kind === 'direct') throw new StackError('direct mode has no rtpengine stack');
    const workers: Worker[] = [];
    const stack = new Stack(workers, target.kind, runId);
    try {
      if (target.kind === 'embedded') {
        const version = await rtpengineVersion(target.binary);
        const ranges = embeddedPortRanges(plan.calls, target.workers, target.portRange);
        const share = Math.ceil(plan.calls / target.workers);
        const fits = Math.floor((ranges[0]!.max - ranges[0]!.min + 1) / PORTS_PER_CALL);
        if (fits < share) {
          onStatus(`warning: --rtpengine-ports gives each rtpengine room for ${fits} calls but up to ${share} go to each: expect "Ran out of ports" failures`);
        }
        const subnet = loopbackSubnet();
        if (target.redis !== null) stack.redis = await openRedis(target.redis, target.workers, subnet, onStatus);
        const capName = `rtp-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
        for (let i = 0; i < target.workers; i++) {
          const range = ranges[i]!;
          const address = `${subnet}.${i + 1}`;
          const redisDb = stack.redis?.dbs[i] ?? null;
          onStatus(`starting rtpengine ${version} on ${address}, media ports ${range.min}-${range.max}${redisDb === null ? '' : `, Redis DB ${redisDb}`}`);
          const local = await startRtpengine({
            binary: target.binary,
            address,
            portMin: range.min,
            portMax: range.max,
            logLevel: target.logLevel,
            // Its /metrics: sessions, transcoding, kernel vs userspace streams, as rtpengine itself counts them.
            httpPort: 'auto',
            extraArgs: [...(target.threads === null ? [] : [`--num-threads=${target.threads}`]), ...(stack.redis === null ? [] : replicationArgs(stack.redis, i))],
          });
          // Pushed before anything else can fail, so that stop() stops it.
          const worker: Worker = { name: `${address}:${local.ngPort}`, ng: await openClient(plan, { host: address, port: local.ngPort }), local, metricsUrl: local.metricsUrl, cap: null, activeCalls: 0, version, mesh: null, redisDb };
          workers.push(worker);
          if (target.cpuCores !== null) {
            worker.cap = createCpuCap(`${capName}-w${i + 1}`, target.cpuCores);
            worker.cap.add(local.pid);
            onStatus(`rtpengine on ${address} capped at ${target.cpuCores} core(s) (cgroup ${worker.cap.path})`);
          }
        }
      } else {
        const reach: { endpoint: Endpoint; mesh: MeshWorker | null }[] =
          target.kind === 'remote'
            ? target.endpoints.map((endpoint) => ({ endpoint, mesh: null }))
            : meshWorkers.map(({ ng, ...mesh }) => ({ endpoint: ng, mesh }));
        if (reach.length === 0) throw new StackError('the mesh has no rtpengine workers');
        for (const [i, { endpoint, mesh }] of reach.entries()) {
          const ng = await openClient(plan, endpoint);
          const metricsUrl = target.kind === 'remote' ? (target.metricsUrls?.[i] ?? null) : null;
          workers.push({ name: mesh ? `${mesh.name} (${ng.endpoint})` : ng.endpoint, ng, local: null, metricsUrl, cap: null, activeCalls: 0, version: null, mesh, redisDb: null });
          await ng.ping();
        }
        // --mesh local with --redis: the mesh's own Redis (started and stopped by the process that built the mesh).
        const redis = plan.mesh?.kind === 'rest' ? (plan.mesh.local?.redis ?? null) : null;
        if (redis !== null) {
          stack.redis = { kind: 'own', host: redis.host, port: redis.port, dbs: redis.dbs, version: redis.version, keyspaceEvents: REDIS_KEYSPACE_EVENTS, keyspaceEventsBefore: REDIS_KEYSPACE_EVENTS, local: null };
          for (const [i, w] of workers.entries()) w.redisDb = redis.dbs[i] ?? null;
        }
      }
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  /**
   * The worker with the fewest calls; ties go round-robin so equal workers fill evenly. `unavailable`: workers a
   * fault took down (src/faults), passed over while another is up.
   */
  choose(unavailable: ReadonlySet<Worker> = NONE): Worker {
    const n = this.workers.length;
    let best = this.workers[this.next % n]!;
    for (let k = 1; k < n; k++) {
      const w = this.workers[(this.next + k) % n]!;
      if (unavailable.has(best) ? !unavailable.has(w) || w.activeCalls < best.activeCalls : !unavailable.has(w) && w.activeCalls < best.activeCalls) best = w;
    }
    this.next = (this.workers.indexOf(best) + 1) % n;
    return best;
  }

  /**
   * Starts embedded worker `index` (0-based) again with its exact command line, stopping it first if it still runs
   * (a fault injector kills it by `workers[index].local.pid`). Its CPU cap and ng client carry over; with --redis it
   * restores its own calls from its DB as it starts. Returns the worker, whose `local` is the new process.
   */
  async restart(index: number): Promise<Worker> {
    const worker = this.workers[index];
    if (worker?.local === null || worker?.local === undefined) throw new StackError(`worker ${index} is not an embedded rtpengine of this run: only those can be restarted`);
    worker.local = await restartRtpengine(worker.local);
    worker.metricsUrl = worker.local.metricsUrl;
    worker.cap?.add(worker.local.pid);
    return worker;
  }

  /**
   * Stops the embedded workers (and removes their cgroups), then sweeps Redis: the keys of this run's calls are
   * removed (a correct run leaves none: each ng delete removes its key) and an own redis-server is stopped.
   * Returns warnings for the person running it: keys found, or Redis not reachable to look. Safe to call again.
   */
  async stop(): Promise<string[]> {
    for (const w of this.workers) {
      await w.ng.close();
      await w.local?.stop();
      w.cap?.remove();
    }
    const redis = this.redis;
    this.redis = null;
    if (redis === null) return [];
    const warnings: string[] = [];
    if (this.runId !== null) {
      try {
        const client = await RedisClient.connect({ host: redis.host, port: redis.port });
        try {
          const removed = await removeRunKeys(client, redis.dbs, this.runId);
          if (removed > 0) {
            warnings.push(`removed ${removed} key(s) of this run's calls from Redis ${redis.host}:${redis.port} (DBs ${redis.dbs.join(', ')}): calls rtpengine never deleted (a failed delete, a worker that died)`);
          }
        } finally {
          await client.close();
        }
      } catch (err) {
        warnings.push(`could not remove this run's keys from Redis ${redis.host}:${redis.port} (DBs ${redis.dbs.join(', ')}): ${(err as Error).message}`);
      }
    }
    await redis.local?.stop();
    return warnings;
  }
}

/** The embedded workers' Redis address; their own addresses are .1, .2, ... of the same /24. */
const REDIS_HOST_OCTET = 254;

/**
 * Starts the run's own redis-server (its DBs 1..N, one per worker) or checks the given one (DBs db..db+N-1, which
 * must be empty), and makes sure it notifies SET and DEL. Nothing is started for a server that cannot serve.
 */
async function openRedis(given: NonNullable<EmbeddedTarget['redis']>, workers: number, subnet: string, onStatus: (line: string) => void): Promise<StackRedis> {
  const own = given.kind === 'own';
  const dbs = Array.from({ length: workers }, (_, i) => (own ? 1 : given.db) + i);
  let local: LocalRedis | null = null;
  let host: string;
  let port: number;
  if (own) {
    // DB 0 stays empty, so worker k writes DB k; Redis' default 16 DBs would not hold 16 workers.
    local = await startRedis({ address: `${subnet}.${REDIS_HOST_OCTET}`, databases: Math.max(16, workers + 1) });
    ({ address: host, port } = local);
  } else {
    ({ host, port } = given);
  }
  try {
    const client = await RedisClient.connect({ host, port }).catch((err: unknown) => {
      if (own || !(err instanceof RedisUnreachableError)) throw err;
      throw new RedisUnreachableError(`${err.message}; start it, or give --redis alone and rtp-bench starts a Redis of the run's own`);
    });
    try {
      const ready = await prepareRedis(client, dbs, { requireEmpty: !own });
      const changed = ready.keyspaceEvents === ready.keyspaceEventsBefore ? '' : ` (was "${ready.keyspaceEventsBefore}": rtp-bench set it, and leaves it so)`;
      onStatus(
        `${local !== null ? `started Redis ${ready.version ?? ''} (pid ${local.pid})` : `using Redis ${ready.version ?? ''}`} on ${host}:${port}: ` +
          `worker DBs ${dbs.join(', ')}, notify-keyspace-events "${ready.keyspaceEvents}"${changed}`,
      );
      return { kind: given.kind, host, port, dbs, version: ready.version, keyspaceEvents: ready.keyspaceEvents, keyspaceEventsBefore: ready.keyspaceEventsBefore, local };
    } finally {
      await client.close();
    }
  } catch (err) {
    await local?.stop();
    throw err;
  }
}

/**
 * Worker `i`'s replication flags: its own DB, every other worker's DB followed (so any survivor can take over any
 * worker's calls), and --active-switchover: a followed (foreign) call becomes the worker's own on its first media
 * packet. Media for a call goes only to the worker that took its offer, so no worker takes over a call whose owner
 * is alive (checked: docs/rtpengine-redis.md).
 */
export function replicationArgs(redis: Pick<StackRedis, 'host' | 'port' | 'dbs'>, i: number): string[] {
  const db = redis.dbs[i];
  if (db === undefined) throw new StackError(`worker ${i} has no Redis DB (there are ${redis.dbs.length})`);
  return [`--redis=${redis.host}:${redis.port}/${db}`, ...redis.dbs.filter((_, j) => j !== i).map((d) => `--subscribe-keyspace=${d}`), '--active-switchover'];
}

/**
 * A loopback /24 of this run's own for its embedded workers (127.R.S.1, .2, ...). rtpengine binds its media ports
 * with address reuse, so two daemons on one address with overlapping ranges share sockets silently and each sees
 * the other's media; a random subnet keeps concurrent runs on one machine apart. (Linux routes all of 127/8 to lo.)
 */
function loopbackSubnet(): string {
  const [r, s] = randomFillSync(new Uint8Array(2));
  return `127.${1 + (r! % 254)}.${s!}`;
}

async function openClient(plan: RunPlan, endpoint: Endpoint): Promise<NgClient> {
  return NgClient.open({ host: endpoint.host, port: endpoint.port, timeoutMs: plan.ngTimeoutMs, maxInFlight: plan.ngInFlight });
}

/**
 * Media port ranges for embedded workers: distinct per worker, each sized for its share of the calls.
 * A range given on the command line is split between the workers as it is (too small on purpose is allowed:
 * that is how "Ran out of ports" is tested).
 */
export function embeddedPortRanges(calls: number, workers: number, given: { min: number; max: number } | null): { min: number; max: number }[] {
  if (given !== null) {
    const size = Math.floor((given.max - given.min + 1) / workers);
    if (size < PORTS_PER_CALL) throw new StackError(`--rtpengine-ports ${given.min}-${given.max} is too small to split over ${workers} workers`);
    return Array.from({ length: workers }, (_, i) => ({ min: given.min + i * size, max: given.min + (i + 1) * size - 1 }));
  }
  const perWorker = Math.ceil((Math.ceil(calls / workers) * PORTS_PER_CALL * PORT_HEADROOM) / 2) * 2 + 16;
  if (EMBEDDED_PORT_BASE + perWorker * workers > EMBEDDED_PORT_TOP + 1) {
    const top = EMBEDDED_PORT_BASE + perWorker * workers - 1;
    throw new StackError(
      `${calls} calls need ${perWorker * workers} rtpengine media ports, more than ${EMBEDDED_PORT_BASE}-${EMBEDDED_PORT_TOP} holds: ` +
        (top <= 65535
          ? `give --rtpengine-ports ${EMBEDDED_PORT_BASE}-${top} (the embedded workers have loopback addresses of their own, so it may overlap --local-ports)`
          : `more than one address holds: use --workers ${Math.ceil((perWorker * workers) / (65535 - EMBEDDED_PORT_BASE))} or more, or fewer --calls`),
    );
  }
  return Array.from({ length: workers }, (_, i) => ({ min: EMBEDDED_PORT_BASE + i * perWorker, max: EMBEDDED_PORT_BASE + (i + 1) * perWorker - 1 }));
}
