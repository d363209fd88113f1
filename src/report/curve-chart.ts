/**
 * The capacity curve: a figure of each step against the calls it held, steps marked pass or fail, the limits the
 * figure has (an SLO term, a CPU cap) as horizontal lines, and the knee (the answer, and the first failing count
 * above it) as vertical lines. One chart per figure, on a shared calls axis, so the charts of a search read as small
 * multiples. Every line and mark carries a class and its value (data-value, data-calls), which is how the tests find
 * them; the geometry is chart.ts's.
 */
import { curveAxis, formatTick, linearScale, niceTicks, pathFromPoints, valueScale, type Point } from './chart.js';
import { crossSvg, esc, FAIL_COLOR, figure, frame, legendSvg, plotBorderSvg, svgOpen, xAxisSvg, yAxisSvg, type LegendEntry } from './svg.js';

export interface CurvePoint {
  calls: number;
  value: number;
  pass: boolean;
  /** The generator, not the system, limited this step: its figure is the generator's. */
  generatorLimited: boolean;
}

export interface CurveSeries {
  label: string;
  color: string;
  points: CurvePoint[];
}

/** A horizontal line at a value of the chart's figure. */
export interface RefLine {
  value: number;
  label: string;
  /** slo: a term of the SLO on this figure; cap: a CPU cap (--worker-cpu). */
  kind: 'slo' | 'cap';
}

/** A vertical line at a count of calls. */
export interface KneeLine {
  calls: number;
  label: string;
  /** knee: the answer (the most calls that passed); knee-fail: the first count above it that failed. */
  kind: 'knee' | 'knee-fail';
  color: string;
}

export interface CurveChartSpec {
  title: string;
  caption: string;
  unit: string;
  series: readonly CurveSeries[];
  refs: readonly RefLine[];
  knees: readonly KneeLine[];
  /** The calls axis runs from 0 to at least this (shared by a search's charts). */
  xMax: number;
  /** Fit the value axis to the values (MOS) instead of starting it at 0. */
  fit?: boolean;
}

const SMALL_PLOT = 170;
const SLO_COLOR = '#c62828';
const CAP_COLOR = '#777';
const PASS_MARK = '#333';

/** The shared calls axis of a search's charts, a little beyond the largest step: its mark and knee off the border. */
export function callsAxis(xMax: number): ReturnType<typeof niceTicks> {
  return niceTicks(0, Math.max(1, xMax * 1.05), 6, true);
}

export function curveChart(spec: CurveChartSpec): string | null {
  const drawn = spec.series.filter((s) => s.points.length > 0);
  if (drawn.length === 0) return null;
  const all = drawn.flatMap((s) => s.points);
  const xAxis = callsAxis(spec.xMax);
  const yAxis = curveAxis(
    all.map((p) => p.value),
    spec.refs.map((r) => r.value),
    spec.fit ?? false,
  );
  const legend: LegendEntry[] = [
    ...(drawn.length > 1 || drawn[0]?.label !== '' ? drawn.map((s): LegendEntry => ({ label: s.label, color: s.color, mark: 'line' })) : []),
    { label: 'step passed', color: drawn.length === 1 ? (drawn[0]?.color ?? PASS_MARK) : PASS_MARK, mark: 'dot' },
    ...(all.some((p) => !p.pass) ? [{ label: 'step failed', color: FAIL_COLOR, mark: 'cross' as const }] : []),
    ...spec.refs.map((r): LegendEntry => ({ label: r.label, color: r.kind === 'slo' ? SLO_COLOR : CAP_COLOR, mark: 'line', dash: ' stroke-dasharray="6 4"' })),
    ...spec.knees.map((k): LegendEntry => ({ label: k.label, color: k.color, mark: 'line', ...(k.kind === 'knee-fail' ? { dash: ' stroke-dasharray="3 3"' } : {}) })),
  ];
  const f = frame(legend, SMALL_PLOT);
  const x = linearScale(xAxis.min, xAxis.max, f.plotLeft, f.plotRight);
  const y = valueScale(yAxis, f.plotBottom, f.plotTop);
  const out: string[] = [svgOpen(f.height, `${spec.title} against calls`)];
  out.push(yAxisSvg(f, yAxis.ticks, yAxis.labels, y, spec.unit));
  out.push(xAxisSvg(f, xAxis.ticks, xAxis.ticks.map((t) => formatTick(t, xAxis.step)), x, 'concurrent calls'));
  out.push(plotBorderSvg(f));
  for (const k of spec.knees) {
    const px = x(k.calls).toFixed(1);
    const dash = k.kind === 'knee-fail' ? ' stroke-dasharray="3 3"' : '';
    out.push(`<line class="${k.kind}" data-calls="${k.calls}" x1="${px}" y1="${f.plotTop}" x2="${px}" y2="${f.plotBottom}" stroke="${k.color}" stroke-width="1.6"${dash}><title>${esc(k.label)}</title></line>`);
  }
  for (const r of spec.refs) {
    const py = y(r.value).toFixed(1);
    const color = r.kind === 'slo' ? SLO_COLOR : CAP_COLOR;
    out.push(`<line class="${r.kind}" data-value="${r.value}" x1="${f.plotLeft}" y1="${py}" x2="${f.plotRight}" y2="${py}" stroke="${color}" stroke-width="1.4" stroke-dasharray="6 4"><title>${esc(r.label)}</title></line>`);
  }
  for (const s of drawn) {
    const sorted = [...s.points].sort((a, b) => a.calls - b.calls);
    const px = sorted.map((p): Point => ({ x: x(p.calls), y: y(p.value) }));
    out.push(`<path class="curve" d="${pathFromPoints(px)}" fill="none" stroke="${s.color}" stroke-width="1.5" stroke-opacity="0.7"><title>${esc(s.label)}</title></path>`);
    for (const p of sorted) {
      const cx = Number(x(p.calls).toFixed(1));
      const cy = Number(y(p.value).toFixed(1));
      const what = `${s.label === '' ? '' : `${s.label}: `}${p.calls} calls, ${formatTick(p.value, p.value >= 10 ? 0.1 : 0.001)} ${spec.unit}${p.pass ? '' : ', failed'}${p.generatorLimited ? ', generator-limited' : ''}`;
      if (p.generatorLimited) {
        out.push(`<rect class="step limited" data-calls="${p.calls}" x="${cx - 3.5}" y="${cy - 3.5}" width="7" height="7" fill="none" stroke="#777" stroke-width="1.4"><title>${esc(what)}</title></rect>`);
      } else if (p.pass) {
        out.push(`<circle class="step pass" data-calls="${p.calls}" cx="${cx}" cy="${cy}" r="3.5" fill="${s.color}" stroke="${PASS_MARK}" stroke-width="0.8"><title>${esc(what)}</title></circle>`);
      } else {
        out.push(`<g class="step fail" data-calls="${p.calls}"><title>${esc(what)}</title>${crossSvg(cx, cy, FAIL_COLOR)}</g>`);
      }
    }
  }
  out.push(legendSvg(legend, f.plotLeft, f.legendTop));
  out.push('</svg>');
  return figure(spec.title, spec.caption, out.join(''));
}
