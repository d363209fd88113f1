/**
 * Command-line options -> a validated RunPlan. The coordinator trusts the plan, so every check that can be made
 * before anything starts is made here, and each failure is one line: the flag, the value, what is wrong, what is
 * expected. Defaults live here too (not in yargs), so "not given" stays distinguishable from "given the default",
 * which the conflict checks need.
 */
import { checkOutputFile, OutputLocationError, prepareDefaultResultsFolder } from './report/output.js';
import { MAX_CALLS_PER_THREAD } from './media/task.js';
import { availableParallelism, networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { isIP, isIPv4 } from 'node:net';
import { codecNames, codecPair, type CodecPair } from './profile.js';
import type { Endpoint, MediaPriority, MeshPlan, PortRange, RedisTarget, RtcpMode, RunPlan, Slo, Target } from './run-plan.js';
import { DEFAULT_MESH_OPTIONS, type MeshOptions } from './mesh/model.js';
import { arrivalCount, offeredErlang, peakCalls, type ChurnPlan } from './load/churn.js';
import { MeshConfigError, readMeshConfig } from './mesh/config.js';
import { FaultSpecError, parseFaults, type FaultSite, type FaultSpec } from './faults/spec.js';
import { METRICS_LISTEN_EXPECTED, parseMetricsListen, type MetricsListen } from './metrics/listen.js';
import { RUN_ID_PATTERN, parseStartAt, portSlice, runIdFromStartAt, shardCalls, startAtProblem, type ShardPlan } from './shard.js';
import {
  UnitError,
  parseDecimal,
  parseDurationMs,
  parseEndpoints,
  parsePercent,
  parsePortRange,
  parseRate,
  quoteValue,
} from './units.js';

export class PlanError extends Error {
  override readonly name = 'PlanError';
}

export type Command = 'run' | 'calibrate';

/**
 * The command line as yargs hands it over: every value flag as the text that was typed (so messages can quote it),
 * booleans as booleans, and undefined for a flag that was not given. Keys are yargs' camelCase of the flag names.
 */
export interface CliOptions {
  calls?: string;
  ramp?: string;
  hold?: string;
  rate?: string;
  callDuration?: string;
  callDurationDist?: string;
  duration?: string;
  codecPair?: string;
  rtpengine?: string;
  rtpengineMetrics?: string;
  workers?: string;
  rtpenginePorts?: string;
  rtpengineBin?: string;
  rtpengineLogLevel?: string;
  workerCpu?: string;
  workerThreads?: string;
  threads?: string;
  localIp?: string;
  localPorts?: string;
  rtcp?: string;
  output?: string;
  csv?: string;
  json?: boolean;
  progress?: string;
  quiet?: boolean;
  maxLoss?: string;
  maxJitter?: string;
  maxLatency?: string;
  maxSetup?: string;
  minMos?: string;
  maxFailed?: string;
  ngTimeout?: string;
  ngInFlight?: string;
  audioCheckShare?: string;
  headStart?: string;
  io?: string;
  mediaPriority?: string;
  mesh?: string;
  meshConfig?: string;
  meshObjects?: string;
  listenerMode?: string;
  meshRetryTimeout?: string;
  meshNaming?: string;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  meshConcurrency?: string;
  meshRate?: string;
  meshMediaAddress?: string;
  /** --fault, repeatable (joined with commas): src/faults/spec.ts. */
  fault?: string;
  /** '' (given without a value): rtp-bench starts a Redis; else HOST:PORT[/DB]. */
  redis?: string;
  /** rtp-bench capacity only (src/capacity/plan.ts). */
  slo?: string;
  start?: string;
  max?: string;
  stepHold?: string;
  resolution?: string;
  /** rtp-bench scale --mesh kubernetes only (src/capacity/plan.ts): the worker StatefulSet it scales. */
  workerStatefulset?: string;
  /** --shard I/N (or N, the index from JOB_COMPLETION_INDEX): src/shard.ts. */
  shard?: string;
  /** --run-id: the run id, shared by every shard of a plan. */
  runId?: string;
  /** --start-at: ISO 8601 or epoch seconds/ms; the run waits until then. */
  startAt?: string;
  /** --hgrm DIR: each histogram as HdrHistogram percentile distribution text. */
  hgrm?: string;
  /** --calls-csv FILE: one row per call. */
  callsCsv?: string;
  /** --metrics-listen [HOST:PORT]: '' when given alone (127.0.0.1:9464). */
  metricsListen?: string;
}

export type CliOptionName = keyof CliOptions;

/** The flag as typed: codecPair -> codec-pair. */
export function flagFor(key: CliOptionName): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The defaults as typed on the command line; cli.ts shows these in --help. */
export const DEFAULTS = {
  ramp: '10/s',
  hold: '30s',
  callDurationDist: 'fixed',
  codecPair: 'pcmu:pcmu',
  workers: '1',
  rtpengineBin: 'rtpengine',
  rtpengineLogLevel: '5',
  localIp: '127.0.0.1',
  localPorts: '20000-29999',
  rtcp: 'on',
  progress: 'auto',
  ngTimeout: '5s',
  ngInFlight: '64',
  audioCheckShare: '0.2',
  io: 'auto',
  mediaPriority: 'auto',
  mesh: 'none',
  listenerMode: 'singleton',
  meshRetryTimeout: '250ms',
  meshNaming: 'operator',
  namespace: 'default',
  meshConcurrency: '8',
  meshRate: '50/s',
} as const satisfies Partial<Record<CliOptionName, string>>;

export const LIMITS = {
  calls: { min: 1, max: 100_000 },
  workers: { min: 1, max: 16 },
  rtpengineLogLevel: { min: 0, max: 7 },
  threads: { min: 1, max: 256 },
  /** Node timers overflow past 2^31 - 1 ms (24.8 days) and then fire at once; a day is plenty for a soak. */
  holdMs: { min: 0, max: 24 * 3_600_000 },
  callDurationMs: { min: 2000, max: 24 * 3_600_000 },
  ngTimeoutMs: { min: 1, max: 600_000 },
  ngInFlight: { min: 1, max: 10_000 },
  /** G.107's E-model tops out at 4.5, so a higher floor could never be met. */
  mos: { min: 1, max: 4.5 },
  headStartMs: { min: 0, max: 60_000 },
  meshRetryTimeoutMs: { min: 10, max: 60_000 },
  meshConcurrency: { min: 1, max: 1000 },
  workerCpu: { min: 0.01, max: 256 },
  workerThreads: { min: 1, max: 64 },
  shards: { min: 1, max: 10_000 },
} as const;

/**
 * The --threads default plans one media worker thread per this many calls (capped by the cores). Measured with
 * bench/generator.ts: a thread costs about 10 us per packet operation, so 200 calls (40,000 operations/s) use
 * about 40% of a core and keep send lateness low; at 400 a thread is close to saturated.
 */
const CALLS_PER_THREAD = 200;

/** Two legs, each RTP (even) and RTCP (RTP + 1). */
const PORTS_PER_CALL = 4;

const RTCP_MODES: readonly RtcpMode[] = ['on', 'off', 'generate'];
const PROGRESS_MODES: readonly RunPlan['progress'][] = ['auto', 'on', 'off'];

/** The flags that only make sense when rtp-bench starts rtpengine itself. */
const EMBEDDED_ONLY: readonly CliOptionName[] = ['workers', 'rtpenginePorts', 'rtpengineBin', 'rtpengineLogLevel', 'workerCpu', 'workerThreads', 'redis'];

/** What buildPlan reads from the machine; tests pass their own. */
export interface HostFacts {
  /** Addresses on this machine's interfaces (os.networkInterfaces). */
  addresses: string[];
  /** os.availableParallelism(). */
  parallelism: number;
  /** --mesh local makes network namespaces, which needs root. */
  isRoot: boolean;
  /** The environment a shard's index and count may come from (JOB_COMPLETION_INDEX, RTP_BENCH_SHARDS); absent: none. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Now, epoch ms, for --start-at's checks; absent: Date.now(). */
  nowMs?: number;
}

export function currentHost(): HostFacts {
  const addresses = Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((info) => info.address);
  return { addresses, parallelism: availableParallelism(), isRoot: process.getuid?.() === 0, env: process.env };
}

const MESH_KINDS = ['none', 'local', 'rest', 'kubernetes'] as const;
/** Flags that shape the mesh's objects: meaningless without --mesh. */
const MESH_FLAGS: readonly CliOptionName[] = ['meshConfig', 'meshObjects', 'listenerMode', 'meshRetryTimeout', 'meshNaming', 'namespace', 'kubeconfig', 'context', 'meshConcurrency', 'meshRate', 'meshMediaAddress'];
const KUBERNETES_FLAGS: readonly CliOptionName[] = ['namespace', 'kubeconfig', 'context', 'meshConcurrency', 'meshRate', 'meshMediaAddress'];

function fail(key: CliOptionName, value: string, problem: string, expected: string): never {
  throw new PlanError(`--${flagFor(key)} ${quoteValue(value)} ${problem}: expected ${expected}`);
}

function withUnits<T>(key: CliOptionName, value: string, parse: (text: string) => T): T {
  try {
    return parse(value);
  } catch (err) {
    if (!(err instanceof UnitError)) throw err;
    // When the fault is one item of a list, the whole value still goes first so the user can find it.
    const where = err.value === value ? '' : `${quoteValue(value)}: `;
    throw new PlanError(`--${flagFor(key)} ${where}${err.message}`);
  }
}

function integer(key: CliOptionName, value: string, range: { min: number; max: number }, what: string): number {
  const expected = `${what}, a whole number from ${range.min} to ${range.max}`;
  const n = parseDecimal(value.trim());
  if (n === undefined) fail(key, value, 'is not a number', expected);
  if (!Number.isInteger(n)) fail(key, value, 'is not a whole number', expected);
  if (n < range.min || n > range.max) fail(key, value, 'is out of range', expected);
  return n;
}

function decimal(key: CliOptionName, value: string, range: { min: number; max: number }, expected: string): number {
  const n = parseDecimal(value.trim());
  if (n === undefined) fail(key, value, 'is not a number', expected);
  if (n < range.min || n > range.max) fail(key, value, 'is out of range', expected);
  return n;
}

function duration(key: CliOptionName, value: string, range: { min: number; max: number }, expected: string): number {
  const ms = withUnits(key, value, parseDurationMs);
  if (ms < range.min || ms > range.max) fail(key, value, 'is out of range', expected);
  return ms;
}

/** SLO flags named in ms: a bare number is ms (the flag says so), and "30ms" or "0.5s" read as durations. */
function milliseconds(key: CliOptionName, value: string): number {
  const expected = 'milliseconds, 0 or more, e.g. 30 or 30ms or 0.5s';
  const text = value.trim().replace(/\s*ms$/i, '');
  const bare = parseDecimal(text);
  const ms = bare ?? withUnits(key, value, parseDurationMs);
  if (ms < 0) fail(key, value, 'is negative', expected);
  return ms;
}

function percent(key: CliOptionName, value: string): number {
  return withUnits(key, value, parsePercent);
}

export function parseCodecPair(key: CliOptionName, value: string): CodecPair {
  const known = codecNames().join(', ');
  const parts = value.split(':').map((part) => part.trim());
  if (parts.length !== 2 || parts.some((part) => part === '')) {
    fail(key, value, 'is not a codec pair', `A:B (leg A's codec : leg B's codec), e.g. opus:pcmu; known codecs: ${known}`);
  }
  const [a = '', b = ''] = parts;
  const pair = codecPair(a, b);
  if (!pair) {
    const unknown = [a, b].filter((name) => codecPair(name, name) === undefined);
    const names = [...new Set(unknown)].join(' and ');
    fail(key, value, `names an unknown codec ${names}`, `A:B with known codecs: ${known}`);
  }
  return pair;
}

function mediaPorts(key: CliOptionName, value: string): PortRange {
  const range = withUnits(key, value, parsePortRange);
  if (range.min % 2 !== 0) {
    const fixed = `${range.min - 1}-${range.max}`;
    fail(key, value, 'starts on an odd port', `an even first port (RTP is even, RTCP = RTP + 1), e.g. ${fixed}`);
  }
  return range;
}

/** Calls a media port range can carry: whole RTP/RTCP pairs, two per call. */
function callsIn(range: PortRange): number {
  return Math.floor((range.max - range.min + 1) / PORTS_PER_CALL);
}

/** Largest call count any one address can carry: ports 2..65535 hold this many even RTP/RTCP pairs, two per call. */
const MAX_CALLS_PER_ADDRESS = Math.floor((65535 - 2 + 1) / PORTS_PER_CALL);

function localIp(value: string, host: HostFacts): string {
  const ip = value.trim();
  // The media threads open udp4 sockets and the SDP says IN IP4: IPv6 is not supported yet.
  const others = host.addresses.filter((address) => isIPv4(address) && !address.startsWith('127.'));
  const choices = `127.0.0.1 (any 127.x.x.x)${others.length > 0 ? ` or one of this machine's addresses: ${others.join(', ')}` : ''}`;
  if (isIP(ip) === 0) fail('localIp', value, 'is not an IP address', choices);
  if (!isIPv4(ip)) fail('localIp', value, 'is IPv6, which rtp-bench does not support yet', choices);
  if (isIPv4(ip) && ip.startsWith('127.')) return ip;
  const mine = host.addresses.some((address) => address.toLowerCase() === ip.toLowerCase());
  if (!mine) fail('localIp', value, 'is not an address of this machine', choices);
  return ip;
}

/**
 * The results are written at the end of the run; finding out then that they cannot be written would lose the run.
 * So the location is tried now (src/report/output.ts): --output's folder must exist and take a new file; without
 * --output, ./results in the current folder is created if need be and tried the same way.
 */
function outputFile(value: string | undefined): string | null {
  try {
    if (value === undefined) {
      prepareDefaultResultsFolder();
      return null;
    }
    if (value.trim() === '') fail('output', value, 'is empty', 'a file name whose folder exists, e.g. results/run.json');
    if (/[/\\]$/.test(value)) fail('output', value, 'ends in a slash, so it names a folder', `a file name in it, e.g. ${value}run.json`);
    return checkOutputFile(value);
  } catch (err) {
    if (!(err instanceof OutputLocationError)) throw err;
    throw new PlanError(value === undefined ? err.message : `--output ${quoteValue(value)}: ${err.message}`);
  }
}

/** --csv FILE (the timeline) or --calls-csv FILE (the calls), checked like --output (its folder must exist and take a file). */
function csvFile(key: 'csv' | 'callsCsv', value: string | undefined): string | null {
  if (value === undefined) return null;
  if (value.trim() === '') fail(key, value, 'is empty', 'a file name whose folder exists, e.g. results/run.csv');
  try {
    return checkOutputFile(value);
  } catch (err) {
    if (!(err instanceof OutputLocationError)) throw err;
    throw new PlanError(`--${flagFor(key)} ${quoteValue(value)}: ${err.message}`);
  }
}

function oneOf<T extends string>(key: CliOptionName, value: string, allowed: readonly T[]): T {
  const found = allowed.find((mode) => mode === value.trim().toLowerCase());
  if (found === undefined) fail(key, value, 'is not a known mode', `one of ${allowed.join(', ')}`);
  return found;
}

function given(options: CliOptions, key: CliOptionName): boolean {
  return options[key] !== undefined;
}

/**
 * --rtpengine-metrics URL[,URL...]: each remote worker's Prometheus page (rtpengine --listen-http serves /metrics),
 * in --rtpengine's order. A URL without a path gets /metrics.
 */
function metricsUrls(value: string | undefined, endpoints: readonly Endpoint[]): string[] | null {
  if (value === undefined) return null;
  const texts = value.split(',').map((t) => t.trim());
  if (texts.length !== endpoints.length) {
    fail('rtpengineMetrics', value, `names ${texts.length} page(s) for ${endpoints.length} --rtpengine instance(s)`, 'one URL per instance, in the same order, e.g. http://10.0.0.5:2225/metrics');
  }
  return texts.map((text) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return fail('rtpengineMetrics', value, `has ${quoteValue(text)}, which is not a URL`, 'http://HOST:PORT/metrics (rtpengine --listen-http)');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('rtpengineMetrics', value, `has ${quoteValue(text)}, which is not http or https`, 'http://HOST:PORT/metrics');
    if (url.pathname === '/') url.pathname = '/metrics';
    return url.href;
  });
}

