/**
 * The SLO language of `rtp-bench capacity --slo 'latency.p99<60ms,loss<0.1%,mos.p50>=4'`: parse, print back, and
 * judge a step's figures against it. Pure, so every message and every boundary is unit-tested.
 *
 * Each bad input is one SloError line that starts with the term at fault and says what was expected; the caller
 * puts `--slo` in front (as plan.ts does with UnitError) and throws it as a PlanError.
 */
import { parseDecimal, quoteValue } from '../units.js';
import { closestName as closest } from '../closest.js';
import {
  FAMILIES,
  SCALARS,
  SLO_METRIC_NAMES,
  STATISTICS,
  isFamily,
  isScalar,
  isStatistic,
  metricInfo,
  formatValue,
  type MetricKind,
  type SloMetric,
  type StepFigures,
} from './metrics.js';

export {
  FAMILIES,
  SCALARS,
  STATISTICS,
  SLO_METRICS,
  SLO_METRIC_NAMES,
  figuresFromSummary,
  formatValue,
  type Family,
  type MetricKind,
  type Scalar,
  type SloMetric,
  type SloMetricInfo,
  type Statistic,
  type StepFigures,
  type SummaryFigures,
} from './metrics.js';

export type SloOp = '<' | '<=' | '>' | '>=';

export interface SloTerm {
  metric: SloMetric;
  op: SloOp;
  /** In the metric's unit: ms for times, percent for loss and failed, MOS for mos. */
  limit: number;
  /** The term in canonical form (ms, %, canonical metric case), as formatSlo prints it. */
  text: string;
}

export interface SloSpec {
  /** In the order given; the first broken term of a step is the one a capacity result names. */
  terms: readonly SloTerm[];
}

export class SloError extends Error {
  override readonly name = 'SloError';

  constructor(
    /** The text at fault: one term, or the whole --slo value when the fault is between terms. */
    readonly term: string,
    /** What is wrong and what is expected, phrased to follow the term. */
    readonly detail: string,
  ) {
    super(`${quoteValue(term)} ${detail}`);
  }
}

/** The E-model's scale (G.107 Annex B): MOS 1 at R <= 0, 4.5 at R >= 100. Same bounds as plan.ts's --min-mos. */
const MOS_FLOOR = 1;
const MOS_BEST = 4.5;

/**
 * The default SLO: what a telephony operator would accept from an RTP proxy, so that `capacity` without --slo gives
 * a figure worth quoting.
 *
 * - loss<0.5%: G.711 with concealment (G.113 App. I, Bpl 25.1) loses under 2 R points at 0.5% random loss, which
 *   nobody hears; a proxy on a healthy network should lose nothing, so this trips as soon as it starts dropping.
 * - failed<=0.5%: networks are dimensioned for a 1% blocking probability (grade of service P.01, Erlang B); a
 *   relay should spend at most half of that budget. At small steps it means no failed call at all.
 * - latency.p99<150ms: ITU-T G.114's one-way mouth-to-ear limit for most applications. A relay that alone uses the
 *   whole budget makes every call through it unacceptable, whatever the rest of the path; in practice latency
 *   climbs steeply past the knee (queues), so the exact figure moves the answer little.
 * - transitJitter.p99<30ms: the common VoIP guidance (jitter under 30 ms) that typical 40-60 ms adaptive jitter
 *   buffers absorb. Transit jitter rather than RFC 3550 jitter because RFC 3550 jitter includes the generator's own
 *   send lateness: a busy generator must not be counted against the system under test.
 * - mos.p50>=4: R 80, the lower edge of "users satisfied" in G.107 Annex B. Every codec rtp-bench plays
 *   (profiles/codecs.json: Ie 0) starts near 4.4, so this catches loss, delay and jitter adding up even when
 *   each stays under its own limit.
 *
 * No setup limit: with --mesh kubernetes, setup includes provisioning objects through the API server, seconds by
 * design; add `setup.p99<...` where the control plane is what is being sized.
 */
export const DEFAULT_SLO_TEXT = 'loss<0.5%,failed<=0.5%,latency.p99<150ms,transitJitter.p99<30ms,mos.p50>=4';

const OPS: readonly SloOp[] = ['<=', '>=', '<', '>'];
const OPS_EXPECTED = 'one of <, <=, >, >=';
const TERM_SHAPE = 'METRIC OP VALUE, e.g. latency.p99<60ms';
const TERMS_EXAMPLE = 'latency.p99<60ms,loss<0.1%';

