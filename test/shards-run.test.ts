/**
 * Four shards of one plan as four rtp-bench processes on this machine against one rtpengine, started together by
 * --start-at, then merged: the merge's counts are the shards' sums, its percentiles those of the pooled histograms,
 * no call-id or client port collides, and `rtp-bench report` takes the merged file.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { freeUdpPortRange, startRtpengine, type LocalRtpengine } from '../src/stack/rtpengine.js';
import { MetricSet, type MetricName } from '../src/stats/histogram.js';
import { readResults, startCli, tempResults, why } from './helpers/run-cli.js';

const started: LocalRtpengine[] = [];
after(async () => {
  for (const r of started) await r.stop();
});

const SHARDS = 4;

test('four shards against one rtpengine, started together, merge into the run they make together', { timeout: 90_000 }, async () => {
  const range = await freeUdpPortRange('127.0.0.1', 64);
  const daemon = await startRtpengine({ address: '127.0.0.1', portMin: range.min, portMax: range.max });
  started.push(daemon);
  const out = tempResults();
  try {
    // A few seconds ahead: time for four processes to start their media threads, not a wait for readiness.
    const startAt = new Date(Date.now() + 6000).toISOString();
    const runId = `shards-${process.pid}`;
    const runs = Array.from({ length: SHARDS }, (_, k) =>
      startCli([
        '--calls', '8', '--ramp', '8/s', '--hold', '3s', '--codec-pair', 'pcmu:pcmu',
        '--rtpengine', `127.0.0.1:${daemon.ngPort}`,
        '--shard', `${k + 1}/${SHARDS}`, '--run-id', runId, '--start-at', startAt,
        '--local-ports', '40000-40999',
        '--output', join(out.dir, `s${k + 1}.json`), '--progress', 'off',
      ]),
    );
    const done = await Promise.all(runs.map((r) => r.done));
    for (const r of done) assert.equal(r.code, 0, why(r));
    const shards = Array.from({ length: SHARDS }, (_, k) => readResults(join(out.dir, `s${k + 1}.json`)));
    for (const [k, s] of shards.entries()) {
      assert.deepEqual(s.shard, { index: k + 1, count: SHARDS });
      assert.equal(s.runId, runId);
      assert.equal(s.startAt, startAt);
      assert.equal(s.summary.calls.attempted, 2);
    }
    const calls = shards.flatMap((s) => s.calls);
    assert.equal(new Set(calls.map((c) => c.callId)).size, 8, 'call-ids unique across shards');
    assert.deepEqual(calls.map((c) => c.index).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
    const ports = calls.flatMap((c) => (c.ports === null ? [] : [c.ports.a, c.ports.a + 1, c.ports.b, c.ports.b + 1]));
    assert.equal(new Set(ports).size, ports.length, 'no client port used by two calls');
    // The shards ramped together: the calls were due 1/8 s apart, as one run would place them.
    const due = calls.map((c) => c.dueEpochMs).sort((a, b) => a - b);
    assert.ok(Math.abs(due[0]! - Date.parse(startAt)) < 1, 'the first call due at --start-at');
    due.forEach((d, k) => assert.ok(Math.abs(d - due[0]! - k * 125) < 1, `call ${k} due ${d - due[0]!} ms after the first`));

    const merged = join(out.dir, 'merged.json');
    const hgrm = join(out.dir, 'hgrm');
    mkdirSync(hgrm);
    const m = await startCli(['merge', ...shards.map((_, k) => join(out.dir, `s${k + 1}.json`)), '--output', merged, '--hgrm', hgrm, '--calls-csv', join(out.dir, 'calls.csv')]).done;
    assert.equal(m.code, 0, why(m));
    const r = readResults(merged);
    const sum = (pick: (s: (typeof shards)[number]) => number): number => shards.reduce((n, s) => n + pick(s), 0);
    assert.equal(r.summary.calls.attempted, 8);
    assert.equal(r.summary.calls.ok, sum((s) => s.summary.calls.ok));
    assert.equal(r.summary.packets.sent, sum((s) => s.summary.packets.sent));
    assert.equal(r.summary.packets.received, sum((s) => s.summary.packets.received));
    assert.equal(r.summary.packets.lost, sum((s) => s.summary.packets.lost));
    const pooled = new MetricSet();
    for (const s of shards) pooled.merge(s.histograms as Partial<Record<MetricName, string>>);
    for (const name of ['latencyMs', 'jitterMs', 'setupMs', 'offerMs', 'mos'] as const) assert.deepEqual(r.summary[name], pooled.summary(name), name);
    assert.deepEqual(r.shards?.map((s) => s.index), [1, 2, 3, 4]);
    assert.ok(existsSync(merged.replace(/\.json$/, '.html')));
    assert.ok(readdirSync(hgrm).includes('latencyMs.hgrm'));
    const rep = await startCli(['report', merged]).done;
    assert.equal(rep.code, 0, why(rep));
    process.stderr.write(`merged: ${r.summary.calls.ok}/${r.summary.calls.attempted} ok, packets ${r.summary.packets.sent} sent ${r.summary.packets.received} received, latency p50 ${r.summary.latencyMs?.p50} p99 ${r.summary.latencyMs?.p99} ms; shards p99 ${shards.map((s) => s.summary.latencyMs?.p99).join(', ')}\n`);
  } finally {
    out.cleanup();
  }
});
