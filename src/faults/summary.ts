/**
 * The run's view of its faults (summary.failover, the table's "faults" section, the fault marks on the timeline):
 * pure, from the call records and the fault records.
 */
import type { MetricSet, Percentiles } from '../stats/histogram.js';
import type { CallRecord } from '../call.js';
import type { TimelinePoint } from '../stats/timeline.js';
import type { FaultRecord, PerDirection } from './model.js';

export interface FailoverSummary {
  /** Calls whose worker a fault hit while their media ran. */
  affected: number;
  /** Of those, calls whose media came back both ways. */
  survived: number;
  lost: number;
  /** Of the affected, calls whose final delete succeeded (on the survivor after a failover). */
  deleted: number;
  /** Per direction, over the calls whose media came back (a = a->b, b = b->a). */
  gapMs: PerDirection<Percentiles | null>;
  lostAudioMs: PerDirection<Percentiles | null>;
  recoverMs: Percentiles | null;
}

/** Records each affected call's figures into the run's histograms and counts; null when no fault hit a call. */
export function failoverSummary(records: readonly CallRecord[], metrics: MetricSet): FailoverSummary | null {
  let affected = 0;
  let survived = 0;
  let deleted = 0;
  const record = (name: Parameters<MetricSet['record']>[0], value: number | null): void => {
    if (value !== null) metrics.record(name, value);
  };
  for (const call of records) {
    const f = call.failover;
    if (f === null) continue;
    affected++;
    if (f.resumed) survived++;
    if (f.deleted) deleted++;
    record('failoverGapAMs', f.gapMs.a);
    record('failoverGapBMs', f.gapMs.b);
    record('failoverLostAudioAMs', f.lostAudioMs.a);
    record('failoverLostAudioBMs', f.lostAudioMs.b);
    record('failoverRecoverMs', f.recoverMs);
  }
  if (affected === 0) return null;
  return {
    affected,
    survived,
    lost: affected - survived,
    deleted,
    gapMs: { a: metrics.summary('failoverGapAMs'), b: metrics.summary('failoverGapBMs') },
    lostAudioMs: { a: metrics.summary('failoverLostAudioAMs'), b: metrics.summary('failoverLostAudioBMs') },
    recoverMs: metrics.summary('failoverRecoverMs'),
  };
}

/** The table's "faults" section: each fault and its time, then how the calls it hit fared. */
export function faultLines(faults: readonly FaultRecord[], failover: FailoverSummary | null): string[] {
  if (faults.length === 0) return [];
  const lines = ['faults'];
  for (const f of faults) {
    const when = f.atT === null ? '' : ` t=${f.atT.toFixed(3)} s (${new Date(f.atMs!).toISOString()})`;
    lines.push(`  ${f.spec}${when}: ${f.note}`);
  }
  if (failover === null) {
    if (faults.some((f) => f.kind.endsWith('-worker'))) lines.push('  no call had media on a worker when a fault hit it');
    return lines;
  }
  lines.push(`  calls hit ${failover.affected}: survived ${failover.survived}, lost ${failover.lost}, deleted afterwards ${failover.deleted}`);
  const dist = (label: string, p: Percentiles | null): string =>
    p === null ? `  ${label}: none (no media came back)` : `  ${label}: p50 ${p.p50.toFixed(1)}, p99 ${p.p99.toFixed(1)}, max ${p.max.toFixed(1)} ms (${p.count} calls)`;
  lines.push(dist('gap a->b', failover.gapMs.a), dist('gap b->a', failover.gapMs.b));
  lines.push(dist('audio lost a->b', failover.lostAudioMs.a), dist('audio lost b->a', failover.lostAudioMs.b));
  if (failover.recoverMs !== null) lines.push(dist('until media both ways', failover.recoverMs));
  return lines;
}

/**
 * The timeline's points with each fault on the point of the second it happened in (a point covers the second up
 * to its t): `faults` lists the fault specs made in that second.
 */
export function markFaults(points: readonly TimelinePoint[], faults: readonly FaultRecord[]): TimelinePoint[] {
  return points.map((point, i) => {
    const from = i === 0 ? Number.NEGATIVE_INFINITY : points[i - 1]!.t;
    const here = faults.filter((f) => f.atT !== null && f.atT > from && f.atT <= point.t).map((f) => f.spec);
    return here.length === 0 ? point : { ...point, faults: here };
  });
}
