import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callLatencyMs, callLossPct, escapeHtml, htmlPathFor, renderHtml } from '../../src/report/html.js';
import type { StreamRecord } from '../../src/stats/stream.js';
import type { Results } from '../../src/report/results.js';
import { MetricSet } from '../../src/stats/histogram.js';
import { fixtureResults } from './fixture.js';
import { figureWith } from './read-back.js';

const HOSTILE_ID = `20260101-120500-<b>&"x'`;
const HOSTILE_MESSAGE = '<script>alert("owned")</script> & <img src=x onerror=alert(1)>';

function twoRuns(): Results[] {
  return [
    fixtureResults({ runId: '20260101-120000-aaaa', workers: 1, latencyMs: 30, lossEvery: 3 }),
    fixtureResults({
      runId: HOSTILE_ID,
      workers: 2,
      latencyMs: 20,
      seed: 9,
      failed: [
        { index: 2, cause: 'ng timeout', message: HOSTILE_MESSAGE },
        { index: 4, cause: 'no media b->a', message: 'no RTP from leg b' },
      ],
    }),
  ];
}

function count(haystack: string, needle: string | RegExp): number {
  return haystack.split(needle).length - 1;
}

test('renderHtml: one page, one SVG per chart, all sixteen charts for two complete runs', () => {
  const page = renderHtml(twoRuns());
  assert.match(page, /^<!DOCTYPE html>/);
  assert.ok(page.trimEnd().endsWith('</html>'));
  const figures = count(page, '<figure class="chart">');
  assert.equal(figures, 16, '6 percentile charts, 6 over time, setup, loss and latency per call, calls by outcome');
  assert.equal(count(page, '<svg'), figures);
  assert.equal(count(page, '</svg>'), figures);
  for (const metric of ['latencyMs', 'audioDelayMs', 'jitterMs', 'transitJitterMs', 'setupMs', 'sendLatenessMs']) {
    const figure = figureWith(page, `(${metric})`);
    assert.equal(count(figure, '<path d="M'), 2, `${metric}: one line per run`);
    assert.ok(figure.includes('>50%<') && figure.includes('>99%<'), `${metric}: percentile ticks`);
  }
  figureWith(page, 'Setup time per call');
  figureWith(page, 'Loss per call');
  figureWith(page, 'Calls by outcome');
  // Over time: one line per run, two (p50 and p99, or sent and received) where the caption says so.
  assert.equal(count(figureWith(page, 'Calls up over time'), '<path d="M'), 2);
  assert.equal(count(figureWith(page, 'Latency over time'), '<path d="M'), 4);
  assert.equal(count(figureWith(page, 'Packets per second'), '<path d="M'), 4);
  // Several runs: each run's workers added up, one line per run.
  assert.equal(count(figureWith(page, 'rtpengine CPU over time'), '<path d="M'), 2);
  // One run: one line per worker.
  const single = renderHtml([twoRuns()[1]!]);
  assert.equal(count(figureWith(single, 'rtpengine CPU over time'), '<path d="M'), 2, 'two workers, two lines');
  // One dot per call that carried media, at the mean of its directions' mean latency.
  const latency = figureWith(page, 'One-way latency per call');
  const runs = twoRuns();
  const withMedia = runs.flatMap((r) => r.calls.filter((c) => c.streams.some((x) => x.latencyMeanMs !== null)));
  assert.equal(count(latency, 'r="2.6"'), withMedia.length, 'one point per call (legend swatches are r=3.5)');
});

test('callLatencyMs: the mean of the directions that matched any packet', () => {
  const [run] = twoRuns() as [Results, Results];
  const call = run.calls[0]!;
  const [ab, ba] = call.streams as [StreamRecord, StreamRecord];
  assert.equal(callLatencyMs({ ...call, streams: [{ ...ab, latencyMeanMs: 20 }, { ...ba, latencyMeanMs: 41 }] }), 30.5);
  assert.equal(callLatencyMs({ ...call, streams: [{ ...ab, latencyMeanMs: 20 }, { ...ba, latencyMeanMs: null }] }), 20);
  assert.equal(callLatencyMs({ ...call, streams: [] }), null);
});

