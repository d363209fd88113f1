/**
 * `rtp-bench report` of capacity and scale files: their answers side by side (capacity per codec pair, the cost of a
 * call, calls per core; capacity and efficiency per worker count), as comparison rows of the same kind as a run's
 * (compare.ts), so two files get the same 2/1 ratio and better/worse marks. A file given alone prints what its
 * command printed.
 */
import type { CapacityResults, PairCapacity, ScaleResults } from './search-results.js';
import { fileHead, numberRow, renderTable, type ComparisonRow, type TableOptions } from './compare.js';
import { capacityCell, deploymentText, efficiencyText, limitCell, pairText, profilesText, scaleText, workerCapText } from './capacity-table.js';

function deployment(r: CapacityResults | ScaleResults): string {
  const seen = 'environment' in r ? (r.environment?.rtpengine.workers.length ?? 0) : 0;
  return deploymentText(r.plan.target, seen);
}

function common(files: readonly (CapacityResults | ScaleResults)[]): ComparisonRow[] {
  return [
    { label: 'SLO', cells: files.map((r) => r.slo) },
    { label: 'step hold', cells: files.map((r) => `${r.search.stepHoldMs / 1000} s`) },
  ];
}

/** One codec pair's answer in each file ("-" where a file has no search of it). */
function pairRows(label: string, found: readonly (PairCapacity | null)[]): ComparisonRow[] {
  const cap = found.map((p) => p?.capacity ?? null);
  return [
    { label: `${label} capacity (calls)`, cells: cap.map((c) => (c === null ? '-' : capacityCell(c))), values: cap.map((c) => c?.maxCalls ?? null), better: 'higher' },
    { label: 'limited by', cells: cap.map((c) => (c === null ? '-' : limitCell(c))), indent: true },
    numberRow('rtpengine CPU ms per call-second', cap.map((c) => c?.cpuMsPerCallSecond ?? null), 2, { indent: true, better: 'lower' }),
    numberRow('calls per core', cap.map((c) => c?.callsPerCore ?? null), 0, { indent: true, better: 'higher' }),
  ];
}

/** Capacity files side by side: per codec pair (in the order they first appear), its answer in each file. */
export function capacityComparisonRows(files: readonly CapacityResults[]): ComparisonRow[] {
  const pairs = [...new Set(files.flatMap((r) => r.profiles.map((p) => p.codecPair)))];
  return [
    { label: 'rtpengine', cells: files.map(deployment) },
    ...common(files),
    ...pairs.flatMap((pair) => pairRows(`${pair}:`, files.map((r) => r.profiles.find((p) => p.codecPair === pair) ?? null))),
  ];
}

/** Scale files side by side: per worker count, capacity and efficiency in each file. */
export function scaleComparisonRows(files: readonly ScaleResults[]): ComparisonRow[] {
  const counts = [...new Set(files.flatMap((r) => r.scale.points.map((p) => p.workers)))].sort((a, b) => a - b);
  const rows: ComparisonRow[] = [
    { label: 'codec pair', cells: files.map((r) => `${r.plan.codecPair.a.name}:${r.plan.codecPair.b.name}`) },
    { label: 'rtpengine workers', cells: files.map((r) => workerCapText(r.plan.target)) },
    ...common(files),
  ];
  for (const n of counts) {
    const points = files.map((r) => r.scale.points.find((p) => p.workers === n) ?? null);
    rows.push(
      { label: `${n} worker${n === 1 ? '' : 's'}: capacity (calls)`, cells: points.map((p) => (p === null ? '-' : capacityCell(p))), values: points.map((p) => p?.maxCalls ?? null), better: 'higher' },
      { label: 'efficiency', cells: points.map((p) => efficiencyText(p?.efficiency ?? null)), values: points.map((p) => (p?.efficiency === null || p?.efficiency === undefined ? null : p.efficiency * 100)), indent: true, better: 'higher' },
      numberRow('calls per worker', points.map((p) => p?.callsPerWorker ?? null), 1, { indent: true, better: 'higher' }),
    );
  }
  return rows;
}

/** The terminal text for capacity files: a file alone as `capacity` printed it, several side by side. */
export function renderCapacityReport(files: readonly CapacityResults[], options: TableOptions = {}): string {
  if (files.length === 1) {
    const r = files[0]!;
    const where = deployment(r);
    return `capacity search ${r.runId}\n${r.profiles.map((p) => pairText(p, where, r.search)).join('')}${r.profiles.length > 1 ? profilesText(r.profiles) : ''}`;
  }
  return `${renderTable(files.map((r, i) => fileHead(r.runId, i)), capacityComparisonRows(files), options)}\n`;
}

/** The terminal text for scale files: a file alone as `scale` printed it, several side by side. */
export function renderScaleReport(files: readonly ScaleResults[], options: TableOptions = {}): string {
  if (files.length === 1) {
    const r = files[0]!;
    const searches = r.searches.flatMap(({ workers, profile }) => (profile === null ? [] : [pairText(profile, deploymentText(r.plan.target, workers, workers), r.search)]));
    return `scale search ${r.runId}\n${searches.join('')}${scaleText(r.scale.points)}`;
  }
  return `${renderTable(files.map((r, i) => fileHead(r.runId, i)), scaleComparisonRows(files), options)}\n`;
}
