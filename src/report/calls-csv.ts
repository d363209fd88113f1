/**
 * The per-call records as CSV (--calls-csv FILE): one row per call, its two streams side by side (a->b then b->a),
 * for spreadsheets and scripts that want the calls without reading the results JSON. Pure.
 */
import type { CallRecord } from '../call.js';
import type { StreamRecord } from '../stats/stream.js';

const STREAM_COLUMNS = ['sent', 'received', 'lost', 'lossPct', 'mos'] as const satisfies readonly (keyof StreamRecord)[];
const DIRECTIONS = ['a->b', 'b->a'] as const;

export const CALLS_CSV_HEADER = [
  'index', 'callId', 'worker', 'status', 'cause', 'dueEpochMs', 'startLagMs', 'ngQueueMs', 'offerMs', 'answerMs', 'setupMs',
  'firstMediaAMs', 'firstMediaBMs', 'mediaStartWaitMs', 'mediaMs', 'deleteMs', 'portA', 'portB',
  ...DIRECTIONS.flatMap((d) => STREAM_COLUMNS.map((c) => `${d} ${c}`)),
] as const;

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(Math.round(v * 1000) / 1000);
  // RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export function callsCsv(calls: readonly CallRecord[]): string {
  const rows = calls.map((c) => {
    const streams = DIRECTIONS.map((d) => c.streams.find((s) => s.direction === d));
    return [
      c.index, c.callId, c.worker, c.status, c.failure?.cause ?? null, c.dueEpochMs, c.startLagMs, c.ngQueueMs, c.offerMs, c.answerMs, c.setupMs,
      c.firstMediaMs.a, c.firstMediaMs.b, c.mediaStartWaitMs, c.mediaMs, c.deleteMs, c.ports?.a ?? null, c.ports?.b ?? null,
      ...streams.flatMap((s) => STREAM_COLUMNS.map((k) => s?.[k] ?? null)),
    ]
      .map(cell)
      .join(',');
  });
  return `${[CALLS_CSV_HEADER.map(cell).join(','), ...rows].join('\n')}\n`;
}
