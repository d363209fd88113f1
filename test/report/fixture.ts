/**
 * Small, deterministic Results objects for the report tests, built the way a run builds them: call records, a
 * MetricSet with per-packet samples, summarize() for the summary, encode() for the histograms.
 */
import { buildPlan, type HostFacts } from '../../src/plan.js';
import { MetricSet } from '../../src/stats/histogram.js';
import { summarize } from '../../src/stats/summary.js';
import type { CallRecord } from '../../src/call.js';
import type { StreamRecord } from '../../src/stats/stream.js';
import { RESULTS_FORMAT, type Results } from '../../src/report/results.js';
import { workerFigures, type TimelinePoint } from '../../src/stats/timeline.js';
import { prng } from '../helpers/prng.js';
import { buildCapacityPlan, buildScalePlan, type CapacityPlan } from '../../src/capacity/plan.js';
import { searchCapacity } from '../../src/capacity/search.js';
import { searchSettings } from '../../src/commands/capacity.js';
import { formatSlo, type StepFigures } from '../../src/capacity/slo.js';
import {
  capacityResults,
  capacitySearch,
  scalePointsOf,
  scaleResults,
  type CapacityResults,
  type CapacityStepOutcome,
  type PairCapacity,
  type ScaleResults,
} from '../../src/report/search-results.js';

const HOST: HostFacts = { addresses: ['127.0.0.1'], parallelism: 2, isRoot: true };

export interface FixtureOptions {
  runId?: string;
  /** 0: a calibration run (no rtpengine). */
  workers?: number;
  codecPair?: string;
  calls?: number;
  /** Call indexes that fail, with their cause and message. */
  failed?: { index: number; cause: string; message: string }[];
  interrupted?: boolean;
  /** Median one-way latency, ms. */
  latencyMs?: number;
  /** Per-packet samples of latency, jitter, transit jitter and send lateness. */
  packets?: number;
  /** Every call whose index is a multiple of this loses 5 packets per stream; 0: no loss. */
  lossEvery?: number;
  seed?: number;
}

function stream(direction: string, codecSent: string, codecReceived: string, sent: number, tail: number, lost: number): StreamRecord {
  const received = sent - tail - lost;
  const lossPct = (lost * 100) / (sent - tail);
  return {
    direction,
    codecSent,
    codecReceived,
    sent,
    received,
    audioMs: received * 20,
    tail,
    missing: lost,
    lost,
    lossPct,
    generatorDrops: { sendFailed: 0, skipped: 0, receiveQueue: 0, truncated: 0 },
    mosLatencyKnown: true,
    duplicates: 0,
    sequenceJumps: 0,
    startLost: 0,
    late: 0,
    expectedA3: sent - tail,
    lostA3: lost,
    malformed: 0,
    wrongPayloadType: 0,
    payloadMismatches: null,
    payloadType: 0,
    jitterMs: 0.5,
    meanJitterMs: 0.4,
    maxJitterMs: 2,
    transitJitterMs: 0.6,
    latencyMeanMs: 20,
    latencyMaxMs: 30,
    r: 93,
    mos: 4.4 - lossPct / 10,
    audio: { checked: true, ratio: 0.99, passed: true, delays: 3, delayMeanMs: 26.5, delayMaxMs: 26.9 },
  };
}

