/**
 * The figures an SLO can speak of: their names, units, which way is better, and where each is read from a run's
 * Summary. One table drives the parser (units, ranges, direction), --help, and figuresFromSummary, so adding a metric
 * is one row here and cannot leave the three disagreeing.
 */
import type { Percentiles } from '../stats/histogram.js';
import type { GeneratorHealth, Summary } from '../stats/summary.js';

/** Distribution statistics, in the order --help lists them (the percentiles people ask for first). */
export const STATISTICS = ['p50', 'p90', 'p99', 'p999', 'min', 'mean', 'max'] as const;
export type Statistic = (typeof STATISTICS)[number];

export type MetricKind = 'time' | 'percent' | 'mos';

/** A distribution in the Summary; its SLO names are FAMILY.STATISTIC, e.g. latency.p99. */
export const FAMILIES = ['latency', 'audioDelay', 'jitter', 'transitJitter', 'setup', 'mos', 'streamLoss', 'generatorLateness'] as const;
export type Family = (typeof FAMILIES)[number];

/** One number per run, no statistic. */
export const SCALARS = ['loss', 'failed'] as const;
export type Scalar = (typeof SCALARS)[number];

export type SloMetric = Scalar | `${Family}.${Statistic}`;

/**
 * What one step measured, by SLO metric name. null, or a metric left out, means "not measured" (no packets, no
 * calls, no audio markers found): the judge treats it as a broken term, never a pass.
 */
export type StepFigures = Readonly<Partial<Record<SloMetric, number | null>>>;

export interface SloMetricInfo {
  /** As typed in --slo: `latency.pXX` for a family (any statistic), `loss` for a scalar. */
  name: string;
  kind: MetricKind;
  /** Which way is better: a limit must point the other way (an upper bound on latency, a lower bound on MOS). */
  better: 'lower' | 'higher';
  /** Where it is read in the results JSON's summary. */
  source: string;
  describe: string;
}

interface FamilyRow {
  kind: MetricKind;
  better: 'lower' | 'higher';
  source: string;
  describe: string;
  read: (s: SummaryFigures) => Percentiles | null;
}

/** The parts of a Summary the figures come from: a hand-made object of this shape will do (tests, old results). */
export interface SummaryFigures {
  latencyMs: Percentiles | null;
  audioDelayMs: Percentiles | null;
  jitterMs: Percentiles | null;
  transitJitterMs: Percentiles | null;
  setupMs: Percentiles | null;
  mos: Percentiles | null;
  lossPct: Percentiles | null;
  packets: Pick<Summary['packets'], 'sent' | 'transcodingTail' | 'lossPct'>;
  calls: Pick<Summary['calls'], 'attempted' | 'failed'>;
  generator: Pick<GeneratorHealth, 'sendLatenessMs'>;
}

const FAMILY_ROWS: Readonly<Record<Family, FamilyRow>> = {
  latency: { kind: 'time', better: 'lower', source: 'latencyMs', describe: 'one-way latency per packet through the system', read: (s) => s.latencyMs },
  audioDelay: { kind: 'time', better: 'lower', source: 'audioDelayMs', describe: 'audio delay per marker found in the decoded audio', read: (s) => s.audioDelayMs },
  jitter: { kind: 'time', better: 'lower', source: 'jitterMs', describe: 'RFC 3550 interarrival jitter per packet', read: (s) => s.jitterMs },
  transitJitter: { kind: 'time', better: 'lower', source: 'transitJitterMs', describe: "transit jitter per packet (the generator's lateness left out)", read: (s) => s.transitJitterMs },
  setup: { kind: 'time', better: 'lower', source: 'setupMs', describe: 'call setup per call (offer, answer, mesh provisioning)', read: (s) => s.setupMs },
  mos: { kind: 'mos', better: 'higher', source: 'mos', describe: 'E-model (G.107) MOS per stream, 1 to 4.5', read: (s) => s.mos },
  streamLoss: { kind: 'percent', better: 'lower', source: 'lossPct', describe: 'loss per stream, percent (loss is over all streams)', read: (s) => s.lossPct },
  generatorLateness: {
    kind: 'time',
    better: 'lower',
    source: 'generator.sendLatenessMs',
    describe: "how late the generator's sends were (its health, not the system's)",
    read: (s) => s.generator.sendLatenessMs,
  },
};

