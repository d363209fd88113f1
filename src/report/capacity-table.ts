/**
 * A capacity or scale search in words and cells: the steps table, the answer line, the profiles table and the
 * scaling table. The capacity and scale commands print them as the searches end, `rtp-bench report` prints them
 * from the file, and the pages (capacity-html.ts, scale-html.ts) show the same cells: one wording everywhere.
 */
import Table from 'cli-table3';
import type { RunPlan } from '../run-plan.js';
import { describeBreak } from '../capacity/slo.js';
import type { CapacityStep, PairCapacity, ScalePoint, SearchSettings } from './search-results.js';

function fmt(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

export const STEP_HEAD: readonly string[] = [
  'calls',
  'result',
  'loss %',
  'latency p50',
  'latency p99',
  'transit jitter p99',
  'MOS',
  'rtpengine CPU % per worker',
  'generator',
  'broke',
];

/** Columns of STEP_HEAD that hold words rather than numbers. */
export const STEP_TEXT_COLUMNS: ReadonlySet<number> = new Set([1, 8, 9]);

export function stepCells(s: CapacityStep): string[] {
  const f = s.figures;
  return [
    String(s.calls),
    s.pass ? 'pass' : 'FAIL',
    fmt(s.lossPct, 3),
    fmt(f['latency.p50']),
    fmt(f['latency.p99']),
    fmt(f['transitJitter.p99'], 2),
    fmt(f['mos.p50'], 2),
    s.workers.map((w) => fmt(w.cpuPct, 0)).join(' / ') || '-',
    s.generatorLimited === null ? `ok (lateness p99 ${fmt(f['generatorLateness.p99'])} ms)` : 'LIMITED',
    [...s.broke.map((b) => `${b.term}: ${describeBreak(b)}`), ...Object.entries(s.failures ?? {}).map(([cause, f]) => `${f.count} failed: ${cause}`)].join('; '),
  ];
}

/** "2 workers (0.2 cores each)": the deployment a search measured. `workers` overrides the plan's count (scale). */
export function deploymentText(target: RunPlan['target'], workersSeen: number, workers?: number): string {
  if (target.kind !== 'embedded') return `${workersSeen} worker(s)`;
  const n = workers ?? target.workers;
  return `${n} worker${n === 1 ? '' : 's'}${target.cpuCores === null ? '' : ` (${target.cpuCores} core${target.cpuCores === 1 ? '' : 's'} each)`}`;
}

/** How each worker was limited: "each capped at 0.2 core", "uncapped". */
export function workerCapText(target: RunPlan['target']): string {
  if (target.kind !== 'embedded') return target.kind;
  return target.cpuCores === null ? 'embedded, uncapped' : `embedded, each capped at ${target.cpuCores} core${target.cpuCores === 1 ? '' : 's'}`;
}

/** The answer in one line: `capacity: 16 calls of opus:pcmu on 1 worker (0.3 cores each), ... - limited by ...`. */
export function answerLine(p: PairCapacity, where: string): string {
  const c = p.capacity;
  if (c.maxCalls === null) return `capacity of ${p.codecPair}: none - ${c.reason}`;
  const cost = c.cpuMsPerCallSecond === null ? '' : `, rtpengine ${c.cpuMsPerCallSecond.toFixed(1)} ms CPU per call-second`;
  return `capacity: ${c.maxCalls} calls of ${p.codecPair} on ${where}${cost} - ${c.reason.replace(/^capacity: [^-]*- /, '')}`;
}

/** The line above a pair's steps table. */
export function pairHeading(p: PairCapacity, search: SearchSettings): string {
  return `${p.codecPair}, SLO ${p.capacity.slo}, steps of ${search.stepHoldMs / 1000} s (${(p.wallMs / 1000).toFixed(0)} s in all)`;
}

export const PROFILES_HEAD: readonly string[] = ['codec pair', 'capacity (calls)', 'rtpengine CPU ms per call-second', 'calls per core', 'limited by'];

/** The capacity cell: the count, or why there is none. */
export function capacityCell(c: { maxCalls: number | null; generatorLimited: boolean }): string {
  return c.maxCalls === null ? (c.generatorLimited ? 'generator-limited' : '-') : String(c.maxCalls);
}

/** What limited a search, in a few words: the broken term and where, or why it stopped. */
export function limitCell(c: PairCapacity['capacity']): string {
  return c.limitedBy === null ? (c.stop === 'max' ? 'reached --max' : c.stop) : `${c.limitedBy.term} at ${c.limitedBy.atCalls}`;
}

export function profileCells(p: PairCapacity): string[] {
  const c = p.capacity;
  return [p.codecPair, capacityCell(c), fmt(c.cpuMsPerCallSecond, 2), fmt(c.callsPerCore, 0), limitCell(c)];
}

export const SCALE_HEAD: readonly string[] = ['workers', 'capacity (calls)', 'calls per worker', 'efficiency', 'limited by'];

export function efficiencyText(e: number | null): string {
  return e === null ? '-' : `${(e * 100).toFixed(0)}%`;
}

export function scaleCells(p: ScalePoint): string[] {
  return [String(p.workers), capacityCell(p), fmt(p.callsPerWorker, 1), efficiencyText(p.efficiency), p.limitedBy ?? '-'];
}

/** The line that says how efficiency is reckoned, against the smallest count. */
export function efficiencyNote(points: readonly ScalePoint[]): string {
  const base = points[0]?.workers ?? 1;
  return `efficiency = capacity / (workers / ${base} x capacity at ${base})`;
}

/** A console table of cells; `compact` leaves out the rules between rows (long step lists stay readable). */
export function textTable(head: readonly string[], rows: readonly string[][], compact = false): string {
  const table = new Table({
    head: [...head],
    style: { head: [], border: [] },
    ...(compact ? { chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } } : {}),
  });
  for (const row of rows) table.push(row);
  return table.toString();
}

/** What `capacity` prints when a pair's search ends: heading, steps, answer. */
export function pairText(p: PairCapacity, where: string, search: SearchSettings): string {
  return `\n${pairHeading(p, search)}\n${textTable(STEP_HEAD, p.capacity.steps.map(stepCells), true)}\n${answerLine(p, where)}\n`;
}

/** The table of every profile's answer (several codec pairs). */
export function profilesText(profiles: readonly PairCapacity[]): string {
  return `\nprofiles\n${textTable(PROFILES_HEAD, profiles.map(profileCells))}\n`;
}

export function scaleText(points: readonly ScalePoint[]): string {
  return `\nscaling (${efficiencyNote(points)})\n${textTable(SCALE_HEAD, points.map(scaleCells))}\n`;
}