export function fixtureResults(options: FixtureOptions = {}): Results {
  const runId = options.runId ?? '20260101-120000-abcd';
  const workers = options.workers ?? 1;
  const calls = options.calls ?? 6;
  const codecPair = options.codecPair ?? (workers === 0 ? 'pcmu:pcmu' : 'opus:pcmu');
  const random = prng(options.seed ?? 7);
  const plan =
    workers === 0
      ? buildPlan('calibrate', { calls: String(calls), codecPair, hold: '5s', ramp: '10/s' }, HOST)
      : buildPlan('run', { calls: String(calls), codecPair, hold: '5s', ramp: '10/s', workers: String(workers) }, HOST);
  const [a, b] = codecPair.split(':') as [string, string];
  const transcoded = a !== b && workers > 0;
  const failed = new Map((options.failed ?? []).map((f) => [f.index, f]));
  const records: CallRecord[] = [];
  for (let index = 0; index < calls; index++) {
    const failure = failed.get(index);
    const setupMs = workers === 0 ? null : 3 + index * 0.5;
    const lost = options.lossEvery && index % options.lossEvery === 0 ? 5 : 0;
    const tail = transcoded ? 1 : 0;
    records.push({
      index,
      callId: `${runId}-${index}`,
      worker: workers === 0 ? null : `127.0.0.1:${2223 + (index % workers)}`,
      status: failure ? 'failed' : 'ok',
      failure: failure ? { stage: 'offer', cause: failure.cause, message: failure.message } : null,
      dueEpochMs: 1_767_268_800_000 + index * 100,
      startLagMs: 0.5,
      offerMs: failure ? null : setupMs === null ? null : setupMs * 0.6,
      answerMs: failure ? null : setupMs === null ? null : setupMs * 0.4,
      setupMs: failure ? null : setupMs,
      ngQueueMs: 0,
      mediaStartWaitMs: failure ? null : 0.2,
      firstMediaMs: failure ? { a: null, b: null } : { a: 20, b: 21 },
      mediaMs: failure ? null : 5000,
      ports: { a: 20000 + index * 4, b: 20002 + index * 4 },
      streams: failure ? [] : [stream('a->b', a, b, 250, tail, lost), stream('b->a', b, a, 250, tail, lost)],
      rtcp: null,
      rtpengine: null,
      deleteMs: failure || workers === 0 ? null : 2,
      deleteWarning: null,
    mesh: null,
      failover: null,
    });
  }
  const metrics = new MetricSet();
  const base = options.latencyMs ?? 20;
  for (let i = 0; i < (options.packets ?? 2000); i++) {
    metrics.record('latencyMs', base + random() * 4 + (i % 100 === 0 ? 30 : 0));
    if (i % 25 === 0) metrics.record('audioDelayMs', base + 6.5 + random());
    metrics.record('jitterMs', random() * 2);
    metrics.record('transitJitterMs', random() * 1.5);
    metrics.record('sendLatenessMs', random() * 1.2);
  }
  const summary = summarize(records, metrics, {
    wallMs: 6000,
    ngRetransmissions: 0,
    io: 'dgram',
    priority: 'normal',
    cost: { cpuUs: 600_000, packetOps: 12_000, wallMs: 5000, usPerPacketOp: 50, cpuPct: 12 },
    costWindow: 'hold',
    threads: 1,
    interrupted: options.interrupted ?? false,
    contention: null,
    localSystemUnderTest: workers > 0,
    ngInFlight: 64,
    // Each worker over the fixture's timeline, as a run takes them over its hold.
    workers: workers === 0 ? [] : workerFigures(timelineOf(calls, workers, base), 2, 5),
  });
  return {
    runId,
    startedAt: '2026-01-01T12:00:00.000Z',
    plan,
    environment: {
      rtpBench: '0.1.0',
      node: 'v20.19.0',
      platform: 'linux x64',
      kernel: '6.1.0',
      cpu: { model: 'Test CPU', cores: 2 },
      memoryGiB: 4,
      rtpengine: {
        kind: workers === 0 ? 'none' : 'embedded',
        workers: Array.from({ length: workers }, (_, i) => ({ name: `127.0.0.1:${2223 + i}`, version: '10.5.3.5' })),
      },
    },
    summary,
    histograms: metrics.encode() as Record<string, string>,
    timeline: workers === 0 ? [] : timelineOf(calls, workers, base),
    calls: records,
  };
}

