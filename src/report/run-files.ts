/**
 * The files a run (or a merge of shards) writes: the results JSON, its HTML page next to it, and the exports asked
 * for (--csv timeline, --calls-csv, --hgrm folder). Pure: the caller writes them (src/report/output.ts writeRunFiles),
 * the results file first and the page second, as the callers report their paths.
 */
import { join } from 'node:path';
import { resultsText, type Results } from './results.js';
import { htmlPathFor, renderHtml } from './html.js';
import { timelineCsv } from '../stats/timeline.js';
import { callsCsv } from './calls-csv.js';
import { hgrmFiles } from './hgrm.js';

export interface Exports {
  csv: string | null;
  callsCsv: string | null;
  hgrm: string | null;
}

export function runFiles(results: Results, output: string, exports: Exports): { path: string; text: string }[] {
  return [
    { path: output, text: resultsText(results) },
    // The same figures as charts: what a person opens first.
    { path: htmlPathFor(output), text: renderHtml([results]) },
    ...(exports.csv === null ? [] : [{ path: exports.csv, text: timelineCsv(results.timeline) }]),
    ...(exports.callsCsv === null ? [] : [{ path: exports.callsCsv, text: callsCsv(results.calls) }]),
    ...(exports.hgrm === null ? [] : hgrmFiles(results.histograms).map((f) => ({ path: join(exports.hgrm!, f.name), text: f.text }))),
  ];
}
