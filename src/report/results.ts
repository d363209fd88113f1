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

export interface Results {
  runId: string;
  startedAt: string;
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
