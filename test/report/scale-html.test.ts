/** The scale page, read back from its SVG: capacity against workers beside the ideal, efficiency per count, the curves. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderScaleHtml } from '../../src/report/scale-html.js';
import { fixtureScale } from './fixture.js';
import { closeTo, elements, figureWith, num, xAxisOf, yAxisOf } from './read-back.js';

test('scale chart: the ideal line passes through N x capacity(1) at every count N, and each point sits at its capacity', async () => {
  const results = await fixtureScale({ 1: 12, 2: 22, 4: 34 });
  const [one] = results.scale.points;
  assert.equal(one!.maxCalls, 13);
  const svg = figureWith(renderScaleHtml([results]), 'Capacity against workers');
  const x = xAxisOf(svg);
  const y = yAxisOf(svg);
  const [ideal] = elements(svg, 'line', 'ideal');
  assert.ok(ideal !== undefined, 'an ideal line');
  const [x1, y1, x2, y2] = [num(ideal, 'x1'), num(ideal, 'y1'), num(ideal, 'x2'), num(ideal, 'y2')];
  for (const n of [1, 2, 4]) {
    // The ideal's height where the count stands, against N x capacity(1) / 1 on the chart's own axis.
    const at = y1 + ((x(n) - x1) * (y2 - y1)) / (x2 - x1);
    closeTo(at, y((n * 13) / 1), `ideal at ${n} workers`, 0.25);
  }
  const points = elements(svg, 'circle', 'point');
  assert.deepEqual(points.map((p) => [num(p, 'data-workers'), num(p, 'data-calls')]), results.scale.points.map((p) => [p.workers, p.maxCalls]));
  for (const p of points) {
    closeTo(num(p, 'cx'), x(num(p, 'data-workers')), 'point x');
    closeTo(num(p, 'cy'), y(num(p, 'data-calls')), 'point y');
  }
  // Each count labelled with its efficiency: 23 / (2 x 13) = 88%, 35 / (4 x 13) = 67%.
  const labels = [...svg.matchAll(/<text class="efficiency"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.deepEqual(labels, ['13 (100%)', '23 (88%)', '35 (67%)']);
});

test('scale page: the table, every count\'s curve on shared axes with its knee, and each count\'s own search', async () => {
  const results = await fixtureScale({ 1: 12, 2: 22 });
  const page = renderScaleHtml([results]);
  assert.match(page, /<td>2<\/td><td>23<\/td><td>11.5<\/td><td>88%<\/td>/);
  const latency = figureWith(page, '(latency.p99)');
  const x = xAxisOf(latency);
  const knees = elements(latency, 'line', 'knee');
  assert.deepEqual(knees.map((k) => num(k, 'data-calls')), [13, 23], 'one knee per count');
  closeTo(num(knees[1]!, 'x1'), x(23), 'the 2-worker knee');
  assert.equal(elements(latency, 'path', 'curve').length, 2, 'one curve per count');
  assert.equal(elements(latency, 'line', 'slo').length, 1);
  assert.equal(page.split('<details class="search">').length - 1, 2, 'each count\'s search');
  assert.ok(page.includes('2 workers: capacity: 23 calls of opus:pcmu on 2 workers (0.2 cores each)'));
});

test('scale chart: no ideal when the smallest count has no capacity to extrapolate from', async () => {
  const results = await fixtureScale({ 1: 12, 2: 22 });
  const first = results.scale.points[0]!;
  const page = renderScaleHtml([{ ...results, scale: { points: [{ ...first, maxCalls: null, generatorLimited: true, efficiency: null }, ...results.scale.points.slice(1)] } }]);
  const svg = figureWith(page, 'Capacity against workers');
  assert.equal(elements(svg, 'line', 'ideal').length, 0);
  assert.equal(elements(svg, 'circle', 'point').length, 1);
});
