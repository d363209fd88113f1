/**
 * The HTML report: one self-contained page (inline CSS, inline SVG, no script, nothing fetched) for one run or several
 * compared. A header per run, the key figures (the same rows as the terminal comparison, compare.ts), HdrHistogram
 * percentile curves, per-call setup and loss, and calls by outcome. Geometry comes from chart.ts; this file only
 * writes markup, and every string that came from a results file goes through escapeHtml.
 */
import { METRICS, type MetricName } from '../stats/histogram.js';
import type { CallRecord } from '../call.js';
import type { Results } from './results.js';
import type { TimelinePoint } from '../stats/timeline.js';
import { comparisonRows, describeRun } from './compare.js';
import {
  crossSvg,
  esc,
  figure,
  frame,
  legendSvg,
  LEGEND_ROW,
  OK_COLOR,
  plotBorderSvg,
  runColor,
  runDash,
  svgOpen,
  timeChart,
  timelineSeries,
  workerCpuSeries,
  WIDTH,
  xAxisSvg,
  yAxisSvg,
  type LegendEntry,
  type TimeBand,
  type TimeSeries,
} from './svg.js';
import { dateText, figuresTable, pageHtml, plainTable } from './page.js';
import { WORKER_SPLIT_HEAD, workerSplit, workerSplitCells } from './workers.js';

export { escapeHtml } from './svg.js';
import {
  LOG_AXIS_RATIO,
  chooseValueAxis,
  decimateByColumn,
  decodeBuckets,
  formatTick,
  legendLayout,
  linearScale,
  maxY,
  niceTicks,
  pathFromPoints,
  percentileAxisMax,
  percentileCurve,
  percentileTicks,
  stackSegments,
  totalCount,
  valueAtPercentile,
  valueScale,
  type Bucket,
  type Point,
} from './chart.js';

/** results/<run id>.json -> results/<run id>.html: where the page of a run goes, next to its results file. */
export function htmlPathFor(jsonPath: string): string {
  return /\.json$/i.test(jsonPath) ? jsonPath.replace(/\.json$/i, '.html') : `${jsonPath}.html`;
}

const CAUSE_COLORS = ['#e15759', '#f28e2b', '#b07aa1', '#9c755f', '#ff9da7', '#edc948', '#76b7b2', '#bab0ac'];

function runLabel(r: Results, i: number): string {
  return `${i + 1}: ${r.runId}`;
}

// ---------------------------------------------------------------------------------------------------------------
// (a) Percentile distributions.

const PERCENTILE_CHARTS: readonly { metric: MetricName; title: string }[] = [
  { metric: 'latencyMs', title: 'One-way latency' },
  { metric: 'audioDelayMs', title: 'Audio delay (marker in the audio)' },
  { metric: 'jitterMs', title: 'Jitter (RFC 3550)' },
  { metric: 'transitJitterMs', title: 'Transit jitter' },
  { metric: 'setupMs', title: 'Call setup (offer + answer)' },
  { metric: 'sendLatenessMs', title: 'Generator send lateness' },
];

interface Series {
  run: Results;
  index: number;
  buckets: Bucket[] | null;
  error: string | null;
}

function seriesFor(runs: readonly Results[], metric: MetricName): Series[] {
  return runs.map((run, index) => {
    const text = run.histograms[metric];
    if (typeof text !== 'string' || text === '') return { run, index, buckets: null, error: null };
    try {
      const buckets = decodeBuckets(text, METRICS[metric].scale);
      return { run, index, buckets: totalCount(buckets) > 0 ? buckets : null, error: null };
    } catch (err) {
      return { run, index, buckets: null, error: err instanceof Error ? err.message : String(err) };
    }
  });
}

