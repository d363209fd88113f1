/**
 * Where the calls go: the rtpengine workers of a run, each with its ng client, and which worker takes the next
 * call. Embedded workers are started here and stopped at the end; remote ones are only pinged.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { createCpuCap, type CpuCap } from './cpu-cap.js';
import { NgClient } from '../ng/client.js';
import { startRtpengine, rtpengineVersion, type LocalRtpengine } from './rtpengine.js';
import { PORTS_PER_CALL } from '../ports.js';
import type { Endpoint, RunPlan } from '../run-plan.js';
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

export class Stack {
  private next = 0;

  private constructor(readonly workers: Worker[], readonly kind: 'embedded' | 'remote' | 'mesh') {}

  /**
   * Starts (embedded) or reaches (remote, mesh) every worker; on any failure, stops what it started and throws.
   * A mesh target's workers come from the mesh (its description, or the cluster) and are passed in.
   */
  static async start(plan: RunPlan, onStatus: (line: string) => void = () => undefined, meshWorkers: MeshStackWorker[] = []): Promise<Stack> {
    const target = plan.target;
    if (target.kind === 'direct') throw new StackError('direct mode has no rtpengine stack');
    const workers: Worker[] = [];
    const stack = new Stack(workers, target.kind);
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
        const capName = `rtp-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
        for (let i = 0; i < target.workers; i++) {
          const range = ranges[i]!;
          const address = `${subnet}.${i + 1}`;
          onStatus(`starting rtpengine ${version} on ${address}, media ports ${range.min}-${range.max}`);
          const local = await startRtpengine({
            binary: target.binary,
            address,
            portMin: range.min,
            portMax: range.max,
            logLevel: target.logLevel,
            // Its /metrics: sessions, transcoding, kernel vs userspace streams, as rtpengine itself counts them.
            httpPort: 'auto',
            extraArgs: target.threads === null ? [] : [`--num-threads=${target.threads}`],
          });
          // Pushed before anything else can fail, so that stop() stops it.
          const worker: Worker = { name: `${address}:${local.ngPort}`, ng: await openClient(plan, { host: address, port: local.ngPort }), local, metricsUrl: local.metricsUrl, cap: null, activeCalls: 0, version, mesh: null };
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
          workers.push({ name: mesh ? `${mesh.name} (${ng.endpoint})` : ng.endpoint, ng, local: null, metricsUrl, cap: null, activeCalls: 0, version: null, mesh });
          await ng.ping();
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

  async stop(): Promise<void> {
    for (const w of this.workers) {
      await w.ng.close();
      await w.local?.stop();
      w.cap?.remove();
    }
  }
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
