/**
 * `rtp-bench report`: results files side by side. The figures a capacity planner compares (calls, failures by
 * cause, loss, latency, jitter, setup, MOS, the generator's own health) one column per run, and with exactly two
 * runs ("2 workers vs 1", "opus:pcmu vs pcmu:pcmu") run2/run1 and whether each figure got better or worse. The same
 * rows feed the HTML page's key-figures table (page.ts), so the terminal and the page never disagree; capacity and
 * scale comparisons (compare-search.ts) are rows of the same kind.
 */
import Table from 'cli-table3';
import type { Results } from './results.js';
import type { Percentiles } from '../stats/histogram.js';

/** Which way a figure is better: less loss, more calls. */
export type Better = 'lower' | 'higher';

export interface ComparisonRow {
  label: string;
  /** One formatted cell per run; "-" where the run recorded nothing. */
  cells: string[];
  /** The numbers behind the cells, for the ratio; null where there is none. Absent: a text row (no ratio). */
  values?: (number | null)[];
  /** Set on figures of the system under test: the change from run 1 to run 2 is marked better or worse. */
  better?: Better;
  /** A row under another (failure causes under "calls failed"). */
  indent?: boolean;
}

export type ChangeMark = 'better' | 'worse' | 'same';

/**
 * A change of at most this share of the larger value is "same": percentiles from HDR histograms are exact to about
 * 0.1%, but two runs of the same load differ by a percent or two (arrival phases, scheduling), and a mark should
 * point at a change, not at that noise.
 */
export const CHANGE_TOLERANCE = 0.02;

/**
 * Run 2 against run 1 for a figure where `better` is the good direction: "same" when the two are within
 * CHANGE_TOLERANCE of the larger, or print the same at the table's precision (`cells`: 0.000% against 0.0004% is no
 * change anyone can see); null when either is missing.
 */
export function changeMark(first: number | null | undefined, second: number | null | undefined, better: Better, cells?: readonly [string, string]): ChangeMark | null {
  if (first === null || first === undefined || second === null || second === undefined) return null;
  if (!Number.isFinite(first) || !Number.isFinite(second)) return null;
  if (cells !== undefined && cells[0] === cells[1]) return 'same';
  if (Math.abs(second - first) <= CHANGE_TOLERANCE * Math.max(Math.abs(first), Math.abs(second))) return 'same';
  return (second < first) === (better === 'lower') ? 'better' : 'worse';
}

/** A row's mark for run 2 against run 1; null for rows that carry no direction. */
export function rowMark(row: ComparisonRow): ChangeMark | null {
  if (row.better === undefined || row.values === undefined) return null;
  return changeMark(row.values[0], row.values[1], row.better, [row.cells[0] ?? '', row.cells[1] ?? '']);
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

function percentileRow(runs: readonly Results[], label: string, pick: (r: Results) => Percentiles | null, key: 'p50' | 'p99', digits: number, better?: Better): ComparisonRow {
  return numberRow(label, runs.map((r) => pick(r)?.[key] ?? null), digits, better === undefined ? {} : { better });
}

export function numberRow(label: string, values: (number | null)[], digits: number, options: { indent?: boolean; better?: Better } = {}): ComparisonRow {
  return { label, cells: values.map((v) => fixed(v, digits)), values, ...options };
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
    better: 'higher',
  });
  rows.push(numberRow('calls failed', runs.map((r) => r.summary.calls.failed), 0, { better: 'lower' }));
  const causes = [...new Set(runs.flatMap((r) => Object.keys(r.summary.calls.failedByCause)))].sort();
  for (const cause of causes) {
    rows.push(numberRow(cause, runs.map((r) => r.summary.calls.failedByCause[cause] ?? 0), 0, { indent: true, better: 'lower' }));
  }
  // No packet sent means no media was measured: "-", not a 0% loss.
  rows.push(numberRow('loss % (all streams)', runs.map((r) => (r.summary.packets.sent > 0 ? r.summary.packets.lossPct : null)), 3, { better: 'lower' }));
  rows.push(percentileRow(runs, 'latency p50 ms', (r) => r.summary.latencyMs, 'p50', 2, 'lower'));
  rows.push(percentileRow(runs, 'latency p99 ms', (r) => r.summary.latencyMs, 'p99', 2, 'lower'));
  rows.push(percentileRow(runs, 'jitter p50 ms', (r) => r.summary.jitterMs, 'p50', 2, 'lower'));
  rows.push(percentileRow(runs, 'jitter p99 ms', (r) => r.summary.jitterMs, 'p99', 2, 'lower'));
  rows.push(percentileRow(runs, 'setup p50 ms', (r) => r.summary.setupMs, 'p50', 2, 'lower'));
  rows.push(percentileRow(runs, 'setup p99 ms', (r) => r.summary.setupMs, 'p99', 2, 'lower'));
  rows.push(percentileRow(runs, 'MOS p50 (E-model)', (r) => r.summary.mos, 'p50', 2, 'higher'));
  rows.push(percentileRow(runs, 'rtpengine MOS p50', (r) => r.summary.rtpengineMos, 'p50', 1, 'higher'));
  // The generator's own figures describe rtp-bench, not the system under test: no better or worse.
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

/** ANSI colours for the marks, only on a terminal (never into a file or a pipe). */
const MARK_COLORS: Readonly<Record<ChangeMark, string>> = { better: '\u001b[32m', worse: '\u001b[31m', same: '' };

export interface TableOptions {
  /** Colour the better/worse marks (stdout is a terminal). */
  color?: boolean;
}

/**
 * Rows as a terminal table, one column per file headed `heads`; with exactly two files, run2/run1 and the mark
 * ("better", "worse", "same") of rows that have a direction.
 */
export function renderTable(heads: readonly string[], rows: readonly ComparisonRow[], options: TableOptions = {}): string {
  const two = heads.length === 2;
  const table = new Table({
    head: ['', ...heads.map(terminalSafe), ...(two ? ['2 / 1', '2 vs 1'] : [])],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    colAligns: ['left', ...heads.map(() => 'right' as const), ...(two ? (['right', 'left'] as const) : [])],
  });
  for (const row of rows) {
    const label = row.indent ? `  ${terminalSafe(row.label)}` : terminalSafe(row.label);
    const cells = row.cells.map(terminalSafe);
    const mark = rowMark(row);
    const colored = mark === null ? '' : options.color && MARK_COLORS[mark] !== '' ? `${MARK_COLORS[mark]}${mark}\u001b[0m` : mark;
    const extra = two ? [row.values ? ratioText(row.values[0], row.values[1]) : '', colored] : [];
    table.push([label, ...cells, ...extra]);
  }
  return table.toString();
}

/** How a file is headed in tables and legends: its place on the command line and its run id. */
export function fileHead(runId: string, i: number): string {
  return `${i + 1}: ${runId}`;
}

/** The terminal table: one column per run, run2/run1 and better/worse when there are exactly two runs. */
export function renderComparison(runs: readonly Results[], options: TableOptions = {}): string {
  const lines = [renderTable(runs.map((r, i) => fileHead(r.runId, i)), comparisonRows(runs), options)];
  runs.forEach((r, i) => {
    if (r.summary.generator.saturated) lines.push(`WARNING  run ${i + 1}: ${terminalSafe(r.summary.generator.saturated)}`);
  });
  return `${lines.join('\n')}\n`;
}