/** Names as they appear in the results JSON, so a name copied from there gets a precise suggestion. */
const JSON_ALIASES: ReadonlyMap<string, SloMetric> = new Map<string, SloMetric>([
  ['losspct', 'loss'],
  ['packets.losspct', 'loss'],
  ['calls.failed', 'failed'],
  ...STATISTICS.flatMap((s): [string, SloMetric][] => [
    [`latencyms.${s}`, `latency.${s}`],
    [`audiodelayms.${s}`, `audioDelay.${s}`],
    [`jitterms.${s}`, `jitter.${s}`],
    [`transitjitterms.${s}`, `transitJitter.${s}`],
    [`setupms.${s}`, `setup.${s}`],
    [`losspct.${s}`, `streamLoss.${s}`],
    [`sendlatenessms.${s}`, `generatorLateness.${s}`],
    [`generator.sendlatenessms.${s}`, `generatorLateness.${s}`],
  ]),
]);

/** Case-insensitive: "Latency.P99" is clearly latency.p99. */
const BY_LOWER: ReadonlyMap<string, SloMetric> = new Map(SLO_METRIC_NAMES.map((m) => [m.toLowerCase(), m]));

/** `latency.p99<60ms,loss<0.1%` -> terms; throws SloError at the first problem. */
export function parseSlo(text: string): SloSpec {
  if (text.trim() === '') throw new SloError(text, `is empty: expected comma-separated terms ${TERM_SHAPE}`);
  const parts = text.split(',').map((part) => part.trim());
  if (parts.some((part) => part === '')) {
    throw new SloError(text, `has an empty term (a comma too many): expected comma-separated terms, e.g. ${TERMS_EXAMPLE}`);
  }
  const terms: SloTerm[] = [];
  const seen = new Map<SloMetric, string>();
  for (const part of parts) {
    const term = parseTerm(part);
    const earlier = seen.get(term.metric);
    if (earlier !== undefined) {
      // Two limits on one figure are either a typo or a range; a range has no use here (less is always better).
      throw new SloError(part, `repeats ${term.metric} (already ${earlier}): expected each metric once`);
    }
    seen.set(term.metric, part);
    terms.push(term);
  }
  return { terms };
}

function parseTerm(term: string): SloTerm {
  const match = /^([^<>=!]*)([<>=!]+)(.*)$/.exec(term);
  if (!match) throw new SloError(term, `has no comparison: expected METRIC OP VALUE with OP ${OPS_EXPECTED}, e.g. latency.p99<60ms`);
  const [, left = '', opText = '', right = ''] = match;
  const op = OPS.find((o) => o === opText);
  if (op === undefined) {
    const flipped: Record<string, string> = { '=<': '<=', '=>': '>=' };
    const hint = flipped[opText] !== undefined ? ` (did you mean ${flipped[opText]}?)` : '';
    throw new SloError(term, `has the comparison ${opText}, which an SLO cannot use: expected ${OPS_EXPECTED}${hint}`);
  }
  const name = left.trim();
  if (name === '') throw new SloError(term, `has no metric before ${op}: expected ${TERM_SHAPE}`);
  const metric = resolveMetric(term, name);
  const { kind, better } = metricInfo(metric);
  const valueText = right.trim();
  if (/[<>=!]/.test(valueText)) {
    throw new SloError(term, `has more than one comparison: expected one per term, terms separated by commas, e.g. ${TERMS_EXAMPLE}`);
  }
  if (valueText === '') throw new SloError(term, `has no value after ${op}: expected ${valueExpected(kind)}`);
  const limit = parseLimit(term, metric, kind, valueText);

  const upper = better === 'lower';
  if (upper !== (op === '<' || op === '<=')) {
    const example = upper ? `${metric}<${EXAMPLE_VALUE[kind]}` : `${metric}>=${EXAMPLE_VALUE[kind]}`;
    throw new SloError(
      term,
      `limits ${metric} from ${upper ? 'below' : 'above'}, but ${upper ? 'lower' : 'higher'} is better: expected ${upper ? '< or <=' : '> or >='}, e.g. ${example}`,
    );
  }
  checkReachable(term, metric, kind, op, limit);
  return { metric, op, limit, text: formatTerm(metric, op, limit) };
}

