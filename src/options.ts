/**
 * Every flag rtp-bench takes, once: its --help group and line, what its value looks like, its default; and which
 * commands show which flags. src/command-line.ts builds the yargs parser from this table; src/plan.ts reads the values.
 */
import { DEFAULTS, LIMITS, type CliOptionName } from './plan.js';
import { CAPACITY_DEFAULTS, SCALE_DEFAULTS } from './capacity/plan.js';
import { DEFAULT_SLO_TEXT } from './capacity/slo.js';
import { MAX_DURATION_MEANS, MIN_CALL_MS } from './load/churn.js';

export interface OptionSpec {
  group: string;
  /** One line for --help; says what the value looks like. */
  describe: string;
  /** What the value looks like, for "--calls needs a value"; absent for switches. */
  value?: string;
  /** Appended to the help line as (default: ...). */
  defaultText?: string;
  /** A value flag that may also be given alone (yargs then hands over ''), e.g. --redis. */
  optionalValue?: true;
}

const LOAD = 'Load:';
const RTPENGINE = 'rtpengine (default: rtp-bench starts one on loopback):';
const MEDIA = 'Media:';
const OUTPUT = 'Output:';
const SLOS = 'SLOs (any one missed: exit 1):';
const CONTROL = 'Control plane:';
const MESH = 'Mesh (l7mp; default: none, media straight to rtpengine):';
const CAPACITY = 'Capacity search (rtp-bench capacity):';
const SHARDS = 'Shards (one plan over several generator processes):';
const CHURN = 'Churn (calls arriving and ending; instead of --calls, --ramp, --hold):';