function target(command: Command, options: CliOptions, calls: number, mesh: MeshPlan | null, host: HostFacts): Target {
  const embeddedFlags = EMBEDDED_ONLY.filter((key) => given(options, key));
  if (mesh !== null && mesh.kind !== 'local') {
    const first = (['rtpengine', ...EMBEDDED_ONLY] as const).find((key) => given(options, key));
    if (first !== undefined) {
      throw new PlanError(
        `--${flagFor(first)} does not apply to --mesh ${mesh.kind}: the rtpengine workers are the mesh's ` +
          (mesh.kind === 'rest' ? '(the workers in --mesh-config)' : '(the worker pods in the cluster)'),
      );
    }
    return { kind: 'mesh' };
  }
  if (mesh?.kind === 'local' && options.rtpengine !== undefined) {
    throw new PlanError('--rtpengine does not apply to --mesh local: it starts its own rtpengine workers (--workers) behind the mesh');
  }
  if (command === 'calibrate') {
    const rtpengineFlags = (['rtpengine', ...EMBEDDED_ONLY] as const).filter((key) => given(options, key));
    const first = rtpengineFlags[0];
    if (first !== undefined) {
      throw new PlanError(
        `--${flagFor(first)} does not apply to calibrate (its legs send straight to each other, no rtpengine): ` +
          `drop it, or leave out calibrate to benchmark rtpengine`,
      );
    }
    return { kind: 'direct' };
  }
  const redis = redisTarget(options, mesh);
  if (options.rtpengine !== undefined) {
    const firstEmbedded = embeddedFlags[0];
    if (firstEmbedded !== undefined) {
      throw new PlanError(
        `--${flagFor(firstEmbedded)} only applies to the rtpengine that rtp-bench starts itself, but ` +
          `--rtpengine ${quoteValue(options.rtpengine)} names running instances: drop --${flagFor(firstEmbedded)} or --rtpengine`,
      );
    }
    const endpoints: Endpoint[] = withUnits('rtpengine', options.rtpengine, parseEndpoints);
    return { kind: 'remote', endpoints, metricsUrls: metricsUrls(options.rtpengineMetrics, endpoints) };
  }
  if (options.rtpengineMetrics !== undefined) {
    throw new PlanError(
      '--rtpengine-metrics names the /metrics pages of instances given with --rtpengine, one each; the rtpengine rtp-bench starts is scraped anyway: drop --rtpengine-metrics or add --rtpengine',
    );
  }
  const workers = integer('workers', options.workers ?? DEFAULTS.workers, LIMITS.workers, 'rtpengine instances to start');
  const binary = options.rtpengineBin ?? DEFAULTS.rtpengineBin;
  if (binary.trim() === '') fail('rtpengineBin', binary, 'is empty', 'the rtpengine daemon to run, a name on PATH or a path');
  const logLevel = integer(
    'rtpengineLogLevel',
    options.rtpengineLogLevel ?? DEFAULTS.rtpengineLogLevel,
    LIMITS.rtpengineLogLevel,
    'a syslog level',
  );
  let portRange: PortRange | null = null;
  if (options.rtpenginePorts !== undefined) {
    // Deliberately not checked against --calls: running rtpengine out of ports is a legitimate test (the extra
    // calls fail with "Ran out of ports" and are counted); the stack warns when it starts.
    portRange = mediaPorts('rtpenginePorts', options.rtpenginePorts);
  }
  let cpuCores: number | null = null;
  if (options.workerCpu !== undefined) {
    if (!host.isRoot) throw new PlanError('--worker-cpu needs root (it makes a cgroup per rtpengine worker): run as root, or drop it');
    if (mesh?.kind === 'local') throw new PlanError('--worker-cpu does not apply to --mesh local yet: its workers run in network namespaces of their own; drop it');
    cpuCores = decimal('workerCpu', options.workerCpu, LIMITS.workerCpu, `the CPU each rtpengine may use, in cores, from ${LIMITS.workerCpu.min} to ${LIMITS.workerCpu.max}, e.g. 0.5`);
  }
  const threads = options.workerThreads === undefined ? null : integer('workerThreads', options.workerThreads, LIMITS.workerThreads, "rtpengine's --num-threads");
  return { kind: 'embedded', workers, binary, portRange, logLevel, cpuCores, threads, redis };
}

