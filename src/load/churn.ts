/**
 * Churn: calls keep arriving at a fixed rate and each lasts its own holding time, as SIPp's `-r` with `-d` does, so
 * the offered load is rate x mean duration Erlang (a busy hour, not a ramp to a plateau). Pure: the schedule of
 * arrivals and holding times, and the arithmetic a plan and a summary need; the run places the calls.
 */

import { seededRandom } from '../random.js';

export type DurationDistribution = 'fixed' | 'exponential';

export interface ChurnPlan {
  /** New calls per second, for the whole of `arrivalsMs`. */
  ratePerSec: number;
  /** Mean holding time of a call (exactly this for fixed), ms. */
  callDurationMs: number;
  distribution: DurationDistribution;
  /** How long calls keep arriving, ms; the run then waits for the last calls to end. */
  arrivalsMs: number;
  /** Seed of the exponential holding times: the same seed gives the same calls. */
  seed: number;
}

/** Holding times are drawn no shorter than this (a call shorter than a second measures nothing) ... */
export const MIN_CALL_MS = 1000;
/** ... and no longer than this many means (the exponential's tail would otherwise keep a run open for hours). */
export const MAX_DURATION_MEANS = 10;

export interface Arrival {
  /** From the start of the run, ms. */
  dueMs: number;
  /** How long the call is held from its arrival, ms. */
  holdMs: number;
}

/** Calls the plan places: one every 1/rate seconds while arrivals last. */
export function arrivalCount(plan: Pick<ChurnPlan, 'ratePerSec' | 'arrivalsMs'>): number {
  return Math.max(1, Math.ceil((plan.arrivalsMs * plan.ratePerSec) / 1000 - 1e-9));
}

/** Offered load, Erlang: arrival rate x mean holding time. */
export function offeredErlang(plan: Pick<ChurnPlan, 'ratePerSec' | 'callDurationMs'>): number {
  return (plan.ratePerSec * plan.callDurationMs) / 1000;
}

/**
 * Calls up at once to size ports, threads and rtpengine's port range for: the offered load for fixed durations; for
 * exponential ones, whose count of calls up is Poisson with that mean, the mean plus five standard deviations
 * (exceeded about once in 3.5 million seconds).
 */
export function peakCalls(plan: Pick<ChurnPlan, 'ratePerSec' | 'callDurationMs' | 'distribution'>): number {
  const mean = offeredErlang(plan);
  const spread = plan.distribution === 'exponential' ? 5 * Math.sqrt(mean) : 0;
  return Math.max(1, Math.ceil(mean + spread) + 1);
}

/**
 * When the offered load holds: from one mean holding time after the start (fixed durations reach it exactly then;
 * exponential ones are within 1/e^3 after three means, so those take three) until arrivals stop, ms. Null when
 * arrivals stop before that: the run never reached its offered load.
 */
export function steadyWindow(plan: Pick<ChurnPlan, 'callDurationMs' | 'distribution' | 'arrivalsMs'>): { fromMs: number; toMs: number } | null {
  const fromMs = plan.callDurationMs * (plan.distribution === 'exponential' ? 3 : 1);
  return fromMs < plan.arrivalsMs ? { fromMs, toMs: plan.arrivalsMs } : null;
}

/** Every arrival of the plan, in order. */
export function* arrivals(plan: ChurnPlan): Generator<Arrival> {
  const n = arrivalCount(plan);
  const next = seededRandom(plan.seed);
  const cap = plan.callDurationMs * MAX_DURATION_MEANS;
  for (let i = 0; i < n; i++) {
    const dueMs = (i * 1000) / plan.ratePerSec;
    let holdMs = plan.callDurationMs;
    if (plan.distribution === 'exponential') {
      // Inverse transform: -mean x ln(1 - u), u in [0, 1); clamped to what a call can measure and a run can wait.
      holdMs = Math.min(cap, Math.max(MIN_CALL_MS, -plan.callDurationMs * Math.log(1 - next())));
    }
    yield { dueMs, holdMs };
  }
}

/** What a churn run carried, judged over its steady window. */
export interface ChurnFigures {
  ratePerSec: number;
  callDurationMs: number;
  distribution: DurationDistribution;
  offeredErlang: number;
  /** The steady window, s from the run's start; null when arrivals stopped before the offered load was reached. */
  window: { fromT: number; toT: number } | null;
  /** Mean calls whose media ran, sampled once a second in the window (carried load, Erlang). */
  carriedErlang: number | null;
  /** Calls that arrived in the window and were set up, per second: the set-up rate the system sustained under load. */
  setupsPerSec: number | null;
  /** Calls that arrived in the window and failed, per second. */
  failedPerSec: number | null;
}

/**
 * Pure: the churn figures from the timeline's calls-up samples (t = s since start, at the end of each second) and
 * each call's arrival (ms since start) and outcome.
 */
export function churnFigures(
  plan: ChurnPlan,
  points: readonly { t: number; callsUp: number }[],
  calls: readonly { dueMs: number; ok: boolean; failed: boolean }[],
): ChurnFigures {
  const base = { ratePerSec: plan.ratePerSec, callDurationMs: plan.callDurationMs, distribution: plan.distribution, offeredErlang: offeredErlang(plan) };
  const steady = steadyWindow(plan);
  if (steady === null) return { ...base, window: null, carriedErlang: null, setupsPerSec: null, failedPerSec: null };
  const inWindow = points.filter((p) => p.t * 1000 > steady.fromMs && p.t * 1000 <= steady.toMs);
  const arrived = calls.filter((c) => c.dueMs >= steady.fromMs && c.dueMs < steady.toMs);
  const seconds = (steady.toMs - steady.fromMs) / 1000;
  return {
    ...base,
    window: { fromT: steady.fromMs / 1000, toT: steady.toMs / 1000 },
    carriedErlang: inWindow.length === 0 ? null : inWindow.reduce((sum, p) => sum + p.callsUp, 0) / inWindow.length,
    setupsPerSec: arrived.filter((c) => c.ok).length / seconds,
    failedPerSec: arrived.filter((c) => c.failed).length / seconds,
  };
}
