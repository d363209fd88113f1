/** `rtp-bench report A.json [B.json ...]`: compare results files in a table, and with --html on a page of charts. */
import { rename, rm, writeFile } from 'node:fs/promises';
import type { Results } from '../report/results.js';
import { oneLine, readResultsFile, renderComparison, ResultsFileError, terminalSafe } from '../report/compare.js';
import { renderHtml } from '../report/html.js';

export interface ReportIo {
  stdout: { write(text: string): unknown };
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
 * The report command: reads every file (each bad one gets a line of its own: "rtp-bench: FILE: problem"), prints the
 * comparison and, with `htmlPath`, writes the HTML page. Returns the exit code: 0, or 2 for bad input.
 */
export async function runReport(files: readonly string[], htmlPath: string | undefined, io: ReportIo = process): Promise<number> {
  const runs: Results[] = [];
  let bad = 0;
  for (const file of files) {
    try {
      runs.push(await readResultsFile(file));
    } catch (err) {
      if (!(err instanceof ResultsFileError)) throw err;
      io.stderr.write(`rtp-bench: ${terminalSafe(err.message)}\n`);
      bad++;
    }
  }
  if (bad > 0) return 2;
  ignoreBrokenPipe(io.stdout);
  io.stdout.write(renderComparison(runs));
  if (htmlPath !== undefined) {
    const page = renderHtml(runs);
    const tmp = `${htmlPath}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, page);
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