// --redis ----------------------------------------------------------------------------------------------------------

/** Redis' own limit is its `databases` setting, checked when the run starts; this only keeps the number sane. */
const REDIS_DB_MAX = 1_000_000;
const REDIS_EXPECTED = 'nothing (rtp-bench starts a Redis of its own), or a running Redis as IPV4:PORT[/DB], e.g. 127.0.0.1:6379 or 127.0.0.1:6379/4';

/**
 * --redis: the embedded workers replicate their calls through Redis (src/stack/redis.ts). Given alone, rtp-bench
 * starts one; HOST:PORT[/DB] names a running one, whose DBs DB, DB+1, ... (default 1) the workers use. Only for
 * workers rtp-bench starts: it passes them --redis itself.
 */
function redisTarget(options: CliOptions, mesh: MeshPlan | null): RedisTarget | null {
  const text = options.redis;
  if (text === undefined) return null;
  if (options.rtpengine !== undefined) {
    throw new PlanError(
      `--redis does not apply to --rtpengine ${quoteValue(options.rtpengine)}: rtp-bench does not start those workers, so it cannot give them Redis; ` +
        'start each with --redis=IP:PORT/DB (a DB of its own) and --subscribe-keyspace=<the other workers\' DBs>, and drop --redis here',
    );
  }
  const value = text.trim();
  if (value === '') return { kind: 'own' };
  if (mesh?.kind === 'local') {
    throw new PlanError(
      `--redis ${quoteValue(value)} does not apply to --mesh local: its workers live in network namespaces of their own, which reach no address of this machine; ` +
        'give --redis alone (the mesh starts a Redis of its own, inside it)',
    );
  }
  const m = /^([^:/]+):([^/]*)(?:\/(.*))?$/.exec(value);
  if (!m) fail('redis', text, 'is not IPV4:PORT[/DB]', REDIS_EXPECTED);
  const [, host = '', portText = '', dbText] = m;
  // rtpengine 10.5's --redis takes an address; a host name was not tried with it.
  if (!isIPv4(host)) fail('redis', text, `has ${quoteValue(host)}, not an IPv4 address`, REDIS_EXPECTED);
  const port = /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) fail('redis', text, `has port ${quoteValue(portText)}, not a TCP port (1-65535)`, REDIS_EXPECTED);
  const db = dbText === undefined ? 1 : /^\d+$/.test(dbText) ? Number(dbText) : Number.NaN;
  if (!(db >= 0 && db <= REDIS_DB_MAX)) fail('redis', text, `has DB ${quoteValue(dbText ?? '')}, not a DB number (0-${REDIS_DB_MAX})`, REDIS_EXPECTED);
  return { kind: 'external', host, port, db };
}

