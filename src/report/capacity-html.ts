/**
 * The page of a capacity search (`<results>.html` next to its JSON, and `rtp-bench report` of capacity files): per
 * codec pair, the answer, the curve (each SLO figure and rtpengine's CPU against calls, the SLO's limits and the knee
 * drawn on it), the steps, and the search over time with each step's measured window shaded. The curve parts are
 * shared with the scale page, which draws several searches on one set of axes.
 */
import { parseSlo, type SloSpec } from '../capacity/slo.js';
import { metricInfo, type SloMetric } from '../capacity/metrics.js';
import type { RunPlan } from '../run-plan.js';
import type { Environment } from './environment.js';
import type { CapacityResults, PairCapacity, SearchSettings } from './search-results.js';
import { curveChart, type CurveSeries, type KneeLine, type RefLine } from './curve-chart.js';
import { esc, FAIL_COLOR, OK_COLOR, runColor, timeChart, timelineSeries, workerCpuSeries, type TimeBand } from './svg.js';
import { dateText, figuresTable, pageHtml, plainTable } from './page.js';
import { answerLine, deploymentText, pairHeading, PROFILES_HEAD, profileCells, STEP_HEAD, STEP_TEXT_COLUMNS, stepCells } from './capacity-table.js';
import { capacityComparisonRows } from './compare-search.js';
import { fileHead } from './compare.js';

/** One search drawn on the curve charts: its steps, how it is named and coloured, and its workers' CPU cap. */
export interface CurveSource {
  label: string;
  color: string;
  profile: PairCapacity;
  /** --worker-cpu as percent of a core; null: uncapped or unknown. */
  cpuCapPct: number | null;
}

/** The figures always drawn; each SLO term on another figure adds that figure's chart. */
const BASE_METRICS: readonly SloMetric[] = ['latency.p99', 'loss', 'mos.p50'];

const FIGURE_NAMES: Readonly<Record<string, string>> = {
  latency: 'One-way latency',
  audioDelay: 'Audio delay',
  jitter: 'Jitter (RFC 3550)',
  transitJitter: 'Transit jitter',
  setup: 'Call setup',
  mos: 'MOS (E-model)',
  streamLoss: 'Loss per stream',
  generatorLateness: 'Generator send lateness',
  loss: 'Loss',
  failed: 'Failed calls',
};

const UNITS = { time: 'ms', percent: '%', mos: 'MOS' } as const;

/** The SLO of a file, parsed back; null when the text is not an SLO (a hand-edited file): then no limit is drawn. */
export function sloOf(text: string): SloSpec | null {
  try {
    return parseSlo(text);
  } catch {
    return null;
  }
}

export function cpuCapPct(plan: RunPlan): number | null {
  return plan.target.kind === 'embedded' && plan.target.cpuCores !== null ? plan.target.cpuCores * 100 : null;
}

function chartMetrics(slo: SloSpec | null): SloMetric[] {
  return [...new Set([...BASE_METRICS, ...(slo?.terms.map((t) => t.metric) ?? [])])];
}

/**
 * The knee of a search: where it passed last and where it failed first above that. With several searches on one
 * chart (scale), only each one's answer, in its colour: two lines each would hide the curves.
 */
export function kneesOf(source: CurveSource, alone: boolean): KneeLine[] {
  const c = source.profile.capacity;
  const out: KneeLine[] = [];
  if (c.maxCalls !== null && c.maxCalls > 0) {
    out.push(
      alone
        ? { calls: c.maxCalls, label: `capacity: ${c.maxCalls} calls${c.stop === 'max' ? ' (--max, SLO not broken)' : ''}`, kind: 'knee', color: OK_COLOR }
        : { calls: c.maxCalls, label: `${source.label}: capacity ${c.maxCalls}`, kind: 'knee', color: source.color },
    );
  }
  if (alone && c.limitedBy !== null) out.push({ calls: c.limitedBy.atCalls, label: `first failing: ${c.limitedBy.atCalls} calls`, kind: 'knee-fail', color: FAIL_COLOR });
  return out;
}

/** The curve charts of one search (per-worker CPU) or of several on shared axes (each one's mean CPU per worker). */
export function curveCharts(sources: readonly CurveSource[], slo: SloSpec | null): string[] {
  const alone = sources.length === 1;
  const steps = sources.flatMap((s) => s.profile.capacity.steps);
  const xMax = Math.max(1, ...steps.map((s) => s.calls), ...sources.map((s) => s.profile.capacity.limitedBy?.atCalls ?? 0));
  const knees = sources.flatMap((s) => kneesOf(s, alone));
  const charts = chartMetrics(slo).map((metric) => {
    const { kind } = metricInfo(metric);
    const [family = metric, stat] = metric.split('.');
    const series: CurveSeries[] = sources.map((s) => ({
      label: alone ? '' : s.label,
      color: s.color,
      points: s.profile.capacity.steps.flatMap((step) => {
        const v = step.figures[metric];
        return v === null || v === undefined || !Number.isFinite(v) ? [] : [{ calls: step.calls, value: v, pass: step.pass, generatorLimited: step.generatorLimited !== null }];
      }),
    }));
    const refs: RefLine[] = (slo?.terms ?? []).filter((t) => t.metric === metric).map((t) => ({ value: t.limit, label: `SLO ${t.text}`, kind: 'slo' }));
    return curveChart({
      title: `${FIGURE_NAMES[family] ?? family}${stat === undefined ? '' : ` ${stat}`} (${metric})`,
      caption: `each step's ${metric} on its measured window, against the calls it held`,
      unit: UNITS[kind],
      series,
      refs,
      knees,
      xMax,
      fit: kind === 'mos',
    });
  });
  charts.push(cpuChart(sources, knees, xMax));
  return charts.filter((c): c is string => c !== null);
}

