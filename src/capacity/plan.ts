/**
 * `rtp-bench capacity` flags -> a validated CapacityPlan plus the RunPlan its steps run with (every run flag means
 * what it means for a run: the target, the media, the ports; --calls is the search's --max, for sizing). Bad input
 * is one PlanError line, as for a run.
 */
import { CAPACITY_FLAGS, PlanError, buildPlan, currentHost, flagFor, parseCodecPair, type CliOptionName, type CliOptions, type HostFacts } from '../plan.js';
import { parseDecimal, parseDurationMs, quoteValue, UnitError } from '../units.js';
import type { CodecPair } from '../profile.js';
import type { RunPlan } from '../run-plan.js';
import { DEFAULT_SLO_TEXT, SloError, parseSlo, type SloSpec } from './slo.js';
import { SEARCH_DEFAULTS, type Resolution } from './search.js';

export interface CapacityPlan {
  slo: SloSpec;
  /** One search per codec pair, in the order given. */
  pairs: CodecPair[];
  start: number;
  max: number;
  /** How long a step holds its population, measured (after it has settled). */
  stepHoldMs: number;
  resolution: Resolution;
}

export const CAPACITY_DEFAULTS = { max: '200', stepHold: '20s', resolution: '5%' } as const;
const LIMITS = { max: { min: 1, max: 100_000 }, stepHoldMs: { min: 3000, max: 3_600_000 } } as const;

/** Run flags that make no sense for a search, and what to use instead. */
const NOT_FOR_CAPACITY: readonly [CliOptionName, string][] = [
  ['calls', 'capacity finds the number of calls itself: give --start and --max'],
  ['hold', 'each step holds for --step-hold'],
  ['rate', 'a search holds populations of calls; churn (--rate) is a run of its own'],
  ['callDuration', 'a search holds populations of calls; churn (--call-duration) is a run of its own'],
  ['callDurationDist', 'a search holds populations of calls; churn is a run of its own'],
  ['duration', 'each step holds for --step-hold'],
  ['maxLoss', 'the SLO is --slo, e.g. --slo "loss<0.1%"'],
  ['maxJitter', 'the SLO is --slo, e.g. --slo "transitJitter.p99<30ms"'],
  ['maxLatency', 'the SLO is --slo, e.g. --slo "latency.p99<60ms"'],
  ['maxSetup', 'the SLO is --slo, e.g. --slo "setup.p99<200ms"'],
  ['minMos', 'the SLO is --slo, e.g. --slo "mos.p50>=4"'],
  ['maxFailed', 'the SLO is --slo, e.g. --slo "failed<=1%"'],
  ['fault', 'a search measures steady populations of calls; faults are for a run (drop capacity)'],
  ['shard', 'a search steps one population; shards are for a run (rtp-bench --shard I/N, then rtp-bench merge)'],
  ['runId', 'a search makes its own run id'],
  ['startAt', 'a search starts when it is ready'],
  ['hgrm', 'a search has a histogram per step, not per run'],
  ['callsCsv', 'a search keeps no per-call records'],
  ['metricsListen', 'live metrics are served by a run, not yet by a search'],
];

function whole(key: CliOptionName, value: string, range: { min: number; max: number }, what: string): number {
  const n = parseDecimal(value.trim());
  if (n === undefined || !Number.isInteger(n) || n < range.min || n > range.max) {
    throw new PlanError(`--${flagFor(key)} ${quoteValue(value)} is not ${what}: expected a whole number from ${range.min} to ${range.max}`);
  }
  return n;
}

function resolutionOf(value: string): Resolution {
  const text = value.trim();
  if (text.endsWith('%')) {
    const pct = parseDecimal(text.slice(0, -1).trim());
    if (pct === undefined || !(pct > 0) || pct > 50) throw new PlanError(`--resolution ${quoteValue(value)} is not a share of the answer: expected a percentage above 0 and at most 50, e.g. 5%`);
    return { percent: pct };
  }
  const calls = parseDecimal(text);
  if (calls === undefined || !Number.isInteger(calls) || calls < 1) {
    throw new PlanError(`--resolution ${quoteValue(value)} is not a number of calls or a percentage: expected e.g. 1 (exact to the call) or 5%`);
  }
  return { calls };
}

export function buildCapacityPlan(options: CliOptions, host: HostFacts = currentHost()): { plan: RunPlan; capacity: CapacityPlan } {
  for (const [key, instead] of NOT_FOR_CAPACITY) {
    if (options[key] !== undefined) throw new PlanError(`--${flagFor(key)} does not apply to capacity: ${instead}`);
  }
  let slo: SloSpec;
  const sloText = options.slo ?? DEFAULT_SLO_TEXT;
  try {
    slo = parseSlo(sloText);
  } catch (err) {
    if (!(err instanceof SloError)) throw err;
    throw new PlanError(err.term === sloText ? `--slo ${err.message}` : `--slo ${quoteValue(sloText)}: ${err.message}`);
  }
  const max = whole('max', options.max ?? CAPACITY_DEFAULTS.max, LIMITS.max, 'a number of calls');
  const start = options.start === undefined ? Math.min(SEARCH_DEFAULTS.start, max) : whole('start', options.start, { min: 1, max }, 'a number of calls no larger than --max');
  let stepHoldMs: number;
  try {
    stepHoldMs = parseDurationMs(options.stepHold ?? CAPACITY_DEFAULTS.stepHold);
  } catch (err) {
    if (!(err instanceof UnitError)) throw err;
    throw new PlanError(`--step-hold ${err.message}`);
  }
  if (stepHoldMs < LIMITS.stepHoldMs.min || stepHoldMs > LIMITS.stepHoldMs.max) {
    throw new PlanError(`--step-hold ${quoteValue(options.stepHold ?? '')} is out of range: expected a duration from 3s to 1h (a step shorter than a few seconds measures noise)`);
  }
  const resolution = resolutionOf(options.resolution ?? CAPACITY_DEFAULTS.resolution);
  const pairTexts = (options.codecPair ?? 'pcmu:pcmu').split(',').map((p) => p.trim());
  const pairs = pairTexts.map((text) => parseCodecPair('codecPair', text));
  const names = pairs.map((p) => `${p.a.name}:${p.b.name}`);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new PlanError(`--codec-pair names ${twice} twice: give each pair once`);
  // The run plan sizes threads and ports for --max calls; its codec pair is the first (each search gets its own).
  const runOptions: CliOptions = { ...options, calls: String(max), hold: '0', codecPair: pairTexts[0] ?? 'pcmu:pcmu' };
  for (const key of CAPACITY_FLAGS) delete runOptions[key];
  // Not sharded by an Indexed Job's environment either: a search is one process.
  const plan = buildPlan('run', runOptions, { ...host, env: {} });
  return { plan: { ...plan, slo: {} }, capacity: { slo, pairs, start, max, stepHoldMs, resolution } };
}

