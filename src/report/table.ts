/** The console summary: a cli-table3 table of distributions, then counts, generator health and SLO results. */
import type { ChurnFigures } from '../load/churn.js';
import { faultLines } from '../faults/summary.js';
import Table from 'cli-table3';
import type { RunPlan } from '../run-plan.js';
import type { Percentiles } from '../stats/histogram.js';
import type { Summary } from '../stats/summary.js';
import type { Environment } from './environment.js';
import type { SloVerdict } from './slo.js';
import type { CallRecord } from '../call.js';
import { WORKER_SPLIT_HEAD, workerSplit, workerSplitCells } from './workers.js';

const ROWS: { key: keyof Summary; label: string; digits: number }[] = [
  { key: 'setupMs', label: 'setup ms (offer+answer+mesh)', digits: 2 },
  { key: 'ngQueueMs', label: "ng queue ms (rtp-bench's own wait)", digits: 2 },
  { key: 'offerMs', label: 'offer ms', digits: 2 },
  { key: 'answerMs', label: 'answer ms', digits: 2 },
  { key: 'firstMediaMs', label: 'first media ms (per leg)', digits: 1 },
  { key: 'mediaStartWaitMs', label: 'media start wait ms (generator)', digits: 1 },
  { key: 'latencyMs', label: 'latency ms (one way)', digits: 2 },
  { key: 'audioDelayMs', label: 'audio delay ms (marker in audio)', digits: 2 },
  { key: 'jitterMs', label: 'jitter ms (RFC 3550)', digits: 2 },
  { key: 'transitJitterMs', label: 'transit jitter ms', digits: 2 },
  { key: 'lossPct', label: 'loss % (per stream)', digits: 3 },
  { key: 'mos', label: 'MOS (E-model, per stream)', digits: 2 },
  { key: 'rtpengineMos', label: "MOS (rtpengine's, RTCP)", digits: 1 },
  { key: 'deleteMs', label: 'delete ms', digits: 2 },
];