/** Every CliOptions key has exactly one entry, so yargs, --help and plan.ts cannot drift apart. */
export const OPTIONS: Record<CliOptionName, OptionSpec> = {
  calls: {
    group: LOAD,
    value: `N, a whole number from ${LIMITS.calls.min} to ${LIMITS.calls.max}`,
    describe: `Concurrent calls to reach and hold, ${LIMITS.calls.min}-${LIMITS.calls.max} (required)`,
  },
  ramp: {
    group: LOAD,
    value: 'a rate like 10/s, 600/min or 10',
    describe: 'New calls per second until all are up: 10/s, 600/min, 10',
    defaultText: DEFAULTS.ramp,
  },
  hold: {
    group: LOAD,
    value: 'a duration like 20s, 2m or 1m30s',
    describe: 'How long all calls stay up after the last one arrived: 20s, 2m, 1m30s, 0',
    defaultText: DEFAULTS.hold,
  },
  rate: {
    group: CHURN,
    value: 'a rate like 5/s, 300/min or 5',
    describe: 'Churn instead of ramp and hold: new calls per second, each held --call-duration (offered load = rate x duration Erlang)',
  },
  callDuration: {
    group: CHURN,
    value: 'a duration like 30s or 2m',
    describe: 'With --rate: how long each call is held (the mean, with --call-duration-dist exponential)',
  },
  callDurationDist: {
    group: CHURN,
    value: 'fixed or exponential',
    describe: `With --rate: holding times all equal (fixed), or drawn from an exponential distribution (as call-centre traffic is), ${MIN_CALL_MS / 1000} s to ${MAX_DURATION_MEANS} means`,
    defaultText: DEFAULTS.callDurationDist,
  },
  duration: {
    group: CHURN,
    value: 'a duration like 2m or 1h',
    describe: 'With --rate: how long calls keep arriving; then the last calls finish',
    defaultText: '2 x --call-duration (4 x with exponential)',
  },
  codecPair: {
    group: LOAD,
    value: "A:B, leg A's codec : leg B's codec, e.g. opus:pcmu",
    describe: "A:B, leg A's codec : leg B's codec (pcmu, pcma, opus); different codecs make rtpengine transcode",
    defaultText: DEFAULTS.codecPair,
  },
  rtpengine: {
    group: RTPENGINE,
    value: 'HOST:PORT[,HOST:PORT...], e.g. 127.0.0.1:22222',
    describe: 'HOST:PORT[,HOST:PORT...]: ng addresses of rtpengine instances already running, used instead',
  },
  rtpengineMetrics: {
    group: RTPENGINE,
    value: 'URL[,URL...], e.g. http://10.0.0.5:2225/metrics',
    describe: "With --rtpengine: each instance's /metrics (rtpengine --listen-http), scraped every second for its own counters",
  },
  workers: {
    group: RTPENGINE,
    value: `N, a whole number from ${LIMITS.workers.min} to ${LIMITS.workers.max}`,
    describe: `rtpengine instances to start, ${LIMITS.workers.min}-${LIMITS.workers.max}`,
    defaultText: DEFAULTS.workers,
  },
  rtpenginePorts: {
    group: RTPENGINE,
    value: 'LO-HI, e.g. 30000-39999',
    describe: 'LO-HI: media ports of the started rtpengine, LO even',
    defaultText: 'sized for --calls',
  },
  rtpengineBin: {
    group: RTPENGINE,
    value: 'the rtpengine daemon, a name on PATH or a path',
    describe: 'rtpengine daemon to start, a name on PATH or a path',
    defaultText: DEFAULTS.rtpengineBin,
  },
  rtpengineLogLevel: {
    group: RTPENGINE,
    value: 'a syslog level from 0 to 7',
    describe: 'Log level of the started rtpengine, 0-7',
    defaultText: DEFAULTS.rtpengineLogLevel,
  },
  workerCpu: {
    group: RTPENGINE,
    value: 'cores, e.g. 0.5',
    describe: 'Cap each started rtpengine at this much CPU (a cgroup of its own; root), so that scaling shows on a small machine',
  },
  workerThreads: {
    group: RTPENGINE,
    value: 'N, a whole number from 1 to 64',
    describe: "Each started rtpengine's --num-threads (its poller threads)",
    defaultText: "rtpengine's own: max(cores, 4)",
  },
  threads: {
    group: MEDIA,
    value: `N, a whole number from ${LIMITS.threads.min} to ${LIMITS.threads.max}`,
    describe: `Media worker threads, ${LIMITS.threads.min}-${LIMITS.threads.max}`,
    defaultText: 'one per 200 calls, at most one per core',
  },
  localIp: {
    group: MEDIA,
    value: 'an address of this machine, e.g. 127.0.0.1',
    describe: 'Address the clients bind and put in their SDP: 127.x.x.x or an address of this machine',
    defaultText: DEFAULTS.localIp,
  },
  localPorts: {
    group: MEDIA,
    value: 'LO-HI, e.g. 20000-29999',
    describe: 'LO-HI: client ports, 4 per call, LO even',
    defaultText: DEFAULTS.localPorts,
  },
  rtcp: {
    group: MEDIA,
    value: 'on, off or generate',
    describe: 'on: clients send RTCP SR/RR; off: no RTCP; generate: rtpengine also makes its own',
    defaultText: DEFAULTS.rtcp,
  },
  audioCheckShare: {
    group: MEDIA,
    value: 'a share from 0 to 1, e.g. 0.2',
    describe: 'Share of opus-receiving streams whose audio is decoded and checked, 0-1 (G.711: all)',
    defaultText: DEFAULTS.audioCheckShare,
  },
  output: {
    group: OUTPUT,
    value: 'a file name, e.g. results/run.json',
    describe: 'Results file',
    defaultText: 'results/<run id>.json',
  },
  csv: { group: OUTPUT, value: 'a file name, e.g. run.csv', describe: 'Also write the timeline (one row a second: calls, packets, loss, latency, each worker) as CSV' },
  json: { group: OUTPUT, describe: 'Print the summary as JSON on stdout instead of the table' },
  progress: {
    group: OUTPUT,
    value: 'auto, on or off',
    describe: 'Live progress on stderr: auto|on|off; auto: only when stderr is a terminal',
    defaultText: DEFAULTS.progress,
  },
  quiet: { group: OUTPUT, describe: 'No live progress (same as --progress off)' },
  maxLoss: { group: SLOS, value: 'a percentage, e.g. 0.5 or 0.5%', describe: 'Packet loss over all streams, percent: 0.5 or 0.5%' },
  maxJitter: { group: SLOS, value: 'milliseconds, e.g. 30', describe: 'p99 RFC 3550 jitter, ms' },
  maxLatency: { group: SLOS, value: 'milliseconds, e.g. 50', describe: 'p99 one-way latency, ms' },
  maxSetup: { group: SLOS, value: 'milliseconds, e.g. 200', describe: 'p99 call setup (offer + answer), ms' },
  minMos: { group: SLOS, value: 'a MOS from 1 to 4.5, e.g. 4', describe: 'Lowest acceptable median E-model MOS, 1-4.5' },
  maxFailed: { group: SLOS, value: 'a percentage, e.g. 1 or 1%', describe: 'Failed calls, percent of attempted' },
  ngTimeout: {
    group: CONTROL,
    value: 'a duration like 5s',
    describe: 'Timeout of one ng request, retransmissions included',
    defaultText: DEFAULTS.ngTimeout,
  },
  ngInFlight: {
    group: CONTROL,
    value: 'N, a whole number from 1 to 10000',
    describe: 'Most ng requests in flight at once',
    defaultText: DEFAULTS.ngInFlight,
  },
  io: {
    group: MEDIA,
    value: 'auto, native or dgram',
    describe: 'How media threads move packets: native (io_uring/epoll addon, ~3x cheaper) or Node dgram; auto: native if built',
    defaultText: DEFAULTS.io,
  },
  mediaPriority: {
    group: MEDIA,
    value: 'auto, realtime or normal',
    describe:
      'Scheduling of the media threads: realtime (SCHED_FIFO, root or CAP_SYS_NICE; native I/O) keeps send lateness low; ' +
      'auto: realtime unless rtpengine or the mesh runs on this machine',
    defaultText: DEFAULTS.mediaPriority,
  },
  headStart: {
    group: MEDIA,
    value: 'LEG=DURATION, e.g. b=300ms',
    describe: 'One leg starts sending this long before the other, e.g. b=300ms (the callee sends first)',
  },
  mesh: {
    group: MESH,
    value: 'none, local, rest or kubernetes',
    describe: 'local: a real l7mp mesh in network namespaces (root); rest: running proxies (--mesh-config); kubernetes: l7mp.io custom resources',
    defaultText: DEFAULTS.mesh,
  },
  meshConfig: { group: MESH, value: 'a JSON file', describe: 'For --mesh rest: the running proxies (ingress and workers), see src/mesh/config.ts' },
  meshObjects: {
    group: MESH,
    value: 'classic or compact',
    describe: "Per call: classic = the suite's 12 objects; compact = 8 (Target inlined)",
    defaultText: 'compact; classic with kubernetes',
  },
  listenerMode: {
    group: MESH,
    value: 'singleton or server',
    describe: 'Ingress UDP listeners: singleton (no start-of-call loss) or server (the old behaviour)',
    defaultText: DEFAULTS.listenerMode,
  },
  meshRetryTimeout: {
    group: MESH,
    value: 'a duration like 250ms',
    describe: 'Route retry timeout (also the JSONSocket reply timeout)',
    defaultText: DEFAULTS.meshRetryTimeout,
  },
  meshNaming: {
    group: MESH,
    value: 'operator or selflink',
    describe: 'Object names on the proxies: current operator form, or the pre-2021 selfLink form',
    defaultText: DEFAULTS.meshNaming,
  },
  namespace: { group: MESH, value: 'a namespace name', describe: 'Kubernetes namespace of the l7mp objects and pods', defaultText: DEFAULTS.namespace },
  kubeconfig: { group: MESH, value: 'a file', describe: 'kubeconfig file', defaultText: 'KUBECONFIG, ~/.kube/config, or in-cluster' },
  context: { group: MESH, value: 'a context name', describe: 'kubeconfig context', defaultText: 'the current one' },
  meshConcurrency: {
    group: MESH,
    value: 'N, a whole number from 1 to 1000',
    describe: 'Kubernetes API requests in flight at most',
    defaultText: DEFAULTS.meshConcurrency,
  },
  meshRate: { group: MESH, value: 'a rate like 50/s', describe: 'Kubernetes API requests per second at most', defaultText: DEFAULTS.meshRate },
  fault: {
    group: 'Faults (during the run):',
    value: 'KIND=TARGET@TIME[:DURATION], e.g. kill-worker=1@30s',
    describe:
      'Repeatable: kill-worker=N@T, restart-worker=N@T (kill -9, start again), pause-worker=N@T:D (SIGSTOP for D) on an embedded or local-mesh worker; ' +
      'loss=P%@T:D and kill-proxy=ingress@T with --mesh local; kill-worker deletes the pod with --mesh kubernetes. With --redis a killed worker\'s calls move to a survivor; the results measure each call\'s media gap',
  },
  slo: {
    group: CAPACITY,
    value: "terms like 'latency.p99<60ms,loss<0.1%,mos.p50>=4'",
    describe: 'The SLO a step must meet: METRIC OP VALUE terms, comma-separated (metrics: latency, audioDelay, jitter, transitJitter, setup, mos .p50/.p99/...; loss; failed)',
    defaultText: DEFAULT_SLO_TEXT,
  },
  start: { group: CAPACITY, value: 'N calls', describe: 'Calls of the first step', defaultText: 'min(10, --max)' },
  max: { group: CAPACITY, value: 'N calls', describe: 'Most calls a step may hold (also sizes threads and ports)', defaultText: CAPACITY_DEFAULTS.max },
  stepHold: { group: CAPACITY, value: 'a duration like 20s', describe: 'How long each step is measured once its calls are up', defaultText: CAPACITY_DEFAULTS.stepHold },
  resolution: { group: CAPACITY, value: 'N calls or N%', describe: 'Stop bisecting when the answer is this close', defaultText: CAPACITY_DEFAULTS.resolution },
  meshMediaAddress: {
    group: MESH,
    value: 'an IPv4 address',
    describe: 'Kubernetes: where clients send media (the ingress gateway)',
    defaultText: "the ingress pod's address",
  },
  redis: {
    group: RTPENGINE,
    value: 'nothing, or IPV4:PORT[/DB] of a running Redis, e.g. 127.0.0.1:6379/1',
    describe:
      'Replicate call state between the started workers through Redis (each its own DB, following the others): alone, rtp-bench starts a ' +
      'redis-server; IPV4:PORT[/DB] uses a running one, DBs DB.. (default 1) empty',
    optionalValue: true,
  },
  shard: {
    group: SHARDS,
    value: 'I/N, e.g. 2/4 (or N, the index from JOB_COMPLETION_INDEX)',
    describe:
      'Run shard I of N of this plan: every Nth call (calls and --ramp or --rate divided by N), its own slice of --local-ports, ' +
      'call-ids <run id>-sI-<n>; merge the shards with rtp-bench merge. Default: JOB_COMPLETION_INDEX + 1 of RTP_BENCH_SHARDS when both are set',
  },
  runId: {
    group: SHARDS,
    value: 'lower-case letters, digits and dashes, e.g. soak-0412',
    describe: 'The run id (results/<run id>.json, call-ids); shards must share one',
    defaultText: 'generated; with --shard, derived from --start-at',
  },
  startAt: {
    group: SHARDS,
    value: 'an ISO 8601 time or epoch seconds/ms, e.g. 2026-12-07T11:40:00Z',
    describe: 'Place the first call at this time (within 24 h): shards started apart ramp together; a late one says by how much and starts at once',
  },
  hgrm: {
    group: OUTPUT,
    value: 'a folder that exists, e.g. results/hgrm',
    describe: 'Also write each histogram as HdrHistogram percentile distribution text, <folder>/<metric>.hgrm, values in the metric\'s unit (ms)',
  },
  callsCsv: { group: OUTPUT, value: 'a file name, e.g. calls.csv', describe: 'Also write one row per call (status, timings, packets, loss, MOS) as CSV' },
  metricsListen: {
    group: OUTPUT,
    value: 'nothing, or HOST:PORT, e.g. 127.0.0.1:9464',
    describe: 'Serve live Prometheus metrics at http://HOST:PORT/metrics during the run (rtpbench_*: calls, packets, latency histograms, workers); alone: 127.0.0.1:9464',
    optionalValue: true,
  },
  // rtp-bench scale --mesh kubernetes (src/capacity/plan.ts, src/mesh/kubernetes/workers-scale.ts).
  workerStatefulset: {
    group: MESH,
    value: 'a StatefulSet name, e.g. l7mp-worker',
    describe: 'scale --mesh kubernetes: the rtpengine worker StatefulSet set to each --workers count (restored at the end)',
    defaultText: SCALE_DEFAULTS.workerStatefulset,
  },
};