function slo(options: CliOptions): Slo {
  const result: Slo = {};
  if (options.maxLoss !== undefined) result.maxLossPct = percent('maxLoss', options.maxLoss);
  if (options.maxJitter !== undefined) result.maxJitterMs = milliseconds('maxJitter', options.maxJitter);
  if (options.maxLatency !== undefined) result.maxLatencyMs = milliseconds('maxLatency', options.maxLatency);
  if (options.maxSetup !== undefined) result.maxSetupMs = milliseconds('maxSetup', options.maxSetup);
  if (options.minMos !== undefined) {
    result.minMos = decimal('minMos', options.minMos, LIMITS.mos, `a MOS from ${LIMITS.mos.min} to ${LIMITS.mos.max} (the E-model's best), e.g. 3.5`);
  }
  // As SIPp does: a failed call fails the run unless the user allows some (interrupted calls do not count).
  result.maxFailedPct = options.maxFailed === undefined ? 0 : percent('maxFailed', options.maxFailed);
  return result;
}

function progress(options: CliOptions): RunPlan['progress'] {
  if (options.quiet === true) {
    if (options.progress !== undefined && options.progress.trim().toLowerCase() !== 'off') {
      throw new PlanError(`--quiet turns progress off but --progress ${quoteValue(options.progress)} asks for it: give only one of them`);
    }
    return 'off';
  }
  return oneOf('progress', options.progress ?? DEFAULTS.progress, PROGRESS_MODES);
}

