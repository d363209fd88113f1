import type { CodecPair } from './profile.js';
import type { ChurnPlan } from './load/churn.js';
import type { MeshOptions } from './mesh/model.js';
import type { MeshConfig } from './mesh/config.js';
import type { FaultSpec } from './faults/spec.js';
import type { ShardPlan } from './shard.js';
import type { MetricsListen } from './metrics/listen.js';

/** How media threads move packets: native = the io_uring/epoll addon (workers/native), dgram = Node's dgram, auto =
 * native when it is built and loads, else dgram. */
export type IoChoice = 'auto' | 'native' | 'dgram';
/**
 * How the media threads are scheduled: realtime = SCHED_FIFO, so a thread's tick is never held back behind the
 * process's helper threads (send lateness p99 under 1 ms instead of 2.5-4 ms here); normal = like any thread.
 */
export type MediaPriority = 'realtime' | 'normal';

/** on: clients send RTCP SR/RR; off: no RTCP at all; generate: clients send RTCP and rtpengine makes its own. */
export type RtcpMode = 'on' | 'off' | 'generate';

import type { Endpoint, PortRange } from './addresses.js';
export type { Endpoint, PortRange } from './addresses.js';

/** Service-level objectives: any one missed makes the run exit 1 (k6 thresholds, as flags). */
export interface Slo {
  /** Packet loss over all streams, percent. */
  maxLossPct?: number;
  /** p99 of RFC 3550 jitter, ms. */
  maxJitterMs?: number;
  /** p99 one-way latency, ms. */
  maxLatencyMs?: number;
  /** p99 call setup (offer + answer), ms. */
  maxSetupMs?: number;
  /** p50 (median) E-model MOS must be at least this. */
  minMos?: number;
  /** Failed calls, percent of attempted. */
  maxFailedPct?: number;
}

/** Where rtpengine is. */
export type Target =
  /** rtp-bench starts `workers` rtpengine daemons of its own on loopback and stops them at the end. */
  | {
      kind: 'embedded';
      workers: number;
      binary: string;
      /** Media ports of all workers together, split evenly between them; null: sized for the calls. */
      portRange: PortRange | null;
      logLevel: number;
      /** Each worker's CPU cap in cores (a cgroup of its own, src/stack/cpu-cap.ts); null: uncapped. */
      cpuCores: number | null;
      /** rtpengine's --num-threads (its poller threads); null: its default, max(cores, 4). */
      threads: number | null;
      /** --redis: the Redis the workers replicate their calls through (src/stack/redis.ts); null: none, each worker alone. */
      redis: RedisTarget | null;
    }
  /** Already-running rtpengine instances: the ng address of each. */
  | {
      kind: 'remote';
      endpoints: Endpoint[];
      /** Each instance's Prometheus page (--rtpengine-metrics), in the same order; null: not scraped. */
      metricsUrls: string[] | null;
    }
  /** No rtpengine: each leg sends straight to the other leg (generator self-calibration). */
  | { kind: 'direct' }
  /** The rtpengine workers behind the mesh (plan.mesh): their ng addresses come from the mesh description
   * (rest) or from the cluster (kubernetes). */
  | { kind: 'mesh' };

/**
 * --redis: own = a redis-server rtp-bench starts on the run's loopback /24 (worker k uses DB k); external = a
 * running one (worker k uses DB db + k - 1, which must be empty).
 */
export type RedisTarget = { kind: 'own' } | { kind: 'external'; host: string; port: number; db: number };

/** What the benchmark half of --mesh local knows of the mesh besides its proxies: the Redis its workers replicate through. */
export interface LocalMeshLink {
  redis: { host: string; port: number; dbs: number[]; version: string } | null;
}

/** The l7mp mesh the calls' media goes through. */
export type MeshPlan =
  /** rtp-bench builds a mesh in network namespaces (root only), starts target.workers rtpengine workers behind l7mp
   * sidecars and an ingress, and runs the calls from a client namespace through it (as a `rest` mesh). */
  | { kind: 'local'; options: MeshOptions }
  /** Running l7mp proxies programmed through their REST APIs, as the operator would. `local`: they are a local
   * mesh's, whose parent process makes the run's faults on them (src/mesh/local/control.ts). */
  | { kind: 'rest'; options: MeshOptions; config: MeshConfig; local?: LocalMeshLink }
  /** l7mp.io custom resources through the Kubernetes API; the l7mp operator programs the proxies. */
  | {
      kind: 'kubernetes';
      options: MeshOptions;
      kubeconfig: string | null;
      context: string | null;
      /** API requests in flight at most, and per second at most (client-side rate limit). */
      concurrency: number;
      ratePerSec: number;
      /** Where clients send media; null: the ingress pod's address, looked up in the cluster. */
      mediaAddress: string | null;
    };

