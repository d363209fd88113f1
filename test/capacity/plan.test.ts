/** `rtp-bench capacity` flags: what they become, and every bad one refused in one line naming it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCapacityPlan } from '../../src/capacity/plan.js';
import { DEFAULT_SLO_TEXT, formatSlo } from '../../src/capacity/slo.js';
import { PlanError, buildPlan, type CliOptions, type HostFacts } from '../../src/plan.js';

const HOST: HostFacts = { addresses: ['127.0.0.1'], parallelism: 2, isRoot: true };

function refused(options: CliOptions, message: string): void {
  assert.throws(() => buildCapacityPlan(options, HOST), (err: unknown) => err instanceof PlanError && err.message === message, message);
}

test('defaults: the default SLO, steps of 20 s from 10 to 200 calls, 5% resolution; the run plan sized for --max', () => {
  const { plan, capacity } = buildCapacityPlan({}, HOST);
  assert.equal(formatSlo(capacity.slo), DEFAULT_SLO_TEXT);
  assert.deepEqual([capacity.start, capacity.max, capacity.stepHoldMs, capacity.resolution], [10, 200, 20_000, { percent: 5 }]);
  assert.equal(plan.calls, 200, 'threads and ports sized for the largest step');
  assert.deepEqual(plan.slo, {}, "a run's SLO flags do not judge a search");
  assert.deepEqual(capacity.pairs.map((p) => `${p.a.name}:${p.b.name}`), ['pcmu:pcmu']);
});

test('several codec pairs, an SLO, bounds and a resolution in calls', () => {
  const { plan, capacity } = buildCapacityPlan({ codecPair: 'pcmu:pcmu, opus:pcmu', slo: 'latency.p99<60ms,loss<0.1%', start: '4', max: '40', stepHold: '10s', resolution: '1', workerCpu: '0.5' }, HOST);
  assert.deepEqual(capacity.pairs.map((p) => `${p.a.name}:${p.b.name}`), ['pcmu:pcmu', 'opus:pcmu']);
  assert.equal(plan.codecPair.a.name, 'pcmu');
  assert.equal(formatSlo(capacity.slo), 'latency.p99<60ms,loss<0.1%');
  assert.deepEqual([capacity.start, capacity.max, capacity.stepHoldMs, capacity.resolution], [4, 40, 10_000, { calls: 1 }]);
  assert.deepEqual(plan.target.kind === 'embedded' && plan.target.cpuCores, 0.5);
  assert.equal(buildCapacityPlan({ max: '5' }, HOST).capacity.start, 5, 'a first step never above --max');
});

test('run flags a search sets itself, and bad capacity values, are refused with what to do', () => {
  refused({ calls: '10' }, '--calls does not apply to capacity: capacity finds the number of calls itself: give --start and --max');
  refused({ hold: '10s' }, '--hold does not apply to capacity: each step holds for --step-hold');
  refused({ maxLoss: '1' }, '--max-loss does not apply to capacity: the SLO is --slo, e.g. --slo "loss<0.1%"');
  refused({ max: '0' }, '--max 0 is not a number of calls: expected a whole number from 1 to 100000');
  refused({ max: '10', start: '20' }, '--start 20 is not a number of calls no larger than --max: expected a whole number from 1 to 10');
  refused({ stepHold: '1s' }, '--step-hold 1s is out of range: expected a duration from 3s to 1h (a step shorter than a few seconds measures noise)');
  refused({ resolution: '0%' }, '--resolution 0% is not a share of the answer: expected a percentage above 0 and at most 50, e.g. 5%');
  refused({ resolution: 'fine' }, '--resolution fine is not a number of calls or a percentage: expected e.g. 1 (exact to the call) or 5%');
  refused({ codecPair: 'opus:pcmu,opus:pcmu' }, '--codec-pair names opus:pcmu twice: give each pair once');
  refused({ rate: '2/s', callDuration: '30s' }, '--rate does not apply to capacity: a search holds populations of calls; churn (--rate) is a run of its own');
  assert.throws(() => buildCapacityPlan({ slo: 'latency.p99>60ms' }, HOST), /^PlanError: --slo /);
});

test('capacity through a local mesh: the plan keeps --mesh local and its workers (the search runs in the mesh\'s client namespace)', () => {
  const { plan } = buildCapacityPlan({ mesh: 'local', workers: '2', max: '20' }, HOST);
  assert.equal(plan.mesh?.kind, 'local');
  assert.equal(plan.target.kind === 'embedded' && plan.target.workers, 2);
});

test("a run refuses the search's flags", () => {
  assert.throws(() => buildPlan('run', { calls: '5', max: '10' }, HOST), /^PlanError: --max only applies to rtp-bench capacity/);
});