function audioCheckShare(value: string): number {
  const expected = 'a share of calls from 0 to 1, e.g. 0.2 (or a percentage, 20%)';
  if (value.trim().endsWith('%')) return percent('audioCheckShare', value) / 100;
  return decimal('audioCheckShare', value, { min: 0, max: 1 }, expected);
}

/**
 * Validates the options for `command` and fills in defaults. Throws PlanError with a one-line message naming the
 * flag and value at the first problem found.
 */
/** The churn flags: together they replace --calls, --ramp and --hold. */
const CHURN_FLAGS: readonly CliOptionName[] = ['rate', 'callDuration', 'callDurationDist', 'duration'];

/** --rate with --call-duration (and optionally --call-duration-dist, --duration) -> a churn plan; null without them. */
function churnPlan(options: CliOptions): ChurnPlan | null {
  const churnFlag = CHURN_FLAGS.find((key) => given(options, key));
  if (churnFlag === undefined) return null;
  if (options.rate === undefined) throw new PlanError(`--${flagFor(churnFlag)} belongs to churn, which needs --rate too: e.g. --rate 2/s --call-duration 30s`);
  if (options.callDuration === undefined) throw new PlanError('--rate (churn) needs --call-duration: how long each call is held, e.g. --call-duration 30s');
  const ramped = (['calls', 'ramp', 'hold'] as const).find((key) => given(options, key));
  if (ramped !== undefined) {
    const instead = { calls: 'the calls up follow from --rate x --call-duration', ramp: 'calls arrive at --rate', hold: 'each call is held --call-duration' }[ramped];
    throw new PlanError(`--${ramped} does not apply to churn (--rate): ${instead}; drop --${ramped}, or drop the churn flags to ramp up and hold`);
  }
  const ratePerSec = withUnits('rate', options.rate, parseRate);
  const callDurationMs = duration('callDuration', options.callDuration, LIMITS.callDurationMs, 'a duration from 2s to 24h, e.g. 30s or 3m');
  const distribution = oneOf('callDurationDist', options.callDurationDist ?? DEFAULTS.callDurationDist, ['fixed', 'exponential'] as const);
  const arrivalsMs =
    options.duration === undefined
      ? callDurationMs * (distribution === 'exponential' ? 4 : 2)
      : duration('duration', options.duration, LIMITS.holdMs, 'a duration from 1s to 24h, e.g. 5m');
  if (arrivalsMs < 1000) fail('duration', options.duration ?? '', 'is too short', 'a duration from 1s to 24h, e.g. 5m');
  const plan: ChurnPlan = { ratePerSec, callDurationMs, distribution, arrivalsMs, seed: (Math.random() * 2 ** 32) >>> 0 };
  const placed = arrivalCount(plan);
  if (placed > LIMITS.calls.max) {
    throw new PlanError(`--rate ${options.rate} for ${arrivalsMs / 1000} s places ${placed} calls, more than one run numbers (${LIMITS.calls.max}): shorten --duration or lower --rate`);
  }
  if (peakCalls(plan) > LIMITS.calls.max) {
    throw new PlanError(`--rate ${options.rate} x --call-duration ${options.callDuration} offers ${offeredErlang(plan).toFixed(0)} Erlang, more calls at once than one run holds (${LIMITS.calls.max})`);
  }
  return plan;
}

/** Flags of `rtp-bench capacity` alone. */
export const CAPACITY_FLAGS: readonly CliOptionName[] = ['slo', 'start', 'max', 'stepHold', 'resolution'];