function percentileChart(runs: readonly Results[], metric: MetricName, title: string): string | null {
  const series = seriesFor(runs, metric);
  const drawn = series.filter((s) => s.buckets !== null);
  if (drawn.length === 0) return null;
  const counts = drawn.map((s) => totalCount(s.buckets ?? []));
  const xMax = percentileAxisMax(Math.max(...counts));
  const curves = series.map((s) => (s.buckets === null ? null : percentileCurve(s.buckets, xMax)));
  const top = Math.max(...curves.map((c) => (c === null ? 0 : (maxY(c) ?? 0))));
  const yAxis = chooseValueAxis(top, drawn.map((s) => valueAtPercentile(s.buckets ?? [], 50) ?? 0));
  const legend: LegendEntry[] = series.map((s) => {
    const base = `${runLabel(s.run, s.index)} · ${describeRun(s.run).short}`;
    if (s.buckets === null) return { label: `${base}: ${s.error === null ? 'not recorded' : 'unreadable histogram'}`, color: '#bbb', mark: 'line', muted: true };
    return { label: `${base}, n=${totalCount(s.buckets)}`, color: runColor(s.index), mark: 'line', dash: runDash(s.index) };
  });
  const f = frame(legend);
  const x = linearScale(0, xMax, f.plotLeft, f.plotRight);
  const y = valueScale(yAxis, f.plotBottom, f.plotTop);
  const out: string[] = [svgOpen(f.height, `${title}: value by percentile, one line per run`)];
  const unit = METRICS[metric].unit;
  out.push(yAxisSvg(f, yAxis.ticks, yAxis.labels, y, yAxis.kind === 'log' ? `${unit}, log scale` : unit));
  const pTicks = percentileTicks(xMax);
  out.push(xAxisSvg(f, pTicks.map((t) => t.x), pTicks.map((t) => t.label), x, 'percentile'));
  out.push(plotBorderSvg(f));
  // Each run's curve, in pixels, thinned to what a pixel column can show.
  series.forEach((s, i) => {
    const curve = curves[i];
    if (!curve || curve.length === 0) return;
    const px = decimateByColumn(curve.map((p): Point => ({ x: x(p.x), y: y(p.y) })));
    out.push(
      `<path d="${pathFromPoints(px)}" fill="none" stroke="${runColor(s.index)}" stroke-width="1.8" stroke-linejoin="round"${runDash(s.index)}><title>${esc(`${runLabel(s.run, s.index)} ${metric}`)}</title></path>`,
    );
  });
  out.push(legendSvg(legend, f.plotLeft, f.legendTop));
  out.push('</svg>');
  let note = '';
  if (yAxis.kind === 'log') {
    note = (`Log scale: the highest value (${esc(formatTick(top, top >= 10 ? 1 : 0.001))} ${esc(unit)}) is over ${LOG_AXIS_RATIO} times the largest median; values below ${esc(yAxis.labels[0] ?? '')} ${esc(unit)} are drawn on the bottom line.`);
  }
  const unreadable = series.filter((s) => s.error !== null).map((s) => `run ${s.index + 1}: ${esc(s.error ?? '')}`);
  const problem = unreadable.length > 0 ? `Histogram not drawn (${unreadable.join('; ')}).` : '';
  return figure(`${title} (${metric})`, METRICS[metric].description, out.join(''), note, problem);
}

// ---------------------------------------------------------------------------------------------------------------
// (b) Per call, over call index.

/** A call's one-way latency: the mean over its directions of each direction's mean; null when none was matched. */
export function callLatencyMs(call: CallRecord): number | null {
  const means = (call.streams ?? []).flatMap((s) => (s.latencyMeanMs === null ? [] : [s.latencyMeanMs]));
  return means.length > 0 ? means.reduce((a, b) => a + b, 0) / means.length : null;
}

/** A call's loss over both directions, percent of what could be delivered; null when no media was sent. */
export function callLossPct(call: CallRecord): number | null {
  let deliverable = 0;
  let lost = 0;
  for (const s of call.streams ?? []) {
    deliverable += s.sent - s.tail;
    lost += s.lost;
  }
  return deliverable > 0 ? (lost * 100) / deliverable : null;
}

