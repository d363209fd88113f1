/**
 * docs/grafana/rtp-bench-dashboard.json: valid JSON, a Prometheus datasource variable every query uses, and every
 * metric name in its expressions one that rtp-bench's registry serves (src/metrics/live.ts) or rtpengine's /metrics
 * has as src/stack/worker-usage.ts reads it, so that a renamed metric breaks this test instead of a panel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { LiveMetrics } from '../../src/metrics/live.js';

interface Target {
  expr: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
}

const dashboard = JSON.parse(readFileSync(join(packageRoot(), 'docs', 'grafana', 'rtp-bench-dashboard.json'), 'utf8')) as Dashboard;

function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** rtp-bench's names as served: counters and gauges as named, histograms with their three series. */
function rtpbenchNames(): Set<string> {
  const live = new LiveMetrics({ runId: 'r', shard: 1, shards: 1, codecPair: 'pcmu:pcmu', target: 'embedded', calls: 1 }, () => 0);
  const out = new Set<string>();
  for (const m of live.registry.getMetricsAsArray()) {
    out.add(m.name);
    if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) out.add(`${m.name}${suffix}`);
  }
  return out;
}

/** The rtpengine_* names worker-usage.ts reads from rtpengine 10.5's /metrics (its series keys and prefixes). */
function rtpengineNames(): Set<string> {
  const source = readFileSync(join(packageRoot(), 'src', 'stack', 'worker-usage.ts'), 'utf8');
  return new Set([...source.matchAll(/'(rtpengine_[a-z_]+)[{']/g)].map((m) => m[1]!));
}

function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(rtpbench_[a-z_]+|rtpengine_[a-z_]+)\b/g)].map((m) => m[1]!);
}

test('the dashboard: a Prometheus datasource variable, used by every panel and query', () => {
  const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
  assert.ok(ds !== undefined, 'a datasource variable');
  assert.equal(ds.query, 'prometheus');
  const queries = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
  assert.ok(queries.length >= 10);
  for (const panel of queries) {
    assert.equal(panel.datasource?.uid, `\${${ds.name}}`, panel.title);
    for (const t of panel.targets ?? []) assert.equal(t.datasource?.uid, `\${${ds.name}}`, `${panel.title}: ${t.expr}`);
  }
});

test('every metric a dashboard expression or variable names is one rtp-bench or rtpengine exposes', () => {
  const known = new Set([...rtpbenchNames(), ...rtpengineNames()]);
  assert.ok(known.has('rtpengine_sessions') && known.has('rtpbench_calls_up') && known.has('rtpbench_latency_seconds_bucket'), 'both sources read');
  const exprs = [
    ...allPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.flatMap((v) => (v.type === 'query' ? [typeof v.query === 'string' ? v.query : v.query.query] : [])),
  ];
  const used = new Set(exprs.flatMap(metricNames));
  assert.ok([...used].some((n) => n.startsWith('rtpbench_')) && [...used].some((n) => n.startsWith('rtpengine_')), 'both kinds used');
  const unknown = [...used].filter((n) => !known.has(n));
  assert.deepEqual(unknown, [], `names neither rtp-bench nor rtpengine serves: ${unknown.join(', ')}`);
  // Each histogram_quantile reads a histogram's buckets, not a counter or gauge.
  for (const e of exprs.filter((x) => x.includes('histogram_quantile'))) assert.match(e, /rtpbench_[a-z_]+_seconds_bucket/);
});
