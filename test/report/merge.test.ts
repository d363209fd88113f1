import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as hdr from 'hdr-histogram-js';
import { buildPlan, type HostFacts } from '../../src/plan.js';
import { MetricSet, METRIC_NAMES, type Percentiles } from '../../src/stats/histogram.js';
import { summarize, type RunMeasure, type Summary } from '../../src/stats/summary.js';
import { MergeError, mergeShards, type ShardFile } from '../../src/report/merge.js';
import { hgrmText } from '../../src/report/hgrm.js';
import { callsCsv } from '../../src/report/calls-csv.js';
import { sessionIdOf, shardIndexes } from '../../src/shard.js';
import { checkResults } from '../../src/report/read.js';
import { renderHtml } from '../../src/report/html.js';
import { renderComparison } from '../../src/report/compare.js';
import type { CallRecord } from '../../src/call.js';
import type { Results } from '../../src/report/results.js';
import { fixtureResults, fileText } from './fixture.js';
import { prng } from '../helpers/prng.js';

const HOST: HostFacts = { addresses: ['127.0.0.1'], parallelism: 2, isRoot: true };
const TOTAL = 10;
const COUNT = 4;

const MEASURE: RunMeasure = {
  wallMs: 6000,
  ngRetransmissions: 1,
  io: 'dgram',
  priority: 'normal',
  cost: { cpuUs: 600_000, packetOps: 12_000, wallMs: 5000, usPerPacketOp: 50, cpuPct: 12 },
  costWindow: 'hold',
  threads: 1,
  interrupted: false,
  contention: null,
  localSystemUnderTest: true,
  ngInFlight: 64,
  workers: [],
};

/** Shard `index`'s results, its raw per-packet values recorded into `pooled` as well. */
function shardResults(index: number, pooled: MetricSet, pooledRecords: CallRecord[], overrides: { runId?: string; hold?: string } = {}): Results {
  const runId = overrides.runId ?? 'merge-test';
  const plan = buildPlan('run', { calls: String(TOTAL), ramp: '10/s', hold: overrides.hold ?? '5s', codecPair: 'opus:pcmu', shard: `${index}/${COUNT}`, runId }, HOST);
  const base = fixtureResults({ calls: plan.calls, seed: index, runId, latencyMs: 10 + index * 7 });
  const globals = shardIndexes(TOTAL, index, COUNT);
  const records = base.calls.map((c, j) => ({ ...c, index: globals[j]!, callId: `${sessionIdOf(runId, { index })}-${globals[j]!}`, setupMs: c.setupMs === null ? null : c.setupMs + index * 3 }));
  const metrics = new MetricSet();
  const random = prng(100 + index);
  // Shards with different loads: different latency medians, so that averaged percentiles would be wrong.
  for (let i = 0; i < 500 * index; i++) {
    const latency = 10 + index * 7 + random() * 5 + (i % 97 === 0 ? 40 : 0);
    const jitter = random() * index;
    const lateness = random() * 0.5;
    for (const set of [metrics, pooled]) {
      set.record('latencyMs', latency);
      set.record('jitterMs', jitter);
      set.record('sendLatenessMs', lateness);
    }
  }
  pooledRecords.push(...records);
  const summary = summarize(records, metrics, MEASURE);
  return { ...base, runId, shard: { index, count: COUNT }, startAt: null, plan, summary, histograms: metrics.encode() as Record<string, string>, calls: records };
}

function shardFiles(order: number[] = [1, 2, 3, 4]): { files: ShardFile[]; pooled: Summary } {
  const pooled = new MetricSet();
  const records: CallRecord[] = [];
  const byIndex = new Map<number, Results>();
  for (let i = 1; i <= COUNT; i++) byIndex.set(i, shardResults(i, pooled, records));
  // The pooled summary: every raw value in one histogram, every call's per-call values recorded into it too.
  const pooledSummary = summarize(records, pooled, MEASURE);
  return { files: order.map((i) => ({ path: `shard-${i}.json`, results: byIndex.get(i)! })), pooled: pooledSummary };
}

