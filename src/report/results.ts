/**
 * The results file: everything needed to compare runs later or re-derive any figure. Format documented in
 * results/README.md; `format` is bumped when a field changes meaning.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { packageRoot } from '../paths.js';
import type { RunPlan } from '../run-plan.js';
import type { CallRecord } from '../call.js';
import type { Summary } from '../stats/summary.js';
import type { Environment } from './environment.js';

export const RESULTS_FORMAT = 1;

export interface Results {
  runId: string;
  startedAt: string;
  plan: RunPlan;
  environment: Environment;
  summary: Summary;
  /** Compressed HDR histograms (hdr-histogram-js base64), keyed by metric name, in the metric's recorded units. */
  histograms: Record<string, string>;
  calls: CallRecord[];
}

export function defaultResultsPath(runId: string): string {
  return join(packageRoot(), 'results', `${runId}.json`);
}

/** Written to a temporary name and renamed, so an interrupted write never leaves half a file under the real name. */
export async function writeResults(path: string, results: Results): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify({ format: RESULTS_FORMAT, ...results }, null, 1)}\n`);
  await rename(tmp, path);
}