/** Five seconds of a run: calls ramping up, packets, latency and each worker's CPU, as the timeline records them. */
function timelineOf(calls: number, workers: number, latencyMs: number): TimelinePoint[] {
  return [1, 2, 3, 4, 5].map((t) => {
    const up = Math.min(calls, t * 2);
    return {
      t,
      epochSecond: 1_767_268_800 + t,
      callsUp: up,
      sentPps: up * 100,
      receivedPps: up * 100 - 1,
      lossPct: t === 3 ? 0.5 : 0,
      latencyMs: { count: up * 100, p50: latencyMs, p99: latencyMs + 5, max: latencyMs + 9 },
      sendLatenessMs: { count: up * 100, p50: 0.3, p99: 0.9, max: 2 },
      workers: Array.from({ length: workers }, (_, k) => ({
        name: `127.0.0.1:${2223 + k}`,
        calls: Math.round(up / workers),
        cpuPct: 3 * up,
        rssMiB: 40,
        sessions: Math.round(up / workers),
        transcoded: 2 * Math.round(up / workers),
        streamsUserspace: 2 * Math.round(up / workers),
        streamsKernel: 0,
        packetsPerSec: up * 100,
        packetErrors: 0,
      })),
    };
  });
}

/** What writeResults puts on disk. */
export function fileText(results: Results): string {
  return `${JSON.stringify({ format: RESULTS_FORMAT, ...results }, null, 1)}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// Capacity and scale searches: the real search (searchCapacity) over a synthetic system whose knee is planted.

export interface SearchFixtureOptions {
  runId?: string;
  codecPairs?: string;
  /** The SLO; the default breaks latency.p99 first, two calls above the planted knee. */
  slo?: string;
  /** rtpengine degrades above this many calls per worker count (scale: per count, below). */
  knee?: number;
  workerCpu?: string;
  start?: string;
  max?: string;
}

export const FIXTURE_SLO = 'latency.p99<60ms,loss<0.5%,mos.p50>=4';

/**
 * A system that carries `knee` calls at 22 ms p99 and no loss; each call above adds 25 ms, 0.4% loss and takes 0.15
 * off the MOS. Under FIXTURE_SLO, knee + 1 passes (47 ms, 0.4%) and knee + 2 breaks latency.p99 first (72 ms).
 */
export function syntheticFigures(calls: number, knee: number): StepFigures {
  const over = Math.max(0, calls - knee);
  return {
    'latency.p50': 21,
    'latency.p99': 22 + over * 25,
    'transitJitter.p99': 1 + over,
    'mos.p50': 4.35 - over * 0.15,
    'generatorLateness.p99': 1,
    loss: over * 0.4,
    failed: 0,
  };
}

const SETTLE_S = 2;

/** One search of a synthetic system with `workers` workers capped at `capPct` each, its timeline second by second. */
async function searchFixture(codecPair: string, capacity: CapacityPlan, knee: number, workers: number, capPct: number): Promise<PairCapacity> {
  const timeline: TimelinePoint[] = [];
  let t = 0;
  const holdS = capacity.stepHoldMs / 1000;
  const result = await searchCapacity<CapacityStepOutcome>({ slo: capacity.slo, max: capacity.max, start: capacity.start, resolution: capacity.resolution }, async (calls) => {
    const figures = syntheticFigures(calls, knee);
    // Each worker's share of the calls costs it a share of its cap: at the knee every worker is at its cap.
    const cpuPct = Math.min(capPct, (calls * capPct) / knee);
    const names = Array.from({ length: workers }, (_, k) => `127.0.0.1:${2223 + k}`);
    const fromT = t + SETTLE_S;
    for (let s = 0; s < SETTLE_S + holdS; s++) {
      t += 1;
      timeline.push({
        t,
        epochSecond: 1_767_268_800 + t,
        callsUp: calls,
        sentPps: calls * 100,
        receivedPps: calls * 100 * (1 - (figures.loss ?? 0) / 100),
        lossPct: figures.loss ?? 0,
        latencyMs: { count: calls * 100, p50: 21, p99: figures['latency.p99'] ?? 0, max: (figures['latency.p99'] ?? 0) + 5 },
        sendLatenessMs: { count: calls * 100, p50: 0.3, p99: 1, max: 2 },
        workers: names.map((name) => ({ name, calls: calls / workers, cpuPct, rssMiB: 40, sessions: calls / workers, transcoded: 0, streamsUserspace: 0, streamsKernel: 0, packetsPerSec: calls * 100, packetErrors: 0 })),
      });
    }
    const sent = calls * 100 * holdS;
    const received = Math.round(sent * (1 - (figures.loss ?? 0) / 100));
    return {
      calls,
      figures,
      generatorLimited: null,
      window: { fromT, toT: t },
      workers: names.map((name) => ({ name, meanCalls: calls / workers, cpuPct, cpuMsPerCallSecond: (cpuPct * 10 * workers) / calls, maxRssMiB: 40, streamsKernel: 0, streamsUserspace: 0, transcoded: 0, packetErrors: 0 })),
      packets: { sent, received, lostA3: sent - received, seconds: holdS },
      lossPct: figures.loss ?? 0,
      failures: {},
    };
  });
  return { codecPair, capacity: capacitySearch(result, formatSlo(capacity.slo)), timeline, wallMs: t * 1000 };
}

/** A capacity results file's content: the planted knee per codec pair (the second pair's knee is half the first's). */
export async function fixtureCapacity(options: SearchFixtureOptions = {}): Promise<CapacityResults> {
  const { plan, capacity } = buildCapacityPlan(
    { codecPair: options.codecPairs ?? 'opus:pcmu', slo: options.slo ?? FIXTURE_SLO, workerCpu: options.workerCpu ?? '0.3', start: options.start ?? '10', max: options.max ?? '40', resolution: '1', stepHold: '4s' },
    HOST,
  );
  const knee = options.knee ?? 16;
  const capPct = plan.target.kind === 'embedded' && plan.target.cpuCores !== null ? plan.target.cpuCores * 100 : 100;
  const profiles: PairCapacity[] = [];
  for (const [k, pair] of capacity.pairs.entries()) {
    profiles.push(await searchFixture(`${pair.a.name}:${pair.b.name}`, capacity, Math.max(2, Math.round(knee / (k + 1))), 1, capPct));
  }
  return capacityResults({
    runId: options.runId ?? '20260101-130000-cap1',
    startedAt: '2026-01-01T13:00:00.000Z',
    plan,
    slo: formatSlo(capacity.slo),
    search: searchSettings(capacity),
    environment: fixtureResults().environment,
    profiles,
  });
}

/** A scale results file's content: per worker count, a search whose knee is `knees[i]`. */
export async function fixtureScale(knees: Readonly<Record<number, number>> = { 1: 12, 2: 22 }, options: SearchFixtureOptions = {}): Promise<ScaleResults> {
  const counts = Object.keys(knees).map(Number);
  const scale = buildScalePlan({ workers: counts.join(','), workerCpu: options.workerCpu ?? '0.2', codecPair: options.codecPairs ?? 'opus:pcmu', slo: options.slo ?? FIXTURE_SLO, start: '4', max: '40', resolution: '1', stepHold: '4s' }, HOST);
  const searches: ScaleResults['searches'] = [];
  for (const s of scale.searches) {
    const capPct = s.plan.target.kind === 'embedded' && s.plan.target.cpuCores !== null ? s.plan.target.cpuCores * 100 : 100;
    searches.push({ workers: s.workers, profile: await searchFixture('opus:pcmu', s.capacity, knees[s.workers] ?? 10, s.workers, capPct) });
  }
  const first = scale.searches[0]!;
  return scaleResults({
    runId: options.runId ?? '20260101-140000-scl1',
    startedAt: '2026-01-01T14:00:00.000Z',
    plan: first.plan,
    slo: formatSlo(first.capacity.slo),
    search: searchSettings(first.capacity),
    scale: { points: scalePointsOf(searches) },
    searches,
  });
}

/** What the capacity and scale commands put on disk. */
export function searchFileText(results: CapacityResults | ScaleResults): string {
  return `${JSON.stringify(results, null, 1)}\n`;
}
