/**
 * `rtp-bench report`: results files side by side. The figures a capacity planner compares (calls, failures by
 * cause, loss, latency, jitter, setup, MOS, the generator's own health) one column per run, and run2/run1 when
 * there are exactly two ("2 workers vs 1", "opus:pcmu vs pcmu:pcmu"). The same rows feed the HTML page's key-figures
 * table (html.ts), so the terminal and the page never disagree.
 */
import { readFile } from 'node:fs/promises';
import Table from 'cli-table3';
import { RESULTS_FORMAT, type Results } from './results.js';
import type { Percentiles } from '../stats/histogram.js';

export interface ComparisonRow {
  label: string;
  /** One formatted cell per run; "-" where the run recorded nothing. */
  cells: string[];
  /** The numbers behind the cells, for the ratio; null where there is none. Absent: a text row (no ratio). */
  values?: (number | null)[];
  /** A row under another (failure causes under "calls failed"). */
  indent?: boolean;
}

const NONE = '-';

function fixed(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? NONE : v.toFixed(digits);
}

function holdText(ms: number): string {
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))} s`;
  const min = Math.floor(ms / 60_000);
  const s = Math.round((ms - min * 60_000) / 1000);
  return s === 0 ? `${min} min` : `${min} min ${s} s`;
}

/** How a run's headers and legends name it, so that "1 worker" and "2 workers" can be told apart at a glance. */
export interface RunDescription {
  codecPair: string;
  /** "embedded, 2 workers" or "none (calibration)". */
  rtpengine: string;
  /** The first worker's version, when known. */
  rtpengineVersion: string | null;
  /** "10, 10/s, 5 s": calls, ramp, hold. */
  load: string;
  /** codec pair and rtpengine in a few words, for legends. */
  short: string;
}

export function describeRun(r: Results): RunDescription {
  const pair = r.plan.codecPair;
  const env = r.environment.rtpengine;
  const direct = env.kind === 'none' || r.plan.target.kind === 'direct';
  const names = `${pair.a.name}:${pair.b.name}`;
  const codecPair = `${names}${pair.transcoded && !direct ? ' (transcoded)' : ''}`;
  const n = env.workers.length;
  const version = env.workers[0]?.version;
  const rtpengine = direct ? 'none (calibration)' : `${env.kind}, ${n} worker${n === 1 ? '' : 's'}`;
  const load = `${r.plan.calls}, ${Number(r.plan.rampPerSec.toFixed(3))}/s, ${holdText(r.plan.holdMs)}`;
  const short = `${names}, ${direct ? 'calibration' : `${n} worker${n === 1 ? '' : 's'}`}, ${r.plan.calls} calls`;
  return { codecPair, rtpengine, rtpengineVersion: direct ? null : (version ?? null), load, short };
}

function percentileRow(runs: readonly Results[], label: string, pick: (r: Results) => Percentiles | null, key: 'p50' | 'p99', digits: number): ComparisonRow {
  const values = runs.map((r) => pick(r)?.[key] ?? null);
  return { label, cells: values.map((v) => fixed(v, digits)), values };
}

function numberRow(label: string, values: (number | null)[], digits: number, indent = false): ComparisonRow {
  return { label, cells: values.map((v) => fixed(v, digits)), values, ...(indent ? { indent } : {}) };
}

/** The comparison, row by row, in the order both the terminal table and the HTML table show it. */
export function comparisonRows(runs: readonly Results[]): ComparisonRow[] {
  const described = runs.map(describeRun);
  const rows: ComparisonRow[] = [
    { label: 'codec pair', cells: described.map((d) => d.codecPair) },
    { label: 'rtpengine', cells: described.map((d) => d.rtpengine) },
  ];
  if (described.some((d) => d.rtpengineVersion !== null)) {
    rows.push({ label: 'rtpengine version', cells: described.map((d) => d.rtpengineVersion ?? NONE) });
  }
  rows.push({ label: 'calls, ramp, hold', cells: described.map((d) => d.load) });
  rows.push({ label: 'media threads', cells: runs.map((r) => String(r.summary.generator.threads)) });
  if (runs.some((r) => r.summary.interrupted)) {
    rows.push({ label: 'interrupted', cells: runs.map((r) => (r.summary.interrupted ? 'YES: partial' : 'no')) });
  }
  rows.push({
    label: 'calls ok / attempted',
    cells: runs.map((r) => `${r.summary.calls.ok}/${r.summary.calls.attempted}`),
    values: runs.map((r) => r.summary.calls.ok),
  });
  rows.push(numberRow('calls failed', runs.map((r) => r.summary.calls.failed), 0));
  const causes = [...new Set(runs.flatMap((r) => Object.keys(r.summary.calls.failedByCause)))].sort();
  for (const cause of causes) {
    rows.push(numberRow(cause, runs.map((r) => r.summary.calls.failedByCause[cause] ?? 0), 0, true));
  }
  // No packet sent means no media was measured: "-", not a 0% loss.
  rows.push(numberRow('loss % (all streams)', runs.map((r) => (r.summary.packets.sent > 0 ? r.summary.packets.lossPct : null)), 3));
  rows.push(percentileRow(runs, 'latency p50 ms', (r) => r.summary.latencyMs, 'p50', 2));
  rows.push(percentileRow(runs, 'latency p99 ms', (r) => r.summary.latencyMs, 'p99', 2));
  rows.push(percentileRow(runs, 'jitter p50 ms', (r) => r.summary.jitterMs, 'p50', 2));
  rows.push(percentileRow(runs, 'jitter p99 ms', (r) => r.summary.jitterMs, 'p99', 2));
  rows.push(percentileRow(runs, 'setup p50 ms', (r) => r.summary.setupMs, 'p50', 2));
  rows.push(percentileRow(runs, 'setup p99 ms', (r) => r.summary.setupMs, 'p99', 2));
  rows.push(percentileRow(runs, 'MOS p50 (E-model)', (r) => r.summary.mos, 'p50', 2));
  rows.push(percentileRow(runs, 'rtpengine MOS p50', (r) => r.summary.rtpengineMos, 'p50', 1));
  rows.push(numberRow('generator CPU %', runs.map((r) => r.summary.generator.cpuPct), 0));
  rows.push(numberRow('generator us / packet op', runs.map((r) => r.summary.generator.cpuUsPerPacketOp), 1));
  rows.push(percentileRow(runs, 'send lateness p99 ms', (r) => r.summary.generator.sendLatenessMs, 'p99', 2));
  if (runs.some((r) => r.summary.generator.saturated)) {
    rows.push({ label: 'generator saturated', cells: runs.map((r) => (r.summary.generator.saturated ? 'YES' : 'no')) });
  }
  return rows;
}

/** run2 / run1 as "1.85x"; "=" when both are 0, "-" when there is nothing to divide by. */
export function ratioText(first: number | null | undefined, second: number | null | undefined): string {
  if (first === null || first === undefined || second === null || second === undefined) return NONE;
  if (!Number.isFinite(first) || !Number.isFinite(second)) return NONE;
  if (first === 0) return second === 0 ? '=' : NONE;
  const r = second / first;
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

/** Text from a results file, made safe for a terminal: control characters (escape sequences) become "?". */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** The terminal table: one column per run, run2/run1 when there are exactly two runs. */
export function renderComparison(runs: readonly Results[]): string {
  const ratio = runs.length === 2;
  const head = ['', ...runs.map((r, i) => terminalSafe(`${i + 1}: ${r.runId}`)), ...(ratio ? ['2 / 1'] : [])];
  const table = new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    colAligns: ['left', ...runs.map(() => 'right' as const), ...(ratio ? (['right'] as const) : [])],
  });
  for (const row of comparisonRows(runs)) {
    const label = row.indent ? `  ${terminalSafe(row.label)}` : terminalSafe(row.label);
    const cells = row.cells.map(terminalSafe);
    const extra = ratio ? [row.values ? ratioText(row.values[0], row.values[1]) : ''] : [];
    table.push([label, ...cells, ...extra]);
  }
  const lines = [table.toString()];
  runs.forEach((r, i) => {
    if (r.summary.generator.saturated) lines.push(`WARNING  run ${i + 1}: ${terminalSafe(r.summary.generator.saturated)}`);
  });
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading results files, and the report command itself.

/** A file `report` cannot use; the message names the file and says what is wrong, on one line. */
export class ResultsFileError extends Error {
  override readonly name = 'ResultsFileError';

  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads and checks one results file (results/README.md): JSON, `format` 1, a summary and a plan. The parts the
 * report reads are checked too, so that a hand-edited or truncated file fails here with its name rather than deep in
 * a chart. Missing `calls` or `histograms` read as empty.
 */
export async function readResultsFile(path: string): Promise<Results> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ResultsFileError(path, 'no such file');
    if (code === 'EISDIR') throw new ResultsFileError(path, 'is a directory, not a results file');
    if (code === 'EACCES' || code === 'EPERM') throw new ResultsFileError(path, 'cannot be read: permission denied');
    throw new ResultsFileError(path, `cannot be read: ${oneLine(err instanceof Error ? err.message : String(err))}`);
  }
  if (text.trim() === '') throw new ResultsFileError(path, 'is empty, not an rtp-bench results file');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ResultsFileError(path, `is not JSON (${oneLine(err instanceof Error ? err.message : String(err))})`);
  }
  return checkResults(path, data);
}

/** The checks of readResultsFile on parsed JSON. */
export function checkResults(path: string, data: unknown): Results {
  const not = (why: string): ResultsFileError => new ResultsFileError(path, `is not an rtp-bench results file: ${why}`);
  if (!isObject(data)) throw not(`expected a JSON object, found ${Array.isArray(data) ? 'an array' : data === null ? 'null' : typeof data}`);
  if (!('format' in data)) throw not('it has no "format" field');
  if (data['format'] !== RESULTS_FORMAT) {
    const format = oneLine(JSON.stringify(data['format']) ?? String(data['format'])).slice(0, 40);
    throw new ResultsFileError(path, `has results format ${format}; this rtp-bench reads format ${RESULTS_FORMAT}`);
  }
  if (data['kind'] === 'capacity') {
    throw new ResultsFileError(path, 'is the result of a capacity search (kind: capacity): its answer and steps are in the file; report compares runs and does not read capacity results yet');
  }
  for (const key of ['summary', 'plan']) {
    if (!isObject(data[key])) throw not(`it has no "${key}" object`);
  }
  const summary = data['summary'] as Record<string, unknown>;
  for (const key of ['calls', 'packets', 'generator']) {
    if (!isObject(summary[key])) throw not(`its summary has no "${key}" object`);
  }
  if (!isObject((summary['calls'] as Record<string, unknown>)['failedByCause'])) throw not('its summary.calls has no "failedByCause" object');
  const plan = data['plan'] as Record<string, unknown>;
  if (!isObject(plan['codecPair']) || !isObject(plan['target'])) throw not('its plan has no codec pair or target');
  if (typeof data['runId'] !== 'string') throw not('it has no "runId"');
  if (!isObject(data['environment']) || !isObject(data['environment']['rtpengine'])) throw not('it has no "environment.rtpengine"');
  const rtpengine = data['environment']['rtpengine'];
  if (!Array.isArray(rtpengine['workers'])) throw not('its environment.rtpengine has no "workers" list');
  if ('histograms' in data && !isObject(data['histograms'])) throw not('"histograms" is not an object');
  if ('calls' in data && !Array.isArray(data['calls'])) throw not('"calls" is not a list');
  return {
    ...(data as unknown as Results),
    histograms: (data['histograms'] as Record<string, string> | undefined) ?? {},
    calls: (data['calls'] as Results['calls'] | undefined) ?? [],
  };
}
