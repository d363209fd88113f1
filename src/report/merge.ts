/**
 * `rtp-bench merge`: the results files of the shards of one plan (--shard I/N) -> one results file, read by
 * `report` and drawn by the HTML like any run. Pure: src/commands/merge.ts reads and writes the files.
 *
 * What is exact and what is not:
 * - counts (calls, packets, RTCP, ng retransmissions, audio checks, generator drops) are summed;
 * - histograms are merged (HdrHistogram add), and every Percentiles field of the summary is read from the merged
 *   histograms, never averaged: the merged p99 is the p99 of all the shards' values pooled;
 * - call records are concatenated (sorted by call index; call-ids carry the shard, so none collide);
 * - timeline points of the same wall-clock second (`epochSecond`) are summed: callsUp, sentPps, receivedPps, and
 *   loss weighted by each shard's expected packets. A point's latency/send-lateness percentiles cannot be merged
 *   from percentiles: `count` is summed and `max` is the max (both exact), while `p50` and `p99` are the largest of
 *   the shards' (an upper bound of the pooled percentile, never below it) — documented in results/README.md;
 * - each shard's generator health is kept whole in `shards[]`: the merged `generator` sums CPU and threads, and
 *   its warnings name the shard they came from.
 */
import type { CallRecord } from '../call.js';
import { failoverSummary } from '../faults/summary.js';
import type { ChurnFigures } from '../load/churn.js';
import type { RunPlan } from '../run-plan.js';
import { MetricSet, type MetricName, type Percentiles } from '../stats/histogram.js';
import type { GeneratorHealth, MeshSummary, Summary } from '../stats/summary.js';
import type { TimelinePoint, WorkerFigures, WorkerPoint } from '../stats/timeline.js';
import type { Results, ShardRecord } from './results.js';

/** A shard's file: where it came from, and what it holds. */
export interface ShardFile {
  path: string;
  results: Results;
}

/** Why files cannot be merged; the message names the files. */
export class MergeError extends Error {
  override readonly name = 'MergeError';
}

export interface MergeOutcome {
  results: Results;
  /** Said on stderr: e.g. the shards missing under --allow-partial. */
  warnings: string[];
}

/**
 * The plan fields a shard sets for itself, left out when shards' plans are compared: where its results go, its share
 * (calls, rate, ports, the churn seed), its own machine (threads, address, I/O, priority) and its index.
 */
const SHARD_OWN_FIELDS = ['output', 'csv', 'callsCsv', 'hgrm', 'json', 'progress', 'calls', 'rampPerSec', 'threads', 'localIp', 'localPorts', 'localPortsExplicit', 'io', 'mediaPriority', 'metricsListen'] as const satisfies readonly (keyof RunPlan)[];

/** The plan as all shards of it share it: the fields above left out, the shard's index and source too. */
export function sharedPlan(plan: RunPlan): Record<string, unknown> {
  const out: Record<string, unknown> = { ...plan };
  for (const key of SHARD_OWN_FIELDS) delete out[key];
  if (plan.churn !== null) {
    const { ratePerSec: _rate, seed: _seed, ...rest } = plan.churn;
    out['churn'] = rest;
  }
  if (plan.shard !== null) {
    const { index: _index, source: _source, ...rest } = plan.shard;
    out['shard'] = rest;
  }
  return out;
}

