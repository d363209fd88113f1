/**
 * Chart geometry for the HTML report: scales, tick placement, HdrHistogram-style percentile curves, legend layout
 * and SVG path strings. Pure functions of numbers (plus one decoder from a results file's histogram text to its
 * recorded values), so every figure the page draws can be checked in a unit test; html.ts only turns these into
 * markup.
 */
import * as hdr from 'hdr-histogram-js';

export interface Point {
  x: number;
  y: number;
}

/** One recorded value of a histogram, in the metric's unit, with how many samples it holds. */
export interface Bucket {
  value: number;
  count: number;
}

// ---------------------------------------------------------------------------------------------------------------
// The percentile axis: HdrHistogram's plots put percentile p at log10(1 / (1 - p)), so 90% is 1, 99% is 2, 99.9%
// is 3: each further "nine" gets the same width, which is where tail latency lives.

/** x position of a percentile given in percent (0..100): 0% -> 0, 90% -> 1, 99% -> 2. 100% is +Infinity. */
export function percentileToX(percent: number): number {
  if (percent <= 0) return 0;
  if (percent >= 100) return Number.POSITIVE_INFINITY;
  return -Math.log10(1 - percent / 100);
}

/** The inverse of percentileToX: 1 -> 90, 2 -> 99. */
export function xToPercentile(x: number): number {
  return 100 * (1 - 10 ** -x);
}

export const PERCENTILE_TICKS: readonly { percent: number; label: string }[] = Object.freeze([
  { percent: 0, label: '0%' },
  { percent: 50, label: '50%' },
  { percent: 90, label: '90%' },
  { percent: 99, label: '99%' },
  { percent: 99.9, label: '99.9%' },
  { percent: 99.99, label: '99.99%' },
  { percent: 99.999, label: '99.999%' },
]);

/** The ticks that fall within [0, maxX] (a little slack absorbs floating-point error at the right edge). */
export function percentileTicks(maxX: number): { x: number; label: string }[] {
  return PERCENTILE_TICKS.map((t) => ({ x: percentileToX(t.percent), label: t.label })).filter((t) => t.x <= maxX + 1e-9);
}

/**
 * Right end of the percentile axis for the largest sample count in a chart: beyond the 1/count-th tail a
 * histogram only repeats its maximum, so 10 samples show up to 99%, 5 000 up to 99.99%. Never less than 99%,
 * never more than 99.999%.
 */
export function percentileAxisMax(maxCount: number): number {
  if (!(maxCount > 1)) return 2;
  return Math.min(5, Math.max(2, Math.ceil(Math.log10(maxCount) - 1e-9)));
}

// ---------------------------------------------------------------------------------------------------------------
// Histograms -> percentile curves.

/**
 * The recorded values of a results file's histogram (hdr-histogram-js compressed base64, in recorded integer
 * units), divided by `scale` (METRICS[name].scale) back into the metric's unit, lowest first. Each value is its
 * bucket's highest equivalent value, as getValueAtPercentile reports it, so the curve agrees with the summary.
 * Throws on text that is not a compressed histogram.
 */
export function decodeBuckets(base64: string, scale: number): Bucket[] {
  const histogram = hdr.decodeFromCompressedBase64(base64, 64, false);
  if (!(histogram instanceof hdr.JsHistogram)) throw new Error('decoded histogram is not a JS histogram');
  const out: Bucket[] = [];
  const iterator = histogram.recordedValuesIterator;
  iterator.reset();
  while (iterator.hasNext()) {
    const step = iterator.next();
    if (step.countAtValueIteratedTo > 0) out.push({ value: step.valueIteratedTo / scale, count: step.countAtValueIteratedTo });
  }
  return out;
}

export function totalCount(buckets: readonly Bucket[]): number {
  let n = 0;
  for (const b of buckets) n += b.count;
  return n;
}

/**
 * The percentile distribution as a staircase in data space (x on the percentile axis, y in the metric's unit).
 * Value v_i is what getValueAtPercentile returns for every percentile in (C_{i-1}/N, C_i/N], C being the running
 * count; the last value runs on to maxX. Points past maxX are cut off there. Empty input gives no points.
 */
export function percentileCurve(buckets: readonly Bucket[], maxX: number): Point[] {
  const total = totalCount(buckets);
  const points: Point[] = [];
  if (total <= 0) return points;
  let below = 0;
  for (const bucket of buckets) {
    if (bucket.count <= 0) continue;
    const from = percentileToX((100 * below) / total);
    if (from >= maxX) break;
    below += bucket.count;
    const to = below >= total ? maxX : Math.min(maxX, percentileToX((100 * below) / total));
    points.push({ x: from, y: bucket.value }, { x: to, y: bucket.value });
  }
  return points;
}

