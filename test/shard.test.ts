import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlanError, buildPlan, type CliOptions, type HostFacts } from '../src/plan.js';
import { globalIndex, parseStartAt, portSlice, runIdFromStartAt, sessionIdOf, shardCalls, shardIndexes } from '../src/shard.js';
import { loadShape } from '../src/load/shape.js';
import { callIdOf, isCallIdOf } from '../src/call-id.js';
import { toneFrequencyHz } from '../src/media/tone.js';

const NOW = Date.parse('2026-12-07T11:40:00Z');
const HOST: HostFacts = { addresses: ['127.0.0.1'], parallelism: 8, isRoot: true, nowMs: NOW };

function plan(options: CliOptions, host: HostFacts = HOST) {
  return buildPlan('run', { hold: '3s', ...options }, host);
}

function refused(options: CliOptions, message: string, host: HostFacts = HOST): void {
  assert.throws(
    () => plan(options, host),
    (err: unknown) => {
      assert.ok(err instanceof PlanError, String(err));
      assert.equal(err.message, message);
      return true;
    },
  );
}

test('shares of every call count over 1..12 shards differ by one at most and sum to the calls', () => {
  for (let total = 1; total <= 60; total++) {
    for (let n = 1; n <= 12; n++) {
      const shares = Array.from({ length: n }, (_, i) => shardCalls(total, i + 1, n));
      assert.equal(shares.reduce((a, b) => a + b, 0), total, `${total} over ${n}`);
      assert.ok(Math.max(...shares) - Math.min(...shares) <= 1);
      // Every call of the plan is exactly one shard's.
      const all = Array.from({ length: n }, (_, i) => shardIndexes(total, i + 1, n)).flat().sort((a, b) => a - b);
      assert.deepEqual(all, Array.from({ length: total }, (_, k) => k));
    }
  }
});

test('port slices of one range are disjoint whole blocks of 4, inside the range, each fitting its share', () => {
  for (const range of [{ min: 20000, max: 29999 }, { min: 40000, max: 40099 }]) {
    for (let n = 1; n <= 9; n++) {
      const slices = Array.from({ length: n }, (_, i) => portSlice(range, i + 1, n));
      for (const [i, s] of slices.entries()) {
        assert.ok(s.min >= range.min && s.max <= range.max, `slice ${i + 1}/${n}`);
        assert.equal((s.max - s.min + 1) % 4, 0);
        assert.equal(s.min % 2, 0);
        const next = slices[i + 1];
        if (next !== undefined) assert.ok(s.max < next.min, `slice ${i + 1} and ${i + 2} of ${n} overlap`);
      }
    }
  }
  assert.deepEqual(portSlice({ min: 20000, max: 29999 }, 2, 4), { min: 22500, max: 24999 });
});

test('call-ids are unique across shards, stay ids of their own shard and of no other', () => {
  const runId = 'soak-0412';
  const ids = new Set<string>();
  const n = 4;
  for (let i = 1; i <= n; i++) {
    const session = sessionIdOf(runId, { index: i });
    for (const g of shardIndexes(10, i, n)) {
      const id = callIdOf(session, g);
      assert.ok(!ids.has(id), id);
      ids.add(id);
      assert.ok(isCallIdOf(session, id));
      for (let k = 1; k <= n; k++) if (k !== i) assert.ok(!isCallIdOf(sessionIdOf(runId, { index: k }), id), `${id} is not shard ${k}'s`);
    }
  }
  assert.equal(ids.size, 10);
  assert.ok(ids.has('soak-0412-s2-5'));
});

test('--shard I/N takes the share of calls, ramp, ports; together the shards place the unsharded arrivals, tones included', () => {
  const whole = plan({ calls: '10', ramp: '5/s', runId: 'r1' });
  const n = 4;
  const shards = Array.from({ length: n }, (_, i) => plan({ calls: '10', ramp: '5/s', shard: `${i + 1}/${n}`, runId: 'r1' }));
  assert.deepEqual(shards.map((s) => s.calls), [3, 3, 2, 2]);
  for (const s of shards) {
    assert.equal(s.rampPerSec, 5 / n);
    assert.deepEqual({ ...s.shard!, index: 0 }, { index: 0, count: 4, totalCalls: 10, totalRatePerSec: 5, totalLocalPorts: { min: 20000, max: 29999 }, source: 'flag' });
    assert.equal(s.localPortsExplicit, true, 'a slice is never moved onto a sibling');
  }
  assert.deepEqual(shards[1]!.localPorts, { min: 22500, max: 24999 });
  const one = loadShape(whole);
  const union = shards.flatMap((s) => loadShape(s).arrivals).sort((a, b) => a.index - b.index);
  assert.equal(union.length, one.arrivals.length);
  for (const [k, a] of union.entries()) {
    const b = one.arrivals[k]!;
    assert.equal(a.index, b.index);
    assert.ok(Math.abs(a.dueMs - b.dueMs) < 1e-6);
    assert.equal(a.endMs, b.endMs);
  }
  // Calls of different shards placed in sequence get different tone slots, as in one run.
  const tones = union.slice(0, 8).map((a) => toneFrequencyHz(a.index, 'a'));
  assert.equal(new Set(tones).size, tones.length);
  assert.deepEqual(loadShape(shards[3]!).steady, one.steady);
});

