/**
 * The run's live Prometheus metrics (--metrics-listen): a prom-client Registry of its own, fed only from what the
 * run already has each second: the timeline's counter samples (src/timeline.ts: calls up, packets, loss, each
 * worker's calls and CPU), the per-second HDR histograms the media threads post (latency, send lateness, jitter),
 * and each call's record as it ends. Nothing here runs per packet: the media threads are untouched.
 *
 * Every series carries `run` (the run id) and `shard` (its index, "1" when unsharded), as the registry's default
 * labels, so the shards of one plan and successive runs can be told apart and summed in one Prometheus.
 * No default Node metrics (collectDefaultMetrics): its GC and event-loop observers cost something in the process
 * whose timing is the measurement, and the one process figure a reader of a load test needs, the generator's CPU,
 * is exported here from process.cpuUsage() once a second.
 */
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import { MetricSet } from '../stats/histogram.js';
import { TIMELINE_METRICS, type TimelineMetric, type TimelinePart } from '../media/task.js';
import type { CounterSample } from '../stats/timeline.js';
import type { TimelineListener } from '../timeline.js';
import type { CallRecord } from '../call.js';

/**
 * Upper bounds of the histograms' buckets, ms (exported in seconds, Prometheus' base unit): sub-ms for send lateness
 * and pass-through latency on loopback, 20-80 ms for a transcoder's frame hold and its steps, 150 ms (G.114's one-way
 * limit), 300 ms and 1 s for a system in trouble.
 */
export const BUCKETS_MS: readonly number[] = Object.freeze([0.5, 1, 2, 5, 10, 20, 40, 80, 150, 300, 1000]);

/** The media threads' per-second histograms and the Prometheus histogram each is folded into. */
export const LIVE_HISTOGRAMS: Readonly<Record<TimelineMetric, { name: string; help: string }>> = Object.freeze({
  sendLatenessMs: { name: 'rtpbench_send_lateness_seconds', help: "How late each RTP send left against its schedule (the generator's own health)" },
  latencyMs: { name: 'rtpbench_latency_seconds', help: 'One-way latency per received RTP packet: receive time minus send time of the same sequence number' },
  jitterMs: { name: 'rtpbench_jitter_seconds', help: 'RFC 3550 interarrival jitter per received packet, once the estimator has settled' },
  transitJitterMs: { name: 'rtpbench_transit_jitter_seconds', help: 'Jitter on the actual send times (without the generator\'s lateness), per received packet' },
  audioDelayMs: { name: 'rtpbench_audio_delay_seconds', help: 'Audio delay per marker tone found in the decoded received audio' },
});

/**
 * Failure causes exported as they are; any other (rtpengine's own error text for a refused offer, say) is folded
 * into `rtpengine error` or `other`, so that the label set stays bounded however rtpengine words its errors.
 */
export const KNOWN_FAILURE_CAUSES: readonly string[] = Object.freeze([
  'local ports exhausted',
  'local port in use',
  'media thread error',
  'no media a->b',
  'no media b->a',
  'media lost after kill-worker',
  'media lost after restart-worker',
  'media lost after pause-worker',
  'ng timeout',
  'rtpengine unreachable',
  'codec mismatch',
  'mesh error',
  'mesh refused',
  'Ran out of ports',
  'interrupted',
]);

/** A call's failure as bounded labels: its stage (a fixed set) and its cause, known or folded. */
export function failureLabels(failure: NonNullable<CallRecord['failure']>): { stage: string; cause: string } {
  const cause = failure.cause.startsWith('mesh refused') ? 'mesh refused' : failure.cause;
  if (KNOWN_FAILURE_CAUSES.includes(cause)) return { stage: failure.stage, cause };
  const ng = failure.stage === 'offer' || failure.stage === 'answer' || failure.stage === 'delete';
  return { stage: failure.stage, cause: ng ? 'rtpengine error' : 'other' };
}

/** What the run says about itself once, as labels of rtpbench_run_info. */
export interface RunLabels {
  runId: string;
  /** 1-based; 1 when unsharded. */
  shard: number;
  shards: number;
  codecPair: string;
  target: string;
  /** Concurrent calls the plan (or this shard) aims for. */
  calls: number;
}

/**
 * A Prometheus histogram whose buckets are added as counts: prom-client's Histogram takes one value per observe(),
 * and the media threads' histograms carry every packet of a second (tens of thousands), already counted. The
 * registry renders any metric from get(); this gives it the standard _bucket/_sum/_count series.
 */
