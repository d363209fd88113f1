/**
 * `rtp-bench report A.json [B.json ...]`: results files of one kind (runs, capacity searches or scale searches) in a
 * table, and with --html on a page of charts. A file alone is shown as its command showed it.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { renderComparison, terminalSafe } from '../report/compare.js';
import { renderCapacityReport, renderScaleReport } from '../report/compare-search.js';
import { renderHtml } from '../report/html.js';
import { renderCapacityHtml } from '../report/capacity-html.js';
import { renderScaleHtml } from '../report/scale-html.js';
import { KIND_NAMES, oneLine, readResultsFile, ResultsFileError, type ResultsFile } from '../report/read.js';
import type { Results } from '../report/results.js';
import type { CapacityResults, ScaleResults } from '../report/search-results.js';

export interface ReportIo {
  /** isTTY: the better/worse marks are coloured on a terminal only. */
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
}

/** `rtp-bench report ... | head` closes stdout early: that is the reader's choice, not a failure to report. */
function ignoreBrokenPipe(stream: unknown): void {
  const s = stream as { on?: (event: string, listener: (err: NodeJS.ErrnoException) => void) => unknown };
  if (typeof s.on !== 'function') return;
  s.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

/**
 * Files of different kinds cannot share a table (a run has no capacity, a search no latency per packet): the
 * message names each file with its kind. null when they are all of one kind.
 */
export function mixedKinds(files: readonly ResultsFile[]): string | null {
  if (new Set(files.map((f) => f.kind)).size <= 1) return null;
  const named = files.map((f) => `${f.path} is ${KIND_NAMES[f.kind]}`).join(', ');
  return `report compares files of one kind, and these differ: ${named}; report them apart`;
}

/** The table and the page of files of one kind. */
function rendered(files: readonly ResultsFile[], color: boolean): { table: string; page: () => string } {
  const kind = files[0]?.kind;
  if (kind === 'capacity') {
    const list = files.map((f) => f.results as CapacityResults);
    return { table: renderCapacityReport(list, { color }), page: () => renderCapacityHtml(list) };
  }
  if (kind === 'scale') {
    const list = files.map((f) => f.results as ScaleResults);
    return { table: renderScaleReport(list, { color }), page: () => renderScaleHtml(list) };
  }
  const runs = files.map((f) => f.results as Results);
  return { table: renderComparison(runs, { color }), page: () => renderHtml(runs) };
}

/**
 * The report command: reads every file (each bad one gets a line of its own: "rtp-bench: FILE: problem"), refuses
 * files of different kinds, prints the comparison and, with `htmlPath`, writes the HTML page. Returns the exit code:
 * 0, or 2 for bad input.
 */
export async function runReport(files: readonly string[], htmlPath: string | undefined, io: ReportIo = process): Promise<number> {
  const read: ResultsFile[] = [];
  let bad = 0;
  for (const file of files) {
    try {
      read.push(await readResultsFile(file));
    } catch (err) {
      if (!(err instanceof ResultsFileError)) throw err;
      io.stderr.write(`rtp-bench: ${terminalSafe(err.message)}\n`);
      bad++;
    }
  }
  if (bad > 0) return 2;
  const mixed = mixedKinds(read);
  if (mixed !== null) {
    io.stderr.write(`rtp-bench: ${terminalSafe(mixed)}\n`);
    return 2;
  }
  ignoreBrokenPipe(io.stdout);
  const { table, page } = rendered(read, io.stdout.isTTY === true);
  io.stdout.write(table);
  if (htmlPath !== undefined) {
    const text = page();
    const tmp = `${htmlPath}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, text);
      await rename(tmp, htmlPath);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'its folder does not exist' : code === 'EISDIR' ? 'it is a directory' : oneLine(err instanceof Error ? err.message : String(err));
      io.stderr.write(`rtp-bench: --html ${terminalSafe(htmlPath)}: cannot write the page: ${terminalSafe(why)}\n`);
      return 2;
    }
    io.stdout.write(`html     ${htmlPath}\n`);
  }
  return 0;
}