test('churn shards divide --rate and interleave their arrivals', () => {
  const n = 3;
  const shards = Array.from({ length: n }, (_, i) => plan({ rate: '3/s', callDuration: '4s', duration: '6s', hold: undefined, shard: `${i + 1}/${n}`, runId: 'c1' }));
  for (const s of shards) assert.equal(s.churn!.ratePerSec, 1);
  const due = shards.flatMap((s) => loadShape(s).arrivals.map((a) => a.dueMs)).sort((a, b) => a - b);
  due.forEach((d, k) => assert.ok(Math.abs(d - (k * 1000) / 3) < 1e-6));
});

test('shard index and count from a Kubernetes Indexed Job: JOB_COMPLETION_INDEX is 0-based', () => {
  const env = { JOB_COMPLETION_INDEX: '2', RTP_BENCH_SHARDS: '4' };
  const p = plan({ calls: '8', runId: 'k8s-run' }, { ...HOST, env });
  assert.equal(p.shard?.index, 3);
  assert.equal(p.shard?.count, 4);
  assert.equal(p.shard?.source, 'environment');
  assert.deepEqual(p.localPorts, { min: 20000, max: 29999 }, 'a pod of its own keeps the whole default range');
  assert.equal(plan({ calls: '8', shard: '4', runId: 'k8s-run' }, { ...HOST, env: { JOB_COMPLETION_INDEX: '0' } }).shard?.index, 1);
  refused({ calls: '8', runId: 'x' }, 'JOB_COMPLETION_INDEX 4 is shard 5, but RTP_BENCH_SHARDS=4 names only 4 shards: the Job\'s completions and the shard count must agree', { ...HOST, env: { JOB_COMPLETION_INDEX: '4', RTP_BENCH_SHARDS: '4' } });
  refused({ calls: '8', shard: '4', runId: 'x' }, '--shard 4 names 4 shards but not which one this is: give --shard I/4, or run it as a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, 0-based)');
  assert.equal(plan({ calls: '8' }, { ...HOST, env: { JOB_COMPLETION_INDEX: '1' } }).shard, null, 'an Indexed Job without a shard count is not sharded');
});

test('bad shards, run ids and start times are refused with one line', () => {
  refused({ calls: '8', shard: '5/4', runId: 'x' }, "--shard 5/4 has an index out of range: expected I from 1 to N (1-based), e.g. 2/4");
  refused({ calls: '8', shard: '0/4', runId: 'x' }, "--shard 0/4 has an index out of range: expected I from 1 to N (1-based), e.g. 2/4");
  refused({ calls: '8', shard: 'two' }, "--shard two is not a shard: expected I/N, shard I (1-based) of N, e.g. 2/4; or N alone with the index from JOB_COMPLETION_INDEX");
  refused({ calls: '3', shard: '4/4', runId: 'x' }, '--calls 3 over 4 shards leaves shard 4 without a call: give at least 4 calls, or fewer shards');
  refused({ calls: '8', shard: '1/4' }, '--shard 1/4 needs --run-id ID (the same in every shard, so that merge can tell they belong together) or --start-at TIME (the run id is then derived from it)');
  refused({ calls: '8', runId: 'Bad_Id' }, "--run-id Bad_Id is not a run id: expected lower-case letters, digits and dashes, 1-40, starting and ending with a letter or digit, e.g. soak-0412");
  refused({ calls: '8', startAt: 'tomorrow' }, "--start-at tomorrow is not a time: expected an ISO 8601 time with a date, e.g. 2026-12-07T11:40:00Z, or epoch seconds or milliseconds");
  refused({ calls: '8', startAt: '2026-12-08T12:00:00Z' }, "--start-at 2026-12-08T12:00:00Z is 24.3 h ahead, more than 24 h: expected a time within the next 24 h (all shards start together then)");
  refused({ calls: '8', startAt: '2026-12-07T11:30:00Z' }, "--start-at 2026-12-07T11:30:00Z was 10.0 min ago, more than the 5 min a late shard may start after it: expected a time within the next 24 h (all shards start together then)");
  refused({ calls: '400', shard: '2/4', runId: 'x', localPorts: '20000-20399' }, "shard 2/4's slice 20100-20199 of --local-ports 20000-20399 holds 25 calls (4 ports each: RTP and RTCP for two legs) but the shard places 100 of --calls 400: widen the range or lower --calls");
});

test('--start-at reads ISO 8601 and epoch seconds or ms; shards without --run-id derive one from it', () => {
  assert.equal(parseStartAt('2026-12-07T11:40:30Z'), NOW + 30_000);
  assert.equal(parseStartAt(String(NOW / 1000 + 30)), NOW + 30_000);
  assert.equal(parseStartAt(String(NOW + 30_000)), NOW + 30_000);
  assert.equal(parseStartAt('11:40'), null);
  const p = plan({ calls: '8', shard: '2/4', startAt: '2026-12-07T11:40:30Z' });
  assert.equal(p.startAtEpochMs, NOW + 30_000);
  assert.equal(p.runId, '20261207-114030-sh4');
  assert.equal(runIdFromStartAt(NOW, 4), p.runId?.replace('114030', '114000'));
  // A late shard within the tolerance still runs (and says how late when it starts).
  assert.equal(plan({ calls: '8', startAt: '2026-12-07T11:38:00Z' }).startAtEpochMs, NOW - 120_000);
  assert.equal(globalIndex(2, 3, 4), 10);
});
