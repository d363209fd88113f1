/**
 * The capacity search on synthetic curves with known answers: the exact steps it takes (so an off-by-one in the
 * growth or the bisection changes the sequence), the exact result line, and on noisy curves the one promise that
 * holds whatever the noise: the answer is the largest count measured passing, with a failure within the resolution
 * above it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { searchCapacity, type CapacityResult, type Resolution, type SearchOptions, type StepOutcome } from '../../src/capacity/search.js';
import { parseSlo, type StepFigures } from '../../src/capacity/slo.js';
import { prng } from '../helpers/prng.js';

const SLO = parseSlo('latency.p99<60ms,loss<1%');

/** A step's figures: latency 50 ms (passes) or 71 ms (fails); loss 0 unless given. */
function figures(pass: boolean, loss = 0): StepFigures {
  return { 'latency.p99': pass ? 50 : 71, loss };
}

interface Outcome extends StepOutcome {
  /** Opaque to the search: must come back untouched in the step records. */
  runId: string;
}

/** runStep for a curve: passes(n) says whether n calls meet the SLO; limited(n) makes the generator the limit. */
function curve(passes: (calls: number) => boolean, limited: (calls: number) => string | null = () => null) {
  const asked: number[] = [];
  const runStep = async (calls: number): Promise<Outcome> => {
    asked.push(calls);
    return { calls, figures: figures(passes(calls)), generatorLimited: limited(calls), runId: `run-${calls}` };
  };
  return { asked, runStep };
}

function search(options: Partial<SearchOptions<Outcome>>, runStep: (calls: number) => Promise<Outcome>): Promise<CapacityResult<Outcome>> {
  return searchCapacity<Outcome>({ slo: SLO, max: 10_000, ...options }, runStep);
}

test('monotone knee at 37, resolution 1: exactly 37, in 7 steps', async () => {
  const { asked, runStep } = curve((n) => n <= 37);
  const result = await search({ resolution: { calls: 1 } }, runStep);
  assert.deepEqual(asked, [10, 20, 40, 30, 35, 37, 38]);
  assert.equal(result.maxCalls, 37);
  assert.equal(result.stop, 'slo');
  assert.equal(result.generatorLimited, false);
  assert.deepEqual(result.limitedBy, { term: 'latency.p99<60ms', metric: 'latency.p99', op: '<', limit: 60, actual: 71, atCalls: 38 });
  assert.equal(result.reason, 'capacity: 37 calls - limited by latency.p99 (71 ms > 60 ms at 38 calls)');
  assert.deepEqual(
    result.steps.map((s) => [s.index, s.phase, s.calls, s.pass]),
    [
      [1, 'grow', 10, true],
      [2, 'grow', 20, true],
      [3, 'grow', 40, false],
      [4, 'bisect', 30, true],
      [5, 'bisect', 35, true],
      [6, 'bisect', 37, true],
      [7, 'bisect', 38, false],
    ],
  );
  const failed = result.steps[6]!;
  assert.deepEqual(failed.broke, [{ term: 'latency.p99<60ms', metric: 'latency.p99', op: '<', limit: 60, actual: 71 }]);
  assert.deepEqual(failed.figures, { 'latency.p99': 71, loss: 0 });
  assert.equal(failed.outcome.runId, 'run-38');
});

test('a knee at 377 with the default 5% resolution: within 5% below it, in fewer steps than resolution 1', async () => {
  const coarse = curve((n) => n <= 377);
  const result = await search({}, coarse.runStep);
  assert.deepEqual(coarse.asked, [10, 20, 40, 80, 160, 320, 640, 480, 400, 360, 380, 370]);
  assert.equal(result.maxCalls, 370);
  assert.equal(result.limitedBy?.atCalls, 380);
  // The promise of 5%: the failure above is within 5% of the answer, and the knee lies between them.
  assert.ok(380 - 370 <= 0.05 * 370);
  assert.equal(result.reason, 'capacity: 370 calls - limited by latency.p99 (71 ms > 60 ms at 380 calls)');

  const fine = curve((n) => n <= 377);
  assert.equal((await search({ resolution: { calls: 1 } }, fine.runStep)).maxCalls, 377);
  assert.deepEqual(fine.asked.slice(12), [375, 377, 378]);

  const tenCalls = curve((n) => n <= 377);
  assert.equal((await search({ resolution: { calls: 10 } }, tenCalls.runStep)).maxCalls, 370);
  assert.equal(tenCalls.asked.length, 12);
});

