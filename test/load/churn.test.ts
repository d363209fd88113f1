import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arrivalCount, arrivals, churnFigures, MAX_DURATION_MEANS, MIN_CALL_MS, offeredErlang, peakCalls, steadyWindow, type ChurnPlan } from '../../src/load/churn.js';

const FIXED: ChurnPlan = { ratePerSec: 4, callDurationMs: 3000, distribution: 'fixed', arrivalsMs: 9000, seed: 1 };

test('fixed churn: one arrival every 1/rate s for the arrival time, each held exactly the call duration', () => {
  const all = [...arrivals(FIXED)];
  assert.equal(all.length, 36);
  assert.equal(arrivalCount(FIXED), 36);
  assert.deepEqual(all.slice(0, 3), [
    { dueMs: 0, holdMs: 3000 },
    { dueMs: 250, holdMs: 3000 },
    { dueMs: 500, holdMs: 3000 },
  ]);
  assert.equal(all.at(-1)!.dueMs, 8750);
  assert.equal(offeredErlang(FIXED), 12);
  // Fixed holding times: exactly rate x duration calls are up once the first call would end (+1 for the call that
  // arrives in the same instant another ends).
  assert.equal(peakCalls(FIXED), 13);
  assert.deepEqual(steadyWindow(FIXED), { fromMs: 3000, toMs: 9000 });
});

test('exponential holding times: mean as asked (within the clamp), reproducible by seed, never below a second or past ten means', () => {
  const plan: ChurnPlan = { ratePerSec: 100, callDurationMs: 30_000, distribution: 'exponential', arrivalsMs: 400_000, seed: 42 };
  const holds = [...arrivals(plan)].map((a) => a.holdMs);
  assert.equal(holds.length, 40_000);
  const mean = holds.reduce((s, h) => s + h, 0) / holds.length;
  // The standard error of a mean of 40,000 exponential draws is mean / 200 = 150 ms; 3 of them is 450 ms.
  assert.ok(Math.abs(mean - 30_000) < 450, `mean ${mean.toFixed(0)} ms`);
  assert.ok(Math.min(...holds) >= MIN_CALL_MS);
  assert.ok(Math.max(...holds) <= MAX_DURATION_MEANS * 30_000);
  // An exponential: the median is ln 2 x the mean (20.8 s), far below the mean; a fixed or uniform draw is not.
  const sorted = [...holds].sort((a, b) => a - b);
  const median = sorted[sorted.length / 2]!;
  assert.ok(Math.abs(median - Math.LN2 * 30_000) < 600, `median ${median.toFixed(0)} ms`);
  assert.deepEqual([...arrivals(plan)].slice(0, 50), [...arrivals({ ...plan })].slice(0, 50), 'the same seed, the same calls');
  assert.notDeepEqual([...arrivals(plan)].slice(0, 50), [...arrivals({ ...plan, seed: 43 })].slice(0, 50));
  // Poisson count of calls up: sized for mean + 5 sd.
  assert.equal(peakCalls(plan), Math.ceil(3000 + 5 * Math.sqrt(3000)) + 1);
  assert.deepEqual(steadyWindow(plan), { fromMs: 90_000, toMs: 400_000 });
});

test('arrivals that stop before one holding time never reach the offered load: no steady window, no figures claimed', () => {
  const short: ChurnPlan = { ...FIXED, arrivalsMs: 2000 };
  assert.equal(steadyWindow(short), null);
  const f = churnFigures(short, [{ t: 1, callsUp: 4 }], [{ dueMs: 0, ok: true, failed: false }]);
  assert.equal(f.window, null);
  assert.equal(f.carriedErlang, null);
  assert.equal(f.setupsPerSec, null);
});

test('churn figures: carried load is the mean calls up inside the window; set-ups and failures are per second of arrivals in it', () => {
  // Seconds 1-3 ramp up (outside the window, which starts at 3 s), then 12, 11, 13, 12, 12, 12 up; one point after.
  const points = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((t) => ({ t, callsUp: [4, 8, 12, 12, 11, 13, 12, 12, 12, 0][t - 1]! }));
  const calls = [...arrivals(FIXED)].map((a, i) => ({ dueMs: a.dueMs, ok: i % 12 !== 5, failed: i % 12 === 5 }));
  const f = churnFigures(FIXED, points, calls);
  assert.deepEqual(f.window, { fromT: 3, toT: 9 });
  // t in (3, 9]: 12, 11, 13, 12, 12, 12.
  assert.equal(f.carriedErlang, 72 / 6);
  // Arrivals in [3 s, 9 s): calls 12..35, of which 17 and 29 failed: 22 set up in 6 s.
  assert.equal(f.setupsPerSec, 22 / 6);
  assert.equal(f.failedPerSec, 2 / 6);
  assert.equal(f.offeredErlang, 12);
});
