/**
 * `rtp-bench capacity`: the most concurrent calls that meet an SLO, per codec pair. One running population of calls
 * (src/population.ts) is grown and shrunk step by step; each step settles, then is measured on its own steady window
 * (src/capacity/step.ts) and judged; src/capacity/search.ts decides the next step (grow geometrically, then bisect)
 * and stops early when the generator, not the system under test, limited a step.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunPlan } from '../run-plan.js';
import type { CodecPair } from '../profile.js';
import { RunSession, EXIT_GENERATOR_LIMITED, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, newRunId, type RunIo } from '../session.js';
import { Population } from '../population.js';
import type { CallRecord } from '../call.js';
import { searchCapacity, type CapacityResult, type StepRecord } from '../capacity/search.js';
import { formatSlo, describeBreak } from '../capacity/slo.js';
import { stepFigures, windowLossPct } from '../capacity/step.js';
import type { CapacityPlan } from '../capacity/plan.js';
import { workerFigures } from '../stats/timeline.js';
import { judgeGenerator } from '../stats/summary.js';
import { contentionBetween, sampleContention } from '../cpu-contention.js';
import { describeEnvironment, type Environment } from '../report/environment.js';
import { defaultResultsPath, writeRunFiles } from '../report/output.js';
import { capacityResults, capacitySearch, type CapacityResults, type CapacityStepOutcome, type PairCapacity, type ScaleResults, type SearchSettings } from '../report/search-results.js';
import { deploymentText, pairText, profilesText } from '../report/capacity-table.js';
import { htmlPathFor } from '../report/html.js';
import { renderCapacityHtml } from '../report/capacity-html.js';
import { MAX_CALL_INDEXES } from '../media/control.js';
import { runWithLocalMesh } from '../mesh/local/run.js';

/** After a step's population is reached, this long before its window opens: ramp transients die out. */
const SETTLE_MS = 2000;
/** Calls of one search run for at most this long (a step's calls end when the population shrinks or the search ends). */
const OPEN_ENDED_MS = 24 * 3_600_000;

export type { CapacityResults, PairCapacity } from '../report/search-results.js';

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
  if (profiles.length > 1) io.out.write(profilesText(profiles));
  const results = capacityResults({ runId, startedAt: startedAt.toISOString(), plan, slo: formatSlo(capacity.slo), search: searchSettings(capacity), environment, profiles });
  if (!(await writeSearchFiles(results, () => renderCapacityHtml([results]), plan.output ?? defaultResultsPath(runId), io, status))) return EXIT_RUN_FAILED;
  if (interrupted) return EXIT_INTERRUPTED;
  return profiles.some((p) => p.capacity.generatorLimited) ? EXIT_GENERATOR_LIMITED : EXIT_OK;
}

/** What the results file keeps of how the search stepped. */
export function searchSettings(capacity: CapacityPlan): SearchSettings {
  return { start: capacity.start, max: capacity.max, stepHoldMs: capacity.stepHoldMs, resolution: capacity.resolution };
}

/**
 * A search's results file and its page next to it (as a run's), where asked or (failing that) both in a temporary
 * folder; false when nowhere. A page that cannot be drawn is said and left out: the figures are in the JSON.
 */
export async function writeSearchFiles(results: CapacityResults | ScaleResults, page: () => string, output: string, io: RunIo, status: (line: string) => void): Promise<boolean> {
  const files = [{ path: output, text: `${JSON.stringify(results, null, 1)}\n` }];
  try {
    files.push({ path: htmlPathFor(output), text: page() });
  } catch (err) {
    io.err.write(`rtp-bench: the page of charts could not be drawn (${(err as Error).message}); the results file has every figure\n`);
  }
  try {
    const written = await writeRunFiles(files);
    if (written.fallbackReason !== null) io.err.write(`rtp-bench: ${written.fallbackReason}; the results were written to ${written.paths[0]} instead\n`);
    status(`results: ${written.paths[0]}${written.paths[1] === undefined ? '' : `\ncharts:  ${written.paths[1]}`}`);
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
      io.out.write(pairText(found, deploymentText(session.plan.target, session.stack?.workers.length ?? 0), searchSettings(capacity)));
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
  const measured: StepRecord<CapacityStepOutcome>[] = [];
  const runStep = async (calls: number): Promise<CapacityStepOutcome> => {
    const before = { records: population.records.length, failed: population.records.filter((r) => r.status === 'failed').length, setups: setups.length };
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
      failures: failuresByCause(population.records.slice(before.records)),
    };
  };
  const result = await searchCapacity<CapacityStepOutcome>(
    {
      slo: capacity.slo,
      max: capacity.max,
      start: capacity.start,
      resolution: capacity.resolution,
      onStep: (step) => {
        measured.push(step);
        previousFailed = !step.pass;
        status(`${name}: ${step.calls} calls ${step.pass ? 'pass' : `broke ${step.broke.map((b) => `${b.term} (${describeBreak(b)})`).join(', ')}`}${step.generatorLimited ? ' [generator-limited]' : ''}`);
      },
    },
    async (calls) => {
      if (session.stopSignal !== null) throw new Interrupted();
      const outcome = await runStep(calls);
      // A step cut short by Ctrl-C measured part of its window: not judged, not kept.
      if (session.stopSignal !== null) throw new Interrupted();
      return outcome;
    },
  ).catch((err: unknown) => {
    if (!(err instanceof Interrupted)) throw err;
    // The steps measured before the interruption are kept; there is no answer.
    const partial: CapacityResult<CapacityStepOutcome> = {
      maxCalls: null,
      limitedBy: null,
      generatorLimited: false,
      stop: 'slo',
      reason: `interrupted after ${measured.length} step(s), before an answer`,
      steps: measured,
    };
    return partial;
  });
  await population.endAll();
  const points = await timeline.stop();
  return { codecPair: name, capacity: capacitySearch(result, formatSlo(capacity.slo)), timeline: points, wallMs: performance.now() - t0 };
}

class Interrupted extends Error {}

/** The failed calls among `records`, by cause, with the first message of each (a step's failures, for its table row). */
function failuresByCause(records: readonly CallRecord[]): Record<string, { count: number; message: string }> {
  const out: Record<string, { count: number; message: string }> = {};
  for (const r of records) {
    if (r.status !== 'failed' || r.failure === null) continue;
    const seen = out[r.failure.cause];
    if (seen === undefined) out[r.failure.cause] = { count: 1, message: r.failure.message };
    else seen.count++;
  }
  return out;
}