test('noisy near the knee: a pass, then a larger and a smaller failure; the answer is the count that passed', async () => {
  // 30 passes by luck (29 would fail); 35 fails, then 32 and 31 fail too.
  const { asked, runStep } = curve((n) => n <= 25 || n === 30 || n === 33);
  const result = await search({ resolution: { calls: 1 } }, runStep);
  assert.deepEqual(asked, [10, 20, 40, 30, 35, 32, 31]);
  assert.equal(result.maxCalls, 30);
  assert.equal(result.limitedBy?.atCalls, 31);
  assert.equal(result.reason, 'capacity: 30 calls - limited by latency.p99 (71 ms > 60 ms at 31 calls)');
});

test('noisy curves, 200 seeds: always converges, the answer was measured passing and is the largest that did', async () => {
  for (let seed = 1; seed <= 200; seed++) {
    const random = prng(seed);
    const knee = 20 + Math.floor(random() * 300);
    // Pass probability falls from 1 to 0 over +-15% around the knee: single steps there can go either way.
    const passes = (n: number): boolean => random() < Math.min(1, Math.max(0, 0.5 - (n - knee) / (0.3 * knee)));
    const { asked, runStep } = curve(passes);
    const resolution: Resolution = seed % 2 === 0 ? { calls: 1 } : { percent: 5 };
    const result = await search({ resolution, max: 1000 }, runStep);
    const context = `seed ${seed}, knee ${knee}, steps ${asked.join(' ')}`;

    assert.equal(new Set(asked).size, asked.length, `no count measured twice: ${context}`);
    assert.ok(asked.length <= 25, `converges: ${context}`);
    const passed = result.steps.filter((s) => s.pass).map((s) => s.calls);
    assert.equal(result.maxCalls, Math.max(0, ...passed), `largest passing count: ${context}`);
    const failure = result.steps.find((s) => s.calls === result.limitedBy?.atCalls);
    assert.ok(failure !== undefined && !failure.pass, `limited at a measured failure: ${context}`);
    const best = result.maxCalls ?? 0;
    const gap = failure.calls - best;
    assert.ok(gap >= 1 && gap <= Math.max(1, 'calls' in resolution ? resolution.calls : 0.05 * best), `within resolution: ${context}`);
    // Every failure measured lies above the answer.
    assert.ok(result.steps.every((s) => s.pass || s.calls > best), `no failure below the answer: ${context}`);
  }
});

test('the first step fails: bisects down towards 0', async () => {
  const knee3 = curve((n) => n <= 3);
  const result = await search({ resolution: { calls: 1 } }, knee3.runStep);
  assert.deepEqual(knee3.asked, [10, 5, 2, 3, 4]);
  assert.equal(result.maxCalls, 3);
  assert.equal(result.reason, 'capacity: 3 calls - limited by latency.p99 (71 ms > 60 ms at 4 calls)');

  // Not even one call: capacity 0, and 0 was never run (zero calls meet any SLO).
  const none = curve(() => false);
  const zero = await search({}, none.runStep);
  assert.deepEqual(none.asked, [10, 5, 2, 1]);
  assert.equal(zero.maxCalls, 0);
  assert.equal(zero.stop, 'slo');
  assert.equal(zero.limitedBy?.atCalls, 1);
  assert.equal(zero.reason, 'capacity: 0 calls - no step met the SLO, down to 1 call: limited by latency.p99 (71 ms > 60 ms at 1 call)');
});

test('never fails: stops at --max, which it measured passing', async () => {
  const { asked, runStep } = curve(() => true);
  const result = await search({ max: 100 }, runStep);
  assert.deepEqual(asked, [10, 20, 40, 80, 100]);
  assert.deepEqual(
    { maxCalls: result.maxCalls, limitedBy: result.limitedBy, stop: result.stop, reason: result.reason },
    { maxCalls: 100, limitedBy: null, stop: 'max', reason: 'capacity: at least 100 calls - reached --max without breaking the SLO' },
  );
});

test('generator-limited at the third step: no capacity figure, names the step and why', async () => {
  const why = 'GENERATOR-LIMITED: these figures describe rtp-bench, not the system under test. Its sends were 75 ms late at p99';
  const { asked, runStep } = curve(
    () => true,
    (n) => (n === 40 ? why : null),
  );
  const result = await search({}, runStep);
  assert.deepEqual(asked, [10, 20, 40]);
  assert.equal(result.maxCalls, null);
  assert.equal(result.limitedBy, null);
  assert.equal(result.generatorLimited, true);
  assert.equal(result.stop, 'generator');
  assert.equal(result.reason, `generator-limited at step 3 (40 calls), no capacity figure; 20 calls passed before it, a lower bound only: ${why}`);
  assert.equal(result.steps[2]?.generatorLimited, why);

  // During the bisection too, and at the very first step (no lower bound to offer).
  const late = curve((n) => n <= 37, (n) => (n === 35 ? 'busy' : null));
  const lateResult = await search({}, late.runStep);
  assert.deepEqual(late.asked, [10, 20, 40, 30, 35]);
  assert.equal(lateResult.reason, 'generator-limited at step 5 (35 calls), no capacity figure; 30 calls passed before it, a lower bound only: busy');
  const first = await search({}, curve(() => true, () => 'busy').runStep);
  assert.equal(first.reason, 'generator-limited at step 1 (10 calls), no capacity figure: busy');
  assert.equal(first.maxCalls, null);
});