/** Everything a run needs, validated: the coordinator trusts it. Produced by plan.ts from the command line. */
export interface RunPlan {
  /** Target concurrent calls. */
  calls: number;
  /** New calls per second while ramping up. */
  rampPerSec: number;
  /** How long all calls stay up after the last one arrived, ms (0 with churn). */
  holdMs: number;
  /** Churn instead of ramp and hold: calls arrive at `churn.ratePerSec` and each ends after its own holding time.
   * Then `calls` is the most calls expected up at once (for sizing) and `rampPerSec` the arrival rate. */
  churn: ChurnPlan | null;
  codecPair: CodecPair;
  target: Target;
  /** Media worker threads (piscina). */
  threads: number;
  io: IoChoice;
  /** Resolved from --media-priority (auto: realtime unless rtpengine or the mesh runs on this machine). */
  mediaPriority: MediaPriority;
  /** Address the clients bind and put in their SDP. */
  localIp: string;
  /** Client ports: each call takes 4 (two legs, RTP even and RTCP = RTP + 1). */
  localPorts: PortRange;
  /** --local-ports was given: the range is the user's and is never moved (the default moves when it is taken). */
  localPortsExplicit: boolean;
  rtcp: RtcpMode;
  /** Results file; null: results/<run id>.json under the current folder. */
  output: string | null;
  /** The timeline (one row a second) as CSV too; null: not written. */
  csv: string | null;
  /** Print the summary as JSON on stdout instead of the table. */
  json: boolean;
  /** Live progress on stderr: auto = only when stderr is a terminal. */
  progress: 'auto' | 'on' | 'off';
  slo: Slo;
  /** Overall timeout of one ng request, including retransmissions, ms. */
  ngTimeoutMs: number;
  /** Most ng requests in flight at once (calls being set up or torn down). */
  ngInFlight: number;
  /** Share of opus-receiving streams whose audio is decoded and checked for the far tone, 0..1 (G.711 always). */
  audioCheckShare: number;
  /** The l7mp mesh the media goes through; null: straight to rtpengine. */
  mesh: MeshPlan | null;
  /** How long before the other leg each leg starts sending, ms (0 and 0 normally; `--head-start b=300ms`
   * reproduces a callee that sends first, the original suite's start-of-call loss). */
  headStartMs: { a: number; b: number };
  /** --fault: what goes wrong during the run and when (src/faults/), sorted by time; empty: nothing. */
  faults: FaultSpec[];
  /** --run-id (or derived from --start-at for shards); null: generated at the start (src/session.ts newRunId). */
  runId: string | null;
  /** --start-at: when the first call is due, epoch ms; the run waits until then. null: as soon as it is ready. */
  startAtEpochMs: number | null;
  /** --shard: this process runs shard `index` of `count` of the plan (src/shard.ts); calls, rampPerSec, churn's
   * rate and localPorts are then the shard's share. null: the whole plan. */
  shard: ShardPlan | null;
  /** --hgrm: the folder each histogram is written to as HdrHistogram percentile distribution text; null: none. */
  hgrm: string | null;
  /** --calls-csv: one row per call as CSV; null: not written. */
  callsCsv: string | null;
  /** --metrics-listen: where live Prometheus metrics are served during the run (src/metrics/); null or absent (older results): not served. */
  metricsListen?: MetricsListen | null;
}

/** `rtp-bench cleanup`: what to remove after a crashed run (src/commands/cleanup.ts). */
export interface CleanupRequest {
  mesh: 'kubernetes' | 'rest' | 'local';
  /** Only this run; null: every run's leftovers. */
  runId: string | null;
  namespace: string | null;
  kubeconfig: string | null;
  context: string | null;
  meshConfig: string | null;
}
