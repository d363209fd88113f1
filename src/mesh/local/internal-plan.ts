/**
 * What `rtp-bench --internal-plan FILE` reads: the benchmark half of --mesh local (src/mesh/local/run.ts), started
 * by rtp-bench itself inside the client namespace. The plan needs no more checking; the run id is kept.
 */
import type { RunPlan } from '../../run-plan.js';
import type { CapacityPlan } from '../../capacity/plan.js';

export interface InternalPlan {
  runId: string;
  plan: RunPlan;
  /** A capacity search instead of a run. */
  capacity?: CapacityPlan;
}

export const INTERNAL_PLAN_FLAG = '--internal-plan';
