import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chooseValueAxis,
  decimateByColumn,
  decodeBuckets,
  formatTick,
  legendLayout,
  linearScale,
  logTicks,
  niceTicks,
  pathFromPoints,
  percentileAxisMax,
  percentileCurve,
  percentileTicks,
  percentileToX,
  stackSegments,
  totalCount,
  valueAtPercentile,
  valueScale,
  xToPercentile,
  type Point,
} from '../../src/report/chart.js';
import { METRICS, MetricSet } from '../../src/stats/histogram.js';
import { prng } from '../helpers/prng.js';

function near(actual: number, expected: number, what: string, tolerance = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not ${expected}`);
}

function nearPoints(actual: readonly Point[], expected: readonly [number, number][]): void {
  assert.equal(actual.length, expected.length, `points: ${JSON.stringify(actual)}`);
  expected.forEach(([x, y], i) => {
    near(actual[i]?.x ?? NaN, x, `point ${i} x`);
    near(actual[i]?.y ?? NaN, y, `point ${i} y`);
  });
}

/** A histogram as a results file holds it: recorded through MetricSet, encoded to compressed base64. */
function encoded(values: readonly (readonly [number, number])[]): string {
  const metrics = new MetricSet();
  for (const [value, count] of values) for (let i = 0; i < count; i++) metrics.record('latencyMs', value);
  const text = metrics.encode().latencyMs;
  assert.ok(text !== undefined);
  return text;
}

test('percentileToX: each nine is one unit, log10(1 / (1 - p))', () => {
  const cases: [number, number][] = [
    [0, 0],
    [50, Math.log10(2)],
    [75, Math.log10(4)],
    [90, 1],
    [99, 2],
    [99.9, 3],
    [99.99, 4],
    [99.999, 5],
  ];
  for (const [p, x] of cases) {
    near(percentileToX(p), x, `x(${p}%)`, 1e-9);
    near(xToPercentile(x), p, `p(${x})`, 1e-9);
  }
  assert.equal(percentileToX(100), Number.POSITIVE_INFINITY);
  assert.equal(percentileToX(-5), 0);
});

test('percentileTicks: 50% .. 99.99% at 0.301, 1, 2, 3, 4, cut at the axis end', () => {
  const ticks = percentileTicks(4);
  assert.deepEqual(
    ticks.map((t) => t.label),
    ['0%', '50%', '90%', '99%', '99.9%', '99.99%'],
  );
  const xs = [0, 0.30103, 1, 2, 3, 4];
  ticks.forEach((t, i) => near(t.x, xs[i] ?? NaN, t.label, 1e-5));
  assert.deepEqual(
    percentileTicks(2).map((t) => t.label),
    ['0%', '50%', '90%', '99%'],
  );
  assert.equal(percentileTicks(5).at(-1)?.label, '99.999%');
});

test('percentileAxisMax: as far as the sample count resolves, 99% .. 99.999%', () => {
  const cases: [number, number][] = [
    [0, 2],
    [1, 2],
    [10, 2],
    [100, 2],
    [101, 3],
    [1000, 3],
    [5526, 4],
    [10_000, 4],
    [10_001, 5],
    [1e9, 5],
  ];
  for (const [count, x] of cases) assert.equal(percentileAxisMax(count), x, `count ${count}`);
});

test('decodeBuckets: the recorded values back in ms, with their counts', () => {
  const buckets = decodeBuckets(encoded([[0.5, 1], [1, 2], [1.5, 1], [2, 4]]), METRICS.latencyMs.scale);
  assert.deepEqual(buckets, [
    { value: 0.5, count: 1 },
    { value: 1, count: 2 },
    { value: 1.5, count: 1 },
    { value: 2, count: 4 },
  ]);
  assert.equal(totalCount(buckets), 8);
  assert.throws(() => decodeBuckets('not a histogram', 1000));
});

test('percentileCurve: four equal samples make a staircase at 25%, 50%, 75%', () => {
  const buckets = decodeBuckets(encoded([[0.5, 1], [1, 1], [1.5, 1], [2, 1]]), 1000);
  const x25 = Math.log10(4 / 3);
  const x50 = Math.log10(2);
  const x75 = Math.log10(4);
  nearPoints(percentileCurve(buckets, 2), [
    [0, 0.5],
    [x25, 0.5],
    [x25, 1],
    [x50, 1],
    [x50, 1.5],
    [x75, 1.5],
    [x75, 2],
    [2, 2],
  ]);
});

test('percentileCurve: 99 fast and 1 slow sample step up at exactly 99% (x = 2)', () => {
  const buckets = decodeBuckets(encoded([[1, 99], [2, 1]]), 1000);
  nearPoints(percentileCurve(buckets, 3), [
    [0, 1],
    [2, 1],
    [2, 2],
    [3, 2],
  ]);
  // An axis that ends before 99% shows only the first step.
  nearPoints(percentileCurve(buckets, 1), [
    [0, 1],
    [1, 1],
  ]);
  assert.deepEqual(percentileCurve([], 4), []);
});

test('valueAtPercentile: agrees with the summary (getValueAtPercentile) on a mixed histogram', () => {
  const random = prng(42);
  const metrics = new MetricSet();
  for (let i = 0; i < 5000; i++) metrics.record('latencyMs', 15 + random() * random() * 80);
  const summary = metrics.summary('latencyMs');
  assert.ok(summary);
  const buckets = decodeBuckets(metrics.encode().latencyMs ?? '', 1000);
  assert.equal(valueAtPercentile(buckets, 50), summary.p50);
  assert.equal(valueAtPercentile(buckets, 90), summary.p90);
  assert.equal(valueAtPercentile(buckets, 99), summary.p99);
  assert.equal(valueAtPercentile(buckets, 99.9), summary.p999);
  assert.equal(valueAtPercentile(buckets, 100), summary.max);
  assert.equal(valueAtPercentile([], 50), undefined);
  // The curve reads the same at each tick: a step (x_{i-1}, v) .. (x_i, v) holds v for percentiles in
  // (x_{i-1}, x_i], so the first point at or after x(p) carries p's value.
  const curve = percentileCurve(buckets, 4);
  for (const p of [50, 90, 99, 99.9, 99.99]) {
    const x = percentileToX(p);
    const at = curve.find((pt) => pt.x >= x - 1e-12);
    assert.equal(at?.y, valueAtPercentile(buckets, p), `curve at ${p}%`);
  }
});

test('niceTicks: round steps covering the data', () => {
  assert.deepEqual(niceTicks(0, 69.439).ticks, [0, 20, 40, 60, 80]);
  assert.deepEqual(niceTicks(0, 4.363).ticks, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(niceTicks(0, 0.3).ticks, [0, 0.1, 0.2, 0.3]);
  assert.deepEqual(niceTicks(0, 12).ticks, [0, 2.5, 5, 7.5, 10, 12.5]);
  assert.deepEqual(niceTicks(0, 0).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 9, 6, true).ticks, [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(0, 3, 6, true).ticks, [0, 1, 2, 3]);
  const axis = niceTicks(0, 60_031);
  assert.equal(axis.step, 20_000);
  assert.equal(axis.max, 80_000);
});

test('formatTick: as many decimals as the step needs', () => {
  assert.equal(formatTick(0.75, 0.25), '0.75');
  assert.equal(formatTick(40, 20), '40');
  assert.equal(formatTick(1.5, 0.5), '1.5');
  assert.equal(formatTick(0.3, 0.1), '0.3');
  assert.equal(formatTick(7.5, 2.5), '7.5');
  assert.equal(formatTick(0.01, 0.01), '0.01');
  assert.equal(formatTick(100000, 100000), '100000');
  assert.equal(formatTick(-0, 1), '0');
});

test('linearScale: maps the domain onto the range, flipped too', () => {
  const x = linearScale(0, 10, 100, 200);
  assert.equal(x(0), 100);
  assert.equal(x(5), 150);
  assert.equal(x(10), 200);
  const y = linearScale(0, 80, 244, 14);
  assert.equal(y(0), 244);
  assert.equal(y(80), 14);
  assert.equal(linearScale(3, 3, 0, 10)(3), 5);
});

test('chooseValueAxis: linear from 0, log decades when a tail is 100x the largest median', () => {
  const linear = chooseValueAxis(69.4, [40.35, 30.06]);
  assert.equal(linear.kind, 'linear');
  assert.deepEqual(linear.ticks, [0, 20, 40, 60, 80]);
  assert.deepEqual(linear.labels, ['0', '20', '40', '60', '80']);

  const log = chooseValueAxis(60_000, [0.593, 0.253]);
  assert.equal(log.kind, 'log');
  assert.deepEqual(log.ticks, [0.01, 0.1, 1, 10, 100, 1000, 10_000, 100_000]);
  assert.deepEqual(log.labels, ['0.01', '0.1', '1', '10', '100', '1000', '10000', '100000']);
  const y = valueScale(log, 240, 10);
  near(y(0.01), 240, 'bottom');
  near(y(100_000), 10, 'top');
  near(y(10), 240 - (3 / 7) * 230, 'a decade is 1/7 of the height');
  assert.equal(y(0), 240, 'zero sits on the bottom line');

  // Medians of 0 (nothing typical to compare with) stay linear.
  assert.equal(chooseValueAxis(5, [0]).kind, 'linear');
  assert.deepEqual(logTicks(0.025, 60_000), [0.01, 0.1, 1, 10, 100, 1000, 10_000, 100_000]);
  assert.deepEqual(logTicks(1, 1), [1, 10]);
});

test('decimateByColumn: first, extremes and last of each pixel column', () => {
  const points: Point[] = [
    { x: 0, y: 0 },
    { x: 0.2, y: 1 },
    { x: 0.4, y: 5 },
    { x: 0.3, y: 2 },
    { x: 3, y: 3 },
  ];
  assert.deepEqual(decimateByColumn(points), [
    { x: 0, y: 0 },
    { x: 0.4, y: 5 },
    { x: 0.3, y: 2 },
    { x: 3, y: 3 },
  ]);
  // A staircase of 10 000 tiny steps over 100 pixels keeps at most 4 points per column.
  const stairs: Point[] = [];
  for (let i = 0; i < 10_000; i++) stairs.push({ x: i / 100, y: i }, { x: (i + 1) / 100, y: i });
  const thin = decimateByColumn(stairs);
  assert.ok(thin.length <= 4 * 101, `${thin.length} points`);
  assert.deepEqual(thin[0], stairs[0]);
  assert.deepEqual(thin.at(-1), stairs.at(-1));
});

test('pathFromPoints: one decimal, repeats dropped', () => {
  assert.equal(
    pathFromPoints([
      { x: 0, y: 0 },
      { x: 10.04, y: 5.56 },
      { x: 10.01, y: 5.58 },
      { x: 20, y: -0.01 },
    ]),
    'M0 0 L10 5.6 L20 0',
  );
  assert.equal(pathFromPoints([]), '');
});

test('legendLayout: wraps to a new row when the next entry would pass the width', () => {
  const { items, rows } = legendLayout(['aaaa', 'bb', 'cccc'], 120, { charWidth: 10, swatch: 20, gap: 10, rowHeight: 16 });
  assert.deepEqual(items, [
    { x: 0, y: 0, row: 0 },
    { x: 70, y: 0, row: 0 },
    { x: 0, y: 16, row: 1 },
  ]);
  assert.equal(rows, 2);
  assert.equal(legendLayout([], 100).rows, 0);
});

test('stackSegments: consecutive, scaled to the largest bar, empty causes skipped', () => {
  assert.deepEqual(
    stackSegments(
      [
        { key: 'ok', count: 7 },
        { key: 'ng timeout', count: 0 },
        { key: 'no media b->a', count: 3 },
      ],
      20,
      200,
    ),
    [
      { key: 'ok', count: 7, x: 0, width: 70 },
      { key: 'no media b->a', count: 3, x: 70, width: 30 },
    ],
  );
});
