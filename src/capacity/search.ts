/**
 * The capacity search: the most concurrent calls whose step meets the SLO. The caller runs the steps (holds N
 * calls, measures the steady window); this module only decides which N comes next and what the answer is, so it is
 * tested on synthetic curves.
 *
 * Grow geometrically from `start` while steps pass (capped at `max`), then bisect between the largest count that
 * passed and the smallest that failed until they are within the resolution. A first step that fails bisects down
 * towards 0: zero calls meet any SLO, and are never run.
 *
 * Assumption: meeting the SLO is monotone in the call count on average (more calls never make latency or loss
 * better). Near the knee, noise breaks that for single steps: N may pass where N-1 failed. The search never
 * re-measures a count and never reports one that was not measured passing: `lo` only ever moves to a count that
 * passed and `hi` to one that failed, so the answer is the largest count that passed, with a count within the
 * resolution above it that failed. On a noisy curve that is *a* knee, not necessarily the mean one: an unlucky
 * failure reports low, a lucky pass high. Longer steps (less noise per step) narrow the spread.
 */
import { describeBreak, judge, type BrokenTerm, type SloMetric, type SloOp, type SloSpec, type StepFigures } from './slo.js';

export interface StepOutcome {
  /** The calls the step held: the count it was asked for. */
  calls: number;
  figures: StepFigures;
  /** Set when the generator, not the system under test, limited the step (Summary.generator.limited). */
  generatorLimited: string | null;
}

/** Absolute (within N calls) or relative to the best count so far (within N% of it); never finer than 1 call. */
export type Resolution = { calls: number } | { percent: number };

export interface SearchOptions<O extends StepOutcome = StepOutcome> {
  slo: SloSpec;
  /** Upper bound on calls: the search never runs a larger step. */
  max: number;
  /** First step's calls (default 10); a start above max starts at max. */
  start?: number;
  /** Each growing step is this many times the last (default 2), rounded up. */
  growth?: number;
  /** When to stop bisecting (default 5% of the best count so far, at least 1 call). */
  resolution?: Resolution;
  /** Called after each step, before the next one starts: for progress. */
  onStep?: (step: StepRecord<O>) => void;
}

export const SEARCH_DEFAULTS = Object.freeze({ start: 10, growth: 2, resolution: Object.freeze({ percent: 5 }) });

export interface StepRecord<O extends StepOutcome = StepOutcome> {
  /** 1 for the first step. */
  index: number;
  phase: 'grow' | 'bisect';
  calls: number;
  /** The SLO verdict on the step's figures (on a generator-limited step the figures are the generator's). */
  pass: boolean;
  broke: BrokenTerm[];
  figures: StepFigures;
  generatorLimited: string | null;
  /** What runStep returned, untouched: whatever else the caller keeps per step. */
  outcome: O;
}

export interface CapacityLimit {
  /** The first broken term (in the SLO's order) of the smallest step that failed. */
  term: string;
  metric: SloMetric;
  op: SloOp;
  limit: number;
  actual: number | null;
  atCalls: number;
}

export interface CapacityResult<O extends StepOutcome = StepOutcome> {
  /** The largest count measured passing (0 if none did); null when the generator limited the search. */
  maxCalls: number | null;
  limitedBy: CapacityLimit | null;
  generatorLimited: boolean;
  /** Why the search ended: the SLO broke above maxCalls, --max was reached, or the generator limited a step. */
  stop: 'slo' | 'max' | 'generator';
  /** One line, e.g. `capacity: 18 calls - limited by latency.p99 (71 ms > 60 ms at 20 calls)`. */
  reason: string;
  steps: StepRecord<O>[];
}