export const OPTION_KEYS = Object.keys(OPTIONS) as CliOptionName[];
export const RTPENGINE_KEYS: readonly CliOptionName[] = ['rtpengine', 'rtpengineMetrics', 'workers', 'rtpenginePorts', 'rtpengineBin', 'rtpengineLogLevel', 'workerCpu', 'workerThreads', 'redis', 'mesh', 'meshConfig', 'meshObjects', 'listenerMode', 'meshRetryTimeout', 'meshNaming', 'namespace', 'kubeconfig', 'context', 'meshConcurrency', 'meshRate', 'meshMediaAddress'];
/** Repeating it adds instances, like commas do; any other value flag given twice is a mistake. */
export const REPEATABLE: readonly CliOptionName[] = ['rtpengine', 'fault'];
export const COMMANDS = ['calibrate', 'capacity', 'scale', 'report', 'merge', 'cleanup'];
/** Flags of the capacity command alone, hidden elsewhere (plan.ts says why they do not apply). */
export const CAPACITY_KEYS: readonly CliOptionName[] = ['slo', 'start', 'max', 'stepHold', 'resolution'];
/** Run flags a capacity search sets itself (hidden there; src/capacity/plan.ts says what to use instead). */
export const NOT_CAPACITY_KEYS: readonly CliOptionName[] = ['calls', 'hold', 'rate', 'callDuration', 'callDurationDist', 'duration', 'maxLoss', 'maxJitter', 'maxLatency', 'maxSetup', 'minMos', 'maxFailed', 'fault', 'shard', 'runId', 'startAt', 'hgrm', 'callsCsv', 'metricsListen'];
/** Flags of the scale command alone, hidden elsewhere (plan.ts refuses them there). */
export const SCALE_KEYS: readonly CliOptionName[] = ['workerStatefulset'];

