/**
 * The results files of `rtp-bench capacity` (kind "capacity") and `rtp-bench scale` (kind "scale"): their shape
 * (results/README.md documents it field by field) and the pure steps from a finished search to that shape. Here, not
 * in src/commands, so that the report reads these files without importing the commands that write them.
 */
import type { RunPlan } from '../run-plan.js';
import type { CapacityResult, StepOutcome, StepRecord } from '../capacity/search.js';
import type { CapacityPlan } from '../capacity/plan.js';
import type { Environment } from './environment.js';
import type { TimelinePoint, WorkerFigures } from '../stats/timeline.js';
import { RESULTS_FORMAT } from './results.js';

/** What a capacity step measured besides its SLO figures: when, on which workers, and the packets of its window. */
export interface StepMeasure {
  /** The window, in seconds of the profile's timeline. */
  window: { fromT: number; toT: number };
  workers: WorkerFigures[];
  packets: { sent: number; received: number; lostA3: number; seconds: number } | null;
  lossPct: number | null;
  /** Calls that failed during the step, by cause: how many, and the first one's message (what to do, where known). */
  failures: Record<string, { count: number; message: string }>;
}

/** What runStep hands the search: the step's figures and its measure. */
export type CapacityStepOutcome = StepOutcome & StepMeasure;

/** One step as the file keeps it: the search's verdict and the step's measure side by side, nothing twice. */
export type CapacityStep = Omit<StepRecord, 'outcome'> & StepMeasure;

/** The answer of one search (one codec pair on one deployment). */
export interface CapacitySearch {
  /** The most calls a step held while meeting the SLO; null when the generator limited the search or it was interrupted. */
  maxCalls: number | null;
  limitedBy: CapacityResult['limitedBy'];
  generatorLimited: boolean;
  /** The SLO the steps were judged against, as --slo text. */
  slo: string;
  stop: CapacityResult['stop'];
  reason: string;
  /** rtpengine CPU per call-second at the answer, summed over workers, ms; null when unknown. */
  cpuMsPerCallSecond: number | null;
  /** Calls one core of rtpengine carries at that cost: 1000 / cpuMsPerCallSecond; null when unknown. */
  callsPerCore: number | null;
  steps: CapacityStep[];
}

/** How the search stepped (--start, --max, --step-hold, --resolution). */
export type SearchSettings = Pick<CapacityPlan, 'start' | 'max' | 'stepHoldMs' | 'resolution'>;

export interface PairCapacity {
  codecPair: string;
  capacity: CapacitySearch;
  timeline: TimelinePoint[];
  wallMs: number;
}

/** What both kinds of search file start with. */
interface SearchFile {
  format: number;
  runId: string;
  startedAt: string;
  /** The run plan the steps used (`calls` = --max); for scale, the smallest count's. */
  plan: RunPlan;
  /** The SLO as --slo text. */
  slo: string;
  search: SearchSettings;
}

export interface CapacityResults extends SearchFile {
  kind: 'capacity';
  environment: Environment | null;
  /** The one profile's answer, when the search had one codec pair: `capacity.maxCalls`. */
  capacity?: CapacitySearch;
  profiles: PairCapacity[];
}

export interface ScalePoint {
  workers: number;
  maxCalls: number | null;
  callsPerWorker: number | null;
  /** capacity(N) / (N/N0 x capacity(N0)); null when either is unknown. */
  efficiency: number | null;
  limitedBy: string | null;
  generatorLimited: boolean;
}

export interface ScaleResults extends SearchFile {
  kind: 'scale';
  scale: { points: ScalePoint[] };
  searches: { workers: number; profile: PairCapacity | null }[];
}

/** What an interrupted search that never finished a step answers. */
const NO_ANSWER: CapacityResult<CapacityStepOutcome> = { maxCalls: null, limitedBy: null, generatorLimited: false, stop: 'slo', reason: 'interrupted before an answer', steps: [] };

/**
 * One search's answer as the file keeps it: steps flattened (the search's record and the step's measure were two
 * objects repeating calls and figures), and the cost at the answer: CPU per call-second over the workers of the
 * largest passing step, which is what a capacity planner multiplies.
 */
export function capacitySearch(result: CapacityResult<CapacityStepOutcome> | null, slo: string): CapacitySearch {
  const found = result ?? NO_ANSWER;
  const steps = found.steps.map(({ outcome, ...record }): CapacityStep => ({
    ...record,
    window: outcome.window,
    workers: outcome.workers,
    packets: outcome.packets,
    lossPct: outcome.lossPct,
    failures: outcome.failures,
  }));
  const best = found.maxCalls === null ? undefined : steps.filter((s) => s.pass && s.calls === found.maxCalls).pop();
  const cpuSum = best?.workers.reduce<number | null>((sum, w) => (w.cpuPct === null || sum === null ? null : sum + w.cpuPct), 0) ?? null;
  // cpuPct is ms of CPU per 10 ms of wall time, so per second cpuPct x 10 ms; per call-second divide by the calls.
  const cpuMsPerCallSecond = best === undefined || cpuSum === null || best.calls === 0 ? null : (cpuSum * 10) / best.calls;
  return {
    maxCalls: found.maxCalls,
    limitedBy: found.limitedBy,
    generatorLimited: found.generatorLimited,
    slo,
    stop: found.stop,
    reason: found.reason,
    cpuMsPerCallSecond,
    callsPerCore: cpuMsPerCallSecond === null || cpuMsPerCallSecond <= 0 ? null : 1000 / cpuMsPerCallSecond,
    steps,
  };
}

/** The capacity results file's content; a single profile's answer is also at the top (`capacity.maxCalls`). */
export function capacityResults(fields: Omit<CapacityResults, 'format' | 'kind' | 'capacity'>): CapacityResults {
  const only = fields.profiles.length === 1 ? fields.profiles[0] : undefined;
  return { format: RESULTS_FORMAT, kind: 'capacity', ...fields, ...(only === undefined ? {} : { capacity: only.capacity }) };
}

/** The scale results file's content. */
export function scaleResults(fields: Omit<ScaleResults, 'format' | 'kind'>): ScaleResults {
  return { format: RESULTS_FORMAT, kind: 'scale', ...fields };
}

/** Pure: each count's capacity against a linear extrapolation from the smallest count. */
export function scalePoints(found: readonly { workers: number; maxCalls: number | null; limitedBy: string | null; generatorLimited: boolean }[]): ScalePoint[] {
  const base = found[0];
  return found.map((f) => ({
    workers: f.workers,
    maxCalls: f.maxCalls,
    callsPerWorker: f.maxCalls === null ? null : f.maxCalls / f.workers,
    efficiency: base === undefined || base.maxCalls === null || base.maxCalls === 0 || f.maxCalls === null ? null : f.maxCalls / ((f.workers / base.workers) * base.maxCalls),
    limitedBy: f.limitedBy,
    generatorLimited: f.generatorLimited,
  }));
}

/** A scale point from one count's search: what limited it in a word (the broken term, or --max). */
export function scalePointsOf(searches: ScaleResults['searches']): ScalePoint[] {
  return scalePoints(
    searches.map(({ workers, profile }) => ({
      workers,
      maxCalls: profile?.capacity.maxCalls ?? null,
      limitedBy: profile?.capacity.limitedBy?.term ?? (profile?.capacity.stop === 'max' ? 'reached --max' : null),
      generatorLimited: profile?.capacity.generatorLimited ?? false,
    })),
  );
}
