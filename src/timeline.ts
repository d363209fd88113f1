/**
 * Takes the run's timeline: at every wall-clock second, the media threads' live counters (the control block), each
 * rtpengine worker's CPU and memory (local daemons, /proc) and its own counters (/metrics, when it serves them);
 * and, from the media threads over a BroadcastChannel, the latency and send-lateness histograms of each second.
 * stop() turns it all into points (src/stats/timeline.ts).
 */
import { BroadcastChannel } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { MetricSet } from './stats/histogram.js';
import { pointsFrom, type CounterSample, type TimelinePoint } from './stats/timeline.js';
import { readProcessUsage, scrapeRtpengine } from './stack/worker-usage.js';
import { P_LIVE_CALLS, P_LOST_A3, P_RECEIVED, P_SENT, type ControlView } from './media/control.js';
import type { TimelinePart } from './media/task.js';
import type { Worker } from './stack/stack.js';

/** A new channel name for one run's threads and timeline (two runs in one process must not hear each other). */
export function timelineChannelName(): string {
  return `rtp-bench-timeline-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** How long a scrape of a worker's /metrics may take; a slow one is left out of that second. */
const SCRAPE_TIMEOUT_MS = 400;

/**
 * Hears what the timeline takes as it takes it (the live metrics of --metrics-listen, src/metrics/live.ts): each
 * second's counter sample, and each histogram part a media thread posts. Called on the coordinator's thread.
 */
export interface TimelineListener {
  sample(sample: CounterSample): void;
  part(part: TimelinePart): void;
}

export class TimelineRecorder {
  private readonly samples: CounterSample[] = [];
  private readonly seconds = new Map<number, MetricSet>();
  private readonly channel: BroadcastChannel;
  private timer: NodeJS.Timeout | null = null;
  private startEpochMs = 0;
  private stopped = false;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    channelName: string,
    private readonly control: ControlView,
    private readonly workers: readonly Worker[],
    private readonly listener: TimelineListener | null = null,
  ) {
    this.channel = new BroadcastChannel(channelName);
    this.channel.unref();
    this.channel.onmessage = (event: unknown) => {
      const part = (event as { data: TimelinePart }).data;
      let set = this.seconds.get(part.epochSecond);
      if (set === undefined) {
        set = new MetricSet();
        this.seconds.set(part.epochSecond, set);
      }
      set.merge(part.histograms, { clamped: 0, rejected: 0 });
      this.listener?.part(part);
    };
  }

  /** Samples at every wall-clock second from now on; `startEpochMs` is the run's start, t = 0 of the points. */
  start(startEpochMs: number): void {
    this.startEpochMs = startEpochMs;
    this.inFlight = this.sample();
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    const now = Date.now();
    // A few ms past the boundary, so that the second's last values are in.
    this.timer = setTimeout(() => {
      this.inFlight = this.inFlight.then(() => this.sample());
      this.arm();
    }, 1000 - (now % 1000) + 5);
    this.timer.unref();
  }

  private async sample(): Promise<void> {
    const atMs = Date.now();
    const c = this.control;
    const workers = await Promise.all(
      this.workers.map(async (w) => {
        const usage = w.local === null ? null : readProcessUsage(w.local.pid);
        const metrics = w.metricsUrl === null ? null : await scrapeRtpengine(w.metricsUrl, SCRAPE_TIMEOUT_MS);
        return {
          name: w.name,
          calls: w.activeCalls,
          cpuMs: usage?.cpuMs ?? null,
          rssBytes: usage?.rssBytes ?? null,
          metrics:
            metrics === null
              ? null
              : {
                  // Apart: with --redis every worker also holds every other worker's calls, as foreign ones.
                  sessions: metrics.sessionsOwn,
                  foreignSessions: metrics.sessionsForeign,
                  transcoded: metrics.transcodedMedia,
                  streamsUserspace: metrics.streamsUserspace,
                  streamsKernel: metrics.streamsKernel,
                  packets: metrics.packetsUserspace + metrics.packetsKernel,
                  packetErrors: metrics.packetErrors,
                },
        };
      }),
    );
    const sample: CounterSample = {
      epochSecond: Math.floor(atMs / 1000),
      atMs,
      callsUp: c.total(P_LIVE_CALLS),
      sent: c.total(P_SENT),
      received: c.total(P_RECEIVED),
      lostA3: c.total(P_LOST_A3),
      workers,
    };
    this.samples.push(sample);
    this.listener?.sample(sample);
  }

  /**
   * The media threads' per-packet histograms of the wall-clock seconds [fromEpochS, toEpochS), merged: what a
   * window of the run (a capacity step's steady part) measured, from its own values only.
   */
  windowMetrics(fromEpochS: number, toEpochS: number): MetricSet {
    const out = new MetricSet();
    for (const [second, set] of this.seconds) {
      if (second >= fromEpochS && second < toEpochS) out.merge(set.encode(), { clamped: 0, rejected: 0 });
    }
    return out;
  }

  /** The live counters' change over the window (sent, received, RFC 3550 lost); null before two samples bracket it. */
  windowCounters(fromEpochMs: number, toEpochMs: number): { sent: number; received: number; lostA3: number; seconds: number } | null {
    const first = this.samples.find((s) => s.atMs >= fromEpochMs);
    const last = [...this.samples].reverse().find((s) => s.atMs <= toEpochMs);
    if (first === undefined || last === undefined || last.atMs <= first.atMs) return null;
    return { sent: last.sent - first.sent, received: last.received - first.received, lostA3: last.lostA3 - first.lostA3, seconds: (last.atMs - first.atMs) / 1000 };
  }

  /** The points so far (for a window's worker figures while the run goes on). */
  pointsSoFar(): TimelinePoint[] {
    return pointsFrom(this.samples, this.startEpochMs, (second) => this.secondFigures(second));
  }

  private secondFigures(second: number): { latencyMs: TimelinePoint['latencyMs']; sendLatenessMs: TimelinePoint['sendLatenessMs'] } {
    const set = this.seconds.get(second);
    const pick = (name: 'latencyMs' | 'sendLatenessMs'): TimelinePoint['latencyMs'] => {
      const p = set?.summary(name) ?? null;
      return p === null ? null : { count: p.count, p50: p.p50, p99: p.p99, max: p.max };
    };
    return { latencyMs: pick('latencyMs'), sendLatenessMs: pick('sendLatenessMs') };
  }

  /** Takes a last sample, stops, and returns the points. */
  async stop(): Promise<TimelinePoint[]> {
    if (!this.stopped) {
      this.stopped = true;
      if (this.timer !== null) clearTimeout(this.timer);
      await this.inFlight;
      await this.sample();
    }
    this.channel.close();
    return this.pointsSoFar();
  }
}