function resolveMetric(term: string, name: string): SloMetric {
  const lower = name.toLowerCase();
  const known = BY_LOWER.get(lower);
  if (known !== undefined) return known;

  const dot = lower.lastIndexOf('.');
  const head = dot < 0 ? name : name.slice(0, dot);
  const stat = dot < 0 ? undefined : lower.slice(dot + 1);
  const family = FAMILIES.find((f) => f.toLowerCase() === head.toLowerCase());
  const scalar = SCALARS.find((s) => s === head.toLowerCase());
  if (family !== undefined && stat === undefined) {
    const all = STATISTICS.map((s) => `${family}.${s}`);
    throw new SloError(term, `needs a statistic: expected ${all.slice(0, -1).join(', ')} or ${all.at(-1)}, e.g. ${family}.p99`);
  }
  if (family !== undefined) {
    throw new SloError(term, `has an unknown statistic ${stat}: expected ${STATISTICS.slice(0, -1).join(', ')} or ${STATISTICS.at(-1)}, e.g. ${family}.p99`);
  }
  if (scalar !== undefined) {
    const perStream = scalar === 'loss' ? `, or streamLoss.${stat ?? 'p99'} for loss per stream` : '';
    throw new SloError(term, `has a statistic, but ${scalar} is one figure per step: expected ${scalar} alone, e.g. ${scalar}<0.5%${perStream}`);
  }

  const guess = JSON_ALIASES.get(lower) ?? guessMetric(head, stat);
  if (guess !== undefined) throw new SloError(term, `names an unknown metric ${name}: did you mean ${guess}?`);
  throw new SloError(
    term,
    `names an unknown metric ${name}: expected ${SCALARS.join(' or ')}, or FAMILY.STAT with FAMILY one of ${FAMILIES.join(', ')} ` +
      `and STAT one of ${STATISTICS.join(', ')}`,
  );
}

/** A typo in the family, the statistic or both; a family typed without a statistic is offered its p99. */
function guessMetric(head: string, stat: string | undefined): SloMetric | undefined {
  if (stat === undefined) {
    const guess = closest(head, [...SCALARS, ...FAMILIES]);
    if (guess === undefined) return undefined;
    return isScalar(guess) ? guess : isFamily(guess) ? `${guess}.p99` : undefined;
  }
  const family = closest(head, FAMILIES);
  const statistic = isStatistic(stat) ? stat : closest(stat, STATISTICS);
  if (family === undefined || statistic === undefined || !isFamily(family) || !isStatistic(statistic)) return undefined;
  return `${family}.${statistic}`;
}

const EXAMPLE_VALUE: Readonly<Record<MetricKind, string>> = { time: '60ms', percent: '0.5%', mos: '4' };
const KIND_WORD: Readonly<Record<MetricKind, string>> = { time: 'a time', percent: 'a percentage', mos: 'a MOS' };

function valueExpected(kind: MetricKind): string {
  if (kind === 'time') return 'a time in ms or s, e.g. 60ms or 0.06s (a bare number is ms)';
  if (kind === 'percent') return 'a percentage, e.g. 0.5% (a bare number is percent)';
  return `a plain number from ${MOS_FLOOR} to ${MOS_BEST}, e.g. 4`;
}

/** Multipliers to the metric's unit for each unit it accepts; '' is a bare number. */
const UNITS: Readonly<Record<MetricKind, Readonly<Record<string, number>>>> = {
  time: { '': 1, ms: 1, s: 1000 },
  percent: { '': 1, '%': 1 },
  mos: { '': 1 },
};

function parseLimit(term: string, metric: SloMetric, kind: MetricKind, valueText: string): number {
  // A number, then an optional unit; parseDecimal refuses 1e3, 0x10 and friends as it does for every flag.
  const match = /^(-?[0-9.]+)\s*([^\s0-9.]*)$/.exec(valueText);
  const amount = match ? parseDecimal(match[1] ?? '') : undefined;
  if (match === null || amount === undefined) {
    throw new SloError(term, `has value ${quoteValue(valueText)}, not a number: expected ${valueExpected(kind)}`);
  }
  const unit = (match[2] ?? '').toLowerCase();
  const scale = UNITS[kind][unit];
  if (scale === undefined) {
    throw new SloError(term, `has unit ${unit}, which does not fit ${metric} (${KIND_WORD[kind]}): expected ${valueExpected(kind)}`);
  }
  // 0.07s * 1000 is 70.00000000000001 in floating point; 12 digits are far beyond what anyone types.
  return Number((amount * scale).toPrecision(12));
}

