/**
 * `--mesh local`: a real l7mp mesh without Kubernetes, in network namespaces this run creates and removes
 * (docs/l7mp-behaviour.md#a-local-mesh-in-network-namespaces). Only the infrastructure: the per-call objects are the
 * provisioner's (objects.ts, operator.ts), which programs these proxies through their REST APIs.
 *
 *     rtpb-<id>-client   the generator's sockets (rtp-bench's benchmark runs here, see runInClientNamespace)
 *     rtpb-<id>-ingress  l7mp ingress gateway: controller on TCP <its address>:1234, nothing else (strict mode)
 *     rtpb-<id>-w1 ...   one per worker, like a pod: rtpengine on 127.0.0.1 (ng 127.0.0.1:22222) and the worker
 *                        sidecar: controller <worker address>:1234, JSONSocket/UDP 19000 (RTP) and 19001 (RTCP)
 *                        with empty rule lists, and <worker address>:22222 routed to rtpengine's ng (not strict: in
 *                        strict mode GET /api/v1/sessions fails once sessions have metric stages)
 *     rtpb-<id>-redis    with `redis`: redis-server on <its address>:6379, one DB per worker, which the workers
 *                        replicate their calls through (each writes its own DB and follows the others')
 *     rtpb-<id>-br       the bridge joining them; nothing is added to the root namespace
 *
 * Everything is reachable from the client namespace only: the root namespace has no route into the mesh.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { PortRange } from '../../addresses.js';
import type { LocalMeshDescription } from './description.js';
export type { LocalMeshDescription } from './description.js';
import { createNetwork, requireRoot, type NetnsNetwork } from '../../stack/netns.js';
import {
  ingressProxyConfig,
  L7MP_CONTROLLER_PORT,
  RTPENGINE_NG_PORT,
  startL7mpProxy,
  workerProxyConfig,
  type L7mpLogLevel,
  type L7mpProxy,
} from '../../stack/l7mp-proxy.js';
import { restartRtpengine, startRtpengine, type LocalRtpengine } from '../../stack/rtpengine.js';
import { startRedis, type LocalRedis } from '../../stack/redis.js';
import { withParentDeathSignal } from '../../stack/daemon.js';
import { embeddedPortRanges, replicationArgs } from '../../stack/stack.js';
import { DEFAULT_MESH_OPTIONS, type MeshWorker } from '../model.js';

export interface LocalMeshOptions {
  runId: string;
  workers: number;
  /**
   * rtpengine's media ports. The ingress listens on the very ports rtpengine allocates (one listener per stream), so
   * the workers' ranges must not overlap: one range is split evenly between the workers, or give one per worker.
   */
  rtpenginePortRange: PortRange | PortRange[];
  /** rtpengine's -L; default 5. */
  rtpengineLogLevel?: number;
  rtpengineBinary?: string;
  /** rtpengine's ng port in each worker, which the worker proxy also exposes on the worker's address; default 22222. */
  ngPort?: number;
  /** The proxies' -l; default "warn". */
  proxyLogLevel?: L7mpLogLevel;
  /**
   * A Redis of the mesh's own (in a namespace of its own, started before the workers, which need it at start): worker
   * k writes its calls to DB k and follows every other worker's DB, so a survivor holds a dead worker's calls.
   */
  redis?: boolean;
  /** Per daemon; default 30000 for a proxy, 10000 for rtpengine. */
  readyTimeoutMs?: number;
  onStatus?: (line: string) => void;
  /**
   * Aborting during the start (e.g. on SIGINT) removes the namespaces at once, which kills the daemons starting in
   * them, and the start rejects with "interrupted". After the start, use stop().
   */
  signal?: AbortSignal;
}

export interface LocalMeshWorker extends MeshWorker {
  namespace: string;
  /** The worker proxy's REST API, e.g. http://10.R.S.3:1234 (reachable from the client namespace). */
  restUrl: string;
  /** rtpengine's ng control through the worker proxy (reachable from the client namespace). */
  ng: { host: string; port: number };
  rtpengine: LocalRtpengine;
  proxy: L7mpProxy;
}

export interface LocalMeshIngress {
  name: string;
  namespace: string;
  address: string;
  restUrl: string;
  labels: Record<string, string>;
  proxy: L7mpProxy;
}

/** The mesh's Redis (LocalMeshOptions.redis). */
export interface LocalMeshRedis {
  namespace: string;
  /** Its address on the mesh's bridge, and port. */
  host: string;
  port: number;
  /** Worker i's DB (i in worker order). */
  dbs: number[];
  daemon: LocalRedis;
}

