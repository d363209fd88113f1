/**
 * The results file: everything needed to compare runs later or re-derive any figure. Format documented in
 * results/README.md; `format` is bumped when a field changes meaning.
 */
import type { RunPlan } from '../run-plan.js';
import type { CallRecord } from '../call.js';
import type { Summary } from '../stats/summary.js';
import type { Environment } from './environment.js';
import type { TimelinePoint } from '../stats/timeline.js';

export const RESULTS_FORMAT = 2;

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