function cpuChart(sources: readonly CurveSource[], knees: readonly KneeLine[], xMax: number): string | null {
  const alone = sources.length === 1;
  let series: CurveSeries[];
  if (alone) {
    const profile = sources[0]!.profile;
    const names = [...new Set(profile.capacity.steps.flatMap((s) => s.workers.map((w) => w.name)))];
    series = names.map((name, k) => ({
      label: names.length > 1 ? `rtpengine ${name}` : '',
      color: runColor(k),
      points: profile.capacity.steps.flatMap((step) => {
        const v = step.workers.find((w) => w.name === name)?.cpuPct;
        return v === null || v === undefined ? [] : [{ calls: step.calls, value: v, pass: step.pass, generatorLimited: step.generatorLimited !== null }];
      }),
    }));
  } else {
    series = sources.map((s) => ({
      label: s.label,
      color: s.color,
      points: s.profile.capacity.steps.flatMap((step) => {
        const cpus = step.workers.flatMap((w) => (w.cpuPct === null ? [] : [w.cpuPct]));
        return cpus.length === 0 ? [] : [{ calls: step.calls, value: cpus.reduce((a, b) => a + b, 0) / cpus.length, pass: step.pass, generatorLimited: step.generatorLimited !== null }];
      }),
    }));
  }
  const caps = [...new Set(sources.flatMap((s) => (s.cpuCapPct === null ? [] : [s.cpuCapPct])))];
  return curveChart({
    title: alone ? 'rtpengine CPU per worker' : 'rtpengine CPU, mean per worker',
    caption: "each worker's process over the step's window, percent of one core (local workers)",
    unit: '% of a core',
    series,
    refs: caps.map((c) => ({ value: c, label: `cap ${Number(c.toFixed(1))}% (--worker-cpu)`, kind: 'cap' })),
    knees,
    xMax,
  });
}

/** The steps as the console prints them, failed steps tinted. */
export function stepsTable(p: PairCapacity): string {
  return plainTable(
    'steps',
    STEP_HEAD,
    p.capacity.steps.map((s) => ({ cells: stepCells(s), ...(s.pass ? {} : { className: 'fail' }) })),
    STEP_TEXT_COLUMNS,
  );
}

/** The search over time: calls up, loss, latency and CPU, each step's measured window shaded pass or fail. */
export function searchTimeCharts(p: PairCapacity): string[] {
  const points = p.timeline ?? [];
  const bands: TimeBand[] = p.capacity.steps.map((s) => ({
    from: s.window.fromT,
    to: s.window.toT,
    className: s.pass ? 'band-pass' : 'band-fail',
    fill: s.pass ? '#e3f1df' : '#f9dede',
    title: `step ${s.index}: ${s.calls} calls, ${s.pass ? 'pass' : 'fail'}`,
    label: String(s.calls),
  }));
  const bandLegend = [
    { label: 'step window, passed', color: '#e3f1df', mark: 'box' as const },
    ...(p.capacity.steps.some((s) => !s.pass) ? [{ label: 'step window, failed', color: '#f9dede', mark: 'box' as const }] : []),
  ];
  const dashed = ' stroke-dasharray="5 3"';
  const color = runColor(0);
  return [
    timeChart('Calls up over time', 'the population each step held', 'calls', [timelineSeries(points, 'calls up', color, '', (t) => t.callsUp)], bands, bandLegend),
    timeChart('Loss over time', "RFC 3550 loss of each second's packets, %", '%', [timelineSeries(points, 'loss', color, '', (t) => t.lossPct)], bands, bandLegend),
    timeChart('Latency over time', "one-way latency of each second's packets: p50 (solid) and p99 (dashed), ms", 'ms', [
      timelineSeries(points, 'p50', color, '', (t) => t.latencyMs?.p50),
      timelineSeries(points, 'p99', color, dashed, (t) => t.latencyMs?.p99),
    ], bands, bandLegend),
    timeChart('rtpengine CPU over time', "each worker's process, percent of one core", '% of a core', workerCpuSeries(points), bands, bandLegend),
  ].filter((c): c is string => c !== null);
}

