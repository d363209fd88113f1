/**
 * The capacity page, read back from its SVG: each SLO limit is a line at its value on the chart of the figure it
 * limits (checked against the chart's own tick labels), the knee is at the answer and the first failing count, every
 * step is marked pass or fail where it was measured, and the timeline shades each step's window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderCapacityHtml } from '../../src/report/capacity-html.js';
import { writeSearchFiles } from '../../src/commands/capacity.js';
import type { CapacityResults } from '../../src/report/search-results.js';
import { fixtureCapacity } from './fixture.js';
import { closeTo, elements, figureWith, num, xAxisOf, yAxisOf } from './read-back.js';

const CURVES = [
  { title: '(latency.p99)', metric: 'latency.p99', limit: 60 },
  { title: '(loss)', metric: 'loss', limit: 0.5 },
  { title: '(mos.p50)', metric: 'mos.p50', limit: 4 },
] as const;

test('capacity page: each SLO limit is a line at its value, on the chart of the figure it limits, and on no other', async () => {
  const results = await fixtureCapacity();
  const page = renderCapacityHtml([results]);
  for (const { title, metric, limit } of CURVES) {
    const svg = figureWith(page, title);
    const lines = elements(svg, 'line', 'slo');
    assert.equal(lines.length, 1, `${metric}: one SLO line`);
    const line = lines[0]!;
    assert.equal(num(line, 'data-value'), limit);
    const y = yAxisOf(svg);
    closeTo(num(line, 'y1'), y(limit), `${metric}'s SLO line`);
    closeTo(num(line, 'y2'), y(limit), `${metric}'s SLO line, right end`);
  }
  // The CPU chart has no SLO term, but the workers' cap, at 30% of a core.
  const cpu = figureWith(page, 'rtpengine CPU per worker');
  assert.equal(elements(cpu, 'line', 'slo').length, 0);
  const [cap] = elements(cpu, 'line', 'cap');
  closeTo(num(cap!, 'y1'), yAxisOf(cpu)(30), 'the CPU cap line');
});

test('capacity page: the knee at maxCalls and the first failing count above it, on every curve chart', async () => {
  const results = await fixtureCapacity();
  const c = results.capacity!;
  assert.equal(c.maxCalls, 17);
  assert.equal(c.limitedBy?.atCalls, 18);
  const page = renderCapacityHtml([results]);
  for (const title of [...CURVES.map((k) => k.title), 'rtpengine CPU per worker']) {
    const svg = figureWith(page, title);
    const x = xAxisOf(svg);
    const knees = elements(svg, 'line', 'knee');
    const fails = elements(svg, 'line', 'knee-fail');
    assert.equal(knees.length, 1, `${title}: one knee`);
    assert.equal(fails.length, 1, `${title}: one first-failing line`);
    assert.equal(num(knees[0]!, 'data-calls'), 17);
    closeTo(num(knees[0]!, 'x1'), x(17), `${title}: knee`);
    closeTo(num(knees[0]!, 'x2'), x(17), `${title}: knee, bottom`);
    closeTo(num(fails[0]!, 'x1'), x(18), `${title}: first failing`);
    assert.ok(svg.includes('capacity: 17 calls') && svg.includes('first failing: 18 calls'), `${title}: both named in the legend`);
  }
});

test('capacity page: every step marked pass or fail at its calls and its measured figure', async () => {
  const results = await fixtureCapacity();
  const steps = results.capacity!.steps;
  const svg = figureWith(renderCapacityHtml([results]), '(latency.p99)');
  const x = xAxisOf(svg);
  const y = yAxisOf(svg);
  const passed = elements(svg, 'circle', 'step pass');
  const failed = elements(svg, 'g', 'step fail');
  assert.deepEqual(passed.map((p) => num(p, 'data-calls')).sort((a, b) => a - b), steps.filter((s) => s.pass).map((s) => s.calls).sort((a, b) => a - b));
  assert.deepEqual(failed.map((p) => num(p, 'data-calls')).sort((a, b) => a - b), steps.filter((s) => !s.pass).map((s) => s.calls).sort((a, b) => a - b));
  for (const mark of passed) {
    const step = steps.find((s) => s.calls === num(mark, 'data-calls'))!;
    closeTo(num(mark, 'cx'), x(step.calls), `step ${step.calls} x`);
    closeTo(num(mark, 'cy'), y(step.figures['latency.p99']!), `step ${step.calls} y`);
  }
});

test('capacity page: the answer, the steps table and the timeline with each step window shaded', async () => {
  const results = await fixtureCapacity();
  const page = renderCapacityHtml([results]);
  assert.ok(page.includes('<p class="answer">capacity: 17 calls of opus:pcmu on 1 worker (0.3 cores each)'), 'the answer line');
  const table = page.slice(page.indexOf('<table class="figures steps">'), page.indexOf('</table>', page.indexOf('<table class="figures steps">')));
  assert.equal(table.split('<tr').length - 2, 5, 'a row per step');
  assert.equal(table.split('<tr class="fail">').length - 1, 2, 'the failed steps tinted');
  for (const title of ['Calls up over time', 'Loss over time', 'Latency over time', 'rtpengine CPU over time']) {
    const svg = figureWith(page, title);
    assert.equal(elements(svg, 'rect', 'band-pass').length, 3, `${title}: passed windows`);
    const failedBands = elements(svg, 'rect', 'band-fail');
    assert.equal(failedBands.length, 2, `${title}: failed windows`);
    // The 18-call step's window, seconds 26 to 30 of the search.
    const x = xAxisOf(svg);
    const last = failedBands[1]!;
    closeTo(num(last, 'x'), x(26), `${title}: window start`);
    closeTo(num(last, 'x') + num(last, 'width'), x(30), `${title}: window end`, 0.2);
  }
  assert.equal(/<script/i.test(page), false);
});

test('capacity page: strings from the file are escaped', async () => {
  const results = await fixtureCapacity();
  const hostile: CapacityResults = { ...results, runId: '<img src=x onerror=alert(1)>', profiles: results.profiles.map((p) => ({ ...p, codecPair: '<b>x</b>' })) };
  const page = renderCapacityHtml([hostile]);
  assert.equal(page.includes('<img'), false);
  assert.equal(page.includes('<b>x</b>'), false);
  assert.ok(page.includes('&lt;b&gt;x&lt;/b&gt;'));
});

test('writeSearchFiles: the page next to the JSON; both to a temporary folder when the place fails; the JSON even when the page cannot be drawn', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-capacity-html-'));
  const err: string[] = [];
  const io = { err: { write: (t: string) => err.push(t) > 0 }, out: { write: () => true } } as unknown as Parameters<typeof writeSearchFiles>[3];
  try {
    const results = await fixtureCapacity();
    const output = join(dir, 'cap.json');
    assert.equal(await writeSearchFiles(results, () => renderCapacityHtml([results]), output, io, () => undefined), true);
    assert.deepEqual(JSON.parse(readFileSync(output, 'utf8')), JSON.parse(JSON.stringify(results)));
    assert.ok(readFileSync(join(dir, 'cap.html'), 'utf8').includes('class="knee"'));

    const nowhere = join(dir, 'no', 'such', 'cap.json');
    const lines: string[] = [];
    assert.equal(await writeSearchFiles(results, () => renderCapacityHtml([results]), nowhere, io, (l) => lines.push(l)), true);
    const fallback = /the results were written to (\S+) instead/.exec(err.join(''))?.[1];
    assert.ok(fallback !== undefined && existsSync(fallback), err.join(''));
    const folder = fallback.slice(0, fallback.lastIndexOf('/'));
    assert.deepEqual(readdirSync(folder).sort(), ['cap.html', 'cap.json']);
    rmSync(folder, { recursive: true, force: true });

    err.length = 0;
    const broken = join(dir, 'broken.json');
    const drawn = await writeSearchFiles(results, () => { throw new Error('planted'); }, broken, io, () => undefined);
    assert.equal(drawn, true);
    assert.ok(existsSync(broken));
    assert.equal(existsSync(join(dir, 'broken.html')), false);
    assert.match(err.join(''), /the page of charts could not be drawn \(planted\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
