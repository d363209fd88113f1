/**
 * The results file: everything needed to compare runs later or re-derive any figure. Format documented in
 * results/README.md; `format` is bumped when a field changes meaning.
 */
import type { RunPlan } from '../run-plan.js';
import type { CallRecord } from '../call.js';
import type { Summary } from '../stats/summary.js';
import type { Environment } from './environment.js';
import type { TimelinePoint } from '../stats/timeline.js';

/**
 * The format every results file is written in. 3: capacity and scale files keep each search's answer as `capacity`
 * with flat steps (format 2 had `result`, each step's measure nested in `outcome`); a run's fields are as in 2.
 */
export const RESULTS_FORMAT = 3;

/** Formats whose runs this rtp-bench reads: a run's fields did not change from 2 to 3. */
export const RUN_FORMATS_READ: readonly number[] = [2, 3];

/** A merged run's shard: which it was and how its generator fared (src/report/merge.ts). */
export interface ShardRecord {
  index: number;
  count: number;
  file: string;
  startedAt: string;
  calls: { attempted: number; ok: number; failed: number; interrupted: number };
  generator: Summary['generator'];
}

export interface Results {
  runId: string;
  startedAt: string;
  /** --shard: this run was shard `index` of `count` (1-based); null or absent: the whole plan. In a merged file, absent. */
  shard?: { index: number; count: number } | null;
  /** --start-at, ISO; null or absent: started when ready. */
  startAt?: string | null;
  /** A merge of shards (rtp-bench merge): each shard's own figures, by index; absent otherwise. */
  shards?: ShardRecord[];
  plan: RunPlan;
  environment: Environment;
  summary: Summary;
  /** Compressed HDR histograms (hdr-histogram-js base64), keyed by metric name, in the metric's recorded units. */
  histograms: Record<string, string>;
  /** One point a second (src/stats/timeline.ts): the time charts and the CSV come from here. */
  timeline: TimelinePoint[];
  calls: CallRecord[];
}

/** The results file's text: the format version first, then the run. */
export function resultsText(results: Results): string {
  return `${JSON.stringify({ format: RESULTS_FORMAT, ...results }, null, 1)}\n`;
}
