/**
 * The run's HDR histograms: one per metric, each recording integers in a fixed sub-unit of the metric's unit, so that
 * histograms recorded in different media threads (or runs) can be merged exactly. Percentiles are only ever read from
 * merged histograms: averaging percentiles across workers is wrong whenever the workers saw different loads.
 */
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

export interface MetricSpec {
  unit: 'ms' | '%' | 'MOS' | 'count';
  /** Recorded integer = round(value * scale): 1000 on a millisecond metric records microseconds. */
  scale: number;
  /** Highest trackable value, in the metric's unit; larger values are clamped to it (and counted). */
  highest: number;
  description: string;
}

const ms = (highest: number, description: string): MetricSpec => ({ unit: 'ms', scale: 1000, highest, description });

export const METRICS = Object.freeze({
  offerMs: ms(120_000, 'ng offer round trip, from when the request left'),
  answerMs: ms(120_000, 'ng answer round trip, from when the request left'),
  deleteMs: ms(120_000, 'ng delete round trip, from when the request left'),
  ngQueueMs: ms(600_000, "a call's ng requests, time waiting in rtp-bench's own queue (--ng-in-flight)"),
  meshAcceptedMs: ms(120_000, "a call's mesh objects, until all were accepted"),
  meshReadyMs: ms(120_000, "a call's mesh objects, until the mesh carried its sessions (REST, singleton)"),
  meshFirstMediaMs: ms(120_000, "a call's mesh objects, from the start of provisioning until media arrived on both legs"),
  meshThrottledMs: ms(600_000, "a call's mesh requests, time waiting for rtp-bench's own rate and concurrency limits"),
  setupMs: ms(120_000, "call setup: offer, answer and mesh provisioning until ready, rtp-bench's own waits excluded"),
  mediaStartWaitMs: ms(600_000, "from a call's setup to its media starting in a media thread (the generator's own delay)"),
  firstMediaMs: ms(120_000, "from when a call's first frame was due in its media thread to the first media packet received on a leg"),
  latencyMs: ms(60_000, 'one-way latency per packet: receive time minus send time of the same seq'),
  audioDelayMs: ms(60_000, 'audio delay per marker found in the decoded audio: its onset minus when the far leg sent it (no sequence numbers)'),
  jitterMs: ms(60_000, 'RFC 3550 A.8 interarrival jitter, in ms, per packet once the estimator has settled (16 packets)'),
  transitJitterMs: ms(60_000, 'variation of receive time minus actual send time (excludes generator lateness), from the 17th packet'),
  sendLatenessMs: ms(60_000, 'how late each send was against its schedule (generator health)'),
  lossPct: { unit: '%', scale: 1000, highest: 100, description: 'loss per stream, in percent' },
  mos: { unit: 'MOS', scale: 100, highest: 5, description: 'E-model (ITU-T G.107) MOS from measured loss, jitter, latency' },
  rtpengineMos: { unit: 'MOS', scale: 100, highest: 5, description: "rtpengine's own MOS from RTCP" },
  ngRttMs: ms(60_000, 'round trip of every ng request, retransmissions included'),
  failoverGapAMs: ms(600_000, 'a call hit by a worker fault, a->b: from the last packet before the fault to the first after it'),
  failoverGapBMs: ms(600_000, 'a call hit by a worker fault, b->a: from the last packet before the fault to the first after it'),
  failoverLostAudioAMs: ms(600_000, 'a call hit by a worker fault, a->b: audio time lost with the gap (not packets)'),
  failoverLostAudioBMs: ms(600_000, 'a call hit by a worker fault, b->a: audio time lost with the gap (not packets)'),
  failoverRecoverMs: ms(600_000, 'a call hit by a worker fault: from the fault until media flowed again both ways'),
} as const satisfies Record<string, MetricSpec>);

export type MetricName = keyof typeof METRICS;

/** In declaration order, so summaries and reports list metrics the same way every time. */
export const METRIC_NAMES: readonly MetricName[] = Object.freeze(Object.keys(METRICS) as MetricName[]);

export function isMetricName(name: string): name is MetricName {
  return Object.hasOwn(METRICS, name);
}

/** In the metric's unit, not the recorded integers. */
export interface Percentiles {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Values a MetricSet could not record as given; they travel next to encode() because the encoding cannot hold them. */
export interface OutlierCounts {
  /** Out of [0, highest]: recorded at the nearest bound. */
  clamped: number;
  /** Not a number: not recorded at all. */
  rejected: number;
}

export interface MetricSetOptions {
  /** Create these histograms now rather than on their first value (keeps allocation off the packet path). */
  metrics?: readonly MetricName[];
  /**
   * Packed counts arrays: a fraction of the memory for sparse histograms, a little slower to record. For the many
   * short-lived per-call sets in media threads; the run-wide sets keep 64-bit counts, which cannot overflow.
   */
  packed?: boolean;
}

const SIGNIFICANT_DIGITS = 3;

function highestScaled(spec: MetricSpec): number {
  return Math.ceil(spec.highest * spec.scale);
}

function buildHistogram(spec: MetricSpec, packed: boolean): Histogram {
  return hdr.build({
    bitBucketSize: packed ? 'packed' : 64,
    // A histogram that grows on an outlier would change its bucket layout mid-run; we clamp instead.
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: highestScaled(spec),
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    // JS histograms need no destroy() and behave the same in worker threads.
    useWebAssembly: false,
  });
}

function specOf(name: string): MetricSpec {
  if (!isMetricName(name)) throw new Error(`unknown metric "${name}": expected one of ${METRIC_NAMES.join(', ')}`);
  return METRICS[name];
}

export class MetricSet {
  private readonly histograms = new Map<MetricName, Histogram>();
  private readonly packed: boolean;
  private clampedCount = 0;
  private rejectedCount = 0;

