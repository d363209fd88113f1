/**
 * `rtp-bench capacity`: the most concurrent calls that meet an SLO, per codec pair. One running population of calls
 * (src/population.ts) is grown and shrunk step by step; each step settles, then is measured on its own steady window
 * (src/capacity/step.ts) and judged; src/capacity/search.ts decides the next step (grow geometrically, then bisect)
 * and stops early when the generator, not the system under test, limited a step.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import Table from 'cli-table3';
import type { RunPlan } from '../run-plan.js';
import type { CodecPair } from '../profile.js';
import { RunSession, EXIT_GENERATOR_LIMITED, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, newRunId, type RunIo } from '../session.js';
import { Population } from '../population.js';
import { searchCapacity, type CapacityResult, type StepOutcome } from '../capacity/search.js';
import { formatSlo, describeBreak } from '../capacity/slo.js';
import { stepFigures, windowLossPct } from '../capacity/step.js';
import type { CapacityPlan } from '../capacity/plan.js';
import { workerFigures, type TimelinePoint, type WorkerFigures } from '../stats/timeline.js';
import { judgeGenerator } from '../stats/summary.js';
import { contentionBetween, sampleContention } from '../cpu-contention.js';
import { describeEnvironment, type Environment } from '../report/environment.js';
import { defaultResultsPath, writeRunFiles } from '../report/output.js';
import { RESULTS_FORMAT } from '../report/results.js';
import { MAX_CALL_INDEXES } from '../media/control.js';
import { runWithLocalMesh } from '../mesh/local/run.js';

/** After a step's population is reached, this long before its window opens: ramp transients die out. */
const SETTLE_MS = 2000;
/** Calls of one search run for at most this long (a step's calls end when the population shrinks or the search ends). */
const OPEN_ENDED_MS = 24 * 3_600_000;

export interface CapacityStep extends StepOutcome {
  /** The window, in seconds of the search's timeline. */
  window: { fromT: number; toT: number };
  workers: WorkerFigures[];
  packets: { sent: number; received: number; lostA3: number; seconds: number } | null;
  lossPct: number | null;
}

export interface PairCapacity {
  codecPair: string;
  result: Omit<CapacityResult<CapacityStep>, 'steps'> & { steps: (Omit<CapacityResult<CapacityStep>['steps'][number], 'outcome'> & { outcome: CapacityStep })[] };
  /** rtpengine CPU per call-second at the largest passing step (summed over workers), ms; null when unknown. */
  cpuMsPerCallSecond: number | null;
  timeline: TimelinePoint[];
  wallMs: number;
}

export interface CapacityResults {
  format: number;
  kind: 'capacity';
  runId: string;
  startedAt: string;
  plan: RunPlan;
  slo: string;
  environment: Environment | null;
  profiles: PairCapacity[];
}

export async function runCapacity(plan: RunPlan, capacity: CapacityPlan, io: RunIo = { err: process.stderr, out: process.stdout }, runId = newRunId()): Promise<number> {
  const startedAt = new Date();
  const status = (line: string): void => {
    if (plan.progress !== 'off') io.err.write(`${line}\n`);
  };
  // The search itself runs in the local mesh's client namespace, as a run does (src/mesh/local/run.ts), and says
  // what it does from there.
  if (plan.mesh?.kind === 'local') return runWithLocalMesh(plan, runId, status, io.err, capacity);
  status(`rtp-bench capacity ${runId}: SLO ${formatSlo(capacity.slo)}; steps from ${capacity.start} up to ${capacity.max} calls, ${capacity.stepHoldMs / 1000} s each`);
  const searched = await searchPairs(plan, capacity, io, runId, status);
  if (typeof searched === 'number') return searched;
  const { profiles, environment, interrupted } = searched;
  if (profiles.length > 1) io.out.write(renderProfiles(profiles));
  const results: CapacityResults = { format: RESULTS_FORMAT, kind: 'capacity', runId, startedAt: startedAt.toISOString(), plan, slo: formatSlo(capacity.slo), environment, profiles };
  if (!(await writeJson(results, plan.output ?? defaultResultsPath(runId), io, status))) return EXIT_RUN_FAILED;
  if (interrupted) return EXIT_INTERRUPTED;
  return profiles.some((p) => p.result.generatorLimited) ? EXIT_GENERATOR_LIMITED : EXIT_OK;
}

/** A search's results file, where asked or (failing that) in a temporary folder; false when nowhere. */
export async function writeJson(results: object, output: string, io: RunIo, status: (line: string) => void): Promise<boolean> {
  try {
    const written = await writeRunFiles([{ path: output, text: `${JSON.stringify(results, null, 1)}\n` }]);
    if (written.fallbackReason !== null) io.err.write(`rtp-bench: ${written.fallbackReason}; the results were written to ${written.paths[0]} instead\n`);
    status(`results: ${written.paths[0]}`);
    return true;
  } catch (err) {
    io.err.write(`rtp-bench: the results could not be written to ${output} nor to the temporary directory: ${(err as Error).message}\n`);
    return false;
  }
}