interface ScalarRow {
  kind: MetricKind;
  better: 'lower' | 'higher';
  source: string;
  describe: string;
  read: (s: SummaryFigures) => number | null;
}

const SCALAR_ROWS: Readonly<Record<Scalar, ScalarRow>> = {
  loss: {
    kind: 'percent',
    better: 'lower',
    source: 'packets.lossPct',
    describe: 'packets lost over all streams, percent',
    // The Summary says 0% when nothing was sent; that is "no data", which must not pass (as src/report/slo.ts).
    read: (s) => (s.packets.sent - s.packets.transcodingTail > 0 ? s.packets.lossPct : null),
  },
  failed: {
    kind: 'percent',
    better: 'lower',
    source: 'calls.failed / calls.attempted',
    describe: 'failed calls, percent of attempted',
    read: (s) => (s.calls.attempted > 0 ? (s.calls.failed * 100) / s.calls.attempted : null),
  },
};

/** The --help table: families first, then the scalars. */
export const SLO_METRICS: readonly SloMetricInfo[] = Object.freeze([
  ...FAMILIES.map((f): SloMetricInfo => {
    const { kind, better, source, describe } = FAMILY_ROWS[f];
    return { name: `${f}.pXX`, kind, better, source, describe };
  }),
  ...SCALARS.map((n): SloMetricInfo => {
    const { kind, better, source, describe } = SCALAR_ROWS[n];
    return { name: n, kind, better, source, describe };
  }),
]);

/** Every SLO metric name, families expanded by statistic. */
export const SLO_METRIC_NAMES: readonly SloMetric[] = Object.freeze([
  ...FAMILIES.flatMap((f) => STATISTICS.map((s): SloMetric => `${f}.${s}`)),
  ...SCALARS,
]);

export function isFamily(name: string): name is Family {
  return (FAMILIES as readonly string[]).includes(name);
}

export function isScalar(name: string): name is Scalar {
  return (SCALARS as readonly string[]).includes(name);
}

export function isStatistic(name: string): name is Statistic {
  return (STATISTICS as readonly string[]).includes(name);
}

export function metricInfo(metric: SloMetric): { kind: MetricKind; better: 'lower' | 'higher' } {
  const family = metric.split('.')[0] ?? metric;
  return isScalar(metric) ? SCALAR_ROWS[metric] : FAMILY_ROWS[family as Family];
}

/** A Summary (or anything shaped like its figures) -> every SLO metric, null where the run measured nothing. */
export function figuresFromSummary(summary: SummaryFigures): Record<SloMetric, number | null> {
  const out: Partial<Record<SloMetric, number | null>> = {};
  for (const family of FAMILIES) {
    const p = FAMILY_ROWS[family].read(summary);
    for (const stat of STATISTICS) out[`${family}.${stat}`] = p === null ? null : p[stat];
  }
  for (const scalar of SCALARS) out[scalar] = SCALAR_ROWS[scalar].read(summary);
  return out as Record<SloMetric, number | null>;
}

/**
 * A value in its metric's unit for messages: "71 ms", "0.8%", "3.95". Measured values get three significant digits
 * (whole numbers from 100), as precise as the histograms are; exact is for limits, which are shown as typed.
 */
export function formatValue(metric: SloMetric, value: number, exact = false): string {
  const text = exact ? String(Number(value.toPrecision(12))) : shortNumber(value);
  const kind = metricInfo(metric).kind;
  return kind === 'time' ? `${text} ms` : kind === 'percent' ? `${text}%` : text;
}

export function shortNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return Math.abs(value) >= 100 ? String(Math.round(value)) : String(Number(value.toPrecision(3)));
}