  constructor(options: MetricSetOptions = {}) {
    this.packed = options.packed ?? false;
    for (const name of options.metrics ?? []) this.histogram(name);
  }

  /** Values recorded at a bound because they were out of range: a histogram that threw would lose the run. */
  get clamped(): number {
    return this.clampedCount;
  }

  /** NaN values, which have no bound to clamp to; counted so that nothing is dropped silently. */
  get rejected(): number {
    return this.rejectedCount;
  }

  get outliers(): OutlierCounts {
    return { clamped: this.clampedCount, rejected: this.rejectedCount };
  }

  record(name: MetricName, value: number): void {
    const spec = specOf(name);
    const scaled = this.toRecordable(spec, value);
    if (scaled !== undefined) this.histogram(name).recordValue(scaled);
  }

  /**
   * record() for one metric with the lookups done once: for per-packet paths, where resolving the name on every
   * call costs more than the recording itself. Stays valid across reset() and takeEncoded().
   */
  recorder(name: MetricName): (value: number) => void {
    const spec = specOf(name);
    const histogram = this.histogram(name);
    return (value: number): void => {
      const scaled = this.toRecordable(spec, value);
      if (scaled !== undefined) histogram.recordValue(scaled);
    };
  }

  /**
   * Coordinated omission correction: a value larger than the expected interval means samples were missed while the
   * system stalled, so value - interval, value - 2 x interval, ... down to the interval are recorded too.
   * expectedInterval is in the metric's unit, like value.
   */
  recordWithExpectedInterval(name: MetricName, value: number, expectedInterval: number): void {
    const spec = specOf(name);
    const scaled = this.toRecordable(spec, value);
    if (scaled === undefined) return;
    const interval = Math.round(expectedInterval * spec.scale);
    const histogram = this.histogram(name);
    if (Number.isFinite(interval) && interval >= 1) histogram.recordValueWithExpectedInterval(scaled, interval);
    else histogram.recordValue(scaled);
  }

  count(name: MetricName): number {
    return this.histograms.get(name)?.totalCount ?? 0;
  }

  /** Compressed base64 HdrHistogram V2 encodings, only of metrics with data: small enough to return from a worker. */
  encode(): Partial<Record<MetricName, string>> {
    const out: Partial<Record<MetricName, string>> = {};
    for (const name of METRIC_NAMES) {
      const histogram = this.histograms.get(name);
      if (histogram && histogram.totalCount > 0) out[name] = hdr.encodeIntoCompressedBase64(histogram);
    }
    return out;
  }

  /**
   * Adds encoded histograms (from encode(), possibly via JSON or another thread). All or nothing: every entry is
   * decoded and checked before any is added, so a corrupt entry cannot leave the set half-merged.
   * outliers carries the sender's clamped/rejected counts, which the encodings cannot.
   */
  merge(encoded: Partial<Record<MetricName, string>>, outliers?: Partial<OutlierCounts>): void {
    const staged: [MetricName, Histogram][] = [];
    for (const [name, text] of Object.entries(encoded) as [string, unknown][]) {
      if (text === undefined) continue;
      const spec = specOf(name);
      if (typeof text !== 'string') throw new Error(`cannot merge histogram "${name}": expected a base64 string, got ${typeof text}`);
      let decoded: Histogram;
      try {
        decoded = hdr.decodeFromCompressedBase64(text, 64, false);
      } catch (cause) {
        throw new Error(`cannot merge histogram "${name}": not a compressed HdrHistogram (${errorText(cause)})`, { cause });
      }
      if (!Number.isSafeInteger(decoded.totalCount) || decoded.totalCount < 0) {
        throw new Error(`cannot merge histogram "${name}": decoded total count ${decoded.totalCount} is not a count`);
      }
      // Adding into a fresh histogram of our own layout both checks the range and converts a foreign layout
      // (other precision or range) before anything touches this set.
      const fitted = buildHistogram(spec, false);
      try {
        fitted.add(decoded);
      } catch (cause) {
        throw new Error(`cannot merge histogram "${name}": values beyond its highest ${spec.highest} ${spec.unit} (${errorText(cause)})`, { cause });
      }
      staged.push([name as MetricName, fitted]);
    }
    for (const [name, histogram] of staged) this.histogram(name).add(histogram);
    this.clampedCount += outliers?.clamped ?? 0;
    this.rejectedCount += outliers?.rejected ?? 0;
  }