export async function searchCapacity<O extends StepOutcome>(
  options: SearchOptions<O>,
  runStep: (calls: number) => Promise<O>,
): Promise<CapacityResult<O>> {
  const { max, start, growth, resolution } = checkedOptions(options);
  const steps: StepRecord<O>[] = [];

  const run = async (calls: number, phase: StepRecord['phase']): Promise<StepRecord<O>> => {
    const outcome = await runStep(calls);
    if (outcome.calls !== calls) {
      // The answer is a count of calls; a step that measured another count would make it ambiguous.
      throw new Error(`capacity step ${steps.length + 1}: runStep(${calls}) returned an outcome for ${outcome.calls} calls`);
    }
    const verdict = judge(options.slo, outcome.figures);
    const record: StepRecord<O> = {
      index: steps.length + 1,
      phase,
      calls,
      pass: verdict.pass,
      broke: verdict.broke,
      figures: outcome.figures,
      generatorLimited: outcome.generatorLimited,
      outcome,
    };
    steps.push(record);
    options.onStep?.(record);
    return record;
  };

  // lo: the largest count measured passing (0: none yet). hi: the smallest step measured failing.
  let lo = 0;
  let hi: StepRecord<O> | undefined;
  let calls = Math.min(start, max);
  while (hi === undefined) {
    const step = await run(calls, 'grow');
    if (step.generatorLimited !== null) return generatorLimitedResult(step, lo, steps);
    if (!step.pass) {
      hi = step;
      break;
    }
    lo = calls;
    if (calls >= max) {
      return { maxCalls: lo, limitedBy: null, generatorLimited: false, stop: 'max', reason: `capacity: at least ${plural(lo)} - reached --max without breaking the SLO`, steps };
    }
    // toPrecision: 10 x 1.1 is 11.000000000000002, which must not round up to 12.
    calls = Math.min(max, Math.max(calls + 1, Math.ceil(Number((calls * growth).toPrecision(12)))));
  }

  // Bisection: while the gap is wider than the resolution, the midpoint is strictly between lo and hi.
  while (hi.calls - lo > resolution(lo)) {
    const mid = Math.floor((lo + hi.calls) / 2);
    const step = await run(mid, 'bisect');
    if (step.generatorLimited !== null) return generatorLimitedResult(step, lo, steps);
    if (step.pass) lo = mid;
    else hi = step;
  }
  return sloResult(lo, hi, steps);
}

function checkedOptions(options: Omit<SearchOptions, 'onStep' | 'slo'>): { max: number; start: number; growth: number; resolution: (best: number) => number } {
  const { max, start = SEARCH_DEFAULTS.start, growth = SEARCH_DEFAULTS.growth, resolution = SEARCH_DEFAULTS.resolution } = options;
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`capacity search: max is ${max}: expected a whole number of calls, 1 or more`);
  if (!Number.isSafeInteger(start) || start < 1) throw new RangeError(`capacity search: start is ${start}: expected a whole number of calls, 1 or more`);
  if (!Number.isFinite(growth) || growth <= 1) throw new RangeError(`capacity search: growth is ${growth}: expected a factor above 1, e.g. 2`);
  if ('calls' in resolution) {
    const c = resolution.calls;
    if (!Number.isFinite(c) || c < 1) throw new RangeError(`capacity search: resolution is ${c} calls: expected 1 or more`);
    return { max, start, growth, resolution: () => c };
  }
  const pct = resolution.percent;
  if (!Number.isFinite(pct) || pct <= 0 || pct >= 100) throw new RangeError(`capacity search: resolution is ${pct}%: expected above 0 and below 100`);
  // At least 1 call: below that the gap between whole counts can never close.
  return { max, start, growth, resolution: (best) => Math.max(1, (best * pct) / 100) };
}

function sloResult<O extends StepOutcome>(lo: number, hi: StepRecord<O>, steps: StepRecord<O>[]): CapacityResult<O> {
  const [first, ...others] = hi.broke;
  if (first === undefined) throw new Error(`capacity step ${hi.index} failed with no broken term`);
  const limitedBy: CapacityLimit = { term: first.term, metric: first.metric, op: first.op, limit: first.limit, actual: first.actual, atCalls: hi.calls };
  const also = others.length > 0 ? `; ${others.map((b) => b.metric).join(', ')} broke too` : '';
  const broke = `${first.metric} (${describeBreak(first)} at ${plural(hi.calls)})${also}`;
  const reason = lo > 0 ? `capacity: ${plural(lo)} - limited by ${broke}` : `capacity: 0 calls - no step met the SLO, down to ${plural(hi.calls)}: limited by ${broke}`;
  return { maxCalls: lo, limitedBy, generatorLimited: false, stop: 'slo', reason, steps };
}

function generatorLimitedResult<O extends StepOutcome>(step: StepRecord<O>, lo: number, steps: StepRecord<O>[]): CapacityResult<O> {
  // The figures of this step are the generator's: neither its pass nor its failure says anything of the system.
  const below = lo > 0 ? `; ${plural(lo)} passed before it, a lower bound only` : '';
  return {
    maxCalls: null,
    limitedBy: null,
    generatorLimited: true,
    stop: 'generator',
    reason: `generator-limited at step ${step.index} (${plural(step.calls)}), no capacity figure${below}: ${step.generatorLimited ?? ''}`,
    steps,
  };
}

function plural(calls: number): string {
  return `${calls} call${calls === 1 ? '' : 's'}`;
}