export function buildPlan(command: Command, options: CliOptions, host: HostFacts = currentHost()): RunPlan {
  const stray = CAPACITY_FLAGS.find((key) => options[key] !== undefined);
  if (stray !== undefined) throw new PlanError(`--${flagFor(stray)} only applies to rtp-bench capacity (the search for how many calls meet an SLO)`);
  if (options.workerStatefulset !== undefined) throw new PlanError('--worker-statefulset only applies to rtp-bench scale --mesh kubernetes (the worker StatefulSet it scales to each --workers count)');
  const wholeChurn = churnPlan(options);
  if (wholeChurn === null && options.calls === undefined) {
    throw new PlanError(
      `--calls is required: expected the number of concurrent calls, from ${LIMITS.calls.min} to ${LIMITS.calls.max}, e.g. --calls 50 ` +
        '(or churn: --rate 2/s --call-duration 30s, calls arriving and ending)',
    );
  }
  const sharding = shardOf(options, host);
  // A shard takes its share of the arrival rate; the whole plan's figures go into plan.shard.
  const churn = wholeChurn === null || sharding === null ? wholeChurn : { ...wholeChurn, ratePerSec: wholeChurn.ratePerSec / sharding.count };
  const totalCalls = wholeChurn === null ? integer('calls', options.calls ?? '', LIMITS.calls, 'concurrent calls') : peakCalls(wholeChurn);
  // Churn sizes ports, threads and rtpengine's port range for the most calls it expects up at once.
  const calls = churn === null ? (sharding === null ? totalCalls : shardCalls(totalCalls, sharding.index, sharding.count)) : peakCalls(churn);
  if (calls === 0 && sharding !== null) {
    throw new PlanError(`--calls ${totalCalls} over ${sharding.count} shards leaves shard ${sharding.index} without a call: give at least ${sharding.count} calls, or fewer shards`);
  }
  const mesh = meshPlan(command, options, host);
  const planTarget = target(command, options, calls, mesh, host);

  const totalRate = wholeChurn?.ratePerSec ?? withUnits('ramp', options.ramp ?? DEFAULTS.ramp, parseRate);
  const rampPerSec = sharding === null ? totalRate : totalRate / sharding.count;
  const holdMs = churn === null ? duration('hold', options.hold ?? DEFAULTS.hold, LIMITS.holdMs, 'a duration from 0 to 24h, e.g. 20s, 2m or 1m30s') : 0;

  const pairText = options.codecPair ?? DEFAULTS.codecPair;
  const pair = parseCodecPair('codecPair', pairText);
  if (command === 'calibrate' && pair.transcoded) {
    fail('codecPair', pairText, 'needs transcoding, which calibrate cannot do with no rtpengine between the legs', `the same codec on both legs, e.g. ${pair.a.name}:${pair.a.name}`);
  }

  const threadsDefault = Math.max(1, Math.min(host.parallelism, Math.ceil(calls / CALLS_PER_THREAD)));
  const threads = options.threads === undefined ? threadsDefault : integer('threads', options.threads, LIMITS.threads, 'media worker threads');
  const perThread = Math.ceil(calls / threads);
  if (perThread > MAX_CALLS_PER_THREAD) {
    const needed = Math.ceil(calls / MAX_CALLS_PER_THREAD);
    const given = options.threads === undefined ? `${threads} media thread(s) (the default: one per ${CALLS_PER_THREAD} calls, at most one per core)` : `--threads ${threads}`;
    throw new PlanError(
      `--calls ${calls} on ${given} is ${perThread} calls per thread, more than one media thread holds (${MAX_CALLS_PER_THREAD}): ` +
        `give --threads ${needed} or more, or lower --calls`,
    );
  }

  // In a cluster the generator's own pod address is what the ingress must send media back to; loopback would not do.
  const ipDefault = mesh?.kind === 'kubernetes' ? (podAddress(host) ?? DEFAULTS.localIp) : DEFAULTS.localIp;
  const ip = localIp(options.localIp ?? ipDefault, host);
  const portsText = options.localPorts ?? DEFAULTS.localPorts;
  const wholePorts = mediaPorts('localPorts', portsText);
  // Shards on one host bind disjoint slices of the range. A shard of a Kubernetes Indexed Job (index from the
  // environment) runs in a pod of its own, with its own ports: it keeps the whole default range unless given one.
  const sliced = sharding !== null && (options.localPorts !== undefined || sharding.source === 'flag');
  const localPorts = sliced ? portSlice(wholePorts, sharding.index, sharding.count) : wholePorts;
  const fits = callsIn(localPorts);
  if (fits < calls) {
    const slice = sliced ? `shard ${sharding.index}/${sharding.count}'s slice ${localPorts.min}-${localPorts.max} of ` : '';
    const which = `${slice}${options.localPorts === undefined ? `--local-ports ${portsText} (the default)` : `--local-ports ${portsText}`}`;
    const asked = churn === null ? (sharding === null ? `--calls is ${calls}` : `the shard places ${calls} of --calls ${totalCalls}`) : `churn may have ${calls} calls up at once (--rate x --call-duration, with room for chance)`;
    const advice =
      calls > MAX_CALLS_PER_ADDRESS
        ? `, more than any range on one address holds (${MAX_CALLS_PER_ADDRESS}): lower --calls`
        : `: widen the range or lower ${churn === null ? '--calls' : '--rate or --call-duration'}`;
    throw new PlanError(
      `${which} holds ${fits} calls (${PORTS_PER_CALL} ports each: RTP and RTCP for two legs) but ${asked}${advice}`,
    );
  }

  const rtcp = oneOf('rtcp', options.rtcp ?? DEFAULTS.rtcp, RTCP_MODES);
  if (command === 'calibrate' && rtcp === 'generate') {
    fail('rtcp', options.rtcp ?? '', 'makes rtpengine generate RTCP, but calibrate has no rtpengine', 'on or off');
  }

  return {
    calls,
    rampPerSec,
    holdMs,
    churn,
    codecPair: pair,
    target: planTarget,
    threads,
    io: oneOf('io', options.io ?? DEFAULTS.io, ['auto', 'native', 'dgram'] as const),
    mediaPriority: mediaPriority(options, planTarget, mesh),
    localIp: ip,
    localPorts,
    // A shard's slice is never moved: moving it would land on another shard's.
    localPortsExplicit: options.localPorts !== undefined || sliced,
    rtcp,
    output: outputFile(options.output),
    csv: csvFile('csv', options.csv),
    callsCsv: csvFile('callsCsv', options.callsCsv),
    hgrm: hgrmFolder(options.hgrm),
    metricsListen: metricsListen(options.metricsListen, mesh),
    json: options.json === true,
    progress: progress(options),
    slo: slo(options),
    ngTimeoutMs: duration('ngTimeout', options.ngTimeout ?? DEFAULTS.ngTimeout, LIMITS.ngTimeoutMs, 'a duration from 1ms to 10m, e.g. 5s'),
    ngInFlight: integer('ngInFlight', options.ngInFlight ?? DEFAULTS.ngInFlight, LIMITS.ngInFlight, 'ng requests in flight'),
    audioCheckShare: audioCheckShare(options.audioCheckShare ?? DEFAULTS.audioCheckShare),
    mesh,
    headStartMs: headStart(options),
    faults: faults(command, options, planTarget, mesh, churn === null ? (totalCalls * 1000) / totalRate + holdMs : churn.arrivalsMs),
    ...startAndRunId(options, sharding, host),
    shard: sharding === null ? null : { ...sharding, totalCalls, totalRatePerSec: totalRate, totalLocalPorts: wholePorts },
  };
}

