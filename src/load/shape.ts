/**
 * When a run's calls arrive and end. Pure, so that the arrivals of N shards can be checked against the unsharded
 * run's (test/shard.test.ts).
 */
import type { RunPlan } from '../run-plan.js';
import { arrivals, steadyWindow } from './churn.js';
import { globalIndex } from '../shard.js';

/**
 * When each call arrives and ends (ms from the start), when the last one ends, and the window the load is steady in.
 * `index` is the call's number in the whole plan: a shard's are every Nth (src/shard.ts).
 */
export interface LoadShape {
  arrivals: { index: number; dueMs: number; endMs: number }[];
  endMs: number;
  steady: { fromMs: number; toMs: number };
}

/** Ramp and hold: calls arrive at the ramp rate and all end together. Churn: each call ends after its own holding time. */
export function loadShape(plan: Pick<RunPlan, 'calls' | 'rampPerSec' | 'holdMs' | 'churn' | 'shard'>): LoadShape {
  const { index: shard, count } = plan.shard ?? { index: 1, count: 1 };
  // The whole plan's rate: shard I's j-th call is the plan's call j*N + I-1, due when it would be in one run.
  const totalRate = plan.shard?.totalRatePerSec ?? plan.rampPerSec;
  if (plan.churn === null) {
    const totalCalls = plan.shard?.totalCalls ?? plan.calls;
    const rampMs = (totalCalls * 1000) / totalRate;
    const endMs = rampMs + plan.holdMs;
    const calls = Array.from({ length: plan.calls }, (_, j) => globalIndex(j, shard, count));
    return { arrivals: calls.map((index) => ({ index, dueMs: (index * 1000) / totalRate, endMs })), endMs, steady: { fromMs: rampMs, toMs: endMs } };
  }
  const phaseMs = ((shard - 1) * 1000) / totalRate;
  const shape = [...arrivals(plan.churn)].map((a, j) => ({ index: globalIndex(j, shard, count), dueMs: a.dueMs + phaseMs, endMs: a.dueMs + phaseMs + a.holdMs }));
  const endMs = shape.reduce((end, a) => Math.max(end, a.endMs), 0);
  // Without a steady window (arrivals stop before the offered load is reached), the cost is the whole run's.
  return { arrivals: shape, endMs, steady: steadyWindow(plan.churn) ?? { fromMs: endMs, toMs: endMs } };
}