test('max smaller than start: the first step is max, then down if it fails', async () => {
  const fine = curve(() => true);
  const passed = await search({ max: 6 }, fine.runStep);
  assert.deepEqual(fine.asked, [6]);
  assert.equal(passed.maxCalls, 6);
  assert.equal(passed.stop, 'max');

  const knee4 = curve((n) => n <= 4);
  const result = await search({ max: 6 }, knee4.runStep);
  assert.deepEqual(knee4.asked, [6, 3, 4, 5]);
  assert.equal(result.maxCalls, 4);
});

test('growth is capped at max, rounds up, and never repeats a count', async () => {
  const capped = curve((n) => n <= 150);
  const result = await search({ max: 150, resolution: { calls: 1 } }, capped.runStep);
  assert.deepEqual(capped.asked, [10, 20, 40, 80, 150]);
  assert.equal(result.stop, 'max');

  const slow = curve(() => true);
  await search({ start: 100, growth: 1.1, max: 140 }, slow.runStep);
  // 100 x 1.1 is 110.00000000000001 in floating point, which must not round up to 111; 121 x 1.1 = 133.1 -> 134.
  assert.deepEqual(slow.asked, [100, 110, 121, 134, 140]);

  const tiny = curve(() => true);
  await search({ start: 1, growth: 1.2, max: 4 }, tiny.runStep);
  assert.deepEqual(tiny.asked, [1, 2, 3, 4]);
});

test('a step with no data fails, and every broken term is named in the reason', async () => {
  const runStep = async (calls: number): Promise<Outcome> => ({
    calls,
    figures: calls <= 20 ? figures(true) : calls <= 30 ? { 'latency.p99': 90, loss: 3 } : { 'latency.p99': null, loss: null },
    generatorLimited: null,
    runId: '',
  });
  const result = await search({ resolution: { calls: 1 } }, runStep);
  assert.equal(result.maxCalls, 20);
  assert.equal(result.reason, 'capacity: 20 calls - limited by latency.p99 (90 ms > 60 ms at 21 calls); loss broke too');
  assert.deepEqual(result.steps.find((s) => s.calls === 40)?.broke.map((b) => b.actual), [null, null]);

  const allFailed = await search({}, async (calls) => ({ calls, figures: {}, generatorLimited: null, runId: '' }));
  assert.match(allFailed.reason, /^capacity: 0 calls - no step met the SLO, down to 1 call: limited by latency\.p99 \(no data at 1 call\); loss broke too$/);
});

test('onStep sees each record as it is made, in order', async () => {
  const seen: string[] = [];
  const { runStep } = curve((n) => n <= 37);
  const result = await search({ resolution: { calls: 1 }, onStep: (s) => seen.push(`${s.index}:${s.calls}:${s.pass ? 'pass' : 'fail'}:${s.outcome.runId}`) }, runStep);
  assert.deepEqual(seen, ['1:10:pass:run-10', '2:20:pass:run-20', '3:40:fail:run-40', '4:30:pass:run-30', '5:35:pass:run-35', '6:37:pass:run-37', '7:38:fail:run-38']);
  assert.equal(result.steps.length, 7);
});

test('bad options and a step that answers for another count are errors, not answers', async () => {
  const { runStep } = curve(() => true);
  const cases: ReadonlyArray<readonly [Partial<SearchOptions<Outcome>>, string]> = [
    [{ max: 0 }, 'capacity search: max is 0: expected a whole number of calls, 1 or more'],
    [{ max: 2.5 }, 'capacity search: max is 2.5: expected a whole number of calls, 1 or more'],
    [{ start: 0 }, 'capacity search: start is 0: expected a whole number of calls, 1 or more'],
    [{ growth: 1 }, 'capacity search: growth is 1: expected a factor above 1, e.g. 2'],
    [{ resolution: { calls: 0.5 } }, 'capacity search: resolution is 0.5 calls: expected 1 or more'],
    [{ resolution: { percent: 0 } }, 'capacity search: resolution is 0%: expected above 0 and below 100'],
  ];
  for (const [options, message] of cases) await assert.rejects(search(options, runStep), new RangeError(message));
  await assert.rejects(
    search({}, async (calls) => ({ calls: calls - 1, figures: figures(true), generatorLimited: null, runId: '' })),
    new Error('capacity step 1: runStep(10) returned an outcome for 9 calls'),
  );
});