export interface LocalMesh {
  runId: string;
  /** Where the generator's sockets must live. */
  clientNamespace: string;
  clientAddress: string;
  ingress: LocalMeshIngress;
  workers: LocalMeshWorker[];
  network: NetnsNetwork;
  /** With LocalMeshOptions.redis; null without. */
  redis: LocalMeshRedis | null;
  /**
   * Starts worker `index`'s rtpengine again with its exact command line (a crashed container restarted in its pod:
   * the sidecar and its rules stay), stopping it first if it still runs; with Redis it restores its calls from its DB.
   * The worker's `rtpengine` is the new process afterwards.
   */
  restartRtpengine(index: number): Promise<LocalRtpengine>;
  /** Starts the ingress proxy again with its configuration (stopping it first if it still runs): an empty proxy. */
  restartIngress(): Promise<L7mpProxy>;
  /** From the call until every daemon was ready, ms. */
  startMs: number;
  /** What a process in the client namespace needs to use the mesh (JSON-safe: no processes). */
  describe(): LocalMeshDescription;
  /** Stops the proxies and rtpengines and removes the namespaces; idempotent (a second call returns the first's promise). */
  stop(): Promise<void>;
}

/** A LocalMesh as a benchmark running inside the client namespace sees it (see runInClientNamespace). */

export class LocalMeshError extends Error {
  override readonly name = 'LocalMeshError';
}

/** Ports the proxies use in every namespace: a media range must leave them free (the ingress listens on media ports too). */
function reservedPorts(ngPort: number): Map<number, string> {
  return new Map<number, string>([
    [L7MP_CONTROLLER_PORT, 'the l7mp controller'],
    [DEFAULT_MESH_OPTIONS.workerPorts.rtp, "the worker proxy's RTP JSONSocket listener"],
    [DEFAULT_MESH_OPTIONS.workerPorts.rtcp, "the worker proxy's RTCP JSONSocket listener"],
    [ngPort, "rtpengine's ng port"],
  ]);
}

/** One media range per worker, disjoint, clear of the proxies' ports. */
export function localMeshPortRanges(workers: number, given: PortRange | PortRange[], ngPort = RTPENGINE_NG_PORT): PortRange[] {
  const ranges = Array.isArray(given) ? given : embeddedPortRanges(0, workers, given);
  if (ranges.length !== workers) throw new LocalMeshError(`${workers} workers need ${workers} rtpengine port ranges, not ${ranges.length}`);
  const sorted = [...ranges].sort((a, b) => a.min - b.min);
  for (let i = 0; i < sorted.length; i++) {
    const r = sorted[i]!;
    if (!Number.isInteger(r.min) || !Number.isInteger(r.max) || r.min < 1 || r.max > 65535 || r.min > r.max) {
      throw new LocalMeshError(`rtpengine port range ${r.min}-${r.max} is not a range of UDP ports`);
    }
    const next = sorted[i + 1];
    if (next && next.min <= r.max) {
      throw new LocalMeshError(`rtpengine port ranges ${r.min}-${r.max} and ${next.min}-${next.max} overlap: the ingress listens on every worker's media ports, so they must be disjoint`);
    }
    for (const [port, what] of reservedPorts(ngPort)) {
      if (port >= r.min && port <= r.max) throw new LocalMeshError(`rtpengine port range ${r.min}-${r.max} contains port ${port}, which ${what} uses: choose another range`);
    }
  }
  return ranges;
}

