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
import type { TimelinePoint } from '../../src/stats/timeline.js';
import { prng } from '../helpers/prng.js';

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
    workers: [],
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