  mergeSet(other: MetricSet): void {
    for (const [name, histogram] of other.histograms) {
      if (histogram.totalCount > 0) this.histogram(name).add(histogram);
    }
    this.clampedCount += other.clampedCount;
    this.rejectedCount += other.rejectedCount;
  }

  /**
   * Percentiles follow HdrHistogram's convention (the highest value equivalent to the recorded one at 3 significant
   * digits), capped at the metric's highest so that clamped values read back as exactly the bound.
   */
  summary(name: MetricName): Percentiles | null {
    const spec = specOf(name);
    const histogram = this.histograms.get(name);
    if (!histogram || histogram.totalCount === 0) return null;
    const top = highestScaled(spec);
    const at = (percentile: number): number => Math.min(histogram.getValueAtPercentile(percentile), top) / spec.scale;
    return {
      count: histogram.totalCount,
      min: at(0),
      mean: Math.min(histogram.mean, top) / spec.scale,
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: at(100),
    };
  }

  /**
   * A metric's values counted into fixed upper bounds (in the metric's unit), for a Prometheus histogram
   * (src/metrics/live.ts): `cumulative[i]` is how many values are <= bounds[i] (bounds ascending), `count` all of them
   * (the +Inf bucket), `sum` their total. Exact to the HDR bin: a bin counts under a bound when its lowest equivalent
   * value does, so every value <= the bound counts under it (Prometheus' `le`: a value on the bound is in), and a value
   * above it by less than its bin's width (0.1%: 16 us at 20 ms) may too. null: no values.
   */
  cumulativeCounts(name: MetricName, bounds: readonly number[]): { cumulative: number[]; count: number; sum: number } | null {
    const spec = specOf(name);
    const histogram = this.histograms.get(name);
    if (!histogram || histogram.totalCount === 0) return null;
    // buildHistogram makes JS histograms only (useWebAssembly: false), whose recorded-values iterator is public.
    if (!(histogram instanceof hdr.JsHistogram)) throw new Error(`histogram "${name}" is not a JS histogram`);
    const top = highestScaled(spec);
    const perBucket = new Array<number>(bounds.length + 1).fill(0);
    const iterator = histogram.recordedValuesIterator;
    iterator.reset();
    while (iterator.hasNext()) {
      const step = iterator.next();
      const value = Math.min(histogram.lowestEquivalentValue(step.valueIteratedTo), top) / spec.scale;
      let i = 0;
      while (i < bounds.length && value > bounds[i]!) i++;
      perBucket[i]! += step.countAtValueIteratedTo;
    }
    const cumulative: number[] = [];
    let running = 0;
    for (let i = 0; i < bounds.length; i++) {
      running += perBucket[i]!;
      cumulative.push(running);
    }
    const count = histogram.totalCount;
    return { cumulative, count, sum: (Math.min(histogram.mean, top) * count) / spec.scale };
  }

  summaries(): Partial<Record<MetricName, Percentiles>> {
    const out: Partial<Record<MetricName, Percentiles>> = {};
    for (const name of METRIC_NAMES) {
      const summary = this.summary(name);
      if (summary) out[name] = summary;
    }
    return out;
  }

  /**
   * encode(), then reset what was encoded, in one step: hands every value over exactly once. A media thread records
   * into one set for all its calls and flushes it into whichever call result comes next; histograms without data
   * are neither encoded nor cleared (clearing a typed-array histogram costs as much as a full one).
   */
  takeEncoded(): { histograms: Partial<Record<MetricName, string>>; outliers: OutlierCounts } {
    const histograms = this.encode();
    for (const name of Object.keys(histograms) as MetricName[]) this.histograms.get(name)!.reset();
    const outliers = this.outliers;
    this.clampedCount = 0;
    this.rejectedCount = 0;
    return { histograms, outliers };
  }

  reset(): void {
    for (const histogram of this.histograms.values()) histogram.reset();
    this.clampedCount = 0;
    this.rejectedCount = 0;
  }

  private histogram(name: MetricName): Histogram {
    let histogram = this.histograms.get(name);
    if (!histogram) {
      histogram = buildHistogram(specOf(name), this.packed);
      this.histograms.set(name, histogram);
    }
    return histogram;
  }

  /** undefined when the value cannot be recorded at all (NaN). */
  private toRecordable(spec: MetricSpec, value: number): number | undefined {
    if (Number.isNaN(value)) {
      this.rejectedCount++;
      return undefined;
    }
    const scaled = Math.round(value * spec.scale);
    if (scaled < 0) {
      this.clampedCount++;
      return 0;
    }
    const top = highestScaled(spec);
    if (scaled > top) {
      this.clampedCount++;
      return top;
    }
    // Math.round(-0.2) is -0; keep the histogram free of signed zeros.
    return scaled + 0;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