function perCallChart(runs: readonly Results[], title: string, caption: string, unit: string, value: (call: CallRecord) => number | null): string | null {
  const points = runs.map((run) =>
    run.calls.flatMap((call) => {
      const v = value(call);
      return v === null || !Number.isFinite(v) ? [] : [{ index: call.index, value: v, failed: call.status !== 'ok' }];
    }),
  );
  const all = points.flat();
  if (all.length === 0) return null;
  const xAxis = niceTicks(0, Math.max(1, ...runs.flatMap((r) => r.calls.map((c) => c.index))), 6, true);
  const yNice = niceTicks(0, Math.max(...all.map((p) => p.value)), 5);
  const yAxis = { ...yNice, labels: yNice.ticks.map((t) => formatTick(t, yNice.step)) };
  const anyFailed = all.some((p) => p.failed);
  const legend: LegendEntry[] = runs.map((r, i) =>
    points[i]?.length
      ? { label: `${runLabel(r, i)} · ${describeRun(r).short}`, color: runColor(i), mark: 'dot' as const }
      : { label: `${runLabel(r, i)}: no values`, color: '#bbb', mark: 'dot' as const, muted: true },
  );
  if (anyFailed) legend.push({ label: 'failed call', color: '#555', mark: 'cross' });
  const f = frame(legend);
  // Inset a little, so that the first call and a value of 0 are not drawn on the axes.
  const x = linearScale(xAxis.min, xAxis.max, f.plotLeft + 6, f.plotRight - 6);
  const y = linearScale(yAxis.min, yAxis.max, f.plotBottom - 4, f.plotTop + 4);
  const out: string[] = [svgOpen(f.height, `${title}, by call index, one colour per run`)];
  out.push(yAxisSvg(f, yAxis.ticks, yAxis.labels, y, unit));
  out.push(xAxisSvg(f, xAxis.ticks, xAxis.ticks.map((t) => formatTick(t, xAxis.step)), x, 'call index'));
  out.push(plotBorderSvg(f));
  points.forEach((list, i) => {
    const color = runColor(i);
    const marks = list.map((p) =>
      p.failed ? crossSvg(Number(x(p.index).toFixed(1)), Number(y(p.value).toFixed(1)), color) : `<circle cx="${x(p.index).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="2.6"/>`,
    );
    if (marks.length > 0) out.push(`<g fill="${color}" fill-opacity="0.8"><title>${esc(runLabel(runs[i] as Results, i))}</title>${marks.join('')}</g>`);
  });
  out.push(legendSvg(legend, f.plotLeft, f.legendTop));
  out.push('</svg>');
  return figure(title, caption, out.join(''));
}

// ---------------------------------------------------------------------------------------------------------------
// (c) Over time: the timeline, one point a second.

/** One series per run of a figure of each timeline point (points without it are left out). */
function perRun(runs: readonly Results[], label: string, value: (p: TimelinePoint) => number | null | undefined, dash = ''): TimeSeries[] {
  return runs.map((r, i) => timelineSeries(r.timeline ?? [], `${runLabel(r, i)} ${label}`, runColor(i), dash || runDash(i), value));
}

/**
 * --fault: each fault made, a red band on the time charts from its time (a hairline for a kill) over its length,
 * named on hover. One run only: compared runs' faults differ.
 */
function faultBands(runs: readonly Results[]): { bands: TimeBand[]; legend: LegendEntry[] } {
  const faults = runs.length === 1 ? (runs[0]!.summary.faults ?? []).filter((f) => f.atT !== null) : [];
  const bands = faults.map((f): TimeBand => ({
    from: f.atT!,
    to: f.atT! + (f.kind === 'kill-worker' || f.kind === 'restart-worker' ? 0 : (f.durationMs ?? 0) / 1000),
    className: 'band-fault',
    fill: FAULT_FILL,
    title: `fault ${f.spec}: ${f.note}`,
  }));
  return { bands, legend: bands.length === 0 ? [] : [{ label: 'fault', color: FAULT_FILL, mark: 'box' }] };
}

const FAULT_FILL = 'rgba(204, 0, 0, 0.35)';