class FoldedHistogram {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly cumulative: number[];
  private count = 0;
  private sumSeconds = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly boundsMs: readonly number[],
  ) {
    this.cumulative = boundsMs.map(() => 0);
  }

  add(counts: { cumulative: readonly number[]; count: number; sum: number }): void {
    counts.cumulative.forEach((n, i) => (this.cumulative[i]! += n));
    this.count += counts.count;
    this.sumSeconds += counts.sum / 1000;
  }

  /**
   * Replaces the counts with the run's whole histogram: a superset of every second added so far, so no bucket goes
   * down (Prometheus would read a reset).
   */
  settle(counts: { cumulative: readonly number[]; count: number; sum: number }): void {
    counts.cumulative.forEach((n, i) => (this.cumulative[i] = Math.max(this.cumulative[i]!, n)));
    this.count = Math.max(this.count, counts.count);
    this.sumSeconds = Math.max(this.sumSeconds, counts.sum / 1000);
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: { metricName: string; labels: Record<string, string | number>; value: number }[] }> {
    const bucket = `${this.name}_bucket`;
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [
        ...this.boundsMs.map((ms, i) => ({ metricName: bucket, labels: { le: ms / 1000 }, value: this.cumulative[i]! })),
        { metricName: bucket, labels: { le: '+Inf' }, value: this.count },
        { metricName: `${this.name}_sum`, labels: {}, value: this.sumSeconds },
        { metricName: `${this.name}_count`, labels: {}, value: this.count },
      ],
    };
  }
}

export class LiveMetrics implements TimelineListener {
  readonly registry = new Registry();
  private readonly callsUp: Gauge;
  private readonly started: Counter;
  private readonly ok: Counter;
  private readonly failed: Counter<'stage' | 'cause'>;
  private readonly interrupted: Counter;
  private readonly sent: Counter;
  private readonly received: Counter;
  private readonly lost: Counter;
  private readonly generatorCpu: Counter;
  private readonly workerCalls: Gauge<'worker'>;
  private readonly workerCpu: Counter<'worker'>;
  private readonly workerMemory: Gauge<'worker'>;
  private readonly histograms = new Map<TimelineMetric, FoldedHistogram>();
  private readonly last = { sent: 0, received: 0, lost: 0, cpuUs: 0 };
  private readonly lastWorkerCpuMs = new Map<string, number>();

