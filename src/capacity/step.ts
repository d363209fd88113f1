/**
 * What one capacity step measured on its steady window, as figures the SLO judges (src/capacity/slo.ts). Pure: the
 * window's own per-packet histograms (the media threads' per-second ones, merged), the live counters' change over
 * it, and the calls set up or failed during the step. MOS is the E-model of the window's mean latency, mean jitter
 * and loss (one value: a step has no per-stream totals until its calls end).
 */
import { mosForStream } from '../stats/emodel.js';
import type { MetricSet, Percentiles } from '../stats/histogram.js';
import type { CodecPair } from '../profile.js';
import { figuresFromSummary, type SloMetric } from './metrics.js';

export interface StepWindow {
  /** The window's per-packet histograms (latency, jitter, transit jitter, audio delay, send lateness). */
  metrics: MetricSet;
  /** RTP packets over the window: sent, received and RFC 3550 lost (live counters); null when not bracketed. */
  packets: { sent: number; received: number; lostA3: number } | null;
  /** Setup times of the calls set up during the step, ms. */
  setups: readonly number[];
  /** Calls the step placed (0 when it only shrank the population), and how many of the step's calls failed. */
  attempted: number;
  failed: number;
  /** Calls up during the window: the base for the failed share when the step placed none. */
  population: number;
}

/**
 * The window's loss: what was sent in it and not received in it, percent of sent. With a steady population the
 * packets in flight at the window's two ends cancel out, so this is exact but for a change of latency within the
 * window. Not RFC 3550's lost (expected from the highest sequence number): a stream that goes silent has no
 * highest number to expect from, and would read as no loss at all.
 */
export function windowLossPct(packets: StepWindow['packets']): number | null {
  if (packets === null || packets.sent <= 0) return null;
  return (Math.max(0, packets.sent - packets.received) * 100) / packets.sent;
}

export function stepFigures(w: StepWindow, pair: CodecPair): Record<SloMetric, number | null> {
  const latency = w.metrics.summary('latencyMs');
  const jitter = w.metrics.summary('jitterMs');
  const lossPct = windowLossPct(w.packets);
  let mos: Percentiles | null = null;
  if (latency !== null && lossPct !== null) {
    const transcoded = pair.transcoded;
    const value = mosForStream({
      oneWayLatencyMs: Math.max(0, latency.mean),
      jitterMs: jitter?.mean ?? 0,
      lossPct,
      ptimeMs: Math.max(pair.a.ptimeMs, pair.b.ptimeMs),
      ie: transcoded ? pair.a.emodel.ie + pair.b.emodel.ie : pair.b.emodel.ie,
      // The less robust of the two codecs' concealment rates the pair.
      bpl: Math.min(pair.a.emodel.bpl, pair.b.emodel.bpl),
    }).mos;
    mos = { count: 1, min: value, mean: value, p50: value, p90: value, p99: value, p999: value, max: value };
  }
  const base = Math.max(w.attempted, w.population);
  return figuresFromSummary({
    latencyMs: latency,
    audioDelayMs: w.metrics.summary('audioDelayMs'),
    jitterMs: jitter,
    transitJitterMs: w.metrics.summary('transitJitterMs'),
    setupMs: percentilesOf(w.setups),
    mos,
    lossPct: null,
    packets: { sent: w.packets?.sent ?? 0, transcodingTail: 0, lossPct: lossPct ?? 0 },
    calls: { attempted: base, failed: w.failed },
    generator: { sendLatenessMs: w.metrics.summary('sendLatenessMs') },
  });
}

/** Exact percentiles of a few values (nearest rank), for per-call figures of one step. */
export function percentilesOf(values: readonly number[]): Percentiles | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return {
    count: sorted.length,
    min: sorted[0]!,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: sorted[sorted.length - 1]!,
  };
}
