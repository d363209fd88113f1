/**
 * `rtp-bench merge FILE... [--output merged.json]`: the results files of the shards of one plan (--shard I/N) ->
 * one results file and its HTML page, which `report` reads like any run. The checks and the arithmetic are in
 * src/report/merge.ts; this module reads and writes. Exit 0, or 2 for files that cannot be merged (each named).
 */
import { terminalSafe } from '../report/compare.js';
import { readResultsFile, ResultsFileError, KIND_NAMES } from '../report/read.js';
import { MergeError, mergeShards, type ShardFile } from '../report/merge.js';
import { defaultResultsPath, writeRunFiles } from '../report/output.js';
import { runFiles } from '../report/run-files.js';
import { renderSummary } from '../report/table.js';
import { checkSlo } from '../report/slo.js';

export interface MergeRequest {
  files: string[];
  /** null: results/<run id>.json under the current folder. */
  output: string | null;
  allowPartial: boolean;
  csv: string | null;
  callsCsv: string | null;
  hgrm: string | null;
}

export interface MergeIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export async function runMerge(request: MergeRequest, io: MergeIo = process): Promise<number> {
  const read: ShardFile[] = [];
  let bad = 0;
  for (const path of request.files) {
    try {
      const file = await readResultsFile(path);
      if (file.kind !== 'run') {
        io.stderr.write(`rtp-bench: ${terminalSafe(path)} is ${KIND_NAMES[file.kind]}: merge takes the results of a sharded run\n`);
        bad++;
        continue;
      }
      read.push({ path, results: file.results });
    } catch (err) {
      if (!(err instanceof ResultsFileError)) throw err;
      io.stderr.write(`rtp-bench: ${terminalSafe(err.message)}\n`);
      bad++;
    }
  }
  if (bad > 0) return 2;
  let merged;
  try {
    merged = mergeShards(read, { allowPartial: request.allowPartial });
  } catch (err) {
    if (!(err instanceof MergeError)) throw err;
    io.stderr.write(`rtp-bench: merge: ${terminalSafe(err.message)}\n`);
    return 2;
  }
  for (const w of merged.warnings) io.stderr.write(`rtp-bench: warning: ${terminalSafe(w)}\n`);
  const { results } = merged;
  const output = request.output ?? defaultResultsPath(results.runId);
  const written = await writeRunFiles(runFiles(results, output, request));
  if (written.fallbackReason !== null) io.stderr.write(`rtp-bench: ${written.fallbackReason}; the merged results were written to ${written.paths[0]} instead\n`);
  io.stdout.write(renderSummary(results.plan, results.summary, results.environment, checkSlo(results.plan.slo, results.summary), results.calls));
  io.stdout.write(`merged   ${results.shards?.length ?? 0} of ${results.plan.shard?.count ?? 0} shards of run ${results.runId}\nresults: ${written.paths[0]}\ncharts:  ${written.paths[1]}\n`);
  return 0;
}
