/**
 * --metrics-listen without a run: the flag's parsing and plan errors, the mapping from the timeline's samples, the
 * media threads' histogram parts and call records onto Prometheus series, and the HTTP endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { PlanError, buildPlan, type CliOptions, type HostFacts } from '../../src/plan.js';
import { parseMetricsListen } from '../../src/metrics/listen.js';
import { BUCKETS_MS, LiveMetrics, failureLabels } from '../../src/metrics/live.js';
import { MetricsServer } from '../../src/metrics/server.js';
import { MetricSet } from '../../src/stats/histogram.js';
import { parsePrometheusText } from '../../src/stack/worker-usage.js';
import type { CounterSample } from '../../src/stats/timeline.js';
import { freeTcpPort } from '../helpers/ports.js';

const HOST: HostFacts = { addresses: ['127.0.0.1', '10.1.2.3'], parallelism: 8, isRoot: true, env: {} };
const LABELS = { runId: 'r1', shard: 2, shards: 4, codecPair: 'opus:pcmu', target: 'embedded', calls: 10 };
const L = 'run="r1",shard="2"';

function planWith(options: CliOptions): ReturnType<typeof buildPlan> {
  return buildPlan('run', { calls: '4', ...options }, HOST);
}

test('--metrics-listen: alone the loopback default; a port alone on loopback; HOST:PORT; other addresses allowed and flagged', () => {
  assert.deepEqual(planWith({ metricsListen: '' }).metricsListen, { host: '127.0.0.1', port: 9464, loopback: true });
  assert.deepEqual(planWith({ metricsListen: '9500' }).metricsListen, { host: '127.0.0.1', port: 9500, loopback: true });
  assert.deepEqual(planWith({ metricsListen: '127.0.0.2:9100' }).metricsListen, { host: '127.0.0.2', port: 9100, loopback: true });
  assert.deepEqual(planWith({ metricsListen: '0.0.0.0:9464' }).metricsListen, { host: '0.0.0.0', port: 9464, loopback: false });
  assert.deepEqual(planWith({ metricsListen: '[::1]:9464' }).metricsListen, { host: '::1', port: 9464, loopback: true });
  assert.equal(planWith({}).metricsListen, null);
});

test('--metrics-listen: bad values are one line naming the flag and what is expected', () => {
  for (const [value, problem] of [
    ['localhost:9464', 'has "localhost", not an IPv4 address \\(a host name could resolve to several\\)'],
    ['127.0.0.1:0', 'has port 0, out of range'],
    ['127.0.0.1:70000', 'has port 70000, out of range'],
    ['127.0.0.1:http', 'has port "http", not a number'],
    ['[nope]:1', 'has "nope" in brackets, not an IPv6 address'],
    ['::1', 'is an IPv6 address without a port'],
  ] as const) {
    assert.throws(
      () => planWith({ metricsListen: value }),
      (err: unknown) => {
        assert.ok(err instanceof PlanError);
        assert.match(err.message, new RegExp(`^--metrics-listen ${value.replace(/[[\]]/g, '\\$&')} ${problem}: expected HOST:PORT`));
        assert.ok(!err.message.includes('\n'));
        return true;
      },
    );
  }
  assert.equal(typeof parseMetricsListen('1.2.3.4:5'), 'object');
});

test('--metrics-listen is refused with --mesh local (a network namespace no scraper reaches)', () => {
  assert.throws(() => planWith({ metricsListen: '', mesh: 'local' }), /^PlanError: --metrics-listen does not apply to --mesh local/);
});

function sample(over: Partial<CounterSample>): CounterSample {
  return { epochSecond: 0, atMs: 0, callsUp: 0, sent: 0, received: 0, lostA3: 0, workers: [], ...over };
}

async function series(live: LiveMetrics): Promise<Map<string, number>> {
  return parsePrometheusText(await live.text());
}

test('samples: calls up is a gauge; packets advance by what changed; loss follows its running maximum; worker CPU survives a restart', async () => {
  let cpuUs = 1_000_000;
  const live = new LiveMetrics(LABELS, () => cpuUs);
  const worker = (calls: number, cpuMs: number | null) => ({ name: 'w1', calls, cpuMs, rssBytes: 1000, metrics: null });
  live.sample(sample({ callsUp: 3, sent: 100, received: 90, lostA3: 5, workers: [worker(3, 200)] }));
  cpuUs = 1_500_000;
  live.sample(sample({ callsUp: 10, sent: 600, received: 580, lostA3: 4, workers: [worker(10, 500)] }));
  let s = await series(live);
  assert.equal(s.get(`rtpbench_calls_up{${L}}`), 10);
  assert.equal(s.get(`rtpbench_calls_planned{${L}}`), 10);
  assert.equal(s.get(`rtpbench_packets_sent_total{${L}}`), 600);
  assert.equal(s.get(`rtpbench_packets_received_total{${L}}`), 580);
  // 5, then 4 (a duplicate made RFC 3550's count go down): the counter stays at 5.
  assert.equal(s.get(`rtpbench_packets_lost_total{${L}}`), 5);
  assert.equal(s.get(`rtpbench_generator_cpu_seconds_total{${L}}`), 0.5);
  assert.equal(s.get(`rtpbench_worker_calls{worker="w1",${L}}`), 10);
  assert.equal(s.get(`rtpbench_worker_cpu_seconds_total{worker="w1",${L}}`), 0.5);
  assert.equal(s.get(`rtpbench_worker_memory_bytes{worker="w1",${L}}`), 1000);
  assert.equal(s.get(`rtpbench_run_info{codec_pair="opus:pcmu",target="embedded",shards="4",${L}}`), 1);
  // Restarted: a new process at 30 ms of CPU adds its 30 ms; then it counts on from there.
  live.sample(sample({ callsUp: 10, sent: 700, received: 680, lostA3: 6, workers: [worker(10, 30)] }));
  live.sample(sample({ callsUp: 10, sent: 700, received: 680, lostA3: 6, workers: [worker(10, 130)] }));
  s = await series(live);
  assert.equal(s.get(`rtpbench_worker_cpu_seconds_total{worker="w1",${L}}`), 0.63);
  assert.equal(s.get(`rtpbench_packets_lost_total{${L}}`), 6);
});

test('histogram parts: each value lands in the first bucket whose bound holds it; buckets, sum and count add up over parts', async () => {
  const live = new LiveMetrics(LABELS, () => 0);
  const part = (values: number[]) => {
    const set = new MetricSet();
    for (const v of values) set.record('latencyMs', v);
    return { epochSecond: 1, histograms: set.encode() };
  };
  live.part(part([0.3, 0.5, 0.9, 19, 20, 25]));
  live.part(part([150, 2000]));
  const s = await series(live);
  const bucket = (le: string) => s.get(`rtpbench_latency_seconds_bucket{le="${le}",${L}}`);
  assert.equal(bucket('0.0005'), 2); // 0.3 and 0.5 (a bound holds its own value)
  assert.equal(bucket('0.001'), 3);
  assert.equal(bucket('0.01'), 3);
  assert.equal(bucket('0.02'), 5);
  assert.equal(bucket('0.04'), 6);
  assert.equal(bucket('0.15'), 7);
  assert.equal(bucket('1'), 7);
  assert.equal(bucket('+Inf'), 8);
  assert.equal(s.get(`rtpbench_latency_seconds_count{${L}}`), 8);
  const sum = s.get(`rtpbench_latency_seconds_sum{${L}}`)!;
  assert.ok(Math.abs(sum - 2.2157) < 0.0035, `sum ${sum} s is the values' total within HDR's 0.1%`);
  // Metrics without values in the parts stay empty but present.
  assert.equal(s.get(`rtpbench_send_lateness_seconds_count{${L}}`), 0);
  assert.equal(BUCKETS_MS.length + 1, [...s.keys()].filter((k) => k.startsWith('rtpbench_latency_seconds_bucket')).length);
});

test('call records: ok, interrupted, and failures by stage and a bounded cause', async () => {
  const live = new LiveMetrics(LABELS, () => 0);
  live.callStarted();
  live.callStarted();
  live.callEnded({ status: 'ok', failure: null });
  live.callEnded({ status: 'failed', failure: { stage: 'offer', cause: 'Ran out of ports', message: '' } });
  live.callEnded({ status: 'failed', failure: { stage: 'offer', cause: 'Unknown call-id 1234', message: '' } });
  live.callEnded({ status: 'interrupted', failure: { stage: 'media', cause: 'interrupted', message: '' } });
  const s = await series(live);
  assert.equal(s.get(`rtpbench_calls_started_total{${L}}`), 2);
  assert.equal(s.get(`rtpbench_calls_ok_total{${L}}`), 1);
  assert.equal(s.get(`rtpbench_calls_interrupted_total{${L}}`), 1);
  assert.equal(s.get(`rtpbench_calls_failed_total{stage="offer",cause="Ran out of ports",${L}}`), 1);
  assert.equal(s.get(`rtpbench_calls_failed_total{stage="offer",cause="rtpengine error",${L}}`), 1);
  assert.deepEqual(failureLabels({ stage: 'mesh', cause: 'mesh refused (409)', message: '' }), { stage: 'mesh', cause: 'mesh refused' });
  assert.deepEqual(failureLabels({ stage: 'media', cause: 'something new', message: '' }), { stage: 'media', cause: 'other' });
});

test('every name is rtpbench_-prefixed, and the default registry stays empty (a registry of its own)', async () => {
  const live = new LiveMetrics(LABELS, () => 0);
  assert.ok(live.names().length > 10);
  for (const name of live.names()) assert.match(name, /^rtpbench_[a-z_]+$/);
  const { register } = await import('prom-client');
  assert.equal(register.getMetricsAsArray().length, 0);
});

test('the endpoint: /metrics as Prometheus text, 404 elsewhere, a port in use refused with a clear message, closed with a keep-alive client', async () => {
  const port = await freeTcpPort();
  const live = new LiveMetrics(LABELS, () => 0);
  const server = await MetricsServer.start({ host: '127.0.0.1', port }, live.registry);
  assert.ok(server instanceof MetricsServer);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(await res.text(), /^rtpbench_calls_up\{run="r1",shard="2"\} 0$/m);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
    const second = await MetricsServer.start({ host: '127.0.0.1', port }, live.registry);
    assert.equal(second, `--metrics-listen 127.0.0.1:${port}: the port is in use (another run, or another exporter?): choose another port, e.g. --metrics-listen 127.0.0.1:${port + 1}`);
  } finally {
    await server.close();
  }
  // Free again once closed.
  const probe = createServer().listen(port, '127.0.0.1');
  await once(probe, 'listening');
  probe.close();
});