function timeCharts(runs: readonly Results[]): string[] {
  const dashed = ' stroke-dasharray="5 3"';
  const { bands, legend } = faultBands(runs);
  // With one run, each worker's CPU gets its own line; with several, each run's workers are added up.
  const cpu: TimeSeries[] =
    runs.length === 1
      ? workerCpuSeries(runs[0]!.timeline ?? [])
      : perRun(runs, 'rtpengine CPU, all workers', (p) => (p.workers.some((w) => w.cpuPct !== null) ? p.workers.reduce((a, w) => a + (w.cpuPct ?? 0), 0) : null));
  return [
    timeChart('Calls up over time', 'calls whose media was running, sampled every second', 'calls', perRun(runs, 'calls', (p) => p.callsUp), bands, legend),
    timeChart('Packets per second', 'RTP packets each second: sent (solid) and received (dashed)', 'packets/s', [
      ...perRun(runs, 'sent', (p) => p.sentPps),
      ...perRun(runs, 'received', (p) => p.receivedPps, dashed),
    ], bands, legend),
    timeChart('Latency over time', 'one-way latency of each second\'s packets: p50 (solid) and p99 (dashed), ms', 'ms', [
      ...perRun(runs, 'p50', (p) => p.latencyMs?.p50),
      ...perRun(runs, 'p99', (p) => p.latencyMs?.p99, dashed),
    ], bands, legend),
    timeChart('Loss over time', "RFC 3550 loss of each second's packets, %", '%', perRun(runs, 'loss', (p) => p.lossPct), bands, legend),
    timeChart('rtpengine CPU over time', "each worker's process, percent of one core (local workers)", '% of a core', cpu, bands, legend),
    timeChart('Generator send lateness over time', "p99 of each second's sends, ms", 'ms', perRun(runs, 'p99', (p) => p.sendLatenessMs?.p99)),
  ].filter((c): c is string => c !== null);
}

// ---------------------------------------------------------------------------------------------------------------
// (d) Calls by outcome.

function outcomeChart(runs: readonly Results[]): string {
  const causes = [...new Set(runs.flatMap((r) => Object.keys(r.summary.calls.failedByCause)))].sort();
  const colorOf = (key: string): string => (key === '' ? OK_COLOR : (CAUSE_COLORS[causes.indexOf(key) % CAUSE_COLORS.length] ?? '#999'));
  const labelWidth = Math.min(230, 26 + Math.max(...runs.map((r, i) => runLabel(r, i).length)) * 6.6);
  const countWidth = 118;
  const barLeft = labelWidth;
  const barWidth = WIDTH - labelWidth - countWidth;
  const rowHeight = 26;
  const legend: LegendEntry[] = [{ label: 'ok', color: OK_COLOR, mark: 'box' }, ...causes.map((c) => ({ label: `failed: ${c}`, color: colorOf(c), mark: 'box' as const }))];
  const legendRows = legendLayout(legend.map((e) => e.label), WIDTH - 10).rows;
  const top = 8;
  const legendTop = top + runs.length * rowHeight + 10;
  const height = legendTop + legendRows * LEGEND_ROW + 6;
  const fullScale = Math.max(1, ...runs.map((r) => r.summary.calls.attempted));
  const out: string[] = [svgOpen(height, 'Calls ok and failed by cause, one bar per run')];
  runs.forEach((r, i) => {
    const c = r.summary.calls;
    const yTop = top + i * rowHeight;
    const counts = [{ key: '', count: c.ok }, ...causes.map((cause) => ({ key: cause, count: c.failedByCause[cause] ?? 0 }))];
    const label = runLabel(r, i);
    out.push(`<rect x="2" y="${yTop + 5}" width="10" height="10" fill="${runColor(i)}"/>`);
    out.push(`<text x="16" y="${yTop + 14}">${esc(label)}</text>`);
    out.push(`<rect class="track" x="${barLeft}" y="${yTop + 2}" width="${barWidth}" height="16" fill="#f1f1f1"/>`);
    for (const s of stackSegments(counts, fullScale, barWidth)) {
      const what = s.key === '' ? 'ok' : `failed: ${s.key}`;
      out.push(`<rect x="${(barLeft + s.x).toFixed(1)}" y="${yTop + 2}" width="${Math.max(0.5, s.width).toFixed(1)}" height="16" fill="${colorOf(s.key)}"><title>${esc(`${label} ${what}: ${s.count}`)}</title></rect>`);
      if (s.width >= 8 * String(s.count).length + 6) {
        out.push(`<text class="on-bar" fill="#fff" x="${(barLeft + s.x + s.width / 2).toFixed(1)}" y="${yTop + 14}" text-anchor="middle">${s.count}</text>`);
      }
    }
    out.push(`<text x="${barLeft + barWidth + 6}" y="${yTop + 14}">${c.ok}/${c.attempted} ok${c.failed > 0 ? `, ${c.failed} failed` : ''}</text>`);
  });
  out.push(legendSvg(legend, 10, legendTop));
  out.push('</svg>');
  return figure('Calls by outcome', 'ok, and failed by cause; bars to the scale of the largest run', out.join(''));
}

