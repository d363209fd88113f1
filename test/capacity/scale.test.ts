/** Scaling arithmetic and the scale command's flags. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scalePoints } from '../../src/commands/scale.js';
import { buildScalePlan } from '../../src/capacity/plan.js';
import { PlanError, type HostFacts } from '../../src/plan.js';

const HOST: HostFacts = { addresses: ['127.0.0.1'], parallelism: 2, isRoot: true };

test('efficiency is capacity against a linear extrapolation from the smallest count', () => {
  const points = scalePoints([
    { workers: 1, maxCalls: 12, limitedBy: 'loss<0.5%', generatorLimited: false },
    { workers: 2, maxCalls: 23, limitedBy: 'loss<0.5%', generatorLimited: false },
    { workers: 4, maxCalls: 30, limitedBy: 'latency.p99<150ms', generatorLimited: false },
    { workers: 8, maxCalls: null, limitedBy: null, generatorLimited: true },
  ]);
  assert.deepEqual(points.map((p) => p.efficiency), [1, 23 / 24, 30 / 48, null]);
  assert.deepEqual(points.map((p) => p.callsPerWorker), [12, 11.5, 7.5, null]);
  const fromTwo = scalePoints([
    { workers: 2, maxCalls: 20, limitedBy: null, generatorLimited: false },
    { workers: 4, maxCalls: 40, limitedBy: null, generatorLimited: false },
  ]);
  assert.deepEqual(fromTwo.map((p) => p.efficiency), [1, 1]);
  assert.equal(scalePoints([{ workers: 1, maxCalls: 0, limitedBy: null, generatorLimited: false }, { workers: 2, maxCalls: 3, limitedBy: null, generatorLimited: false }])[1]!.efficiency, null, 'nothing to extrapolate from 0');
});

test('worker counts: a sorted list of distinct counts, one plan each; remote workers, a mesh and several pairs refused', () => {
  const scale = buildScalePlan({ workers: '4,1,2', workerCpu: '0.4' }, HOST);
  assert.deepEqual(scale.counts, [1, 2, 4]);
  assert.deepEqual(scale.searches.map((s) => s.plan.target.kind === 'embedded' && s.plan.target.workers), [1, 2, 4]);
  const refused = (options: Parameters<typeof buildScalePlan>[0], message: RegExp): void => {
    assert.throws(() => buildScalePlan(options, HOST), (err: unknown) => err instanceof PlanError && message.test(err.message));
  };
  refused({ workers: "1,x" }, /^--workers 1,x: x is not a worker count: expected whole numbers from 1 to 16/);
  refused({ workers: '1,1' }, /names a count twice/);
  refused({ rtpengine: '127.0.0.1:2223' }, /^scale starts its own rtpengine workers/);
  refused({ codecPair: 'pcmu:pcmu,opus:pcmu' }, /^--codec-pair: scale compares worker counts for one codec pair/);
});
