/**
 * The markup of a chart: its frame (plot area, axes, legend), the figure around it, and the time chart every page
 * draws from a timeline. Geometry (scales, ticks, paths) comes from chart.ts; the pages (html.ts for runs,
 * capacity-html.ts and scale-html.ts for searches) only choose what to draw. Every string that came from a results
 * file goes through escapeHtml.
 */
import { formatTick, legendLayout, linearScale, niceTicks, pathFromPoints, type Point } from './chart.js';
import type { TimelinePoint } from '../stats/timeline.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML element content and attribute values (also inside inline SVG). */
export function escapeHtml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

export const esc = escapeHtml;

/** Run colours (Tableau 10): distinct for up to ten runs, then repeated with a dashed line. */
export const RUN_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
export const OK_COLOR = '#59a14f';
export const FAIL_COLOR = '#e15759';

export function runColor(i: number): string {
  return RUN_COLORS[i % RUN_COLORS.length] ?? '#000';
}

export function runDash(i: number): string {
  return i >= RUN_COLORS.length ? ' stroke-dasharray="6 3"' : '';
}

// ---------------------------------------------------------------------------------------------------------------
// Chart frame: the plot area, its axes and a legend under it.

export const WIDTH = 560;
const MARGIN = { left: 60, right: 28, top: 14, bottom: 44 };
const PLOT_HEIGHT = 230;
const FONT = 11;
export const LEGEND_ROW = 16;

export interface LegendEntry {
  label: string;
  color: string;
  /** line: a run's curve; dot: a scatter series; cross: failed calls; box: a bar segment. */
  mark: 'line' | 'dot' | 'cross' | 'box';
  dash?: string;
  muted?: boolean;
}

export interface Frame {
  plotLeft: number;
  plotRight: number;
  plotTop: number;
  plotBottom: number;
  height: number;
  legendTop: number;
}

/** The frame of a chart with this legend; small multiples pass a lower plot. */
export function frame(legend: readonly LegendEntry[], plotHeight = PLOT_HEIGHT): Frame {
  const plotLeft = MARGIN.left;
  const plotRight = WIDTH - MARGIN.right;
  const plotTop = MARGIN.top;
  const plotBottom = plotTop + plotHeight;
  const legendTop = plotBottom + MARGIN.bottom;
  const { rows } = legendLayout(legend.map((e) => e.label), WIDTH - plotLeft);
  return { plotLeft, plotRight, plotTop, plotBottom, legendTop, height: legendTop + rows * LEGEND_ROW + 6 };
}

export function svgOpen(height: number, label: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" role="img" aria-label="${esc(label)}" font-size="${FONT}">`;
}

export function legendSvg(entries: readonly LegendEntry[], left: number, top: number): string {
  const { items } = legendLayout(entries.map((e) => e.label), WIDTH - left);
  const out: string[] = [];
  entries.forEach((e, i) => {
    const at = items[i];
    if (!at) return;
    const x = left + at.x;
    const y = top + at.y;
    const mid = y + 5;
    if (e.mark === 'line') out.push(`<line x1="${x}" y1="${mid}" x2="${x + 16}" y2="${mid}" stroke="${e.color}" stroke-width="2.5"${e.dash ?? ''}/>`);
    else if (e.mark === 'dot') out.push(`<circle cx="${x + 8}" cy="${mid}" r="3.5" fill="${e.color}"/>`);
    else if (e.mark === 'cross') out.push(crossSvg(x + 8, mid, e.color));
    else out.push(`<rect x="${x + 2}" y="${mid - 5}" width="12" height="10" fill="${e.color}"/>`);
    out.push(`<text x="${x + 22}" y="${mid + 4}"${e.muted ? ' class="muted"' : ''}>${esc(e.label)}</text>`);
  });
  return `<g class="legend">${out.join('')}</g>`;
}

export function crossSvg(x: number, y: number, color: string): string {
  const d = 3.5;
  return `<path d="M${x - d} ${y - d} L${x + d} ${y + d} M${x - d} ${y + d} L${x + d} ${y - d}" stroke="${color}" stroke-width="1.6" fill="none"/>`;
}

/**
 * Presentation attributes as well as the page's classes: an SVG copied out of the page (or opened on its own) still
 * draws its grid thin and its plot area unfilled.
 */
const GRID = ' stroke="#e6e6e6" stroke-width="1"';

/** Horizontal grid lines and labels for a y axis, plus the rotated axis title. */
export function yAxisSvg(f: Frame, ticks: readonly number[], labels: readonly string[], y: (v: number) => number, title: string): string {
  const out: string[] = [];
  ticks.forEach((t, i) => {
    const py = y(t).toFixed(1);
    out.push(`<line class="grid" x1="${f.plotLeft}" y1="${py}" x2="${f.plotRight}" y2="${py}"${GRID}/>`);
    out.push(`<text x="${f.plotLeft - 6}" y="${py}" dy="0.35em" text-anchor="end">${esc(labels[i] ?? '')}</text>`);
  });
  const cy = (f.plotTop + f.plotBottom) / 2;
  out.push(`<text class="axis-title" transform="translate(14 ${cy}) rotate(-90)" text-anchor="middle">${esc(title)}</text>`);
  return out.join('');
}