/** --shard I/N, or N with the index from JOB_COMPLETION_INDEX, or both from the environment of an Indexed Job. */
function shardOf(options: CliOptions, host: HostFacts): Pick<ShardPlan, 'index' | 'count' | 'source'> | null {
  const env = host.env ?? {};
  const jobIndex = env['JOB_COMPLETION_INDEX'];
  const fromEnvIndex = (count: number, how: string): Pick<ShardPlan, 'index' | 'count' | 'source'> => {
    if (jobIndex === undefined || !/^\d+$/.test(jobIndex.trim())) {
      throw new PlanError(`${how} names ${count} shards but not which one this is: give --shard I/${count}, or run it as a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, 0-based)`);
    }
    const index = Number(jobIndex.trim()) + 1;
    if (index > count) throw new PlanError(`JOB_COMPLETION_INDEX ${jobIndex.trim()} is shard ${index}, but ${how} names only ${count} shards: the Job's completions and the shard count must agree`);
    return { index, count, source: 'environment' };
  };
  const expected = 'I/N, shard I (1-based) of N, e.g. 2/4; or N alone with the index from JOB_COMPLETION_INDEX';
  if (options.shard !== undefined) {
    const m = /^\s*(?:(\d+)\s*\/\s*)?(\d+)\s*$/.exec(options.shard);
    if (!m) fail('shard', options.shard, 'is not a shard', expected);
    const count = Number(m![2]);
    if (count < 1 || count > LIMITS.shards.max) fail('shard', options.shard, 'has a shard count out of range', `a count from 1 to ${LIMITS.shards.max}`);
    if (m![1] === undefined) return fromEnvIndex(count, `--shard ${count}`);
    const index = Number(m![1]);
    if (index < 1 || index > count) fail('shard', options.shard, 'has an index out of range', `I from 1 to N (1-based), e.g. ${Math.min(2, count)}/${count}`);
    return { index, count, source: 'flag' };
  }
  const shards = env['RTP_BENCH_SHARDS'];
  if (shards === undefined || shards.trim() === '') return null;
  if (!/^\d+$/.test(shards.trim()) || Number(shards) < 1 || Number(shards) > LIMITS.shards.max) {
    throw new PlanError(`RTP_BENCH_SHARDS ${quoteValue(shards)} is not a shard count: expected a whole number from 1 to ${LIMITS.shards.max}`);
  }
  return fromEnvIndex(Number(shards), `RTP_BENCH_SHARDS=${shards.trim()}`);
}

/**
 * --start-at and --run-id. Shards must share one run id for merge to accept them: given with --run-id, or derived
 * alike by every shard from --start-at (src/shard.ts runIdFromStartAt); a shard with neither is refused, since a
 * generated id would differ in every process.
 */
function startAndRunId(options: CliOptions, sharding: Pick<ShardPlan, 'index' | 'count'> | null, host: HostFacts): { startAtEpochMs: number | null; runId: string | null } {
  let startAtEpochMs: number | null = null;
  if (options.startAt !== undefined) {
    const expected = 'an ISO 8601 time with a date, e.g. 2026-12-07T11:40:00Z, or epoch seconds or milliseconds';
    startAtEpochMs = parseStartAt(options.startAt);
    if (startAtEpochMs === null) fail('startAt', options.startAt, 'is not a time', expected);
    const problem = startAtProblem(startAtEpochMs!, host.nowMs ?? Date.now());
    if (problem !== null) fail('startAt', options.startAt, problem, 'a time within the next 24 h (all shards start together then)');
  }
  let runId: string | null = null;
  if (options.runId !== undefined) {
    runId = options.runId.trim();
    if (!RUN_ID_PATTERN.test(runId)) fail('runId', options.runId, 'is not a run id', 'lower-case letters, digits and dashes, 1-40, starting and ending with a letter or digit, e.g. soak-0412');
  } else if (sharding !== null) {
    if (startAtEpochMs === null) {
      throw new PlanError(`--shard ${sharding.index}/${sharding.count} needs --run-id ID (the same in every shard, so that merge can tell they belong together) or --start-at TIME (the run id is then derived from it)`);
    }
    runId = runIdFromStartAt(startAtEpochMs, sharding.count);
  }
  return { startAtEpochMs, runId };
}

/**
 * --metrics-listen [HOST:PORT]: where the run serves live Prometheus metrics (src/metrics/). Any address is allowed
 * (a warning at the start says when it is not loopback); whether the port is free is found when it is bound, before
 * the run. Not with --mesh local: the run then happens in a network namespace whose loopback no scraper reaches.
 */
function metricsListen(value: string | undefined, mesh: MeshPlan | null): MetricsListen | null {
  if (value === undefined) return null;
  if (mesh?.kind === 'local') throw new PlanError('--metrics-listen does not apply to --mesh local yet: the run happens in a network namespace of its own, out of reach of a scraper; drop it');
  const parsed = parseMetricsListen(value);
  if (typeof parsed === 'string') fail('metricsListen', value, parsed, METRICS_LISTEN_EXPECTED);
  return parsed;
}

/** --hgrm DIR: an existing folder the .hgrm files go into. */
function hgrmFolder(value: string | undefined): string | null {
  if (value === undefined) return null;
  if (value.trim() === '') fail('hgrm', value, 'is empty', 'a folder that exists, e.g. results/hgrm');
  try {
    checkOutputFile(join(value, 'probe.hgrm'));
  } catch (err) {
    if (!(err instanceof OutputLocationError)) throw err;
    throw new PlanError(`--hgrm ${quoteValue(value)}: ${err.message}`);
  }
  return resolve(value);
}

/**
 * --fault: what goes wrong during the run, refused here when it could not be made (a worker rtp-bench did not
 * start, a time after the run's end): src/faults/spec.ts. `runMs`: the run's length from its start.
 */
function faults(command: Command, options: CliOptions, target: Target, mesh: MeshPlan | null, runMs: number): FaultSpec[] {
  if (options.fault === undefined) return [];
  const site: FaultSite =
    command === 'calibrate' ? 'direct' : mesh === null ? (target.kind === 'remote' ? 'remote' : 'embedded') : mesh.kind === 'local' ? 'mesh-local' : mesh.kind === 'rest' ? 'mesh-rest' : 'mesh-kubernetes';
  // The worker pods of --mesh kubernetes are known only when the run lists them.
  const workers = site === 'mesh-kubernetes' ? null : target.kind === 'embedded' ? target.workers : target.kind === 'remote' ? target.endpoints.length : 1;
  try {
    return parseFaults(options.fault, { workers, runMs, site });
  } catch (err) {
    if (!(err instanceof FaultSpecError)) throw err;
    throw new PlanError(`--fault ${err.message}`);
  }
}