/** One codec pair's search: answer, curve, steps, timeline. `heading` is markup. */
export function profileSection(heading: string, p: PairCapacity, where: string, search: SearchSettings, source: CurveSource): string {
  const c = p.capacity;
  const time = searchTimeCharts(p);
  const curves = curveCharts([source], sloOf(c.slo));
  return [
    '<section class="profile">',
    `<h2>${heading}</h2>`,
    `<p class="answer${c.maxCalls === null || c.maxCalls === 0 ? ' none' : ''}">${esc(answerLine(p, where))}</p>`,
    `<p class="muted">${esc(pairHeading(p, search))}. Capacity is the most calls a step held while meeting the SLO; each chart marks it (solid line) and the first count above it that failed (dashed), and draws the SLO's limit on the figure it limits.</p>`,
    curves.length > 0 ? `<div class="charts">${curves.join('')}</div>` : '<p class="muted">No step was measured.</p>',
    '<h3>Steps</h3>',
    c.steps.length > 0 ? stepsTable(p) : '<p class="muted">No step was measured.</p>',
    '<h3>Over time</h3>',
    time.length > 0 ? `<div class="charts">${time.join('')}</div>` : '<p class="muted">No timeline.</p>',
    '</section>',
  ].join('\n');
}

function resolutionText(search: SearchSettings): string {
  const r = search.resolution;
  return 'calls' in r ? `${r.calls} call(s)` : `${r.percent}%`;
}

/** The facts of a search file: when, which SLO, how it stepped, on what. Shared with the scale page. */
export function searchHeader(label: string, color: string, f: { startedAt: string; slo: string; search: SearchSettings; plan: RunPlan; environment?: Environment | null }, rows: [string, string][]): string {
  const env = f.environment ?? null;
  const version = env?.rtpengine.workers[0]?.version ?? null;
  const facts: [string, string][] = [
    ['started', dateText(f.startedAt)],
    ['SLO', f.slo],
    ['steps', `from ${f.search.start} up to ${f.search.max} calls, ${f.search.stepHoldMs / 1000} s each, to within ${resolutionText(f.search)}`],
    ...rows,
    ...(version === null ? [] : [['rtpengine version', version] as [string, string]]),
    ...(env === null ? [] : [['machine', `${env.cpu?.model ?? '?'}, ${env.cpu?.cores ?? '?'} cores, ${env.memoryGiB ?? '?'} GiB; ${env.platform ?? ''} ${env.kernel ?? ''}; Node ${env.node ?? '?'}; rtp-bench ${env.rtpBench ?? '?'}`] as [string, string]]),
  ];
  return [
    `<article class="run" style="border-top-color:${color}">`,
    `<h2><span class="swatch" style="background:${color}"></span>${esc(label)}</h2>`,
    `<dl>${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`,
    '</article>',
  ].join('');
}

function whereOf(r: CapacityResults): string {
  return deploymentText(r.plan.target, r.environment?.rtpengine.workers.length ?? 0);
}

/** The page of one capacity file, or of several compared (the key figures side by side, then each file's searches). */
export function renderCapacityHtml(files: readonly CapacityResults[]): string {
  const title = files.length === 1 ? `rtp-bench capacity ${files[0]?.runId ?? ''}` : `rtp-bench: ${files.map((r) => r.runId).join(' vs ')}`;
  const headers = files.map((r, i) => searchHeader(fileHead(r.runId, i), runColor(i), r, [['rtpengine', whereOf(r)], ['codec pairs', r.profiles.map((p) => p.codecPair).join(', ')]]));
  const body: string[] = [
    '<h1>rtp-bench capacity</h1>',
    `<p class="muted">The most concurrent calls that meet the SLO, per codec pair: steps of calls on a running population, grown geometrically, then bisected.${files.length === 2 ? ' In the key figures, the last columns are file 2 divided by file 1, and whether file 2 is better or worse (changes within 2% are "same").' : ''}</p>`,
    `<section class="runs">${headers.join('')}</section>`,
  ];
  if (files.length > 1) {
    body.push('<h2>Key figures</h2>', figuresTable(files.map((r, i) => `<span class="swatch" style="background:${runColor(i)}"></span>${esc(fileHead(r.runId, i))}`), capacityComparisonRows(files)));
  } else if ((files[0]?.profiles.length ?? 0) > 1) {
    body.push('<h2>Profiles</h2>', plainTable('profiles', PROFILES_HEAD, files[0]!.profiles.map((p) => ({ cells: profileCells(p) })), new Set([0, 4])));
  }
  files.forEach((r, i) => {
    for (const p of r.profiles) {
      const heading = `${files.length > 1 ? `<span class="swatch" style="background:${runColor(i)}"></span>${esc(fileHead(r.runId, i))} · ` : ''}${esc(p.codecPair)}`;
      body.push(profileSection(heading, p, whereOf(r), r.search, { label: p.codecPair, color: runColor(0), profile: p, cpuCapPct: cpuCapPct(r.plan) }));
    }
  });
  return pageHtml(title, body);
}