/**
 * One search per codec pair of the plan, each on a session of its own (the media bank is the pair's); prints each
 * pair's table as it finishes. Returns the exit code instead when a session could not start.
 */
export async function searchPairs(
  plan: RunPlan,
  capacity: CapacityPlan,
  io: RunIo,
  runId: string,
  status: (line: string) => void,
): Promise<{ profiles: PairCapacity[]; environment: Environment | null; interrupted: boolean } | number> {
  const profiles: PairCapacity[] = [];
  let environment: Environment | null = null;
  for (const [k, pair] of capacity.pairs.entries()) {
    const pairPlan: RunPlan = { ...plan, codecPair: pair };
    const opened = await RunSession.open(pairPlan, io, capacity.pairs.length === 1 ? runId : `${runId}-p${k + 1}`);
    if (typeof opened === 'number') return opened;
    const session = opened;
    try {
      environment ??= await describeEnvironment(session.stack);
      const found = await searchPair(session, pair, capacity, status);
      profiles.push(found);
      io.out.write(renderPair(found, session, capacity));
      if (session.stopSignal !== null) return { profiles, environment, interrupted: true };
    } finally {
      await session.close();
    }
  }
  return { profiles, environment, interrupted: false };
}

async function searchPair(session: RunSession, pair: CodecPair, capacity: CapacityPlan, status: (line: string) => void): Promise<PairCapacity> {
  const t0 = performance.now();
  const startEpochMs = performance.timeOrigin + t0;
  const timeline = session.startTimeline(startEpochMs);
  const ctx = session.callContext(startEpochMs + OPEN_ENDED_MS);
  const population = new Population(ctx, session.pool!.control, session.plan.rampPerSec, session.abort.signal, MAX_CALL_INDEXES);
  const setups: number[] = [];
  const onEstablished = ctx.onEstablished;
  ctx.onEstablished = (record) => {
    onEstablished?.(record);
    if (record.setupMs !== null) setups.push(record.setupMs);
  };
  const name = `${pair.a.name}:${pair.b.name}`;
  let previousFailed = false;
  const runStep = async (calls: number): Promise<CapacityStep> => {
    const before = { failed: population.records.filter((r) => r.status === 'failed').length, setups: setups.length };
    const placedBefore = population.placed;
    // After a step that broke the SLO the running calls are not a fair start: rtpengine keeps a transcoded call's
    // extra delay for good once its input was late, and calls it stopped forwarding stay silent. Start afresh.
    if (previousFailed && population.size > 0) {
      status(`${name}: ending the ${population.size} calls of the failed step; the next step starts with new calls`);
      await population.endAll();
    }
    status(`${name}: step of ${calls} calls (${population.size} up)`);
    if (calls > population.size) await population.growTo(calls);
    else await population.shrinkTo(calls);
    await sleep(SETTLE_MS, undefined, { signal: session.abort.signal }).catch(() => undefined);
    const fromMs = Date.now();
    const contentionFrom = sampleContention(performance.now());
    const cpuFrom = process.cpuUsage();
    await sleep(capacity.stepHoldMs, undefined, { signal: session.abort.signal }).catch(() => undefined);
    const toMs = Date.now();
    const contention = contentionBetween(contentionFrom, sampleContention(performance.now()));
    const cpu = process.cpuUsage(cpuFrom);
    // The window's whole seconds: the per-second histograms are kept by wall-clock second.
    const metrics = timeline.windowMetrics(Math.ceil(fromMs / 1000), Math.floor(toMs / 1000));
    const packets = timeline.windowCounters(fromMs, toMs);
    const failed = population.records.filter((r) => r.status === 'failed').length - before.failed;
    const figures = stepFigures({ metrics, packets, setups: setups.slice(before.setups), attempted: population.placed - placedBefore, failed, population: population.size }, pair);
    const lateness = metrics.summary('sendLatenessMs');
    const verdict = judgeGenerator({
      latenessP99Ms: lateness?.p99 ?? null,
      mediaStartWaitP99Ms: null,
      cpuPct: ((cpu.user + cpu.system) / 1000 / (toMs - fromMs)) * 100,
      threads: session.pool!.threads,
      drops: { sendFailed: 0, skipped: 0, receiveQueue: 0, truncated: 0 },
      packetsOffered: packets?.sent ?? 0,
      contention,
      localSystemUnderTest: session.plan.target.kind === 'embedded',
    });
    const fromT = (fromMs - startEpochMs) / 1000;
    const toT = (toMs - startEpochMs) / 1000;
    return {
      calls,
      figures,
      generatorLimited: verdict.limited,
      window: { fromT, toT },
      workers: workerFigures(timeline.pointsSoFar(), fromT + 1, toT),
      packets,
      lossPct: windowLossPct(packets),
    };
  };
  const result = await searchCapacity<CapacityStep>(
    {
      slo: capacity.slo,
      max: capacity.max,
      start: capacity.start,
      resolution: capacity.resolution,
      onStep: (step) => {
        previousFailed = !step.pass;
        status(`${name}: ${step.calls} calls ${step.pass ? 'pass' : `broke ${step.broke.map((b) => `${b.term} (${describeBreak(b)})`).join(', ')}`}${step.generatorLimited ? ' [generator-limited]' : ''}`);
      },
    },
    async (calls) => {
      if (session.stopSignal !== null) throw new Interrupted();
      return runStep(calls);
    },
  ).catch((err: unknown) => {
    if (err instanceof Interrupted) return null;
    throw err;
  });
  await population.endAll();
  const points = await timeline.stop();
  const steps = result?.steps ?? [];
  const best = result !== null && result.maxCalls !== null ? steps.filter((s) => s.pass && s.calls === result.maxCalls).pop() : undefined;
  const cpuSum = best?.outcome.workers.reduce((sum, w) => (w.cpuPct === null || sum === null ? null : sum + w.cpuPct), 0 as number | null) ?? null;
  return {
    codecPair: name,
    result: result ?? { maxCalls: null, limitedBy: null, generatorLimited: false, stop: 'slo', reason: 'interrupted before an answer', steps: [] },
    cpuMsPerCallSecond: best === undefined || cpuSum === null || best.calls === 0 ? null : (cpuSum * 10) / best.calls,
    timeline: points,
    wallMs: performance.now() - t0,
  };
}

