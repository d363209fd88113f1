/**
 * A run over time, one point a second: the source of the time charts, the CSV and the per-worker figures. Pure:
 * points are made from samples the coordinator took (src/timeline.ts) and the per-second histograms the media
 * threads posted; windows of points give the steady-state figures (a worker's CPU per call-second).
 */
import type { Percentiles } from './histogram.js';

/** One rtpengine worker during one second. */
export interface WorkerPoint {
  name: string;
  /** Calls rtp-bench had on it at the sample. */
  calls: number;
  /** Its process's CPU over the second, percent of one core (local daemons only; null elsewhere). */
  cpuPct: number | null;
  rssMiB: number | null;
  /** From its /metrics (null when it serves none): its own sessions, transcoded media, streams by who forwards them. */
  sessions: number | null;
  /**
   * Other workers' calls it holds from Redis, ready to take over (--redis; 0 without). Absent in results written
   * before it was recorded, when `sessions` counted own and foreign together (the same number without Redis).
   */
  foreignSessions?: number | null;
  /** rtpengine_transcoded_media: counted on each side of a call, so an opus <-> PCMU call counts 2. */
  transcoded: number | null;
  streamsUserspace: number | null;
  streamsKernel: number | null;
  /** Packets it forwarded per second (userspace + kernel), and its packet errors so far. */
  packetsPerSec: number | null;
  packetErrors: number | null;
}

export interface TimelinePoint {
  /** Seconds since the run started (the first call's due time), at the end of the second this point covers. */
  t: number;
  epochSecond: number;
  /** Calls whose media was running at the sample. */
  callsUp: number;
  /** RTP packets per second each way over the second: what the generator's kernel took, and what it received. */
  sentPps: number;
  receivedPps: number;
  /** RFC 3550 loss over the second, percent of the packets expected in it (live streams; null before any). */
  lossPct: number | null;
  /** One-way latency and send lateness of the packets of that second (null: none). */
  latencyMs: Pick<Percentiles, 'count' | 'p50' | 'p99' | 'max'> | null;
  sendLatenessMs: Pick<Percentiles, 'count' | 'p50' | 'p99' | 'max'> | null;
  workers: WorkerPoint[];
}

/** What the coordinator read at a second's end (cumulative counters; the point is the difference to the last). */
export interface CounterSample {
  epochSecond: number;
  atMs: number;
  callsUp: number;
  sent: number;
  received: number;
  lostA3: number;
  workers: { name: string; calls: number; cpuMs: number | null; rssBytes: number | null; metrics: WorkerMetricsSample | null }[];
}

export interface WorkerMetricsSample {
  /** Its own calls. */
  sessions: number;
  /** Calls it follows from other workers' Redis DBs. */
  foreignSessions: number;
  transcoded: number;
  streamsUserspace: number;
  streamsKernel: number;
  packets: number;
  packetErrors: number;
}

/** Points from consecutive samples: each covers the time since the previous sample. */
export function pointsFrom(
  samples: readonly CounterSample[],
  startEpochMs: number,
  latencyOf: (epochSecond: number) => { latencyMs: TimelinePoint['latencyMs']; sendLatenessMs: TimelinePoint['sendLatenessMs'] },
): TimelinePoint[] {
  const points: TimelinePoint[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const seconds = (b.atMs - a.atMs) / 1000;
    if (!(seconds > 0)) continue;
    const rate = (x: number, y: number): number => Math.max(0, y - x) / seconds;
    const lost = b.lostA3 - a.lostA3;
    const got = b.received - a.received;
    const expected = got + Math.max(0, lost);
    points.push({
      t: Math.round((b.atMs - startEpochMs) / 100) / 10,
      epochSecond: b.epochSecond,
      callsUp: b.callsUp,
      sentPps: rate(a.sent, b.sent),
      receivedPps: rate(a.received, b.received),
      lossPct: expected > 0 ? (Math.max(0, lost) * 100) / expected : null,
      ...latencyOf(b.epochSecond - 1),
      workers: b.workers.map((w, k) => {
        const prev = a.workers[k];
        const cpuPct = w.cpuMs !== null && prev?.cpuMs !== null && prev?.cpuMs !== undefined ? ((w.cpuMs - prev.cpuMs) / 10 / seconds) : null;
        const m = w.metrics;
        const pm = prev?.metrics ?? null;
        return {
          name: w.name,
          calls: w.calls,
          cpuPct,
          rssMiB: w.rssBytes === null ? null : w.rssBytes / 2 ** 20,
          sessions: m?.sessions ?? null,
          foreignSessions: m?.foreignSessions ?? null,
          transcoded: m?.transcoded ?? null,
          streamsUserspace: m?.streamsUserspace ?? null,
          streamsKernel: m?.streamsKernel ?? null,
          packetsPerSec: m !== null && pm !== null ? rate(pm.packets, m.packets) : null,
          packetErrors: m?.packetErrors ?? null,
        };
      }),
    });
  }
  return points;
}