/** `rtp-bench scale`: the same search once per worker count, each with its own run plan. */
export interface ScalePlan {
  counts: number[];
  searches: { workers: number; plan: RunPlan; capacity: CapacityPlan }[];
  /** --mesh kubernetes: the worker StatefulSet scaled to each count (src/mesh/kubernetes/workers-scale.ts); null: embedded workers. */
  kubernetes: { statefulSet: string } | null;
}

export const SCALE_DEFAULTS = { workerStatefulset: 'l7mp-worker' } as const;

/** Where the Kubernetes workers' CPU is set: scale's --worker-cpu caps only the workers it starts itself. */
export const KUBERNETES_WORKER_CPU =
  '--worker-cpu caps the rtpengine workers scale starts itself (no --mesh); with --mesh kubernetes each worker pod gets the CPU its manifest sets: ' +
  'resources.limits.cpu of the rtpengine container in kubernetes/rtpengine-workers.yaml (see "Worker CPU" in kubernetes/README.md)';

/** --mesh for scale: none (embedded workers) or kubernetes (the worker StatefulSet); the others cannot be scaled. */
function scaleMesh(options: CliOptions): 'none' | 'kubernetes' {
  const mesh = (options.mesh ?? 'none').trim().toLowerCase();
  if (options.rtpengine !== undefined) {
    throw new PlanError('scale starts its own rtpengine workers (or scales the worker StatefulSet with --mesh kubernetes), as many as each --workers count: drop --rtpengine (scale remote workers by running capacity against each set)');
  }
  if (mesh === 'rest') {
    throw new PlanError('--mesh rest cannot be scaled by rtp-bench: its workers are the running proxies of --mesh-config, which it neither starts nor scales. Run capacity against each set of workers, or use --mesh kubernetes (scale sets the worker StatefulSet)');
  }
  if (mesh === 'local') throw new PlanError('--mesh local does not work with scale yet (its calls run in a namespace child of their own, as with capacity): use --mesh kubernetes, or scale without --mesh');
  if (mesh !== 'none' && mesh !== 'kubernetes') return 'none'; // buildPlan names the unknown mode
  if (options.workerStatefulset !== undefined && mesh !== 'kubernetes') throw new PlanError('--worker-statefulset only applies with --mesh kubernetes (the StatefulSet whose replicas scale sets)');
  if (mesh === 'kubernetes' && options.workerCpu !== undefined) throw new PlanError(KUBERNETES_WORKER_CPU);
  return mesh;
}

/** A StatefulSet name that leaves room for its pods' "-<ordinal>" in a 63-character label value (the pin label). */
function statefulSetName(value: string): string {
  const name = value.trim();
  if (!/^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/.test(name)) {
    throw new PlanError(`--worker-statefulset ${quoteValue(value)} is not a StatefulSet name: expected lower-case letters, digits and dashes, at most 52, e.g. l7mp-worker`);
  }
  return name;
}

export function buildScalePlan(options: CliOptions, host: HostFacts = currentHost()): ScalePlan {
  const text = options.workers ?? '1,2';
  const counts = text.split(',').map((part) => {
    const n = parseDecimal(part.trim());
    if (n === undefined || !Number.isInteger(n) || n < 1 || n > 16) {
      throw new PlanError(`--workers ${quoteValue(text)}: ${quoteValue(part.trim())} is not a worker count: expected whole numbers from 1 to 16, comma-separated, e.g. 1,2,4`);
    }
    return n;
  });
  if (new Set(counts).size !== counts.length) throw new PlanError(`--workers ${quoteValue(text)} names a count twice: give each once, e.g. 1,2,4`);
  const mesh = scaleMesh(options);
  if ((options.codecPair ?? '').includes(',')) throw new PlanError('--codec-pair: scale compares worker counts for one codec pair; give one, or run capacity for several');
  const sorted = [...counts].sort((a, b) => a - b);
  const { workerStatefulset, ...runOptions } = options;
  // With --mesh kubernetes the workers are the mesh's (whatever pods are ready when each search starts), so --workers
  // is not a run flag there: the StatefulSet is scaled to the count first.
  const perCount = (workers: number): CliOptions => (mesh === 'kubernetes' ? { ...runOptions, workers: undefined } : { ...runOptions, workers: String(workers) });
  return {
    counts: sorted,
    searches: sorted.map((workers) => ({ workers, ...buildCapacityPlan(perCount(workers), host) })),
    kubernetes: mesh === 'kubernetes' ? { statefulSet: statefulSetName(workerStatefulset ?? SCALE_DEFAULTS.workerStatefulset) } : null,
  };
}
