/** The results files of capacity and scale searches: the shape results/README.md documents, built from a real search. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capacitySearch, scalePoints } from '../../src/report/search-results.js';
import { searchCapacity } from '../../src/capacity/search.js';
import { parseSlo } from '../../src/capacity/slo.js';
import { RESULTS_FORMAT } from '../../src/report/results.js';
import { checkResults } from '../../src/report/read.js';
import { fixtureCapacity, fixtureScale, searchFileText } from './fixture.js';

const CAPACITY_KEYS = ['maxCalls', 'limitedBy', 'generatorLimited', 'slo', 'stop', 'reason', 'cpuMsPerCallSecond', 'callsPerCore', 'steps'];
const STEP_KEYS = ['index', 'phase', 'calls', 'pass', 'broke', 'figures', 'generatorLimited', 'window', 'workers', 'packets', 'lossPct', 'failures'];

test('capacity results: per profile a capacity object with flat steps, and with one codec pair the same object at the top', async () => {
  // Through JSON, as a reader of the file sees it.
  const file = JSON.parse(searchFileText(await fixtureCapacity())) as Record<string, unknown> & { profiles: { capacity: Record<string, unknown> & { steps: Record<string, unknown>[] } }[] };
  assert.equal(file['format'], RESULTS_FORMAT);
  assert.equal(file['kind'], 'capacity');
  assert.deepEqual(Object.keys(file).sort(), ['capacity', 'environment', 'format', 'kind', 'plan', 'profiles', 'runId', 'search', 'slo', 'startedAt'].sort());
  const [profile] = file.profiles;
  const c = profile!.capacity;
  assert.deepEqual(Object.keys(c).sort(), [...CAPACITY_KEYS].sort());
  assert.deepEqual(file['capacity'], c, 'capacity.maxCalls works on the file itself');
  // The planted knee: 16 calls carried, 17 still within the SLO, 18 breaks latency.p99 first.
  assert.equal(c['maxCalls'], 17);
  assert.deepEqual(c['limitedBy'], { term: 'latency.p99<60ms', metric: 'latency.p99', op: '<', limit: 60, actual: 72, atCalls: 18 });
  assert.equal(c['generatorLimited'], false);
  assert.equal(c['stop'], 'slo');
  assert.equal(c['slo'], 'latency.p99<60ms,loss<0.5%,mos.p50>=4');
  assert.match(String(c['reason']), /^capacity: 17 calls - limited by latency.p99 \(72 ms > 60 ms at 18 calls\)/);
  for (const step of c.steps) {
    assert.deepEqual(Object.keys(step).sort(), [...STEP_KEYS].sort(), 'flat: no nested outcome repeating calls and figures');
    assert.equal('outcome' in step, false);
  }
  assert.deepEqual(c.steps.map((s) => [s['calls'], s['pass']]), [[10, true], [20, false], [15, true], [17, true], [18, false]]);
  const seventeen = c.steps[3]!;
  assert.deepEqual(seventeen['window'], { fromT: 20, toT: 24 });
  assert.equal((seventeen['figures'] as Record<string, number>)['latency.p99'], 47);
  // At the answer the worker is at its 0.3-core cap: 30% of a core is 300 ms a second over 17 calls.
  assert.equal(c['cpuMsPerCallSecond'], 300 / 17);
  assert.equal(c['callsPerCore'], 1000 / (300 / 17));
  // The reader takes it as what it is.
  assert.equal(checkResults('cap.json', file).kind, 'capacity');
});

test('capacity results: several codec pairs have no top-level capacity (which one would it be?)', async () => {
  const file = JSON.parse(searchFileText(await fixtureCapacity({ codecPairs: 'opus:pcmu,pcmu:pcmu' }))) as { capacity?: unknown; profiles: { codecPair: string; capacity: { maxCalls: number } }[] };
  assert.equal('capacity' in file, false);
  assert.deepEqual(file.profiles.map((p) => [p.codecPair, p.capacity.maxCalls]), [['opus:pcmu', 17], ['pcmu:pcmu', 9]]);
});

test('capacitySearch: interrupted before a step, and stopped by the generator, give no figure and no cost', async () => {
  const none = capacitySearch(null, 'loss<1%');
  assert.equal(none.maxCalls, null);
  assert.deepEqual(none.steps, []);
  assert.equal(none.cpuMsPerCallSecond, null);
  assert.equal(none.callsPerCore, null);
  const measure = { window: { fromT: 0, toT: 4 }, workers: [], packets: null, lossPct: null, failures: {} };
  const limited = await searchCapacity({ slo: parseSlo('loss<1%'), max: 40, start: 10 }, async (calls) => ({ calls, figures: { loss: 0 }, generatorLimited: calls >= 20 ? 'sends 80 ms late' : null, ...measure }));
  const c = capacitySearch(limited, 'loss<1%');
  assert.equal(c.maxCalls, null);
  assert.equal(c.generatorLimited, true);
  assert.equal(c.stop, 'generator');
  assert.equal(c.cpuMsPerCallSecond, null);
  assert.deepEqual(c.steps.map((s) => [s.calls, s.generatorLimited]), [[10, null], [20, 'sends 80 ms late']]);
});

test('scale results: scale.points with workers, capacity, efficiency and what limited each, and every search', async () => {
  const file = JSON.parse(searchFileText(await fixtureScale({ 1: 12, 2: 22 }))) as Record<string, unknown> & {
    scale: { points: Record<string, unknown>[] };
    searches: { workers: number; profile: { capacity: { maxCalls: number } } }[];
  };
  assert.equal(file['kind'], 'scale');
  assert.equal(file['format'], RESULTS_FORMAT);
  assert.deepEqual(file.scale.points, [
    { workers: 1, maxCalls: 13, callsPerWorker: 13, efficiency: 1, limitedBy: 'latency.p99<60ms', generatorLimited: false },
    { workers: 2, maxCalls: 23, callsPerWorker: 11.5, efficiency: 23 / 26, limitedBy: 'latency.p99<60ms', generatorLimited: false },
  ]);
  assert.deepEqual(file.searches.map((s) => [s.workers, s.profile.capacity.maxCalls]), [[1, 13], [2, 23]]);
  assert.equal(checkResults('scale.json', file).kind, 'scale');
  // Efficiency against the smallest count, whatever it is.
  assert.deepEqual(scalePoints([{ workers: 2, maxCalls: 20, limitedBy: null, generatorLimited: false }, { workers: 4, maxCalls: 30, limitedBy: null, generatorLimited: false }]).map((p) => p.efficiency), [1, 0.75]);
});
