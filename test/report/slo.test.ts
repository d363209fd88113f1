/** checkSlo: each flag judged against the right figure, limits inclusive, "no data" a miss, failed calls by default. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSlo } from '../../src/report/slo.js';
import { fixtureResults } from './fixture.js';

test('a clean run meets every limit it is given; each check names its flag, limit and the actual figure', () => {
  const s = fixtureResults().summary;
  const v = checkSlo({ maxLossPct: 0, maxLatencyMs: 1000, maxJitterMs: 100, maxSetupMs: 100, minMos: 1, maxFailedPct: 0 }, s);
  assert.equal(v.passed, true);
  assert.deepEqual(
    v.checks.map((c) => c.flag),
    ['--max-loss', '--max-jitter', '--max-latency', '--max-setup', '--max-failed', '--min-mos'],
  );
  const latency = v.checks.find((c) => c.flag === '--max-latency')!;
  assert.equal(latency.actual, s.latencyMs!.p99);
});

test('limits are inclusive: equal passes, a hair over misses', () => {
  const s = fixtureResults({ lossEvery: 2 }).summary;
  assert.ok(s.packets.lossPct > 0);
  assert.equal(checkSlo({ maxLossPct: s.packets.lossPct }, s).passed, true);
  assert.equal(checkSlo({ maxLossPct: s.packets.lossPct - 1e-9 }, s).passed, false);
  const mos = s.mos!.p50;
  assert.equal(checkSlo({ minMos: mos }, s).passed, true);
  assert.equal(checkSlo({ minMos: mos + 0.01 }, s).passed, false);
});

test('failed calls: 0% allowed by default fails a run with one failed call; interrupted calls do not count', () => {
  const s = fixtureResults({ calls: 10, failed: [{ index: 3, cause: 'Ran out of ports', message: 'x' }] }).summary;
  const v = checkSlo({ maxFailedPct: 0 }, s);
  assert.equal(v.passed, false);
  assert.deepEqual(v.checks[0], { flag: '--max-failed', limit: 0, actual: 10, passed: false });
  assert.equal(checkSlo({ maxFailedPct: 10 }, s).passed, true);
  const interrupted = { ...s, calls: { ...s.calls, failed: 0, interrupted: 1 } };
  assert.equal(checkSlo({ maxFailedPct: 0 }, interrupted).passed, true);
});

test('a figure that was never measured is a miss ("no data"), not a pass', () => {
  const s = fixtureResults({ workers: 0 }).summary;
  assert.equal(s.setupMs, null);
  const v = checkSlo({ maxSetupMs: 1000 }, s);
  assert.deepEqual(v.checks[0], { flag: '--max-setup', limit: 1000, actual: null, passed: false });
});