/** The largest y of some points, or undefined for none. */
export function maxY(points: readonly Point[]): number | undefined {
  let m: number | undefined;
  for (const p of points) if (m === undefined || p.y > m) m = p.y;
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// Linear scales and "nice" ticks.

export type Scale = (value: number) => number;

/** Maps [d0, d1] onto [r0, r1]; a zero-width domain maps everything to the middle of the range. */
export function linearScale(d0: number, d1: number, r0: number, r1: number): Scale {
  const span = d1 - d0;
  if (span === 0) return () => (r0 + r1) / 2;
  const k = (r1 - r0) / span;
  return (v) => r0 + (v - d0) * k;
}

export interface NiceAxis {
  min: number;
  max: number;
  step: number;
  ticks: number[];
}

/**
 * Round tick steps (1, 2, 2.5 or 5 times a power of ten) covering [min, max] with about `target` intervals, the
 * domain widened to whole steps. An empty range (max <= min) grows to one step above min. `integer` keeps steps >= 1
 * (call indexes).
 */
export function niceTicks(min: number, max: number, target = 5, integer = false): NiceAxis {
  let lo = min;
  let hi = max;
  if (!(hi > lo)) hi = lo === 0 ? 1 : lo + Math.abs(lo);
  const raw = (hi - lo) / Math.max(1, target);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const normalized = raw / magnitude;
  let step = (normalized <= 1 ? 1 : normalized <= 2 ? 2 : normalized <= 2.5 ? 2.5 : normalized <= 5 ? 5 : 10) * magnitude;
  if (integer) step = Math.max(1, Math.ceil(step));
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  const n = Math.round((hi - lo) / step);
  // Built from integers times the step so that 0.1 + 0.2 never shows up as 0.30000000000000004.
  for (let i = 0; i <= n; i++) ticks.push(roundTo(lo + i * step, step));
  return { min: ticks[0] ?? lo, max: ticks[ticks.length - 1] ?? hi, step, ticks };
}

function decimalsFor(step: number): number {
  if (!(step > 0) || step >= 1) return Number.isInteger(step) ? 0 : 1;
  let d = 0;
  while (d < 12 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-9 * 10 ** d) d++;
  return d;
}

function roundTo(value: number, step: number): number {
  const d = decimalsFor(step);
  const r = Number(value.toFixed(d));
  return r === 0 ? 0 : r;
}

/** A tick label with as many decimals as the step needs: step 0.25 -> "0.75", step 20 -> "40", step 0.5 -> "1.5". */
export function formatTick(value: number, step: number): string {
  const text = value.toFixed(decimalsFor(step));
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

/**
 * The value getValueAtPercentile would report from these buckets (percent 0..100): the first value whose running
 * count reaches ceil(percent/100 * N), at least the first. undefined for no samples.
 */
export function valueAtPercentile(buckets: readonly Bucket[], percent: number): number | undefined {
  const total = totalCount(buckets);
  if (total <= 0) return undefined;
  const wanted = Math.max(1, Math.ceil((Math.min(100, Math.max(0, percent)) / 100) * total - 1e-9));
  let running = 0;
  for (const b of buckets) {
    running += b.count;
    if (running >= wanted) return b.value;
  }
  return buckets[buckets.length - 1]?.value;
}

// ---------------------------------------------------------------------------------------------------------------
// The value axis: linear from 0, or logarithmic when one run's tail would flatten everything else.

export interface ValueAxis {
  kind: 'linear' | 'log';
  min: number;
  max: number;
  ticks: number[];
  labels: string[];
}

/** Above this many times the largest median, a linear axis leaves the medians in the bottom pixel row. */
export const LOG_AXIS_RATIO = 100;

/** Decades 10^a .. 10^b covering [low, high] (both > 0). */
export function logTicks(low: number, high: number): number[] {
  const a = Math.floor(Math.log10(low) + 1e-9);
  const b = Math.max(a + 1, Math.ceil(Math.log10(high) - 1e-9));
  const out: number[] = [];
  for (let k = a; k <= b; k++) out.push(Number((10 ** k).toPrecision(1)));
  return out;
}

/**
 * The y axis of a percentile chart whose curves top out at `top`, given each drawn run's median: linear from 0 with
 * nice ticks, unless top is more than LOG_AXIS_RATIO times the largest median (a clamped or runaway tail): then log
 * decades from one decade below the smallest positive median up to top. Values under the bottom are drawn on it.
 */
export function chooseValueAxis(top: number, medians: readonly number[]): ValueAxis {
  const positive = medians.filter((m) => m > 0);
  const typical = positive.length > 0 ? Math.max(...positive) : 0;
  if (typical > 0 && top > LOG_AXIS_RATIO * typical) {
    const ticks = logTicks(Math.min(...positive) / 10, top);
    return { kind: 'log', min: ticks[0] ?? 1, max: ticks[ticks.length - 1] ?? 10, ticks, labels: ticks.map((t) => formatTick(t, t)) };
  }
  const nice = niceTicks(0, top, 5);
  return { kind: 'linear', min: nice.min, max: nice.max, ticks: nice.ticks, labels: nice.ticks.map((t) => formatTick(t, nice.step)) };
}

/** The axis as a scale onto [r0, r1]; on a log axis, values at or below its minimum land on r0. */
export function valueScale(axis: ValueAxis, r0: number, r1: number): Scale {
  if (axis.kind === 'linear') return linearScale(axis.min, axis.max, r0, r1);
  const lo = Math.log10(axis.min);
  const hi = Math.log10(axis.max);
  const k = (r1 - r0) / (hi - lo);
  return (v) => r0 + ((v > axis.min ? Math.log10(v) : lo) - lo) * k;
}

// ---------------------------------------------------------------------------------------------------------------
// SVG paths.

/** Keeps the first and last point of every run of points that fall in the same pixel column (after rounding). */
export function decimateByColumn(points: readonly Point[]): Point[] {
  const out: Point[] = [];
  let i = 0;
  while (i < points.length) {
    const first = points[i] as Point;
    const column = Math.round(first.x);
    let j = i;
    while (j + 1 < points.length && Math.round((points[j + 1] as Point).x) === column) j++;
    out.push(first);
    if (j > i) {
      // Keep the extremes within the column too, so a spike narrower than a pixel is still drawn.
      let lo = i;
      let hi = i;
      for (let k = i + 1; k <= j; k++) {
        const y = (points[k] as Point).y;
        if (y < (points[lo] as Point).y) lo = k;
        if (y > (points[hi] as Point).y) hi = k;
      }
      const extremes = lo === hi ? [lo] : [Math.min(lo, hi), Math.max(lo, hi)];
      for (const k of extremes) if (k !== i && k !== j) out.push(points[k] as Point);
      out.push(points[j] as Point);
    }
    i = j + 1;
  }
  return out;
}

function num(v: number): string {
  const r = Math.round(v * 10) / 10;
  return String(r === 0 ? 0 : r);
}

/** "M x y L x y ..." in pixels, one decimal, repeated points dropped. Empty for no points. */
export function pathFromPoints(points: readonly Point[]): string {
  const parts: string[] = [];
  let last = '';
  for (const p of points) {
    const xy = `${num(p.x)} ${num(p.y)}`;
    if (xy === last) continue;
    parts.push(`${parts.length === 0 ? 'M' : 'L'}${xy}`);
    last = xy;
  }
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------------------------
// Legends and bars.

export interface LegendItem {
  x: number;
  y: number;
  row: number;
}

/**
 * Places legend entries left to right, wrapping to a new row when the next would pass `width`. Each entry is a
 * swatch plus its text, the text estimated at `charWidth` per character.
 */
export function legendLayout(labels: readonly string[], width: number, opts: { charWidth?: number; swatch?: number; gap?: number; rowHeight?: number } = {}): { items: LegendItem[]; rows: number } {
  const charWidth = opts.charWidth ?? 6.2;
  const swatch = opts.swatch ?? 22;
  const gap = opts.gap ?? 18;
  const rowHeight = opts.rowHeight ?? 16;
  const items: LegendItem[] = [];
  let x = 0;
  let row = 0;
  for (const label of labels) {
    const w = swatch + label.length * charWidth;
    if (x > 0 && x + w > width) {
      row++;
      x = 0;
    }
    items.push({ x, y: row * rowHeight, row });
    x += w + gap;
  }
  return { items, rows: labels.length === 0 ? 0 : row + 1 };
}

export interface Segment {
  key: string;
  count: number;
  x: number;
  width: number;
}

/** Stacked bar: consecutive segments of `counts` along [0, width], scaled so that `fullScale` fills the width. */
export function stackSegments(counts: readonly { key: string; count: number }[], fullScale: number, width: number): Segment[] {
  const k = fullScale > 0 ? width / fullScale : 0;
  const out: Segment[] = [];
  let x = 0;
  for (const { key, count } of counts) {
    if (count <= 0) continue;
    const w = count * k;
    out.push({ key, count, x, width: w });
    x += w;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Capacity curves: a value axis that holds the measured values and the reference lines (SLO limits, CPU caps).

/**
 * A linear axis over `values` and `refs` together, so that a limit the values never reached is still on the chart.
 * From 0, or with `fit` from just below the smallest (MOS lives between 4 and 4.5: from 0 its changes would be a
 * few pixels). Nothing at all gives 0..1.
 */
export function curveAxis(values: readonly number[], refs: readonly number[], fit = false): ValueAxis {
  const all = [...values, ...refs].filter((v) => Number.isFinite(v));
  let lo = fit && all.length > 0 ? Math.min(...all) : 0;
  let hi = all.length > 0 ? Math.max(...all) : 1;
  if (fit && hi - lo < 0.2) {
    // A flat curve at its limit: a little room either side, or the axis would be one tick wide.
    lo -= 0.1;
    hi += 0.1;
  }
  if (!fit) lo = Math.min(0, lo);
  // Headroom: a value (or a limit) at the very top would sit on the plot's border, its marker cut in half.
  hi += (hi - lo) * 0.05;
  const nice = niceTicks(lo, hi, 5);
  return { kind: 'linear', min: nice.min, max: nice.max, ticks: nice.ticks, labels: nice.ticks.map((t) => formatTick(t, nice.step)) };
}