class Interrupted extends Error {}

function fmt(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined ? '-' : v.toFixed(digits);
}

function renderPair(p: PairCapacity, session: RunSession, capacity: CapacityPlan): string {
  const table = new Table({
    head: ['calls', 'result', 'loss %', 'latency p50', 'latency p99', 'transit jitter p99', 'MOS', 'rtpengine CPU % per worker', 'generator', 'broke'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const s of p.result.steps) {
    const f = s.figures;
    table.push([
      String(s.calls),
      s.pass ? 'pass' : 'FAIL',
      fmt(s.outcome.lossPct, 3),
      fmt(f['latency.p50']),
      fmt(f['latency.p99']),
      fmt(f['transitJitter.p99'], 2),
      fmt(f['mos.p50'], 2),
      s.outcome.workers.map((w) => fmt(w.cpuPct, 0)).join(' / ') || '-',
      s.generatorLimited === null ? `ok (lateness p99 ${fmt(f['generatorLateness.p99'])} ms)` : 'LIMITED',
      s.broke.map((b) => `${b.term}: ${describeBreak(b)}`).join('; '),
    ]);
  }
  const target = session.plan.target;
  const where =
    target.kind === 'embedded'
      ? `${target.workers} worker${target.workers === 1 ? '' : 's'}${target.cpuCores === null ? '' : ` (${target.cpuCores} core${target.cpuCores === 1 ? '' : 's'} each)`}`
      : `${session.stack?.workers.length ?? 0} worker(s)`;
  const answer =
    p.result.maxCalls === null
      ? `capacity of ${p.codecPair}: none - ${p.result.reason}`
      : `capacity: ${p.result.maxCalls} calls of ${p.codecPair} on ${where}${p.cpuMsPerCallSecond === null ? '' : `, rtpengine ${p.cpuMsPerCallSecond.toFixed(1)} ms CPU per call-second`} - ${p.result.reason.replace(/^capacity: [^-]*- /, '')}`;
  return `\n${p.codecPair}, SLO ${formatSlo(capacity.slo)}, steps of ${capacity.stepHoldMs / 1000} s (${(p.wallMs / 1000).toFixed(0)} s in all)\n${table.toString()}\n${answer}\n`;
}

function renderProfiles(profiles: readonly PairCapacity[]): string {
  const table = new Table({ head: ['codec pair', 'capacity (calls)', 'rtpengine CPU ms per call-second', 'calls per core', 'limited by'], style: { head: [], border: [] } });
  for (const p of profiles) {
    const perCore = p.cpuMsPerCallSecond === null || p.cpuMsPerCallSecond <= 0 ? null : 1000 / p.cpuMsPerCallSecond;
    table.push([
      p.codecPair,
      p.result.maxCalls === null ? (p.result.generatorLimited ? 'generator-limited' : '-') : String(p.result.maxCalls),
      fmt(p.cpuMsPerCallSecond, 2),
      perCore === null ? '-' : perCore.toFixed(0),
      p.result.limitedBy === null ? p.result.stop : `${p.result.limitedBy.term} at ${p.result.limitedBy.atCalls}`,
    ]);
  }
  return `\nprofiles\n${table.toString()}\n`;
}
