/**
 * The page of a scale search (`<results>.html` next to its JSON, and `rtp-bench report` of scale files): capacity
 * against the worker count with the ideal (linear from the smallest count) beside it and each count's efficiency,
 * the capacity curves of every count on shared axes, and each count's own search (curve, steps, timeline).
 */
import type { ScalePoint, ScaleResults } from './search-results.js';
import { curveAxis, formatTick, linearScale, niceTicks, pathFromPoints, valueScale, type Point } from './chart.js';
import { esc, figure, frame, legendSvg, plotBorderSvg, runColor, svgOpen, xAxisSvg, yAxisSvg, type LegendEntry } from './svg.js';
import { figuresTable, pageHtml, plainTable } from './page.js';
import { cpuCapPct, curveCharts, profileSection, searchHeader, sloOf, type CurveSource } from './capacity-html.js';
import { answerLine, deploymentText, efficiencyNote, efficiencyText, SCALE_HEAD, scaleCells, workerCapText } from './capacity-table.js';
import { scaleComparisonRows } from './compare-search.js';
import { fileHead } from './compare.js';

const IDEAL_COLOR = '#888';

/**
 * The ideal: capacity growing in proportion to the workers from the smallest count's, capacity(N0) x N / N0, the
 * line efficiency is measured against. null when the smallest count has no capacity to extrapolate from.
 */
export function idealPerWorker(points: readonly ScalePoint[]): number | null {
  const base = points[0];
  return base === undefined || base.maxCalls === null || base.maxCalls === 0 ? null : base.maxCalls / base.workers;
}

/** Capacity against workers: measured points joined, the ideal dashed through the origin, each point's efficiency. */
export function scaleChart(points: readonly ScalePoint[], color: string): string | null {
  const measured = points.filter((p): p is ScalePoint & { maxCalls: number } => p.maxCalls !== null);
  if (measured.length === 0) return null;
  const perWorker = idealPerWorker(points);
  // Half a worker beyond the largest count: its point and label stay inside the plot.
  const xAxis = niceTicks(0, Math.max(1, ...points.map((p) => p.workers)) + 0.5, 6, true);
  const yAxis = curveAxis(
    measured.map((p) => p.maxCalls),
    perWorker === null ? [] : [perWorker * xAxis.max],
  );
  const base = points[0]?.workers ?? 1;
  const legend: LegendEntry[] = [
    { label: 'capacity measured', color, mark: 'line' },
    ...(perWorker === null ? [] : [{ label: `ideal: linear from ${base} worker${base === 1 ? '' : 's'} (${formatTick(perWorker, 0.1)} calls per worker)`, color: IDEAL_COLOR, mark: 'line' as const, dash: ' stroke-dasharray="6 4"' }]),
  ];
  const f = frame(legend);
  const x = linearScale(xAxis.min, xAxis.max, f.plotLeft, f.plotRight);
  const y = valueScale(yAxis, f.plotBottom, f.plotTop);
  const out: string[] = [svgOpen(f.height, 'Capacity against rtpengine workers, with the ideal linear scaling')];
  out.push(yAxisSvg(f, yAxis.ticks, yAxis.labels, y, 'calls'));
  out.push(xAxisSvg(f, xAxis.ticks, xAxis.ticks.map((t) => formatTick(t, xAxis.step)), x, 'rtpengine workers'));
  out.push(plotBorderSvg(f));
  if (perWorker !== null) {
    const end = perWorker * xAxis.max;
    out.push(
      `<line class="ideal" data-per-worker="${perWorker}" x1="${x(0).toFixed(1)}" y1="${y(0).toFixed(1)}" x2="${x(xAxis.max).toFixed(1)}" y2="${y(end).toFixed(1)}" stroke="${IDEAL_COLOR}" stroke-width="1.5" stroke-dasharray="6 4"><title>ideal: ${esc(formatTick(perWorker, 0.1))} calls per worker</title></line>`,
    );
  }
  const px = measured.map((p): Point => ({ x: x(p.workers), y: y(p.maxCalls) }));
  out.push(`<path class="measured" d="${pathFromPoints(px)}" fill="none" stroke="${color}" stroke-width="2"/>`);
  for (const p of measured) {
    const cx = x(p.workers).toFixed(1);
    const cy = y(p.maxCalls).toFixed(1);
    const eff = efficiencyText(p.efficiency);
    out.push(`<circle class="point" data-workers="${p.workers}" data-calls="${p.maxCalls}" cx="${cx}" cy="${cy}" r="4" fill="${color}"><title>${p.workers} worker(s): ${p.maxCalls} calls, efficiency ${esc(eff)}</title></circle>`);
    out.push(`<text class="efficiency" data-workers="${p.workers}" x="${cx}" y="${(Number(cy) - 9).toFixed(1)}" text-anchor="middle">${p.maxCalls} (${esc(eff)})</text>`);
  }
  out.push(legendSvg(legend, f.plotLeft, f.legendTop));
  out.push('</svg>');
  return figure('Capacity against workers', 'the most calls meeting the SLO per worker count, labelled with its efficiency against the ideal', out.join(''));
}