test('renderHtml: self-contained, no script, every string from the file escaped', () => {
  const page = renderHtml(twoRuns());
  assert.equal(/<script/i.test(page), false, 'no <script');
  assert.equal(/<img/i.test(page), false, 'no injected <img');
  // Every tag is one of ours: no event handlers, nothing loaded from anywhere.
  const tags = page.match(/<[a-zA-Z][^>]*>/g) ?? [];
  assert.ok(tags.length > 100);
  for (const tag of tags) assert.equal(/\s(on\w+|src|href|xlink:href)=/i.test(tag), false, tag);
  for (const external of [/@import/i, /url\(/i, /<link/i, /<iframe/i, /<object/i]) assert.equal(external.test(page), false, `${external}`);
  // The only URL is SVG's namespace name, which is never fetched.
  assert.deepEqual([...new Set(page.match(/https?:\/\/[^"'\s)]+/g))], ['http://www.w3.org/2000/svg']);

  const escapedId = '20260101-120500-&lt;b&gt;&amp;&quot;x&#39;';
  assert.ok(page.includes(escapedId), 'the run id, escaped');
  assert.equal(page.includes(HOSTILE_ID), false, 'never the raw run id');
  assert.ok(page.includes('&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;'), 'the failure message, escaped');
  assert.ok(page.includes('no media b-&gt;a'), 'causes escaped');
});

test('renderHtml: a header per run and the key figures, one column per run, 2/1 for two runs', () => {
  const [one, two] = twoRuns() as [Results, Results];
  const page = renderHtml([one, { ...two, summary: { ...two.summary, interrupted: true } }]);
  assert.equal(count(page, '<article class="run'), 2);
  for (const text of ['2026-01-01 12:00:00 UTC', 'opus:pcmu (transcoded)', 'embedded, 1 worker, 10.5.3.5', 'embedded, 2 workers, 10.5.3.5', 'INTERRUPTED']) {
    assert.ok(page.includes(text), text);
  }
  assert.ok(page.includes('<th class="ratio">2 / 1</th>'));
  // calls ok: 6 of 6, then 4 of 6.
  assert.match(page, /<th scope="row">calls ok \/ attempted<\/th><td>6\/6<\/td><td>4\/6<\/td><td class="ratio">0.67x<\/td>/);
  assert.match(page, /<th scope="row" class="indent">ng timeout<\/th><td>0<\/td><td>1<\/td>/);
  const three = renderHtml([one, two, one]);
  assert.equal(three.includes('class="ratio"'), false, 'no ratio column for three runs');
});

test('renderHtml: absent metrics are skipped, not drawn as zero', () => {
  const [one, two] = twoRuns() as [Results, Results];
  const withoutLateness = (r: Results): Results => {
    const { sendLatenessMs: _drop, ...histograms } = r.histograms;
    return { ...r, histograms };
  };
  const page = renderHtml([withoutLateness(one), withoutLateness(two)]);
  assert.equal(page.includes('(sendLatenessMs)'), false, 'no chart for a metric no run recorded');
  assert.equal(count(page, '<svg'), 15);

  // Recorded by one run only: that run's line, and the other named as not recorded.
  const { jitterMs: _j, ...noJitter } = two.histograms;
  const mixed = renderHtml([one, { ...two, histograms: noJitter }]);
  const jitter = figureWith(mixed, '(jitterMs)');
  assert.equal(count(jitter, '<path d="M'), 1);
  assert.ok(jitter.includes('not recorded'));

  // A calibration run has no setup: the setup charts show only the other run, and a run of failed calls gives
  // no loss values at all.
  const calibration = fixtureResults({ runId: '20260101-130000-cccc', workers: 0 });
  const withCal = renderHtml([one, calibration]);
  const setupCurve = figureWith(withCal, '(setupMs)');
  assert.equal(count(setupCurve, '<path d="M'), 1);
  assert.ok(figureWith(withCal, 'Setup time per call').includes('no values'));
  assert.ok(withCal.includes('none (calibration)'));

  const nothing = fixtureResults({ runId: '20260101-140000-dddd', calls: 2, packets: 0, failed: [{ index: 0, cause: 'ng timeout', message: 'x' }, { index: 1, cause: 'ng timeout', message: 'y' }] });
  const empty = renderHtml([{ ...nothing, histograms: {}, timeline: [] }]);
  assert.equal(count(empty, '<svg'), 1, 'only calls by outcome');
  assert.ok(empty.includes('No run recorded latency'));
});

test('renderHtml: an unreadable histogram is named, not fatal', () => {
  const [one, two] = twoRuns() as [Results, Results];
  const page = renderHtml([one, { ...two, histograms: { ...two.histograms, latencyMs: 'garbage!' } }]);
  const latency = figureWith(page, '(latencyMs)');
  assert.equal(count(latency, '<path d="M'), 1);
  assert.ok(latency.includes('Histogram not drawn (run 2:'));
});

test('renderHtml: a runaway tail switches that chart to a log axis', () => {
  const [one, two] = twoRuns() as [Results, Results];
  const page = renderHtml([one, two]);
  assert.equal(figureWith(page, '(latencyMs)').includes('log scale'), false);
  const spiky = fixtureResults({ runId: '20260101-150000-eeee', latencyMs: 20 });
  const metrics = new MetricSet();
  for (let i = 0; i < 900; i++) metrics.record('jitterMs', 0.5);
  for (let i = 0; i < 100; i++) metrics.record('jitterMs', 60_000);
  const withTail = { ...spiky, histograms: { ...spiky.histograms, jitterMs: metrics.encode().jitterMs ?? '' } };
  const jitter = figureWith(renderHtml([one, withTail]), '(jitterMs)');
  assert.ok(jitter.includes('ms, log scale'));
  assert.ok(jitter.includes('>100000<'));
});

test('callLossPct: both directions over what could be delivered; null without media', () => {
  const run = fixtureResults({ lossEvery: 3, failed: [{ index: 1, cause: 'ng timeout', message: '' }] });
  assert.equal(callLossPct(run.calls[0] as Results['calls'][0]), (10 * 100) / 498);
  assert.equal(callLossPct(run.calls[1] as Results['calls'][0]), null);
  assert.equal(callLossPct(run.calls[2] as Results['calls'][0]), 0);
});

test('htmlPathFor: next to the results file', () => {
  assert.equal(htmlPathFor('results/20260101-120000-aaaa.json'), 'results/20260101-120000-aaaa.html');
  assert.equal(htmlPathFor('/tmp/run.JSON'), '/tmp/run.html');
  assert.equal(htmlPathFor('/tmp/dir.json/run.json'), '/tmp/dir.json/run.html');
  assert.equal(htmlPathFor('out'), 'out.html');
});

test('escapeHtml', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  assert.equal(escapeHtml('plain 20260101-120000-aaaa'), 'plain 20260101-120000-aaaa');
});

test('renderHtml: a fault is a red band on the time charts of its run, from its time over its length, named on hover', () => {
  const run = fixtureResults({ runId: '20260101-120000-faul', workers: 2 });
  const fault = { target: 'worker 1', done: true, failover: null } as const;
  run.summary.faults = [
    { ...fault, kind: 'kill-worker', spec: 'kill-worker=1@3s', atMs: 1_767_268_803_000, atT: 3, durationMs: null, note: 'SIGKILL to pid 42 <x>' },
    { ...fault, kind: 'pause-worker', spec: 'pause-worker=2@1s:2s', atMs: 1_767_268_801_000, atT: 1, durationMs: 2000, note: 'SIGSTOP' },
    { ...fault, kind: 'kill-worker', spec: 'kill-worker=2@9s', atMs: null, atT: null, durationMs: null, done: false, note: 'not made' },
  ];
  const page = renderHtml([run]);
  const calls = figureWith(page, 'Calls up over time');
  assert.equal(count(calls, 'class="band-fault"'), 2, 'the two faults that were made');
  assert.ok(calls.includes('<title>fault kill-worker=1@3s: SIGKILL to pid 42 &lt;x&gt;</title>'));
  assert.match(calls, /width="0\.5" [^>]*><title>fault kill-worker=1@3s/, 'a kill is an instant: a hairline');
  // Compared runs have different faults: none drawn.
  assert.equal(count(renderHtml([run, run]), 'class="band-fault"'), 0);
});