/**
 * Shown as a comment line above each command (as kubectl does): yargs' two-column examples give the command only
 * half the width, which breaks every realistic command line over two or three lines.
 */
export const EXAMPLES: ReadonlyArray<readonly [string, string]> = [
  ['The main job: 50 calls, opus on leg A and PCMU on leg B, transcoded by a local rtpengine', '$0 --calls 50 --ramp 10/s --hold 20s --codec-pair opus:pcmu'],
  ['Against two rtpengine instances that are already running', '$0 --calls 2000 --ramp 100/s --hold 5m --rtpengine 10.0.0.5:2223,10.0.0.6:2223 --local-ip 10.0.0.4'],
  ['Four local rtpengine instances, with SLOs (exit 1 if one is missed) and a JSON summary', '$0 --calls 500 --workers 4 --max-loss 0.1% --min-mos 4 --json'],
  ["Calibration: what the generator sustains alone, to tell its limits from rtpengine's", '$0 calibrate --calls 2000 --codec-pair opus:opus --hold 1m'],
  ['Compare two runs (e.g. 1 vs 2 workers) side by side, and write an HTML page with their charts', '$0 report results/RUN1.json results/RUN2.json --html compare.html'],
  ['Churn, as in a busy hour: 2 new calls a second, each held about 30 s (60 Erlang offered), for 5 minutes', '$0 --rate 2/s --call-duration 30s --call-duration-dist exponential --duration 5m'],
  ['How many transcoded calls one worker capped at half a core carries within an SLO', "$0 capacity --codec-pair opus:pcmu --worker-cpu 0.5 --slo 'latency.p99<60ms,loss<0.1%'"],
  ['Does a second worker add capacity? The search for 1 and 2 workers, with the scaling efficiency', '$0 scale --workers 1,2 --worker-cpu 0.4 --codec-pair opus:pcmu'],
  ['Through a real l7mp mesh built locally (network namespaces, needs root): ingress, 2 workers', '$0 --mesh local --workers 2 --calls 20 --ramp 5/s --hold 15s --codec-pair opus:pcmu'],
];

export const EPILOGUE = [
  'Durations: 500ms, 20s, 2m, 1h, 1m30s. Rates: 10/s, 600/min, 10 (per second).',
  'The embedded rtpengine gets loopback addresses of its own (127.R.S.1, .2, ... per --workers, random per run), ng on a free',
  'port, media on 10000-19999; clients use 127.0.0.1:20000-29999 (moved up when another run holds them).',
  'Results: ./results/<run id>.json and .html in the current folder unless --output.',
  'Exit codes: 0 done; 1 an SLO missed, or a call failed (--max-failed to allow some), or none succeeded; 2 bad command line;',
  '3 the run could not start (or its results could not be written anywhere); 4 the generator limited the run (its figures',
  'are not the system\'s: see the verdict); 130 interrupted (partial results written).',
].join('\n');

export function isSwitch(spec: OptionSpec): boolean {
  return spec.value === undefined;
}