export async function startLocalMesh(o: LocalMeshOptions): Promise<LocalMesh> {
  requireRoot();
  const t0 = performance.now();
  if (!Number.isInteger(o.workers) || o.workers < 1) throw new LocalMeshError(`a local mesh needs at least one worker, not ${o.workers}`);
  const ngPort = o.ngPort ?? RTPENGINE_NG_PORT;
  const ranges = localMeshPortRanges(o.workers, o.rtpenginePortRange, ngPort);
  const status = o.onStatus ?? (() => undefined);
  const workerRoles = Array.from({ length: o.workers }, (_, i) => `w${i + 1}`);
  const aborted = (): void => {
    if (o.signal?.aborted) throw new LocalMeshError('the local mesh start was interrupted');
  };
  aborted();

  const network = await createNetwork({ runId: o.runId, roles: ['client', 'ingress', ...(o.redis === true ? ['redis'] : []), ...workerRoles], onStatus: status });
  // Every daemon ever started, restarted ones too: stop() stops them all (stopping an exited one is a no-op).
  const proxies: L7mpProxy[] = [];
  const rtpengines: LocalRtpengine[] = [];
  const redises: LocalRedis[] = [];
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const errors: string[] = [];
      // Redis last: a worker stopping may still write to it.
      const settled = [...(await Promise.allSettled([...proxies, ...rtpengines].map((d) => d.stop()))), ...(await Promise.allSettled(redises.map((d) => d.stop())))];
      for (const r of settled) if (r.status === 'rejected') errors.push(String(r.reason));
      try {
        await network.remove();
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
      if (errors.length > 0) throw new LocalMeshError(`the local mesh ${network.prefix} did not stop cleanly: ${errors.join('; ')}`);
    })();
    return stopping;
  };

  // Deleting the namespaces SIGKILLs what runs inside: the daemons still starting exit, their starts reject at once.
  // Done on an abort, and on the first daemon that fails (no point waiting seconds for the others).
  const killAll = (): void => void network.remove().catch(() => undefined);
  o.signal?.addEventListener('abort', killAll, { once: true });
  let firstFailure: unknown = null;
  const track = <T extends { stop(): Promise<void> }>(list: T[], p: Promise<T>): Promise<T> =>
    p.then(
      (d) => (list.push(d), d),
      (err: unknown) => {
        if (firstFailure === null) {
          firstFailure = err;
          killAll();
        }
        throw err;
      },
    );
  try {
    aborted();
    const ingressMember = network.member('ingress');
    let redis: LocalMeshRedis | null = null;
    if (o.redis === true) {
      // Before the workers: rtpengine with --redis refuses to start without it.
      const member = network.member('redis');
      const dbs = workerRoles.map((_, i) => i + 1);
      status(`starting Redis in ${member.namespace} (${member.address}): worker DBs ${dbs.join(', ')}`);
      const daemon = await track(redises, startRedis({ address: member.address, namespace: member.namespace, databases: Math.max(16, o.workers + 1), ...(o.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: o.readyTimeoutMs }) }));
      redis = { namespace: member.namespace, host: member.address, port: daemon.port, dbs, daemon };
      aborted();
    }
    status(`starting l7mp ingress (${ingressMember.address}) and ${o.workers} worker(s) (rtpengine + l7mp sidecar) in ${network.prefix}-*`);
    const proxyOptions = { logLevel: o.proxyLogLevel ?? 'warn', ...(o.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: o.readyTimeoutMs }) } as const;
    // Everything in parallel: the proxies' start-up (4-6 s of schema compilation in strict mode) dominates.
    // Each controller listens on its namespace's address only: the provisioner calls it there from the client namespace.
    const ingressOptions = { name: 'ingress', namespace: ingressMember.namespace, controllerAddress: ingressMember.address, config: ingressProxyConfig(), strict: true, ...proxyOptions };
    const ingressProxy = track(proxies, startL7mpProxy(ingressOptions));
    const workerDaemons = workerRoles.map((role, i) => {
      const member = network.member(role);
      const range = ranges[i]!;
      return Promise.all([
        track(
          rtpengines,
          startRtpengine({
            namespace: member.namespace,
            address: '127.0.0.1',
            ngPort,
            portMin: range.min,
            portMax: range.max,
            ...(o.rtpengineBinary === undefined ? {} : { binary: o.rtpengineBinary }),
            ...(o.rtpengineLogLevel === undefined ? {} : { logLevel: o.rtpengineLogLevel }),
            ...(o.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: o.readyTimeoutMs }),
            ...(redis === null ? {} : { extraArgs: replicationArgs({ host: redis.host, port: redis.port, dbs: redis.dbs }, i) }),
          }),
        ),
        track(
          proxies,
          startL7mpProxy({
            name: role,
            namespace: member.namespace,
            controllerAddress: member.address,
            config: workerProxyConfig({ ng: { listen: { address: member.address, port: ngPort }, rtpengine: { address: '127.0.0.1', port: ngPort } } }),
            strict: false,
            ...proxyOptions,
          }),
        ),
      ] as const);
    });
    await Promise.allSettled([ingressProxy, ...workerDaemons]);
    aborted();
    // The others' failures are this one's consequences (killed with their namespaces).
    if (firstFailure !== null) throw new LocalMeshError(`the local mesh did not start: ${firstFailure instanceof Error ? firstFailure.message : String(firstFailure)}`, { cause: firstFailure });

    const ingressProxyReady = await ingressProxy;
    const ingress: LocalMeshIngress = {
      name: 'ingress',
      namespace: ingressMember.namespace,
      address: ingressMember.address,
      restUrl: `http://${ingressMember.address}:${ingressProxyReady.controllerPort}`,
      labels: { ...DEFAULT_MESH_OPTIONS.ingressSelector },
      proxy: ingressProxyReady,
    };
    const workers: LocalMeshWorker[] = [];
    for (const [i, role] of workerRoles.entries()) {
      const member = network.member(role);
      const [rtpengine, proxy] = await workerDaemons[i]!;
      workers.push({
        name: role,
        address: member.address,
        labels: { ...DEFAULT_MESH_OPTIONS.workerSelector, [DEFAULT_MESH_OPTIONS.workerPinLabel]: role },
        namespace: member.namespace,
        restUrl: `http://${member.address}:${proxy.controllerPort}`,
        ng: { host: member.address, port: ngPort },
        rtpengine,
        proxy,
      });
    }
    const client = network.member('client');
    const mesh: LocalMesh = {
      runId: o.runId,
      clientNamespace: client.namespace,
      clientAddress: client.address,
      ingress,
      workers,
      network,
      redis,
      restartRtpengine: async (index) => {
        const worker = workers[index];
        if (worker === undefined) throw new LocalMeshError(`the local mesh has no worker ${index + 1}`);
        worker.rtpengine = await restartRtpengine(worker.rtpengine);
        rtpengines.push(worker.rtpengine);
        return worker.rtpengine;
      },
      restartIngress: async () => {
        await ingress.proxy.stop();
        ingress.proxy = await startL7mpProxy(ingressOptions);
        proxies.push(ingress.proxy);
        return ingress.proxy;
      },
      startMs: performance.now() - t0,
      describe: () => ({
        runId: o.runId,
        clientNamespace: client.namespace,
        clientAddress: client.address,
        subnet: network.subnet,
        ingress: { name: ingress.name, namespace: ingress.namespace, address: ingress.address, restUrl: ingress.restUrl, labels: ingress.labels },
        workers: workers.map((w) => ({
          name: w.name,
          address: w.address,
          labels: w.labels,
          namespace: w.namespace,
          restUrl: w.restUrl,
          ng: w.ng,
          rtpenginePorts: { min: w.rtpengine.portMin, max: w.rtpengine.portMax },
          rtpengineVersion: w.rtpengine.version,
        })),
        redis: redis === null ? null : { host: redis.host, port: redis.port, dbs: redis.dbs, version: redis.daemon.version },
      }),
      stop,
    };
    status(`local mesh ${network.prefix} ready in ${Math.round(mesh.startMs)} ms: client ${client.address}, ingress ${ingress.address}, workers ${workers.map((w) => `${w.name} ${w.address}`).join(', ')}`);
    return mesh;
  } catch (err) {
    try {
      await stop();
    } catch (cleanupErr) {
      throw new LocalMeshError(`${(err as Error).message}\nand then: ${(cleanupErr as Error).message}`, { cause: err });
    }
    throw err;
  } finally {
    o.signal?.removeEventListener('abort', killAll);
  }
}