/** A worker's steady-state figures over a window of the run (points whose second ends in [fromT, toT]). */
export interface WorkerFigures {
  name: string;
  /** Mean calls on it over the window. */
  meanCalls: number;
  /** Mean CPU, percent of one core; null when its CPU could not be read. */
  cpuPct: number | null;
  /** CPU per call-second, ms: what a capacity planner multiplies (null without CPU or without calls). */
  cpuMsPerCallSecond: number | null;
  maxRssMiB: number | null;
  /** Streams the kernel forwarded (offloaded), as rtpengine counts them, at the window's end. */
  streamsKernel: number | null;
  streamsUserspace: number | null;
  transcoded: number | null;
  packetErrors: number | null;
}

export function workerFigures(points: readonly TimelinePoint[], fromT: number, toT: number): WorkerFigures[] {
  const inside = points.filter((p) => p.t >= fromT && p.t <= toT);
  const names = [...new Set(points.flatMap((p) => p.workers.map((w) => w.name)))];
  return names.map((name) => {
    const ws = inside.flatMap((p) => p.workers.filter((w) => w.name === name));
    const mean = (xs: number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
    const cpus = ws.flatMap((w) => (w.cpuPct === null ? [] : [w.cpuPct]));
    const meanCalls = mean(ws.map((w) => w.calls)) ?? 0;
    const cpuPct = mean(cpus);
    // The last value each counter had in the window (a scrape that timed out leaves a second without one).
    const last = <K extends 'streamsKernel' | 'streamsUserspace' | 'transcoded' | 'packetErrors'>(key: K): number | null => {
      for (let i = ws.length - 1; i >= 0; i--) {
        const v = ws[i]![key];
        if (v !== null) return v;
      }
      return null;
    };
    const rss = ws.flatMap((w) => (w.rssMiB === null ? [] : [w.rssMiB]));
    return {
      name,
      meanCalls,
      cpuPct,
      // CPU% of a core is ms of CPU per 10 ms... per second it is cpuPct * 10 ms; per call-second divide by calls.
      cpuMsPerCallSecond: cpuPct === null || meanCalls <= 0 ? null : (cpuPct * 10) / meanCalls,
      maxRssMiB: rss.length === 0 ? null : Math.max(...rss),
      streamsKernel: last('streamsKernel'),
      streamsUserspace: last('streamsUserspace'),
      transcoded: last('transcoded'),
      packetErrors: last('packetErrors'),
    };
  });
}

/** The timeline as CSV: one row per point, worker columns per worker (name-prefixed). */
export function timelineCsv(points: readonly TimelinePoint[]): string {
  const workerNames = [...new Set(points.flatMap((p) => p.workers.map((w) => w.name)))];
  const workerCols = ['calls', 'cpuPct', 'rssMiB', 'sessions', 'transcoded', 'streamsUserspace', 'streamsKernel', 'packetsPerSec', 'packetErrors', 'foreignSessions'] as const;
  const head = [
    't', 'epochSecond', 'callsUp', 'sentPps', 'receivedPps', 'lossPct', 'latencyP50Ms', 'latencyP99Ms', 'sendLatenessP99Ms',
    ...workerNames.flatMap((n) => workerCols.map((c) => `${n} ${c}`)),
  ];
  const cell = (v: number | null | undefined): string => (v === null || v === undefined ? '' : String(Math.round(v * 1000) / 1000));
  const quote = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const rows = points.map((p) =>
    [
      cell(p.t), String(p.epochSecond), cell(p.callsUp), cell(p.sentPps), cell(p.receivedPps), cell(p.lossPct),
      cell(p.latencyMs?.p50), cell(p.latencyMs?.p99), cell(p.sendLatenessMs?.p99),
      ...workerNames.flatMap((n) => {
        const w = p.workers.find((x) => x.name === n);
        return workerCols.map((c) => cell(w?.[c] ?? null));
      }),
    ].join(','),
  );
  return `${[head.map(quote).join(','), ...rows].join('\n')}\n`;
}