/** JSON with sorted keys: two plans compare equal whatever order their fields were written in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

function differingFields(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => canonical(a[k]) !== canonical(b[k]));
}

/** Checks that the files are the shards of one plan, then merges them. Throws MergeError. */
export function mergeShards(files: readonly ShardFile[], options: { allowPartial: boolean } = { allowPartial: false }): MergeOutcome {
  if (files.length === 0) throw new MergeError('merge needs the results files of the shards');
  const notShard = files.find((f) => f.results.plan.shard == null || f.results.shard == null);
  if (notShard !== undefined) throw new MergeError(`${notShard.path} is not a shard's results (it was run without --shard): merge takes the files of one sharded plan`);
  const merged = files.find((f) => f.results.shards !== undefined);
  if (merged !== undefined) throw new MergeError(`${merged.path} is already a merge of shards`);

  const ids = new Set(files.map((f) => f.results.runId));
  if (ids.size > 1) {
    throw new MergeError(`the files are of different runs: ${files.map((f) => `${f.path} is run ${f.results.runId}`).join(', ')}; merge the shards of one run (the same --run-id)`);
  }
  const first = files[0]!;
  const count = first.results.shard!.count;
  const plan0 = sharedPlan(first.results.plan);
  for (const f of files.slice(1)) {
    const diff = differingFields(plan0, sharedPlan(f.results.plan));
    if (diff.length > 0) throw new MergeError(`${f.path} was run with a different plan than ${first.path} (${diff.join(', ')} differ): merge the shards of one plan`);
  }
  const byIndex = new Map<number, ShardFile>();
  for (const f of files) {
    const index = f.results.shard!.index;
    const twin = byIndex.get(index);
    if (twin !== undefined) throw new MergeError(`${twin.path} and ${f.path} are both shard ${index}/${count}: give each shard once`);
    byIndex.set(index, f);
  }
  const warnings: string[] = [];
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    const text = `shard${missing.length === 1 ? '' : 's'} ${missing.join(', ')} of ${count} ${missing.length === 1 ? 'is' : 'are'} missing`;
    if (!options.allowPartial) throw new MergeError(`${text} (given: ${files.map((f) => `${f.path} = ${f.results.shard!.index}/${count}`).join(', ')}): give every shard's file, or --allow-partial to merge what there is`);
    warnings.push(`${text}: the merge covers ${files.length} of ${count} shards (--allow-partial); its counts are those shards' only`);
  }
  const ordered = [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, f]) => f);
  return { results: mergeOrdered(ordered, missing.length > 0), warnings };
}

function mergeOrdered(files: readonly ShardFile[], partial: boolean): Results {
  const all = files.map((f) => f.results);
  const metrics = new MetricSet();
  for (const r of all) metrics.merge(r.histograms as Partial<Record<MetricName, string>>);
  const calls: CallRecord[] = all.flatMap((r) => r.calls).sort((a, b) => a.index - b.index);
  const embedded = all[0]!.plan.target.kind === 'embedded';
  const startMs = Math.min(...all.map((r) => Date.parse(r.startedAt)));
  const endMs = Math.max(...all.map((r) => Date.parse(r.startedAt) + r.summary.wallMs));
  const shards: ShardRecord[] = files.map((f) => ({
    index: f.results.shard!.index,
    count: f.results.shard!.count,
    file: f.path,
    startedAt: f.results.startedAt,
    calls: { attempted: f.results.summary.calls.attempted, ok: f.results.summary.calls.ok, failed: f.results.summary.calls.failed, interrupted: f.results.summary.calls.interrupted },
    generator: f.results.summary.generator,
  }));
  const whole = all[0]!.plan;
  const shard = whole.shard!;
  const plan: RunPlan = {
    ...whole,
    // The whole plan again: what the shards together placed (--allow-partial: what was planned, not placed).
    calls: shard.totalCalls,
    rampPerSec: shard.totalRatePerSec,
    churn: whole.churn === null ? null : { ...whole.churn, ratePerSec: shard.totalRatePerSec },
    localPorts: shard.totalLocalPorts,
    threads: all.reduce((n, r) => n + r.plan.threads, 0),
    output: null,
    csv: null,
    callsCsv: null,
    hgrm: null,
    metricsListen: null,
  };
  return {
    runId: all[0]!.runId,
    startedAt: new Date(startMs).toISOString(),
    startAt: all[0]!.startAt ?? null,
    plan,
    environment: mergedEnvironment(all, embedded),
    summary: mergedSummary(all, metrics, calls, endMs - startMs, embedded, partial),
    histograms: metrics.encode() as Record<string, string>,
    timeline: mergedTimeline(all.map((r, k) => ({ index: files[k]!.results.shard!.index, points: r.timeline })), embedded),
    calls,
    shards,
  };
}

/** The first shard's machine; with embedded rtpengines (one per shard), every shard's workers, named by shard. */
function mergedEnvironment(all: readonly Results[], embedded: boolean): Results['environment'] {
  const env = all[0]!.environment;
  if (!embedded) return env;
  return { ...env, rtpengine: { ...env.rtpengine, workers: all.flatMap((r) => r.environment.rtpengine.workers.map((w) => ({ ...w, name: shardName(r, w.name) }))) } };
}