/** A limit no measurement can meet would make every step fail and the capacity 0: say so instead. */
function checkReachable(term: string, metric: SloMetric, kind: MetricKind, op: SloOp, limit: number): void {
  if (kind === 'mos') {
    if ((op === '>' && limit >= MOS_BEST) || (op === '>=' && limit > MOS_BEST)) {
      throw new SloError(term, `can never be met: the E-model's MOS is at most ${MOS_BEST}`);
    }
    if (limit < MOS_FLOOR) throw new SloError(term, `is out of range: expected a MOS from ${MOS_FLOOR} (the E-model's floor) to ${MOS_BEST}`);
    return;
  }
  if ((op === '<' && limit <= 0) || (op === '<=' && limit < 0)) {
    const none = kind === 'percent' && op === '<' && limit === 0 ? ` (${metric}<=0 asks for none at all)` : '';
    throw new SloError(term, `can never be met: ${KIND_WORD[kind]} is never below 0${none}`);
  }
  if (kind === 'percent' && limit > 100) throw new SloError(term, 'is out of range: expected a percentage from 0 to 100');
}

function limitText(metric: SloMetric, limit: number): string {
  const kind = metricInfo(metric).kind;
  const number = String(Number(limit.toPrecision(12)));
  return kind === 'time' ? `${number}ms` : kind === 'percent' ? `${number}%` : number;
}

function formatTerm(metric: SloMetric, op: SloOp, limit: number): string {
  return `${metric}${op}${limitText(metric, limit)}`;
}

/** Back to --slo text (canonical units: ms, %), which parseSlo reads back to the same terms. */
export function formatSlo(slo: SloSpec): string {
  return slo.terms.map((t) => formatTerm(t.metric, t.op, t.limit)).join(',');
}

export interface BrokenTerm {
  /** The term as formatSlo prints it, e.g. latency.p99<60ms. */
  term: string;
  metric: SloMetric;
  op: SloOp;
  limit: number;
  /** What the step measured; null: it measured nothing (no data), which breaks the term. */
  actual: number | null;
}

export interface Verdict {
  pass: boolean;
  /** In the SLO's order. */
  broke: BrokenTerm[];
}

export function meets(op: SloOp, actual: number, limit: number): boolean {
  switch (op) {
    case '<':
      return actual < limit;
    case '<=':
      return actual <= limit;
    case '>':
      return actual > limit;
    case '>=':
      return actual >= limit;
  }
}

/**
 * Every term against one step's figures. A figure that is null, missing or NaN was not measured, and "not
 * measured" must never pass an SLO: a step whose calls all failed has no latency at all.
 */
export function judge(slo: SloSpec, figures: StepFigures): Verdict {
  const broke: BrokenTerm[] = [];
  for (const t of slo.terms) {
    const value = figures[t.metric];
    const actual = value === undefined || value === null || Number.isNaN(value) ? null : value;
    if (actual === null || !meets(t.op, actual, t.limit)) {
      broke.push({ term: t.text, metric: t.metric, op: t.op, limit: t.limit, actual });
    }
  }
  return { pass: broke.length === 0, broke };
}

/** "71 ms > 60 ms", "60 ms, not < 60 ms", "no data": the measured value against the limit, for one-line reasons. */
export function describeBreak(b: Pick<BrokenTerm, 'metric' | 'op' | 'limit' | 'actual'>): string {
  if (b.actual === null) return 'no data';
  const limit = formatValue(b.metric, b.limit, true);
  let actual = formatValue(b.metric, b.actual);
  // Rounded to 3 digits, 60.04 would print as the limit it broke; show enough digits to tell them apart.
  if (actual === limit && b.actual !== b.limit) actual = formatValue(b.metric, b.actual, true);
  if (b.actual === b.limit) return `${actual}, not ${b.op} ${limit}`;
  return `${actual} ${b.actual > b.limit ? '>' : '<'} ${limit}`;
}

/** Parsed last: parseSlo needs every table above. Parsing it (rather than writing terms out) proves it valid. */
export const DEFAULT_SLO: SloSpec = parseSlo(DEFAULT_SLO_TEXT);
