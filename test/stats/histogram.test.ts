import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METRICS, METRIC_NAMES, MetricSet, isMetricName, type MetricName, type Percentiles } from '../../src/stats/histogram.js';

/** HDR at 3 significant digits: a reported value is within 1/1024 of the recorded one. */
function assertWithinPrecision(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= expected / 1024, `${what}: ${actual} is not ${expected} to 3 significant digits`);
}

/** Deterministic values, so a failure reproduces. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function pick(p: Percentiles): Pick<Percentiles, 'count' | 'p50' | 'p90' | 'p99' | 'max'> {
  return { count: p.count, p50: p.p50, p90: p.p90, p99: p.p99, max: p.max };
}

test('METRICS: units, scales and ranges as documented', () => {
  const expected: Record<MetricName, [string, number, number]> = {
    offerMs: ['ms', 1000, 120_000],
    answerMs: ['ms', 1000, 120_000],
    deleteMs: ['ms', 1000, 120_000],
    ngQueueMs: ['ms', 1000, 600_000],
    meshAcceptedMs: ['ms', 1000, 120_000],
    meshReadyMs: ['ms', 1000, 120_000],
    meshFirstMediaMs: ['ms', 1000, 120_000],
    meshThrottledMs: ['ms', 1000, 600_000],
    setupMs: ['ms', 1000, 120_000],
    mediaStartWaitMs: ['ms', 1000, 600_000],
    firstMediaMs: ['ms', 1000, 120_000],
    latencyMs: ['ms', 1000, 60_000],
    audioDelayMs: ['ms', 1000, 60_000],
    jitterMs: ['ms', 1000, 60_000],
    transitJitterMs: ['ms', 1000, 60_000],
    sendLatenessMs: ['ms', 1000, 60_000],
    lossPct: ['%', 1000, 100],
    mos: ['MOS', 100, 5],
    rtpengineMos: ['MOS', 100, 5],
    ngRttMs: ['ms', 1000, 60_000],
    failoverGapAMs: ['ms', 1000, 600_000],
    failoverGapBMs: ['ms', 1000, 600_000],
    failoverLostAudioAMs: ['ms', 1000, 600_000],
    failoverLostAudioBMs: ['ms', 1000, 600_000],
    failoverRecoverMs: ['ms', 1000, 600_000],
  };
  assert.deepEqual(
    Object.fromEntries(METRIC_NAMES.map((n) => [n, [METRICS[n].unit, METRICS[n].scale, METRICS[n].highest]])),
    expected,
  );
  assert.equal(isMetricName('latencyMs'), true);
  assert.equal(isMetricName('toString'), false);
});

test('1..1000 ms: percentiles are the HDR values at 3 significant digits', () => {
  const set = new MetricSet();
  for (let v = 1; v <= 1000; v++) set.record('latencyMs', v);
  const s = set.summary('latencyMs');
  assert.ok(s);
  assert.equal(s.count, 1000);
  assertWithinPrecision(s.p50, 500, 'p50');
  assertWithinPrecision(s.p99, 990, 'p99');
  assertWithinPrecision(s.max, 1000, 'max');
  // Exact values: 500 000 us lies in a bucket 256 us wide starting at 499 968, reported as its highest value.
  assert.equal(s.p50, 500.223);
  assert.equal(s.p90, 900.095);
  assert.equal(s.p99, 990.207);
  assert.equal(s.min, 1);
  assertWithinPrecision(s.mean, 500.5, 'mean');
});

test('empty metrics have no summary and are not encoded', () => {
  const set = new MetricSet({ metrics: ['latencyMs', 'jitterMs'] });
  set.record('jitterMs', 2);
  assert.equal(set.summary('latencyMs'), null);
  assert.equal(set.count('latencyMs'), 0);
  assert.equal(set.count('offerMs'), 0);
  assert.deepEqual(Object.keys(set.encode()), ['jitterMs']);
  assert.deepEqual(Object.keys(set.summaries()), ['jitterMs']);
});

test('merging two sets gives the histogram of the union of their values', () => {
  const a = new MetricSet({ packed: true });
  const b = new MetricSet();
  const all = new MetricSet();
  const randomA = lcg(1);
  const randomB = lcg(2);
  for (let i = 0; i < 5000; i++) {
    const va = 5 + 20 * randomA();
    const vb = 40 + 400 * randomB() ** 4;
    a.record('latencyMs', va);
    b.record('latencyMs', vb);
    all.record('latencyMs', va);
    all.record('latencyMs', vb);
  }
  const expected = all.summary('latencyMs');
  assert.ok(expected);

  const viaSet = new MetricSet();
  viaSet.mergeSet(a);
  viaSet.mergeSet(b);
  assert.deepEqual(viaSet.summary('latencyMs'), expected);

  const viaEncoding = new MetricSet();
  viaEncoding.merge(a.encode());
  viaEncoding.merge(b.encode());
  const merged = viaEncoding.summary('latencyMs');
  assert.ok(merged);
  assert.deepEqual(pick(merged), pick(expected));
  assert.equal(merged.count, 10_000);
});

test('merged p99 is not the average of the p99s (skewed workers)', () => {
  // A fast worker with many samples and a slow worker with few.
  const fast = new MetricSet();
  const slow = new MetricSet();
  for (let i = 0; i < 1000; i++) fast.record('setupMs', 10);
  for (let i = 0; i < 100; i++) slow.record('setupMs', 500);
  const p99Fast = fast.summary('setupMs')?.p99 ?? Number.NaN;
  const p99Slow = slow.summary('setupMs')?.p99 ?? Number.NaN;
  const averaged = (p99Fast + p99Slow) / 2;

  const merged = new MetricSet();
  merged.merge(fast.encode());
  merged.merge(slow.encode());
  const s = merged.summary('setupMs');
  assert.ok(s);
  // 1089 of 1100 values must be at or below p99, and only 1000 are 10 ms: p99 is a slow-worker value.
  assertWithinPrecision(s.p99, 500, 'merged p99');
  assertWithinPrecision(s.p50, 10, 'merged p50');
  assertWithinPrecision(averaged, 255, 'average of p99s');
  assert.ok(Math.abs(s.p99 - averaged) > 200, `merged p99 ${s.p99} should be far from the averaged ${averaged}`);
});

test('encode -> JSON.stringify -> JSON.parse -> merge round trip keeps every summary', () => {
  const set = new MetricSet();
  const random = lcg(7);
  for (let i = 0; i < 2000; i++) {
    set.record('latencyMs', 1 + 80 * random());
    set.record('jitterMs', 3 * random());
    set.record('lossPct', 2 * random());
    set.record('mos', 3.5 + random());
  }
  set.record('offerMs', 12.5);
  const wire = JSON.stringify(set.encode());
  const parsed = JSON.parse(wire) as Partial<Record<MetricName, string>>;
  const copy = new MetricSet();
  copy.merge(parsed);
  assert.deepEqual(copy.summaries(), set.summaries());
  assert.deepEqual(Object.keys(copy.summaries()), ['offerMs', 'latencyMs', 'jitterMs', 'lossPct', 'mos']);
  // MOS values below 2048 hundredths are stored exactly.
  set.reset();
  set.record('mos', 4.41);
  assert.equal(set.summary('mos')?.p50, 4.41);
});

test('recordWithExpectedInterval fills in the samples a stall hid (coordinated omission)', () => {
  const set = new MetricSet();
  set.recordWithExpectedInterval('latencyMs', 100, 20);
  const s = set.summary('latencyMs');
  assert.ok(s);
  // 100 recorded, plus 80, 60, 40, 20 filled in.
  assert.equal(s.count, 5);
  assertWithinPrecision(s.min, 20, 'min');
  assertWithinPrecision(s.p50, 60, 'p50');
  assertWithinPrecision(s.max, 100, 'max');
  assertWithinPrecision(s.mean, 60, 'mean');

  const quiet = new MetricSet();
  quiet.recordWithExpectedInterval('latencyMs', 15, 20);
  assert.equal(quiet.count('latencyMs'), 1);
  quiet.recordWithExpectedInterval('latencyMs', 100, 0);
  assert.equal(quiet.count('latencyMs'), 2);
});

test('out-of-range values are clamped and counted, NaN is counted and not recorded', () => {
  const set = new MetricSet();
  set.record('lossPct', 150);
  set.record('jitterMs', -5);
  set.record('latencyMs', Number.POSITIVE_INFINITY);
  set.record('mos', 4.5);
  set.record('jitterMs', -0.0001); // rounds to 0 us: float noise, not an outlier
  set.record('mos', Number.NaN);
  assert.equal(set.clamped, 3);
  assert.equal(set.rejected, 1);
  assert.deepEqual(set.outliers, { clamped: 3, rejected: 1 });
  assert.equal(set.summary('lossPct')?.max, 100);
  assert.equal(set.summary('latencyMs')?.max, 60_000);
  assert.equal(set.summary('jitterMs')?.max, 0);
  assert.equal(set.count('jitterMs'), 2);
  assert.equal(set.count('mos'), 1);

  const total = new MetricSet();
  total.mergeSet(set);
  total.merge(set.encode(), set.outliers);
  assert.deepEqual(total.outliers, { clamped: 6, rejected: 2 });
  assert.equal(total.count('latencyMs'), 2);

  set.reset();
  assert.deepEqual(set.outliers, { clamped: 0, rejected: 0 });
  assert.equal(set.count('lossPct'), 0);
  assert.deepEqual(set.summaries(), {});
});

test('merge rejects unknown names and corrupt encodings, naming them, and merges nothing', () => {
  const source = new MetricSet();
  source.record('latencyMs', 10);
  source.record('setupMs', 100_000);
  const good = source.encode();
  const target = new MetricSet();

  const unknown = { ...good, bogusMs: good.latencyMs } as Partial<Record<MetricName, string>>;
  assert.throws(() => target.merge(unknown), /"bogusMs"/);
  assert.throws(() => target.merge({ latencyMs: 'not-a-histogram' }), /"latencyMs"/);
  const latency = good.latencyMs ?? '';
  assert.throws(() => target.merge({ jitterMs: latency.slice(0, latency.length / 2) }), /"jitterMs"/);
  assert.throws(() => target.merge({ mos: 42 as unknown as string }), /"mos".*base64 string/);
  // 100 000 ms fits setupMs but not latencyMs (60 000 ms highest).
  assert.throws(() => target.merge({ offerMs: good.latencyMs, latencyMs: good.setupMs }), /"latencyMs".*highest 60000/);
  // All or nothing: offerMs came before the bad entry and must not have been added.
  assert.deepEqual(target.summaries(), {});
  assert.equal(target.count('offerMs'), 0);
});