const PERCENTILE_FIELDS = ['ngQueueMs', 'lossPct', 'jitterMs', 'transitJitterMs', 'latencyMs', 'audioDelayMs', 'offerMs', 'answerMs', 'setupMs', 'firstMediaMs', 'mediaStartWaitMs', 'deleteMs', 'mos', 'rtpengineMos'] as const;

test('merged counts are the sums, and every merged percentile is the pooled histogram\'s, exactly', () => {
  const { files, pooled } = shardFiles([3, 1, 4, 2]);
  const { results, warnings } = mergeShards(files);
  assert.deepEqual(warnings, []);
  const s = results.summary;
  const shards = files.map((f) => f.results.summary);
  const total = (pick: (x: Summary) => number): number => shards.reduce((n, x) => n + pick(x), 0);
  assert.equal(s.calls.attempted, TOTAL);
  assert.equal(s.calls.ok, total((x) => x.calls.ok));
  assert.equal(s.packets.sent, total((x) => x.packets.sent));
  assert.equal(s.packets.received, total((x) => x.packets.received));
  assert.equal(s.packets.lost, total((x) => x.packets.lost));
  assert.equal(s.ng.retransmissions, COUNT);
  assert.equal(s.audioCheck.checked, total((x) => x.audioCheck.checked));
  for (const field of PERCENTILE_FIELDS) assert.deepEqual(s[field], pooled[field], field);
  assert.deepEqual(s.generator.sendLatenessMs, pooled.generator.sendLatenessMs);
  const latency = s.latencyMs as Percentiles;
  assert.equal(latency.p50, pooled.latencyMs!.p50);
  assert.equal(latency.p99, pooled.latencyMs!.p99);
  // Not the mean of the shards' p50s (which is what averaging would give).
  const averaged = shards.reduce((n, x) => n + x.latencyMs!.p50, 0) / COUNT;
  assert.notEqual(latency.p50, averaged);
  // Every merged histogram holds all the shards' values: its count is the sum of theirs.
  const countOf = (text: string | undefined): number => (text === undefined ? 0 : hdr.decodeFromCompressedBase64(text, 64, false).totalCount);
  for (const name of METRIC_NAMES) {
    assert.equal(countOf(results.histograms[name]), files.reduce((n, f) => n + countOf(f.results.histograms[name]), 0), name);
  }
  // Calls concatenated in call order, none twice; shards kept with their generator health; the whole plan back.
  assert.deepEqual(results.calls.map((c) => c.index), Array.from({ length: TOTAL }, (_, k) => k));
  assert.equal(new Set(results.calls.map((c) => c.callId)).size, TOTAL);
  assert.deepEqual(results.shards?.map((x) => x.index), [1, 2, 3, 4]);
  assert.deepEqual(results.shards?.map((x) => x.file), ['shard-1.json', 'shard-2.json', 'shard-3.json', 'shard-4.json']);
  assert.equal(results.plan.calls, TOTAL);
  assert.equal(results.plan.rampPerSec, 10);
  assert.equal(results.summary.generator.threads, COUNT);
  // Timeline points of the same second are summed.
  const second = results.timeline[2]!;
  assert.equal(second.callsUp, files.reduce((n, f) => n + f.results.timeline[2]!.callsUp, 0));
  assert.equal(second.latencyMs?.count, files.reduce((n, f) => n + (f.results.timeline[2]!.latencyMs?.count ?? 0), 0));
  assert.equal(second.latencyMs?.p99, Math.max(...files.map((f) => f.results.timeline[2]!.latencyMs!.p99)));
  assert.equal(second.workers.length, COUNT, 'each shard\'s embedded worker, named by shard');
});

test('a merged file reads back as a run, and report and the HTML take it', () => {
  const { files } = shardFiles();
  const { results } = mergeShards(files);
  const text = fileText(results);
  const read = checkResults('merged.json', JSON.parse(text));
  assert.equal(read.kind, 'run');
  const html = renderHtml([read.results as Results]);
  assert.match(html, /<svg/);
  assert.match(renderComparison([read.results as Results], { color: false }), /merge-test/);
});