  constructor(
    labels: RunLabels,
    private readonly cpuUsNow: () => number = () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ run: labels.runId, shard: String(labels.shard) });
    const info = new Gauge({ name: 'rtpbench_run_info', help: 'The run: its codec pair, target and shard count (value 1)', labelNames: ['codec_pair', 'target', 'shards'] as const, registers });
    info.set({ codec_pair: labels.codecPair, target: labels.target, shards: String(labels.shards) }, 1);
    new Gauge({ name: 'rtpbench_calls_planned', help: 'Concurrent calls the plan (this shard) aims for', registers }).set(labels.calls);
    this.callsUp = new Gauge({ name: 'rtpbench_calls_up', help: 'Calls whose media is running, sampled each second', registers });
    this.started = new Counter({ name: 'rtpbench_calls_started_total', help: 'Calls placed (offer sent or about to be)', registers });
    this.ok = new Counter({ name: 'rtpbench_calls_ok_total', help: 'Calls that ended well: set up, media both ways, deleted', registers });
    this.failed = new Counter({ name: 'rtpbench_calls_failed_total', help: 'Calls that failed, by stage and cause (a bounded set; other rtpengine errors are "rtpengine error")', labelNames: ['stage', 'cause'] as const, registers });
    this.interrupted = new Counter({ name: 'rtpbench_calls_interrupted_total', help: 'Calls that were fine when the run was stopped (Ctrl-C), not failures', registers });
    this.sent = new Counter({ name: 'rtpbench_packets_sent_total', help: "RTP packets sent (taken by the generator's kernel), both legs", registers });
    this.received = new Counter({ name: 'rtpbench_packets_received_total', help: 'RTP packets received, both legs', registers });
    this.lost = new Counter({ name: 'rtpbench_packets_lost_total', help: 'RTP packets lost, RFC 3550 A.3 (expected minus received), both legs', registers });
    this.generatorCpu = new Counter({ name: 'rtpbench_generator_cpu_seconds_total', help: "The generator process's CPU (user + system, all threads)", registers });
    this.workerCalls = new Gauge({ name: 'rtpbench_worker_calls', help: 'Calls rtp-bench has on each rtpengine worker', labelNames: ['worker'] as const, registers });
    this.workerCpu = new Counter({ name: 'rtpbench_worker_cpu_seconds_total', help: "Each local rtpengine worker process's CPU (user + system), from /proc", labelNames: ['worker'] as const, registers });
    this.workerMemory = new Gauge({ name: 'rtpbench_worker_memory_bytes', help: 'Each local rtpengine worker process\'s resident memory', labelNames: ['worker'] as const, registers });
    for (const metric of TIMELINE_METRICS) {
      const { name, help } = LIVE_HISTOGRAMS[metric];
      const histogram = new FoldedHistogram(name, help, BUCKETS_MS);
      this.histograms.set(metric, histogram);
      // The registry renders any object with name, help, type and get(); its typings list prom-client's own classes only.
      this.registry.registerMetric(histogram as unknown as Metric);
    }
    this.last.cpuUs = this.cpuUsNow();
  }

  /**
   * The run's final totals (its summary and its histograms): the packet counters and the histograms end where the
   * results do. The last timeline sample and the last per-second histograms come before the calls' last packets and
   * their drain are counted, so without this a final scrape would read a few packets short of the results file.
   */
  finish(totals: { sent: number; received: number }, run: MetricSet): void {
    for (const [metric, histogram] of this.histograms) {
      const counts = run.cumulativeCounts(metric, BUCKETS_MS);
      if (counts !== null) histogram.settle(counts);
    }
    this.sent.inc(Math.max(0, totals.sent - this.last.sent));
    this.received.inc(Math.max(0, totals.received - this.last.received));
    this.last.sent = Math.max(this.last.sent, totals.sent);
    this.last.received = Math.max(this.last.received, totals.received);
    this.callsUp.set(0);
  }

  /** A timeline sample (cumulative counters, once a second): counters advance by what changed since the last. */
  sample(s: CounterSample): void {
    this.callsUp.set(s.callsUp);
    this.sent.inc(Math.max(0, s.sent - this.last.sent));
    this.received.inc(Math.max(0, s.received - this.last.received));
    // RFC 3550's cumulative loss can go down (a duplicate counts as a received packet): the counter follows its
    // running maximum, since a Prometheus counter that goes down reads as a reset.
    this.lost.inc(Math.max(0, s.lostA3 - this.last.lost));
    this.last.sent = Math.max(this.last.sent, s.sent);
    this.last.received = Math.max(this.last.received, s.received);
    this.last.lost = Math.max(this.last.lost, s.lostA3);
    const cpuUs = this.cpuUsNow();
    this.generatorCpu.inc(Math.max(0, cpuUs - this.last.cpuUs) / 1e6);
    this.last.cpuUs = cpuUs;
    for (const w of s.workers) {
      const worker = w.name;
      this.workerCalls.set({ worker }, w.calls);
      if (w.rssBytes !== null) this.workerMemory.set({ worker }, w.rssBytes);
      if (w.cpuMs !== null) {
        const prev = this.lastWorkerCpuMs.get(worker);
        // A worker started again (--fault restart-worker) is a new process counting from 0: its own use since.
        const delta = prev === undefined || w.cpuMs < prev ? w.cpuMs : w.cpuMs - prev;
        this.workerCpu.inc({ worker }, delta / 1000);
        this.lastWorkerCpuMs.set(worker, w.cpuMs);
      }
    }
  }

  /** One media thread's histograms of one second, counted into the buckets. */
  part(p: TimelinePart): void {
    const set = new MetricSet();
    set.merge(p.histograms);
    for (const [metric, histogram] of this.histograms) {
      const counts = set.cumulativeCounts(metric, BUCKETS_MS);
      if (counts !== null) histogram.add(counts);
    }
  }

  callStarted(): void {
    this.started.inc();
  }

  callEnded(record: Pick<CallRecord, 'status' | 'failure'>): void {
    if (record.status === 'ok') this.ok.inc();
    else if (record.status === 'interrupted') this.interrupted.inc();
    else if (record.failure !== null) this.failed.inc(failureLabels(record.failure));
    else this.failed.inc({ stage: 'media', cause: 'other' });
  }

  /** The text Prometheus scrapes. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Every metric name this registry serves (histograms as their base name): the dashboard test checks against it. */
  names(): string[] {
    return this.registry.getMetricsAsArray().map((m) => m.name);
  }
}