// ---------------------------------------------------------------------------------------------------------------
// Page parts.

function runHeader(r: Results, i: number): string {
  const d = describeRun(r);
  const env = r.environment;
  const plan = r.plan;
  const s = r.summary;
  const rows: [string, string][] = [
    ['started', dateText(r.startedAt)],
    ['calls', `${plan.calls}`],
    ['ramp', `${Number(plan.rampPerSec.toFixed(3))} calls/s`],
    ['hold', `${Number((plan.holdMs / 1000).toFixed(1))} s`],
    ['codec pair', d.codecPair],
    ['rtpengine', d.rtpengineVersion === null ? d.rtpengine : `${d.rtpengine}, ${d.rtpengineVersion}`],
    ['media threads', `${s.generator.threads}`],
    ['state', s.interrupted ? 'INTERRUPTED: partial results' : `complete, ${(s.wallMs / 1000).toFixed(1)} s`],
    ['machine', `${env.cpu?.model ?? '?'}, ${env.cpu?.cores ?? '?'} cores, ${env.memoryGiB ?? '?'} GiB; ${env.platform ?? ''} ${env.kernel ?? ''}; Node ${env.node ?? '?'}; rtp-bench ${env.rtpBench ?? '?'}`],
  ];
  const warnings: string[] = [];
  if (s.generator.limited) warnings.push(s.generator.limited);
  if (s.interrupted) warnings.push('The run was interrupted: figures cover only the part that ran.');
  if (s.generator.saturated) warnings.push(`Generator: ${s.generator.saturated}`);
  return [
    `<article class="run${s.interrupted ? ' interrupted' : ''}" style="border-top-color:${runColor(i)}">`,
    `<h2><span class="swatch" style="background:${runColor(i)}"></span>${esc(runLabel(r, i))}</h2>`,
    `<dl>${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`,
    ...warnings.map((w) => `<p class="warning">${esc(w)}</p>`),
    failureList(r),
    '</article>',
  ].join('');
}

/** Failed calls grouped by cause: how many, which (first few indexes), and one message as it was recorded. */
function failureList(r: Results): string {
  const groups = new Map<string, { calls: number[]; stage: string; message: string }>();
  for (const call of r.calls) {
    if (call.status !== 'failed' || !call.failure) continue;
    const g = groups.get(call.failure.cause) ?? { calls: [], stage: call.failure.stage, message: call.failure.message };
    g.calls.push(call.index);
    groups.set(call.failure.cause, g);
  }
  if (groups.size === 0) return '';
  const items = [...groups.entries()].map(([cause, g]) => {
    const shown = g.calls.slice(0, 8).join(', ') + (g.calls.length > 8 ? ', ...' : '');
    return `<li><strong>${esc(cause)}</strong> (${g.calls.length} call${g.calls.length === 1 ? '' : 's'}, stage ${esc(g.stage)}; calls ${esc(shown)}): <code>${esc(g.message)}</code></li>`;
  });
  return `<details class="failures" open><summary>Failures</summary><ul>${items.join('')}</ul></details>`;
}