export interface ClientNamespaceRun {
  pid: number;
  /** The child, with its IPC channel (send, 'message'). */
  process: ChildProcess;
  /** Resolves with how the child ended (after which the caller tears the mesh down). */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What it printed so far, with stdio 'pipe' (empty with 'inherit'). */
  stdout(): string;
  stderr(): string;
}

/**
 * Runs `argv` (local-run.ts: the CLI under `ip netns exec <client namespace>`) as a child in its own process group
 * with stdio inherited, and forwards `signals` to it while it runs: a Ctrl-C reaches rtp-bench once and is passed on
 * once, so the benchmark inside winds down its calls as it would outside, and rtp-bench removes the mesh after the
 * child has exited.
 * `ip netns exec` execs, so the child's PID is the benchmark's own. If rtp-bench is killed outright, the
 * parent-death signal (setpriv, as for the daemons) ends the child with SIGTERM.
 */
export function runInClientNamespace(argv: string[], o: { signals?: NodeJS.Signals[]; stdio?: 'inherit' | 'pipe' } = {}): ClientNamespaceRun {
  const signals = o.signals ?? ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const [command, args] = withParentDeathSignal(argv);
  // The IPC channel carries fault requests (control.ts): the mesh's daemons are this process's to signal.
  const child = spawn(command, args, { stdio: o.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['inherit', 'inherit', 'inherit', 'ipc'], detached: true });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const forward = (signal: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const s of signals) process.on(s, forward);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (e) => {
      for (const s of signals) process.off(s, forward);
      reject(e);
    });
    child.once('close', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      resolve({ code, signal });
    });
  });
  return { pid: child.pid ?? -1, process: child, done, stdout: () => out, stderr: () => err };
}