/** Each shard started its own embedded rtpengine: their workers are different processes, told apart by shard. */
function shardName(r: Results, name: string): string {
  return `s${r.shard?.index ?? 0} ${name}`;
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function sumRecords(records: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}

function mergedSummary(all: readonly Results[], metrics: MetricSet, calls: readonly CallRecord[], wallMs: number, embedded: boolean, partial: boolean): Summary {
  const s = all.map((r) => r.summary);
  const p = (name: MetricName): Percentiles | null => metrics.summary(name);
  const packets = sumRecords(s.map((x) => x.packets)) as Summary['packets'];
  const deliverable = packets.sent - packets.transcodingTail;
  packets.lossPct = deliverable > 0 ? (packets.lost * 100) / deliverable : 0;
  const firstFailure: Record<string, string> = {};
  for (const x of s) for (const [cause, message] of Object.entries(x.calls.firstFailure)) firstFailure[cause] ??= message;
  const toolLimits = [...new Set(s.flatMap((x) => x.toolLimits))];
  if (partial) toolLimits.push(`a partial merge: ${all.length} of ${all[0]!.shard!.count} shards (--allow-partial)`);
  return {
    interrupted: s.some((x) => x.interrupted),
    wallMs,
    calls: {
      attempted: sum(s.map((x) => x.calls.attempted)),
      ok: sum(s.map((x) => x.calls.ok)),
      failed: sum(s.map((x) => x.calls.failed)),
      interrupted: sum(s.map((x) => x.calls.interrupted)),
      failedByCause: sumRecords(s.map((x) => x.calls.failedByCause)),
      firstFailure,
    },
    packets,
    rtcp: sumRecords(s.map((x) => x.rtcp)) as Summary['rtcp'],
    ng: { retransmissions: sum(s.map((x) => x.ng.retransmissions)) },
    ngQueueMs: p('ngQueueMs'),
    lossPct: p('lossPct'),
    jitterMs: p('jitterMs'),
    transitJitterMs: p('transitJitterMs'),
    latencyMs: p('latencyMs'),
    audioDelayMs: p('audioDelayMs'),
    offerMs: p('offerMs'),
    answerMs: p('answerMs'),
    setupMs: p('setupMs'),
    firstMediaMs: p('firstMediaMs'),
    mediaStartWaitMs: p('mediaStartWaitMs'),
    deleteMs: p('deleteMs'),
    mesh: mergedMesh(s, all.map((r) => r.shard!.index), calls, metrics),
    mos: p('mos'),
    rtpengineMos: p('rtpengineMos'),
    audioCheck: sumRecords(s.map((x) => x.audioCheck)) as Summary['audioCheck'],
    generator: mergedGenerator(all, metrics),
    toolLimits,
    workers: mergedWorkerFigures(all, embedded),
    churn: mergedChurn(s.map((x) => x.churn)),
    faults: s.flatMap((x) => x.faults),
    // From the call records into a set of its own: failoverSummary records the per-call gaps as it reads them.
    failover: failoverSummary(calls, new MetricSet()),
  };
}

function mergedMesh(s: readonly Summary[], indexes: readonly number[], calls: readonly CallRecord[], metrics: MetricSet): MeshSummary | null {
  const meshed = s.filter((x) => x.mesh !== null);
  if (meshed.length === 0) return null;
  // Per-call averages of each shard, weighted by its calls with mesh objects: the average over all of them.
  const weights = indexes.map((index) => calls.filter((c) => c.mesh !== null && shardOfCall(c) === index).length);
  const weighted = (pick: (m: MeshSummary) => number | null): number | null => {
    let total = 0;
    let n = 0;
    s.forEach((x, k) => {
      const v = x.mesh === null ? null : pick(x.mesh);
      if (v === null) return;
      total += v * (weights[k] || 1);
      n += weights[k] || 1;
    });
    return n === 0 ? null : total / n;
  };
  return {
    objectsPerCall: weighted((m) => m.objectsPerCall) ?? 0,
    requestsPerCall: weighted((m) => m.requestsPerCall) ?? 0,
    releaseRequestsPerCall: weighted((m) => m.releaseRequestsPerCall),
    acceptedMs: metrics.summary('meshAcceptedMs'),
    readyMs: metrics.summary('meshReadyMs'),
    firstMediaMs: metrics.summary('meshFirstMediaMs'),
    throttledMs: metrics.summary('meshThrottledMs'),
  };
}

/** The shard (1-based) a call-id names: `<run id>-s<I>-<n>`; 0 when it names none. */
function shardOfCall(c: CallRecord): number {
  const m = /-s(\d+)-\d+$/.exec(c.callId);
  return m === null ? 0 : Number(m[1]);
}

function mergedGenerator(all: readonly Results[], metrics: MetricSet): GeneratorHealth {
  const g = all.map((r) => r.summary.generator);
  const tagged = (pick: (x: GeneratorHealth) => string | null): string | null => {
    const lines = g.flatMap((x, k) => {
      const v = pick(x);
      return v === null ? [] : [`shard ${all[k]!.shard!.index}: ${v}`];
    });
    return lines.length === 0 ? null : lines.join('; ');
  };
  // CPU per packet operation over all generators: each shard's figure weighted by the packets it moved.
  const ops = all.map((r) => r.summary.packets.sent + r.summary.packets.received);
  const costed = g.flatMap((x, k) => (x.cpuUsPerPacketOp === null ? [] : [{ us: x.cpuUsPerPacketOp, ops: ops[k]! }]));
  const costOps = sum(costed.map((c) => c.ops));
  const joined = (values: (string | null)[]): string | null => [...new Set(values.filter((v): v is string => v !== null))].join(', ') || null;
  return {
    threads: sum(g.map((x) => x.threads)),
    io: joined(g.map((x) => x.io)),
    priority: joined(g.map((x) => x.priority)),
    // The shards' processes together, percent of one core (each shard's own is in shards[]).
    cpuPct: sum(g.map((x) => x.cpuPct)),
    cpuUsPerPacketOp: costOps > 0 ? sum(costed.map((c) => c.us * c.ops)) / costOps : null,
    costWindow: g.some((x) => x.costWindow === 'run') ? 'run' : 'hold',
    sendLatenessMs: metrics.summary('sendLatenessMs'),
    drops: {
      sendFailed: sum(g.map((x) => x.drops.sendFailed)),
      skipped: sum(g.map((x) => x.drops.skipped)),
      receiveQueue: g.some((x) => x.drops.receiveQueue === null) ? null : sum(g.map((x) => x.drops.receiveQueue ?? 0)),
      truncated: sum(g.map((x) => x.drops.truncated)),
    },
    // Each machine's own contention is its shard's: see shards[].generator.contention.
    contention: null,
    saturated: tagged((x) => x.saturated),
    limited: tagged((x) => x.limited),
  };
}

/**
 * rtpengine workers: embedded ones are each shard's own (named by shard); shared ones (remote, mesh) are the same
 * instances seen by every shard: their calls are summed (each shard counts its own), their process figures and
 * counters are the instance's, so the largest reading is kept.
 */
function mergedWorkerFigures(all: readonly Results[], embedded: boolean): WorkerFigures[] {
  if (embedded) return all.flatMap((r) => r.summary.workers.map((w) => ({ ...w, name: shardName(r, w.name) })));
  const byName = new Map<string, WorkerFigures[]>();
  for (const r of all) for (const w of r.summary.workers) byName.set(w.name, [...(byName.get(w.name) ?? []), w]);
  return [...byName.entries()].map(([name, ws]) => {
    const meanCalls = sum(ws.map((w) => w.meanCalls));
    const cpuPct = maxOf(ws.map((w) => w.cpuPct));
    return {
      name,
      meanCalls,
      cpuPct,
      cpuMsPerCallSecond: cpuPct === null || meanCalls <= 0 ? null : (cpuPct * 10) / meanCalls,
      maxRssMiB: maxOf(ws.map((w) => w.maxRssMiB)),
      streamsKernel: maxOf(ws.map((w) => w.streamsKernel)),
      streamsUserspace: maxOf(ws.map((w) => w.streamsUserspace)),
      transcoded: maxOf(ws.map((w) => w.transcoded)),
      packetErrors: maxOf(ws.map((w) => w.packetErrors)),
    };
  });
}

function maxOf(values: readonly (number | null | undefined)[]): number | null {
  const xs = values.filter((v): v is number => typeof v === 'number');
  return xs.length === 0 ? null : Math.max(...xs);
}

/** Churn: rates and Erlang add up over the shards; the window and holding time are the plan's, alike in each. */
function mergedChurn(figures: readonly (ChurnFigures | null)[]): ChurnFigures | null {
  if (figures.some((f) => f === null) || figures.length === 0) return null;
  const fs = figures as ChurnFigures[];
  const added = (pick: (f: ChurnFigures) => number | null): number | null => (fs.some((f) => pick(f) === null) ? null : sum(fs.map((f) => pick(f)!)));
  return {
    ...fs[0]!,
    ratePerSec: sum(fs.map((f) => f.ratePerSec)),
    offeredErlang: sum(fs.map((f) => f.offeredErlang)),
    carriedErlang: added((f) => f.carriedErlang),
    setupsPerSec: added((f) => f.setupsPerSec),
    failedPerSec: added((f) => f.failedPerSec),
  };
}

type PointStat = NonNullable<TimelinePoint['latencyMs']>;

/** Percentiles of a second's points: count summed and max exact; p50 and p99 the largest of the shards' (upper bounds). */
function mergedPointStat(stats: readonly (PointStat | null)[]): PointStat | null {
  const xs = stats.filter((x): x is PointStat => x !== null);
  if (xs.length === 0) return null;
  return { count: sum(xs.map((x) => x.count)), p50: Math.max(...xs.map((x) => x.p50)), p99: Math.max(...xs.map((x) => x.p99)), max: Math.max(...xs.map((x) => x.max)) };
}

/** One point per wall-clock second that any shard has, the shards' points of that second merged. */
export function mergedTimeline(shards: readonly { index: number; points: readonly TimelinePoint[] }[], embedded: boolean): TimelinePoint[] {
  const bySecond = new Map<number, { index: number; point: TimelinePoint }[]>();
  for (const s of shards) for (const point of s.points) bySecond.set(point.epochSecond, [...(bySecond.get(point.epochSecond) ?? []), { index: s.index, point }]);
  const seconds = [...bySecond.keys()].sort((a, b) => a - b);
  if (seconds.length === 0) return [];
  // t of the earliest second, as its shard had it; the others follow it a second a second.
  const firstSecond = seconds[0]!;
  const firstT = Math.min(...bySecond.get(firstSecond)!.map((x) => x.point.t));
  return seconds.map((epochSecond) => {
    const here = bySecond.get(epochSecond)!;
    const ps = here.map((x) => x.point);
    // Loss of the second: each shard's lost and expected packets (expected = received / (1 - loss)), then pooled.
    let lost = 0;
    let expected = 0;
    for (const p of ps) {
      if (p.lossPct === null) continue;
      const exp = p.lossPct < 100 ? p.receivedPps / (1 - p.lossPct / 100) : p.sentPps;
      expected += exp;
      lost += (exp * p.lossPct) / 100;
    }
    const faults = [...new Set(ps.flatMap((p) => p.faults ?? []))];
    return {
      t: Math.round((firstT + epochSecond - firstSecond) * 10) / 10,
      epochSecond,
      callsUp: sum(ps.map((p) => p.callsUp)),
      sentPps: sum(ps.map((p) => p.sentPps)),
      receivedPps: sum(ps.map((p) => p.receivedPps)),
      lossPct: ps.every((p) => p.lossPct === null) ? null : expected > 0 ? (lost * 100) / expected : 0,
      latencyMs: mergedPointStat(ps.map((p) => p.latencyMs)),
      sendLatenessMs: mergedPointStat(ps.map((p) => p.sendLatenessMs)),
      workers: mergedWorkerPoints(here, embedded),
      ...(faults.length === 0 ? {} : { faults }),
    };
  });
}

function mergedWorkerPoints(here: readonly { index: number; point: TimelinePoint }[], embedded: boolean): WorkerPoint[] {
  if (embedded) return here.flatMap((x) => x.point.workers.map((w) => ({ ...w, name: `s${x.index} ${w.name}` })));
  const byName = new Map<string, WorkerPoint[]>();
  for (const x of here) for (const w of x.point.workers) byName.set(w.name, [...(byName.get(w.name) ?? []), w]);
  return [...byName.entries()].map(([name, ws]) => ({
    name,
    calls: sum(ws.map((w) => w.calls)),
    cpuPct: maxOf(ws.map((w) => w.cpuPct)),
    rssMiB: maxOf(ws.map((w) => w.rssMiB)),
    sessions: maxOf(ws.map((w) => w.sessions)),
    foreignSessions: maxOf(ws.map((w) => w.foreignSessions)),
    transcoded: maxOf(ws.map((w) => w.transcoded)),
    streamsUserspace: maxOf(ws.map((w) => w.streamsUserspace)),
    streamsKernel: maxOf(ws.map((w) => w.streamsKernel)),
    packetsPerSec: maxOf(ws.map((w) => w.packetsPerSec)),
    packetErrors: maxOf(ws.map((w) => w.packetErrors)),
  }));
}
