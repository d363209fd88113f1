/**
 * A run split by rtpengine worker: does one worker carry more calls, lose more or answer slower than the others?
 * Calls, loss and latency come from the call records (each names the worker that took it); CPU, memory and
 * rtpengine's own counts from the summary's per-worker figures (the timeline over the hold). The same rows feed
 * the console summary (table.ts) and the page (html.ts).
 */
import type { CallRecord } from '../call.js';
import type { WorkerFigures } from '../stats/timeline.js';
import { percentilesOf } from '../capacity/step.js';

export interface WorkerSplit {
  name: string;
  attempted: number;
  ok: number;
  failed: number;
  /** Lost over what could be delivered (sent less the transcoding tail), all streams of its calls, %; null: no media. */
  lossPct: number | null;
  /**
   * Latency per worker is known per stream only (each stream's mean and max; per-packet histograms are kept for the
   * whole run, not per worker): the p50 and p99 over its streams of each stream's mean, and the largest maximum.
   */
  latencyMeanP50Ms: number | null;
  latencyMeanP99Ms: number | null;
  latencyMaxMs: number | null;
  /** From the summary's per-worker figures; null when the run has none for it (a remote worker's CPU). */
  figures: WorkerFigures | null;
}

/** Per worker, in the summary's order, then any worker only the call records name. Empty for a run without workers. */
export function workerSplit(calls: readonly CallRecord[], workers: readonly WorkerFigures[]): WorkerSplit[] {
  const names = [...new Set([...workers.map((w) => w.name), ...calls.flatMap((c) => (c.worker === null ? [] : [c.worker]))])];
  return names.map((name) => {
    const mine = calls.filter((c) => c.worker === name);
    const streams = mine.flatMap((c) => c.streams ?? []);
    let deliverable = 0;
    let lost = 0;
    for (const s of streams) {
      deliverable += s.sent - s.tail;
      lost += s.lost;
    }
    const means = percentilesOf(streams.flatMap((s) => (s.latencyMeanMs === null ? [] : [s.latencyMeanMs])));
    const maxima = streams.flatMap((s) => (s.latencyMaxMs === null ? [] : [s.latencyMaxMs]));
    return {
      name,
      attempted: mine.length,
      ok: mine.filter((c) => c.status === 'ok').length,
      failed: mine.filter((c) => c.status === 'failed').length,
      lossPct: deliverable > 0 ? (lost * 100) / deliverable : null,
      latencyMeanP50Ms: means?.p50 ?? null,
      latencyMeanP99Ms: means?.p99 ?? null,
      latencyMaxMs: maxima.length > 0 ? Math.max(...maxima) : null,
      figures: workers.find((w) => w.name === name) ?? null,
    };
  });
}

/** Short heads: they wrap in the console's narrow columns by word. Latency is of the streams' means (see above). */
export const WORKER_SPLIT_HEAD: readonly string[] = [
  'rtpengine worker',
  'calls ok',
  'calls up (mean)',
  'loss %',
  'latency p50 / p99 ms',
  'latency max ms',
  'CPU %',
  'CPU ms per call-s',
  'RSS MiB',
  'transcoded, streams user / kernel, errors',
];

function fixed(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

/** One row of cells per worker, under WORKER_SPLIT_HEAD. */
export function workerSplitCells(split: readonly WorkerSplit[]): string[][] {
  return split.map((w) => {
    const f = w.figures;
    const own = f === null || f.streamsUserspace === null ? '-' : `${f.transcoded ?? 0}, ${f.streamsUserspace} / ${f.streamsKernel ?? 0}, ${f.packetErrors ?? 0}`;
    return [
      w.name,
      `${w.ok}/${w.attempted}`,
      fixed(f?.meanCalls, 1),
      fixed(w.lossPct, 3),
      w.latencyMeanP50Ms === null ? '-' : `${fixed(w.latencyMeanP50Ms, 2)} / ${fixed(w.latencyMeanP99Ms, 2)}`,
      fixed(w.latencyMaxMs, 1),
      fixed(f?.cpuPct, 0),
      fixed(f?.cpuMsPerCallSecond, 2),
      fixed(f?.maxRssMiB, 0),
      own,
    ];
  });
}