function countLabel(n: number): string {
  return `${n} worker${n === 1 ? '' : 's'}`;
}

function fileSections(r: ScaleResults, i: number, several: boolean): string[] {
  const prefix = several ? `<span class="swatch" style="background:${runColor(i)}"></span>${esc(fileHead(r.runId, i))} · ` : '';
  const pair = `${r.plan.codecPair.a.name}:${r.plan.codecPair.b.name}`;
  const chart = scaleChart(r.scale.points, runColor(i));
  const sources: CurveSource[] = r.searches.flatMap(({ workers, profile }, k) =>
    profile === null ? [] : [{ label: countLabel(workers), color: runColor(k), profile, cpuCapPct: cpuCapPct(r.plan) }],
  );
  const curves = curveCharts(sources, sloOf(r.slo));
  const out = [
    `<h2>${prefix}Capacity against workers</h2>`,
    chart === null ? '<p class="muted">No worker count has a capacity figure.</p>' : `<div class="charts">${chart}</div>`,
    plainTable('scale', SCALE_HEAD, r.scale.points.map((p) => ({ cells: scaleCells(p) })), new Set([4])),
    `<p class="muted">${esc(efficiencyNote(r.scale.points))}: 100% is linear.</p>`,
    `<h2>${prefix}Capacity curves per worker count</h2>`,
    curves.length > 0 ? `<div class="charts">${curves.join('')}</div>` : '<p class="muted">No step was measured.</p>',
  ];
  for (const [k, { workers, profile }] of r.searches.entries()) {
    if (profile === null) continue;
    const where = deploymentText(r.plan.target, workers, workers);
    const source = { label: countLabel(workers), color: runColor(k), profile, cpuCapPct: cpuCapPct(r.plan) };
    out.push(`<details class="search"><summary>${esc(countLabel(workers))}: ${esc(answerLine(profile, where))}</summary>${profileSection(`${prefix}${esc(countLabel(workers))} · ${esc(pair)}`, profile, where, r.search, source)}</details>`);
  }
  return out;
}

/** The page of one scale file, or of several compared. */
export function renderScaleHtml(files: readonly ScaleResults[]): string {
  const title = files.length === 1 ? `rtp-bench scale ${files[0]?.runId ?? ''}` : `rtp-bench: ${files.map((r) => r.runId).join(' vs ')}`;
  const headers = files.map((r, i) =>
    searchHeader(fileHead(r.runId, i), runColor(i), r, [
      ['codec pair', `${r.plan.codecPair.a.name}:${r.plan.codecPair.b.name}`],
      ['rtpengine', workerCapText(r.plan.target)],
      ['worker counts', r.scale.points.map((p) => p.workers).join(', ')],
    ]),
  );
  const body: string[] = [
    '<h1>rtp-bench scale</h1>',
    `<p class="muted">The capacity search once per worker count: does adding rtpengine workers add capacity?${files.length === 2 ? ' In the key figures, the last columns are file 2 divided by file 1, and whether file 2 is better or worse (changes within 2% are "same").' : ''}</p>`,
    `<section class="runs">${headers.join('')}</section>`,
  ];
  if (files.length > 1) body.push('<h2>Key figures</h2>', figuresTable(files.map((r, i) => `<span class="swatch" style="background:${runColor(i)}"></span>${esc(fileHead(r.runId, i))}`), scaleComparisonRows(files)));
  files.forEach((r, i) => body.push(...fileSections(r, i, files.length > 1)));
  return pageHtml(title, body);
}