function keyFigures(runs: readonly Results[]): string {
  return figuresTable(runs.map((r, i) => `<span class="swatch" style="background:${runColor(i)}"></span>${esc(runLabel(r, i))}`), comparisonRows(runs));
}

/** The whole page for one or more runs, in the order given (run 1 first). */
export function renderHtml(runs: Results[]): string {
  const title = runs.length === 1 ? `rtp-bench ${runs[0]?.runId ?? ''}` : `rtp-bench: ${runs.map((r) => r.runId).join(' vs ')}`;
  const percentile = PERCENTILE_CHARTS.map((c) => percentileChart(runs, c.metric, c.title)).filter((c): c is string => c !== null);
  const perCall = [
    perCallChart(runs, 'Setup time per call', 'offer + answer round trips, ms; failed calls as crosses', 'ms', (c) => c.setupMs),
    perCallChart(runs, 'Loss per call', 'both directions, % of the packets that could be delivered (transcoding tail excluded)', '%', callLossPct),
    perCallChart(
      runs,
      'One-way latency per call',
      'mean of both directions, ms. Through a transcoder the calls sit on steps about 20 ms apart: rtpengine keeps one frame plus the worst lateness its input has had (README, "Latency through transcoding")',
      'ms',
      callLatencyMs,
    ),
  ].filter((c): c is string => c !== null);
  const skipped = PERCENTILE_CHARTS.length - percentile.length;
  const time = timeCharts(runs);
  const perWorker = workerTables(runs);
  return pageHtml(title, [
    `<h1>rtp-bench report</h1>`,
    `<p class="muted">${runs.length} run${runs.length === 1 ? '' : 's'}${runs.length === 2 ? '; the last columns of the figures are run 2 divided by run 1, and whether run 2 is better or worse (changes within 2% are "same")' : ''}. Percentiles come from merged HDR histograms.</p>`,
    `<section class="runs">${runs.map(runHeader).join('')}</section>`,
    '<h2>Key figures</h2>',
    keyFigures(runs),
    ...(perWorker === '' ? [] : ['<h2>Per rtpengine worker</h2>', perWorker]),
    '<h2>Percentile distributions</h2>',
    percentile.length > 0
      ? `<div class="charts">${percentile.join('')}</div>${skipped > 0 ? `<p class="muted">${skipped} metric(s) with no samples in any run are not drawn.</p>` : ''}`
      : '<p class="muted">No run recorded latency, jitter, setup or send lateness samples.</p>',
    '<h2>Over time</h2>',
    time.length > 0 ? `<div class="charts">${time.join('')}</div>` : '<p class="muted">No timeline in any run.</p>',
    '<h2>Per call</h2>',
    perCall.length > 0 ? `<div class="charts">${perCall.join('')}</div>` : '<p class="muted">No per-call setup or loss values in any run.</p>',
    '<h2>Calls</h2>',
    `<div class="charts">${outcomeChart(runs)}</div>`,
  ]);
}

/** Each run's split by worker (calls, loss, latency, CPU), a table per run that has workers; '' when none has. */
function workerTables(runs: readonly Results[]): string {
  const tables = runs.flatMap((r, i) => {
    const split = workerSplit(r.calls, r.summary.workers ?? []);
    if (split.length === 0) return [];
    const rows = workerSplitCells(split).map((cells) => ({ cells }));
    return [`${runs.length > 1 ? `<h3><span class="swatch" style="background:${runColor(i)}"></span>${esc(runLabel(r, i))}</h3>` : ''}${plainTable('workers', WORKER_SPLIT_HEAD, rows, new Set([0, 9]))}`];
  });
  if (tables.length === 0) return '';
  return `<p class="muted">Calls, loss and latency from the call records of the calls each worker took (latency per worker is known per stream: each stream's mean, and the largest maximum); CPU, memory and rtpengine's own counts over the hold.</p>${tables.join('')}`;
}
