/** A run split by rtpengine worker: calls, loss and latency from the call records, CPU from the summary. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerSplit, workerSplitCells } from '../../src/report/workers.js';
import { renderSummary } from '../../src/report/table.js';
import { renderHtml } from '../../src/report/html.js';
import { checkSlo } from '../../src/report/slo.js';
import type { Results } from '../../src/report/results.js';
import { fixtureResults } from './fixture.js';

/** Two workers; calls alternate between them (0, 2, 4 on the first), call 0 and 3 lose 5 packets per stream. */
function twoWorkers(): Results {
  const run = fixtureResults({ workers: 2, lossEvery: 3, failed: [{ index: 4, cause: 'ng timeout', message: 'no reply' }] });
  // A planted difference in latency: the second worker's streams are 10 ms slower.
  const calls = run.calls.map((c) => (c.worker === '127.0.0.1:2224' ? { ...c, streams: c.streams.map((s) => ({ ...s, latencyMeanMs: 30, latencyMaxMs: 45 })) } : c));
  return { ...run, calls };
}

test('workerSplit: each worker its own calls, loss and latency, and its CPU from the summary', () => {
  const run = twoWorkers();
  const [a, b] = workerSplit(run.calls, run.summary.workers);
  assert.equal(a!.name, '127.0.0.1:2223');
  assert.deepEqual([a!.attempted, a!.ok, a!.failed], [3, 2, 1]);
  assert.deepEqual([b!.attempted, b!.ok, b!.failed], [3, 3, 0]);
  // Worker 1 carried media on calls 0 and 2 (4 failed): call 0 lost 5 per stream of 249 deliverable.
  assert.equal(a!.lossPct, (10 * 100) / (4 * 249));
  // Worker 2: calls 1, 3, 5, call 3 lost.
  assert.equal(b!.lossPct, (10 * 100) / (6 * 249));
  assert.deepEqual([a!.latencyMeanP50Ms, a!.latencyMeanP99Ms, a!.latencyMaxMs], [20, 20, 30]);
  assert.deepEqual([b!.latencyMeanP50Ms, b!.latencyMeanP99Ms, b!.latencyMaxMs], [30, 30, 45]);
  assert.equal(a!.figures, run.summary.workers[0]);
  assert.ok(a!.figures!.cpuPct !== null && a!.figures!.cpuPct > 0);
  assert.deepEqual(workerSplit(fixtureResults({ workers: 0 }).calls, []), [], 'calibration: no workers');
});

test('the console summary and the page show the split, one row per worker', () => {
  const run = twoWorkers();
  const text = renderSummary(run.plan, run.summary, run.environment, checkSlo(run.plan.slo, run.summary), run.calls);
  const rows = text.split('\n').filter((l) => l.includes('127.0.0.1:222'));
  assert.equal(rows.length, 2, text);
  const cells = workerSplitCells(workerSplit(run.calls, run.summary.workers));
  assert.equal(cells[1]![3], ((10 * 100) / (6 * 249)).toFixed(3));
  assert.ok(rows[1]!.includes(cells[1]![3]!), rows[1]);
  assert.ok(rows[1]!.includes('30.00 / 30.00'), rows[1]);
  const page = renderHtml([run]);
  assert.ok(page.includes('<h2>Per rtpengine worker</h2>'));
  assert.ok(page.includes(`<td class="text">127.0.0.1:2224</td><td>3/3</td>`), 'the second worker');
  assert.ok(page.includes(`<td>${cells[1]![3]}</td><td>30.00 / 30.00</td><td>45.0</td>`));
});