/**
 * --media-priority: auto gives the media threads real-time priority only where they do not compete with the system
 * under test for this machine's cores: calibrate, a remote rtpengine, a remote mesh. An embedded rtpengine or local
 * mesh keeps normal priority, so the generator does not take CPU from what it measures.
 */
function mediaPriority(options: CliOptions, target: Target, mesh: MeshPlan | null): MediaPriority {
  const choice = oneOf('mediaPriority', options.mediaPriority ?? DEFAULTS.mediaPriority, ['auto', 'realtime', 'normal'] as const);
  if (choice !== 'auto') return choice;
  const local = target.kind === 'embedded' || mesh?.kind === 'local';
  return local ? 'normal' : 'realtime';
}

/** --head-start b=300ms: leg b starts sending that long before leg a (a=... the other way round). */
function headStart(options: CliOptions): { a: number; b: number } {
  const text = options.headStart;
  if (text === undefined) return { a: 0, b: 0 };
  const match = /^\s*([ab])\s*=\s*(.+)$/i.exec(text);
  if (!match) fail('headStart', text, 'is not LEG=DURATION', 'a or b, then a duration, e.g. b=300ms (leg b starts sending 300 ms before leg a)');
  const ms = duration('headStart', match![2]!, LIMITS.headStartMs, 'LEG=DURATION with a duration up to 1m, e.g. b=300ms');
  return match![1]!.toLowerCase() === 'a' ? { a: ms, b: 0 } : { a: 0, b: ms };
}

function meshPlan(command: Command, options: CliOptions, host: HostFacts): MeshPlan | null {
  const kind = oneOf('mesh', options.mesh ?? DEFAULTS.mesh, MESH_KINDS);
  if (kind === 'none') {
    const stray = MESH_FLAGS.find((key) => given(options, key));
    if (stray !== undefined) throw new PlanError(`--${flagFor(stray)} only applies with --mesh (local, rest or kubernetes): add --mesh or drop --${flagFor(stray)}`);
    return null;
  }
  if (command === 'calibrate') throw new PlanError(`--mesh does not apply to calibrate (its legs send straight to each other): drop --mesh ${kind}`);
  if (kind !== 'kubernetes') {
    const stray = KUBERNETES_FLAGS.find((key) => given(options, key));
    if (stray !== undefined) throw new PlanError(`--${flagFor(stray)} only applies with --mesh kubernetes, not --mesh ${kind}`);
  }
  if (kind !== 'rest' && options.meshConfig !== undefined) {
    throw new PlanError(`--mesh-config describes running proxies for --mesh rest, not --mesh ${kind}: drop it or use --mesh rest`);
  }
  if (kind === 'local' && !host.isRoot) {
    throw new PlanError('--mesh local needs root (it creates network namespaces): run as root, or use --mesh rest or --mesh kubernetes');
  }
  const objects = oneOf('meshObjects', options.meshObjects ?? (kind === 'kubernetes' ? 'classic' : 'compact'), ['classic', 'compact'] as const);
  if (kind === 'kubernetes' && objects === 'compact') {
    fail(
      'meshObjects',
      options.meshObjects ?? '',
      'is unsafe with the l7mp operator: its delete of a compact VirtualService with a live session crashes the ingress proxy (l7mp 0.5.7)',
      'classic with --mesh kubernetes (compact is for --mesh rest and local, where rtp-bench sends the deletes itself)',
    );
  }
  const meshOptions: MeshOptions = {
    ...DEFAULT_MESH_OPTIONS,
    namespace: kubernetesName('namespace', options.namespace ?? DEFAULTS.namespace),
    listenerMode: oneOf('listenerMode', options.listenerMode ?? DEFAULTS.listenerMode, ['singleton', 'server'] as const),
    retryTimeoutMs: duration('meshRetryTimeout', options.meshRetryTimeout ?? DEFAULTS.meshRetryTimeout, LIMITS.meshRetryTimeoutMs, 'a duration from 10ms to 1m, e.g. 250ms'),
    naming: oneOf('meshNaming', options.meshNaming ?? DEFAULTS.meshNaming, ['operator', 'selflink'] as const),
    compact: objects === 'compact',
  };
  if (kind === 'local') return { kind, options: meshOptions };
  if (kind === 'rest') {
    if (options.meshConfig === undefined) {
      throw new PlanError('--mesh rest needs --mesh-config FILE: the running proxies (ingress and workers) as JSON, see src/mesh/config.ts');
    }
    try {
      return { kind, options: meshOptions, config: readMeshConfig(options.meshConfig, meshOptions.workerPinLabel) };
    } catch (err) {
      if (err instanceof MeshConfigError) throw new PlanError(`--mesh-config ${quoteValue(options.meshConfig)}: ${err.message}`);
      throw err;
    }
  }
  let mediaAddress: string | null = null;
  if (options.meshMediaAddress !== undefined) {
    mediaAddress = options.meshMediaAddress.trim();
    if (!isIPv4(mediaAddress)) fail('meshMediaAddress', options.meshMediaAddress, 'is not an IPv4 address', "the ingress gateway's address clients send media to");
  }
  return {
    kind,
    options: meshOptions,
    kubeconfig: options.kubeconfig ?? null,
    context: options.context ?? null,
    concurrency: integer('meshConcurrency', options.meshConcurrency ?? DEFAULTS.meshConcurrency, LIMITS.meshConcurrency, 'Kubernetes API requests in flight'),
    ratePerSec: withUnits('meshRate', options.meshRate ?? DEFAULTS.meshRate, parseRate),
    mediaAddress,
  };
}

function kubernetesName(key: CliOptionName, value: string): string {
  const name = value.trim();
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) fail(key, value, 'is not a Kubernetes namespace name', 'lower-case letters, digits and dashes, e.g. default');
  return name;
}

/** The first non-loopback IPv4 address: in a pod, the pod's address. */
function podAddress(host: HostFacts): string | null {
  return host.addresses.find((a) => isIPv4(a) && !a.startsWith('127.')) ?? null;
}