/** Vertical grid lines and labels for an x axis, plus its title. */
export function xAxisSvg(f: Frame, ticks: readonly number[], labels: readonly string[], x: (v: number) => number, title: string): string {
  const out: string[] = [];
  ticks.forEach((t, i) => {
    const px = x(t).toFixed(1);
    out.push(`<line class="grid" x1="${px}" y1="${f.plotTop}" x2="${px}" y2="${f.plotBottom}"${GRID}/>`);
    out.push(`<text x="${px}" y="${f.plotBottom + 15}" text-anchor="middle">${esc(labels[i] ?? '')}</text>`);
  });
  out.push(xTitleSvg(f, title));
  return out.join('');
}

export function xTitleSvg(f: Frame, title: string): string {
  return `<text class="axis-title" x="${(f.plotLeft + f.plotRight) / 2}" y="${f.plotBottom + 34}" text-anchor="middle">${esc(title)}</text>`;
}

export function plotBorderSvg(f: Frame): string {
  return `<rect class="plot" x="${f.plotLeft}" y="${f.plotTop}" width="${f.plotRight - f.plotLeft}" height="${f.plotBottom - f.plotTop}" fill="none" stroke="#bbb"/>`;
}

/** note and problem are markup (their parts already escaped). */
export function figure(title: string, caption: string, svg: string, note = '', problem = ''): string {
  const notes = `${note === '' ? '' : `<p class="note">${note}</p>`}${problem === '' ? '' : `<p class="note problem">${problem}</p>`}`;
  return `<figure class="chart"><figcaption><strong>${esc(title)}</strong> <span class="muted">${esc(caption)}</span></figcaption>${svg}${notes}</figure>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Over time: a timeline, one point a second.

export interface TimeSeries {
  label: string;
  color: string;
  dash: string;
  points: { t: number; v: number }[];
}

/** A stretch of the time axis shaded behind the lines (a capacity step's measured window). */
export interface TimeBand {
  from: number;
  to: number;
  /** A class to find it by (band-pass, band-fail), and its fill. */
  className: string;
  fill: string;
  title: string;
  /** A few characters written at the band's top (a step's calls). */
  label?: string;
}

/** One series of a figure of each timeline point (points without it are left out). */
export function timelineSeries(points: readonly TimelinePoint[], label: string, color: string, dash: string, value: (p: TimelinePoint) => number | null | undefined): TimeSeries {
  return {
    label,
    color,
    dash,
    points: points.flatMap((p) => {
      const v = value(p);
      return v === null || v === undefined || !Number.isFinite(v) ? [] : [{ t: p.t, v }];
    }),
  };
}

/** Each worker's CPU over time, one line per worker (by name, in the order they first appear). */
export function workerCpuSeries(points: readonly TimelinePoint[]): TimeSeries[] {
  const names = [...new Set(points.flatMap((p) => p.workers.map((w) => w.name)))];
  return names.map((name, k) => timelineSeries(points, `rtpengine ${name}`, runColor(k), '', (p) => p.workers.find((w) => w.name === name)?.cpuPct));
}

export function timeChart(title: string, caption: string, unit: string, series: readonly TimeSeries[], bands: readonly TimeBand[] = [], bandLegend: readonly LegendEntry[] = []): string | null {
  const drawn = series.filter((s) => s.points.length > 0);
  if (drawn.length === 0) return null;
  const all = drawn.flatMap((s) => s.points);
  const xAxis = niceTicks(0, Math.max(1, ...all.map((p) => p.t), ...bands.map((b) => b.to)), 6);
  const yNice = niceTicks(0, Math.max(...all.map((p) => p.v)), 5);
  const legend: LegendEntry[] = [...drawn.map((s): LegendEntry => ({ label: s.label, color: s.color, mark: 'line', dash: s.dash })), ...bandLegend];
  const f = frame(legend);
  const x = linearScale(xAxis.min, xAxis.max, f.plotLeft, f.plotRight);
  const y = linearScale(yNice.min, yNice.max, f.plotBottom, f.plotTop);
  const out: string[] = [svgOpen(f.height, `${title}, over the run's time`)];
  // Bands first: behind the grid and the lines.
  for (const b of bands) {
    const x0 = x(b.from);
    out.push(`<rect class="${esc(b.className)}" fill="${b.fill}" x="${x0.toFixed(1)}" y="${f.plotTop}" width="${Math.max(0.5, x(b.to) - x0).toFixed(1)}" height="${f.plotBottom - f.plotTop}"><title>${esc(b.title)}</title></rect>`);
  }
  out.push(yAxisSvg(f, yNice.ticks, yNice.ticks.map((t) => formatTick(t, yNice.step)), y, unit));
  out.push(xAxisSvg(f, xAxis.ticks, xAxis.ticks.map((t) => formatTick(t, xAxis.step)), x, 'seconds since the first call'));
  out.push(plotBorderSvg(f));
  for (const b of bands) {
    if (b.label !== undefined) out.push(`<text class="band-label" x="${((x(b.from) + x(b.to)) / 2).toFixed(1)}" y="${f.plotTop + 11}" text-anchor="middle" font-size="9" fill="#555">${esc(b.label)}</text>`);
  }
  for (const s of drawn) {
    const px = s.points.map((p): Point => ({ x: x(p.t), y: y(p.v) }));
    out.push(`<path d="${pathFromPoints(px)}" fill="none" stroke="${s.color}" stroke-width="1.8" stroke-linejoin="round"${s.dash}><title>${esc(s.label)}</title></path>`);
  }
  out.push(legendSvg(legend, f.plotLeft, f.legendTop));
  out.push('</svg>');
  return figure(title, caption, out.join(''));
}