function refusesWith(files: ShardFile[], message: string, allowPartial = false): void {
  assert.throws(
    () => mergeShards(files, { allowPartial }),
    (err: unknown) => {
      assert.ok(err instanceof MergeError, String(err));
      assert.equal(err.message, message);
      return true;
    },
  );
}

test('merge refuses other runs, other plans, a shard twice and missing shards, naming the files', () => {
  const { files } = shardFiles();
  const pooled = new MetricSet();
  const other = { path: 'other.json', results: shardResults(2, pooled, [], { runId: 'other-run' }) };
  refusesWith([files[0]!, other], 'the files are of different runs: shard-1.json is run merge-test, other.json is run other-run; merge the shards of one run (the same --run-id)');
  const longer = { path: 'longer.json', results: shardResults(2, pooled, [], { hold: '9s' }) };
  refusesWith([files[0]!, longer], 'longer.json was run with a different plan than shard-1.json (holdMs differ): merge the shards of one plan');
  refusesWith([files[0]!, files[1]!, { ...files[1]!, path: 'again.json' }], 'shard-2.json and again.json are both shard 2/4: give each shard once');
  refusesWith(files.slice(0, 2), 'shards 3, 4 of 4 are missing (given: shard-1.json = 1/4, shard-2.json = 2/4): give every shard\'s file, or --allow-partial to merge what there is');
  const partial = mergeShards(files.slice(0, 3), { allowPartial: true });
  assert.deepEqual(partial.warnings, ['shard 4 of 4 is missing: the merge covers 3 of 4 shards (--allow-partial); its counts are those shards\' only']);
  assert.equal(partial.results.summary.calls.attempted, 8);
  const plain = { path: 'plain.json', results: fixtureResults() };
  refusesWith([plain], 'plain.json is not a shard\'s results (it was run without --shard): merge takes the files of one sharded plan');
});

test('.hgrm text of a histogram of known values: HdrHistogram\'s percentile distribution, in ms', () => {
  const set = new MetricSet();
  for (const ms of [1, 2, 3, 4]) set.record('latencyMs', ms);
  const text = hgrmText(set.encode().latencyMs!, 'latencyMs');
  assert.equal(
    text,
    [
      '       Value     Percentile TotalCount 1/(1-Percentile)',
      '',
      '       1.000 0.000000000000          1           1.00',
      '       1.000 0.100000000000          1           1.11',
      '       1.000 0.200000000000          1           1.25',
      '       2.000 0.300000000000          2           1.43',
      '       2.000 0.400000000000          2           1.67',
      '       2.000 0.500000000000          2           2.00',
      // HdrHistogram prints each bucket's highest equivalent value: 3000 us sits in a 2 us bucket above 2048.
      '       3.001 0.550000000000          3           2.22',
      '       3.001 0.600000000000          3           2.50',
      '       3.001 0.650000000000          3           2.86',
      '       3.001 0.700000000000          3           3.33',
      '       3.001 0.750000000000          3           4.00',
      '       4.001 0.775000000000          4           4.44',
      '       4.001 1.000000000000          4',
      '#[Mean    =        2.501, StdDeviation   =        1.118]',
      '#[Max     =        4.001, Total count    =            4]',
      '#[Buckets =           16, SubBuckets     =         2048]',
      '',
    ].join('\n'),
  );
});

test('calls CSV: a header and one row per call, streams side by side', () => {
  const r = fixtureResults({ calls: 2, failed: [{ index: 1, cause: 'ng timeout', message: 'no reply, "quoted"' }] });
  const lines = callsCsv(r.calls).trimEnd().split('\n');
  assert.equal(lines.length, 3);
  assert.equal(lines[0]!.split(',').slice(0, 5).join(','), 'index,callId,worker,status,cause');
  assert.match(lines[1]!, /^0,20260101-120000-abcd-0,127\.0\.0\.1:2223,ok,,/);
  assert.match(lines[2]!, /^1,20260101-120000-abcd-1,127\.0\.0\.1:2223,failed,ng timeout,/);
  assert.equal(lines[0]!.split(',').length, lines[1]!.split(',').length);
});