/** `calls`: the run's call records, for the split by worker (calls, loss and latency per worker). */
export function renderSummary(plan: RunPlan, s: Summary, env: Environment, verdict: SloVerdict, calls: readonly CallRecord[] = []): string {
  const lines: string[] = [];
  const pair = plan.codecPair;
  const where =
    env.rtpengine.kind === 'none'
      ? 'direct (no rtpengine: generator self-calibration)'
      : `${env.rtpengine.workers.length} rtpengine worker(s), ${env.rtpengine.kind}${env.rtpengine.workers[0]?.version ? ` ${env.rtpengine.workers[0].version}` : ''}`;
  lines.push('');
  // First, before any figure: a run the generator limited says so where nobody can miss it.
  if (s.generator.limited !== null) lines.push(`!! ${s.generator.limited}`, '');
  const load = s.churn == null ? `${plan.calls} calls` : `${s.calls.attempted} calls arriving and ending`;
  lines.push(`${s.interrupted ? 'INTERRUPTED: partial results. ' : ''}${load}, ${pair.a.name}:${pair.b.name}${pair.transcoded && env.rtpengine.kind !== 'none' ? ' (transcoded)' : ''}, ${where}, ${s.generator.threads} media thread(s)${threadNote(s.generator)}, ${(s.wallMs / 1000).toFixed(1)} s`);

  const table = new Table({
    head: ['metric', 'min', 'p50', 'p90', 'p99', 'max', 'samples'],
    style: { head: [], border: [] },
    // No rule between rows: eleven rows stay readable at a glance.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
  });
  const rows: [string, Percentiles | null, number][] = ROWS.map((row) => [row.label, s[row.key] as Percentiles | null, row.digits]);
  if (s.mesh !== null) {
    rows.splice(
      3,
      0,
      ['mesh objects accepted ms', s.mesh.acceptedMs, 1],
      ['mesh ready ms (sessions up)', s.mesh.readyMs, 1],
      ['mesh until media both ways ms', s.mesh.firstMediaMs, 1],
    );
  }
  for (const [label, p, digits] of rows) {
    if (p === null) continue;
    table.push([label, ...[p.min, p.p50, p.p90, p.p99, p.max].map((v) => v.toFixed(digits)), String(p.count)]);
  }
  lines.push(table.toString());
  if (s.churn != null) lines.push(churnLine(s.churn));

  const causes = Object.entries(s.calls.failedByCause).map(([cause, n]) => `${cause}: ${n}`);
  lines.push(
    `calls    attempted ${s.calls.attempted}, ok ${s.calls.ok}, failed ${s.calls.failed}${causes.length ? ` (${causes.join('; ')})` : ''}` +
      `${s.calls.interrupted ? `, interrupted ${s.calls.interrupted} (stopped by the user, not failures)` : ''}`,
  );
  // Each cause once, in words: a count alone ("codec mismatch: 10") does not say what to do.
  for (const [cause, message] of Object.entries(s.calls.firstFailure)) lines.push(`  ${cause}: ${message}`);
  const p = s.packets;
  const d = s.generator.drops;
  const generatorLost = p.missing - p.lost;
  lines.push(
    `packets  sent ${p.sent}, received ${p.received}, lost ${p.lost} (${p.lossPct.toFixed(3)}%)` +
      `${generatorLost > 0 ? `, lost at the generator's own sockets ${generatorLost} (not in lost)` : ''}` +
      `${p.transcodingTail ? `, transcoding tail ${p.transcodingTail} (not loss)` : ''}` +
      `, duplicates ${p.duplicates}, late ${p.late}${p.malformed ? `, malformed ${p.malformed}` : ''}${p.sequenceJumps ? `, dropped as sequence jumps ${p.sequenceJumps}` : ''}${p.wrongPayloadType ? `, wrong payload type ${p.wrongPayloadType}` : ''}` +
      `${p.payloadMismatches ? `, payload differs from what was sent ${p.payloadMismatches}` : ''}`,
  );
  const dropped = d.sendFailed + d.skipped + (d.receiveQueue ?? 0) + d.truncated;
  if (dropped > 0) {
    lines.push(
      `GENERATOR dropped ${dropped} packets itself: ${d.skipped} frames too late to send, ${d.sendFailed} sends refused by its kernel, ` +
        `${d.receiveQueue ?? 'unknown'} dropped at its full receive queues, ${d.truncated} cut short (sent counts only what its kernel took)`,
    );
  }
  if (p.startOfCallLost > 0) {
    lines.push(`start    ${p.startOfCallLost} packets lost at the start of ${p.streamsWithStartLoss} stream(s), before the first got through (included in lost)`);
  }
  lines.push(`audio    tone check ${s.audioCheck.passed}/${s.audioCheck.checked} streams passed`);
  lines.push(`rtcp     sent ${s.rtcp.sent}, received ${s.rtcp.received}${s.rtcp.malformed ? `, malformed ${s.rtcp.malformed}` : ''}`);
  if (s.mesh !== null) {
    const m = s.mesh;
    lines.push(`mesh     ${fmtCount(m.objectsPerCall)} l7mp objects and ${fmtCount(m.requestsPerCall)} API requests per call${m.releaseRequestsPerCall === null ? '' : `, ${fmtCount(m.releaseRequestsPerCall)} to remove them`}`);
  }
  lines.push(...faultLines(s.faults, s.failover));
  if (s.ng.retransmissions > 0) lines.push(`ng       ${s.ng.retransmissions} request(s) sent again after a lost request or reply`);
  const g = s.generator;
  const late = g.sendLatenessMs;
  lines.push(
    `generator CPU ${g.cpuPct.toFixed(0)}% (${g.costWindow === 'hold' ? 'during the hold' : 'whole run: hold too short for a steady figure'})` +
      `${g.cpuUsPerPacketOp !== null ? `, ${g.cpuUsPerPacketOp.toFixed(1)} us per packet op` : ''}` +
      `${late ? `, send lateness p50 ${late.p50.toFixed(2)} / p99 ${late.p99.toFixed(2)} / max ${late.max.toFixed(1)} ms` : ''}`,
  );
  const split = workerSplit(calls, s.workers);
  if (split.length > 0) {
    const table = new Table({
      head: [...WORKER_SPLIT_HEAD],
      style: { head: [], border: [] },
      chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
      colAligns: ['left', ...WORKER_SPLIT_HEAD.slice(1).map(() => 'right' as const)],
      // Heads wrapped by word: the table stays within a terminal's width.
      colWidths: [null, 10, 9, 8, 17, 9, 7, 10, 7, 20],
      wordWrap: true,
    });
    for (const row of workerSplitCells(split)) table.push(row);
    lines.push(`per worker (from the calls each took: loss; latency of its streams' means; CPU and memory over the hold)\n${table.toString()}`);
  }
  if (g.saturated) lines.push(`WARNING  ${g.saturated}`);
  for (const w of s.toolLimits) lines.push(`NOTE     ${w}`);
  if (g.limited !== null) lines.push(`!! ${g.limited}`);
  for (const c of verdict.checks) {
    lines.push(`SLO      ${c.flag} ${c.limit}: ${c.actual === null ? 'no data' : round(c.actual)} ${c.passed ? 'ok' : 'MISSED'}`);
  }
  return `${lines.join('\n')}\n`;
}

function fmtCount(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function round(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

/** " (native io_uring I/O, realtime)": how the media threads moved packets and were scheduled. */
function threadNote(g: Summary['generator']): string {
  const parts = [g.io === null ? null : `${g.io} I/O`, g.priority].filter((p): p is string => p !== null);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** Churn: what was offered against what was carried, and the set-up rate under that load. */
function churnLine(c: ChurnFigures): string {
  const held = `${c.ratePerSec} calls/s held ${c.callDurationMs / 1000} s${c.distribution === 'exponential' ? ' on average' : ''}`;
  if (c.window === null) return `churn: ${held}, ${c.offeredErlang.toFixed(1)} Erlang offered; arrivals stopped before that load was reached (give --duration longer than the holding time)`;
  const carried = c.carriedErlang === null ? '-' : c.carriedErlang.toFixed(1);
  return (
    `churn: ${held}: ${c.offeredErlang.toFixed(1)} Erlang offered, ${carried} carried; set-ups ${(c.setupsPerSec ?? 0).toFixed(2)}/s` +
    `${(c.failedPerSec ?? 0) > 0 ? `, failed ${(c.failedPerSec ?? 0).toFixed(2)}/s` : ''} (from ${c.window.fromT.toFixed(0)} s to ${c.window.toT.toFixed(0)} s)`
  );
}
