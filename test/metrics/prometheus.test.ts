/**
 * --metrics-listen against a real Prometheus (Debian's `prometheus`, scripts/setup.sh): the test starts one on a free
 * loopback port with a config and storage of its own, scraping the run's endpoint every second; runs a few calls;
 * and checks what Prometheus stored against the run's own results. The Prometheus it started is stopped by PID.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readResults, startCli, waitFor, why } from '../helpers/run-cli.js';
import { freeTcpPort } from '../helpers/ports.js';
import { removeTempDirs, tempDir } from '../helpers/temp.js';
import { BUCKETS_MS } from '../../src/metrics/live.js';
import { packageRoot } from '../../src/paths.js';

const JOB = 'rtpbench-test';
let prometheus: ChildProcess | null = null;

after(async () => {
  // Stopped by its PID: only the server this test started.
  if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
    const exited = once(prometheus, 'exit');
    process.kill(prometheus.pid, 'SIGTERM');
    await exited;
  }
  await removeTempDirs();
});

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(base: string, promql: string): Promise<Sample[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { status: string; data?: { resultType: string; result: Sample[] }; error?: string };
  if (body.status !== 'success') throw new Error(`${promql}: ${body.error ?? res.status}`);
  return body.data!.result;
}

async function scalar(base: string, promql: string): Promise<number> {
  const result = await query(base, promql);
  assert.equal(result.length, 1, `${promql}: one series, got ${JSON.stringify(result)}`);
  return Number(result[0]!.value[1]);
}

/** The index of the Prometheus bucket a value falls in (BUCKETS_MS.length: +Inf). */
function bucketOf(ms: number): number {
  const i = BUCKETS_MS.findIndex((b) => ms <= b);
  return i < 0 ? BUCKETS_MS.length : i;
}

test('a real Prometheus scrapes a run: calls up reaches --calls, counters end at the results\' totals, histogram_quantile lands in the results\' bucket', { timeout: 120_000 }, async () => {
  const dir = await tempDir('rtp-bench-prometheus-');
  const [metricsPort, promPort] = [await freeTcpPort(), await freeTcpPort()];
  const config = join(dir, 'prometheus.yml');
  await writeFile(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 900ms',
      'scrape_configs:',
      `  - job_name: ${JOB}`,
      '    static_configs:',
      `      - targets: ['127.0.0.1:${metricsPort}']`,
      '',
    ].join('\n'),
  );
  prometheus = spawn(
    'prometheus',
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let promLog = '';
  prometheus.stderr!.setEncoding('utf8').on('data', (d: string) => (promLog += d));
  const base = `http://127.0.0.1:${promPort}`;
  await waitFor('Prometheus ready', async () => (await fetch(`${base}/-/ready`).catch(() => null))?.ok === true, 30_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}\n${promLog}`);
  });

  const results = join(dir, 'run.json');
  const runId = `prom-${process.pid}`;
  const calls = 4;
  const run = startCli(['--calls', String(calls), '--ramp', '4/s', '--hold', '6s', '--run-id', runId, '--metrics-listen', `127.0.0.1:${metricsPort}`, '--output', results, '--json', '--quiet']);
  // Scraped while the run goes on: observed through Prometheus' own view of the target, never assumed from a sleep.
  await waitFor(`up{job="${JOB}"} == 1`, async () => (await query(base, `up{job="${JOB}"} == 1`)).length === 1, 30_000, 200);
  const r = await run.done;
  assert.equal(r.code, 0, why(r));
  const summary = readResults(results).summary;

  const sel = `job="${JOB}",run="${runId}",shard="1"`;
  // Every series of the run is kept after its end: read each one's last stored value (the target is gone now, so an
  // instant query would meet staleness markers).
  const last = (name: string): Promise<number> => scalar(base, `last_over_time(${name}{${sel}}[5m])`);
  const maxUp = await scalar(base, `max_over_time(rtpbench_calls_up{${sel}}[5m])`);
  assert.equal(maxUp, calls, 'every call was up at some scrape during the 6 s hold');
  // Exact: the run waits at its end for one more scrape (MetricsServer.close lastScrape), which reads the final
  // sample (every packet of the run, taken after the media stopped) and every call's end.
  const sent = await last('rtpbench_packets_sent_total');
  const received = await last('rtpbench_packets_received_total');
  const ok = await last('rtpbench_calls_ok_total');
  assert.equal(sent, summary.packets.sent, 'packets sent: the last scrape equals the results');
  assert.equal(received, summary.packets.received, 'packets received: the last scrape equals the results');
  assert.equal(ok, summary.calls.ok);
  assert.equal(await last('rtpbench_calls_started_total'), calls);

  // The latency histogram: its count is every received packet's latency; histogram_quantile can only place a
  // percentile within a bucket (linear interpolation between its bounds), so it must land in the bucket that holds
  // the results' HDR p50 and p99.
  const count = await last('rtpbench_latency_seconds_count');
  assert.equal(count, summary.latencyMs!.count, 'one latency value per packet the run measured');
  for (const [q, exact] of [
    [0.5, summary.latencyMs!.p50],
    [0.99, summary.latencyMs!.p99],
  ] as const) {
    const promql = `histogram_quantile(${q}, sum by (le) (last_over_time(rtpbench_latency_seconds_bucket{${sel}}[5m])))`;
    const estimate = (await scalar(base, promql)) * 1000;
    assert.equal(bucketOf(estimate), bucketOf(exact), `${promql} = ${estimate} ms is in the bucket of the results' p${q * 100} ${exact} ms`);
    // Written out for the report: what Prometheus said next to the exact figure.
    process.stderr.write(`prometheus: ${promql} = ${estimate.toFixed(3)} ms; results p${q * 100} = ${exact} ms; packets sent ${sent} = ${summary.packets.sent}\n`);
  }
  // Every expression of the Grafana dashboard is PromQL this Prometheus accepts, and the rtp-bench panels find the run.
  const dashboard = JSON.parse(await readFile(join(packageRoot(), 'docs', 'grafana', 'rtp-bench-dashboard.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  for (const panel of dashboard.panels) {
    let found = 0;
    for (const { expr } of panel.targets ?? []) {
      const promql = expr.replaceAll('$__rate_interval', '5s').replaceAll('$run', runId).replaceAll('$rtpengine', '.+');
      // Over the run's minutes (a subquery), since the target is gone now; rtpengine's own are not scraped here.
      found += (await query(base, promql.includes('rtpbench_') ? `last_over_time((${promql})[5m:1s])` : promql)).length;
    }
    // A panel of rtp-bench's shows the run (a failed-calls series exists only once a call failed: not every target).
    if ((panel.targets ?? []).some((t) => t.expr.includes('rtpbench_'))) assert.ok(found > 0, `${panel.title} shows the run`);
  }
  // The run's server is gone with it.
  assert.equal(await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(() => 'answered', () => 'refused'), 'refused');
});
