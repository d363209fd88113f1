/**
 * The --slo language: what it accepts (units, spacing, case), every class of bad input with its whole message (a
 * vaguer wording fails the test), judging at the boundaries, "no data" never passing, and figures read from a real
 * Summary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SLO,
  DEFAULT_SLO_TEXT,
  SLO_METRICS,
  SLO_METRIC_NAMES,
  SloError,
  describeBreak,
  figuresFromSummary,
  formatSlo,
  judge,
  parseSlo,
  type StepFigures,
  type SummaryFigures,
} from '../../src/capacity/slo.js';
import { MetricSet, type Percentiles } from '../../src/stats/histogram.js';
import { summarize } from '../../src/stats/summary.js';

function rejects(cases: ReadonlyArray<readonly [string, string]>): void {
  for (const [input, message] of cases) {
    assert.throws(
      () => parseSlo(input),
      (err: unknown) => {
        assert.ok(err instanceof SloError, `${JSON.stringify(input)} threw ${String(err)}`);
        assert.equal(err.message, message, `message for ${JSON.stringify(input)}`);
        return true;
      },
    );
  }
}

test('parseSlo: units, spacing and case; limits in ms, percent and MOS', () => {
  const slo = parseSlo(' Latency.P99 < 0.07 s , loss<0.1, failed <= 1 % ,jitter.p999<0.5ms, mos.p50>=4, setup.max<2s,streamLoss.p90<1%');
  assert.deepEqual(
    slo.terms.map((t) => [t.metric, t.op, t.limit, t.text]),
    [
      ['latency.p99', '<', 70, 'latency.p99<70ms'],
      ['loss', '<', 0.1, 'loss<0.1%'],
      ['failed', '<=', 1, 'failed<=1%'],
      ['jitter.p999', '<', 0.5, 'jitter.p999<0.5ms'],
      ['mos.p50', '>=', 4, 'mos.p50>=4'],
      ['setup.max', '<', 2000, 'setup.max<2000ms'],
      ['streamLoss.p90', '<', 1, 'streamLoss.p90<1%'],
    ],
  );
  assert.equal(formatSlo(slo), 'latency.p99<70ms,loss<0.1%,failed<=1%,jitter.p999<0.5ms,mos.p50>=4,setup.max<2000ms,streamLoss.p90<1%');
  // Printed text reads back to the same terms.
  assert.deepEqual(parseSlo(formatSlo(slo)), slo);
  // Bare numbers are ms and percent; the edges of the ranges are allowed.
  assert.deepEqual(
    parseSlo('audioDelay.mean<=60,transitJitter.min<=0,generatorLateness.p99<5,loss<=0,failed<=100,mos.p90>=4.5,mos.min>1').terms.map((t) => t.limit),
    [60, 0, 5, 0, 100, 4.5, 1],
  );
});

test('the default SLO parses, prints back to its text, and is what the comment justifies', () => {
  assert.equal(DEFAULT_SLO_TEXT, 'loss<0.5%,failed<=0.5%,latency.p99<150ms,transitJitter.p99<30ms,mos.p50>=4');
  assert.equal(formatSlo(DEFAULT_SLO), DEFAULT_SLO_TEXT);
  assert.deepEqual(parseSlo(DEFAULT_SLO_TEXT), DEFAULT_SLO);
});

test('the metric table: every family with every statistic, plus loss and failed', () => {
  assert.equal(SLO_METRIC_NAMES.length, 8 * 7 + 2);
  assert.deepEqual(
    SLO_METRICS.map((m) => `${m.name} ${m.kind} ${m.better}`),
    [
      'latency.pXX time lower',
      'audioDelay.pXX time lower',
      'jitter.pXX time lower',
      'transitJitter.pXX time lower',
      'setup.pXX time lower',
      'mos.pXX mos higher',
      'streamLoss.pXX percent lower',
      'generatorLateness.pXX time lower',
      'loss percent lower',
      'failed percent lower',
    ],
  );
  // Every name in the table parses with an example limit of its kind.
  const example = { time: '<60ms', percent: '<0.5%', mos: '>=4' } as const;
  for (const name of SLO_METRIC_NAMES) {
    const kind = SLO_METRICS.find((m) => m.name === name || m.name === `${name.split('.')[0]}.pXX`)?.kind;
    assert.ok(kind !== undefined, name);
    assert.equal(parseSlo(`${name}${example[kind]}`).terms[0]?.metric, name);
  }
});

test('bad structure: empty, empty term, no comparison, wrong comparison, no metric, no value, two comparisons', () => {
  rejects([
    ['', '"" is empty: expected comma-separated terms METRIC OP VALUE, e.g. latency.p99<60ms'],
    ['  ', '"  " is empty: expected comma-separated terms METRIC OP VALUE, e.g. latency.p99<60ms'],
    ['latency.p99<60ms,,loss<1%', 'latency.p99<60ms,,loss<1% has an empty term (a comma too many): expected comma-separated terms, e.g. latency.p99<60ms,loss<0.1%'],
    ['latency.p99<60ms,', 'latency.p99<60ms, has an empty term (a comma too many): expected comma-separated terms, e.g. latency.p99<60ms,loss<0.1%'],
    ['latency.p99 60ms', '"latency.p99 60ms" has no comparison: expected METRIC OP VALUE with OP one of <, <=, >, >=, e.g. latency.p99<60ms'],
    ['latency.p99=60ms', 'latency.p99=60ms has the comparison =, which an SLO cannot use: expected one of <, <=, >, >='],
    ['latency.p99<>60', 'latency.p99<>60 has the comparison <>, which an SLO cannot use: expected one of <, <=, >, >='],
    ['latency.p99=<60', 'latency.p99=<60 has the comparison =<, which an SLO cannot use: expected one of <, <=, >, >= (did you mean <=?)'],
    ['mos.p50=>4', 'mos.p50=>4 has the comparison =>, which an SLO cannot use: expected one of <, <=, >, >= (did you mean >=?)'],
    ['<60ms', '<60ms has no metric before <: expected METRIC OP VALUE, e.g. latency.p99<60ms'],
    ['latency.p99<', 'latency.p99< has no value after <: expected a time in ms or s, e.g. 60ms or 0.06s (a bare number is ms)'],
    ['latency.p99<60ms<80ms', 'latency.p99<60ms<80ms has more than one comparison: expected one per term, terms separated by commas, e.g. latency.p99<60ms,loss<0.1%'],
  ]);
});

test('unknown metrics: the closest known name, JSON names mapped, statistics explained', () => {
  rejects([
    ['latncy.p99<60ms', 'latncy.p99<60ms names an unknown metric latncy.p99: did you mean latency.p99?'],
    ['jitter.p9<30', 'jitter.p9<30 has an unknown statistic p9: expected p50, p90, p99, p999, min, mean or max, e.g. jitter.p99'],
    ['trnsitJiter.p99<30', 'trnsitJiter.p99<30 names an unknown metric trnsitJiter.p99: did you mean transitJitter.p99?'],
    ['los<1%', 'los<1% names an unknown metric los: did you mean loss?'],
    ['jiter<30', 'jiter<30 names an unknown metric jiter: did you mean jitter.p99?'],
    // Names copied from the results JSON.
    ['latencyMs.p99<60', 'latencyMs.p99<60 names an unknown metric latencyMs.p99: did you mean latency.p99?'],
    ['packets.lossPct<1', 'packets.lossPct<1 names an unknown metric packets.lossPct: did you mean loss?'],
    ['generator.sendLatenessMs.p99<5', 'generator.sendLatenessMs.p99<5 names an unknown metric generator.sendLatenessMs.p99: did you mean generatorLateness.p99?'],
    [
      'throughput<1',
      'throughput<1 names an unknown metric throughput: expected loss or failed, or FAMILY.STAT with FAMILY one of latency, audioDelay, jitter, ' +
        'transitJitter, setup, mos, streamLoss, generatorLateness and STAT one of p50, p90, p99, p999, min, mean, max',
    ],
    ['latency.p95<60ms', 'latency.p95<60ms has an unknown statistic p95: expected p50, p90, p99, p999, min, mean or max, e.g. latency.p99'],
    ['latency<60ms', 'latency<60ms needs a statistic: expected latency.p50, latency.p90, latency.p99, latency.p999, latency.min, latency.mean or latency.max, e.g. latency.p99'],
    ['loss.p99<1%', 'loss.p99<1% has a statistic, but loss is one figure per step: expected loss alone, e.g. loss<0.5%, or streamLoss.p99 for loss per stream'],
    ['failed.p50<1', 'failed.p50<1 has a statistic, but failed is one figure per step: expected failed alone, e.g. failed<0.5%'],
  ]);
});

test('bad values: not a number, a unit that does not fit the metric', () => {
  rejects([
    ['latency.p99<fast', 'latency.p99<fast has value fast, not a number: expected a time in ms or s, e.g. 60ms or 0.06s (a bare number is ms)'],
    ['latency.p99<1e3', 'latency.p99<1e3 has value 1e3, not a number: expected a time in ms or s, e.g. 60ms or 0.06s (a bare number is ms)'],
    ['latency.p99<1.2.3ms', 'latency.p99<1.2.3ms has value 1.2.3ms, not a number: expected a time in ms or s, e.g. 60ms or 0.06s (a bare number is ms)'],
    ['loss<half', 'loss<half has value half, not a number: expected a percentage, e.g. 0.5% (a bare number is percent)'],
    ['latency.p99<60%', 'latency.p99<60% has unit %, which does not fit latency.p99 (a time): expected a time in ms or s, e.g. 60ms or 0.06s (a bare number is ms)'],
    ['latency.p99<60us', 'latency.p99<60us has unit us, which does not fit latency.p99 (a time): expected a time in ms or s, e.g. 60ms or 0.06s (a bare number is ms)'],
    ['loss<5ms', 'loss<5ms has unit ms, which does not fit loss (a percentage): expected a percentage, e.g. 0.5% (a bare number is percent)'],
    ['mos.p50>=4%', 'mos.p50>=4% has unit %, which does not fit mos.p50 (a MOS): expected a plain number from 1 to 4.5, e.g. 4'],
  ]);
});

test('limits that point the wrong way, can never be met, or are out of range', () => {
  rejects([
    ['latency.p99>60ms', 'latency.p99>60ms limits latency.p99 from below, but lower is better: expected < or <=, e.g. latency.p99<60ms'],
    ['loss>=1', 'loss>=1 limits loss from below, but lower is better: expected < or <=, e.g. loss<0.5%'],
    ['mos.p50<4', 'mos.p50<4 limits mos.p50 from above, but higher is better: expected > or >=, e.g. mos.p50>=4'],
    ['mos.p50>=5', "mos.p50>=5 can never be met: the E-model's MOS is at most 4.5"],
    ['mos.p50>4.5', "mos.p50>4.5 can never be met: the E-model's MOS is at most 4.5"],
    ['mos.p50>=0.5', "mos.p50>=0.5 is out of range: expected a MOS from 1 (the E-model's floor) to 4.5"],
    ['loss<0', 'loss<0 can never be met: a percentage is never below 0 (loss<=0 asks for none at all)'],
    ['failed<0%', 'failed<0% can never be met: a percentage is never below 0 (failed<=0 asks for none at all)'],
    ['loss<=-1', 'loss<=-1 can never be met: a percentage is never below 0'],
    ['latency.p99<0', 'latency.p99<0 can never be met: a time is never below 0'],
    ['latency.p99<-5ms', 'latency.p99<-5ms can never be met: a time is never below 0'],
    ['loss<200%', 'loss<200% is out of range: expected a percentage from 0 to 100'],
  ]);
});

test('a metric given twice, however spelled, names the earlier term', () => {
  rejects([
    ['latency.p99<60ms,loss<1%,latency.p99<80ms', 'latency.p99<80ms repeats latency.p99 (already latency.p99<60ms): expected each metric once'],
    ['Latency.P99<60,latency.p99 < 0.07s', '"latency.p99 < 0.07s" repeats latency.p99 (already Latency.P99<60): expected each metric once'],
  ]);
  // Different statistics of one family are different metrics.
  assert.equal(parseSlo('latency.p50<20ms,latency.p99<60ms').terms.length, 2);
});

test('judge: < and <= at the limit, > and >= for MOS, every broken term in the SLO order', () => {
  const slo = parseSlo('latency.p99<60ms,jitter.p99<=30ms,mos.p50>=4,mos.min>1.5');
  const at = (figures: StepFigures): string[] => judge(slo, figures).broke.map((b) => b.term);
  const edge: StepFigures = { 'latency.p99': 60, 'jitter.p99': 30, 'mos.p50': 4, 'mos.min': 1.5 };
  assert.deepEqual(at(edge), ['latency.p99<60ms', 'mos.min>1.5']);
  assert.deepEqual(judge(slo, { 'latency.p99': 59.999, 'jitter.p99': 30, 'mos.p50': 4, 'mos.min': 1.51 }), { pass: true, broke: [] });
  assert.deepEqual(at({ 'latency.p99': 10, 'jitter.p99': 30.001, 'mos.p50': 3.99, 'mos.min': 2 }), ['jitter.p99<=30ms', 'mos.p50>=4']);
  assert.deepEqual(judge(slo, edge).broke[0], { term: 'latency.p99<60ms', metric: 'latency.p99', op: '<', limit: 60, actual: 60 });
});

test('judge: a figure not measured (null, missing, NaN) breaks its term, never passes it', () => {
  const slo = parseSlo('loss<=100%,latency.p99<60000ms,mos.p50>=1');
  const verdict = judge(slo, { loss: null, 'mos.p50': Number.NaN });
  assert.equal(verdict.pass, false);
  assert.deepEqual(
    verdict.broke.map((b) => [b.metric, b.actual]),
    [
      ['loss', null],
      ['latency.p99', null],
      ['mos.p50', null],
    ],
  );
  assert.equal(describeBreak(verdict.broke[0]!), 'no data');
});

test('describeBreak: the measured value against the limit, with enough digits to tell them apart', () => {
  const slo = parseSlo('latency.p99<60ms,loss<0.5%,mos.p50>=4');
  const broke = judge(slo, { 'latency.p99': 71.039, loss: 0.5, 'mos.p50': 3.954 }).broke.map(describeBreak);
  assert.deepEqual(broke, ['71 ms > 60 ms', '0.5%, not < 0.5%', '3.95 < 4']);
  assert.equal(describeBreak(judge(slo, { 'latency.p99': 60.04, loss: 0, 'mos.p50': 4 }).broke[0]!), '60.04 ms > 60 ms');
  assert.equal(describeBreak(judge(parseSlo('setup.p99<1s'), { 'setup.p99': 1234.5 }).broke[0]!), '1235 ms > 1000 ms');
});

function percentiles(p50: number, p99: number): Percentiles {
  return { count: 100, min: p50 / 2, mean: p50, p50, p90: p50, p99, p999: p99, max: p99 };
}

test('figuresFromSummary on a Summary made by summarize(): planted samples come back by SLO name', () => {
  const metrics = new MetricSet();
  for (let i = 0; i < 99; i++) metrics.record('latencyMs', 10);
  metrics.record('latencyMs', 200);
  for (let i = 0; i < 10; i++) metrics.record('transitJitterMs', 2);
  metrics.record('sendLatenessMs', 3);
  // Not a literal, so that summarize() takes it whatever fields RunMeasure grows.
  const measure = {
    wallMs: 10_000,
    ngRetransmissions: 0,
    io: 'dgram',
    priority: 'normal',
    cost: { cpuUs: 0, packetOps: 0, wallMs: 10_000, usPerPacketOp: null, cpuPct: 10 },
    costWindow: 'hold' as const,
    threads: 1,
    interrupted: false,
    contention: null,
    localSystemUnderTest: true,
    ngInFlight: 64,
    workers: [],
  };
  const figures = figuresFromSummary(summarize([], metrics, measure));
  assert.equal(Object.keys(figures).length, SLO_METRIC_NAMES.length);
  // Exactly the histograms' own percentiles, each statistic from its own field...
  const latency = metrics.summary('latencyMs')!;
  for (const stat of ['min', 'mean', 'p50', 'p90', 'p99', 'p999', 'max'] as const) assert.equal(figures[`latency.${stat}`], latency[stat], stat);
  assert.equal(figures['transitJitter.p99'], metrics.summary('transitJitterMs')!.p99);
  assert.equal(figures['generatorLateness.p99'], metrics.summary('sendLatenessMs')!.p99);
  // ...which are the planted values to HDR's 3 significant digits.
  const near = (actual: number | null, expected: number): boolean => actual !== null && Math.abs(actual - expected) <= expected / 1024;
  assert.ok(near(figures['latency.p99'], 10) && near(figures['latency.max'], 200), `latency p99 ${figures['latency.p99']} max ${figures['latency.max']}`);
  assert.ok(near(figures['transitJitter.p99'], 2) && near(figures['generatorLateness.p99'], 3));
  // No calls and no packets: nothing measured, which must not pass.
  assert.equal(figures.loss, null);
  assert.equal(figures.failed, null);
  assert.equal(figures['mos.p50'], null);
  assert.equal(figures['jitter.p99'], null);
  assert.deepEqual(
    judge(DEFAULT_SLO, figures).broke.map((b) => `${b.metric} ${b.actual}`),
    ['loss null', 'failed null', 'mos.p50 null'],
  );
});

test('figuresFromSummary on a hand-made summary: loss over all streams, failed over attempted', () => {
  const summary: SummaryFigures = {
    latencyMs: percentiles(12, 71),
    audioDelayMs: null,
    jitterMs: percentiles(1, 4),
    transitJitterMs: percentiles(1, 3),
    setupMs: percentiles(20, 45),
    mos: percentiles(4.2, 4.3),
    lossPct: percentiles(0, 2),
    packets: { sent: 10_000, transcodingTail: 0, lossPct: 0.25 },
    calls: { attempted: 40, failed: 1 },
    generator: { sendLatenessMs: percentiles(0.2, 1.5) },
  };
  const f = figuresFromSummary(summary);
  assert.equal(f.loss, 0.25);
  assert.equal(f.failed, 2.5);
  assert.equal(f['latency.p99'], 71);
  assert.equal(f['streamLoss.p99'], 2);
  assert.equal(f['audioDelay.p50'], null);
  assert.equal(f['generatorLateness.p50'], 0.2);
  assert.deepEqual(
    judge(DEFAULT_SLO, f).broke.map((b) => `${b.term} ${b.actual}`),
    ['failed<=0.5% 2.5'],
  );
  // Everything sent was the transcoding tail: no deliverable packets, so no loss figure.
  assert.equal(figuresFromSummary({ ...summary, packets: { sent: 50, transcodingTail: 50, lossPct: 0 } }).loss, null);
});
