/**
 * One run, start to finish: the stack and the media threads come up, calls arrive at the planned rate, each goes
 * through its life (src/call.ts), all media stops at the common end time, and the run is summarised, written and
 * judged against the SLOs. Ctrl-C or SIGTERM stops arrivals, ends the media, deletes every call in rtpengine,
 * writes the partial results and exits 130.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunPlan } from '../run-plan.js';
import { placeCall, type CallRecord } from '../call.js';
import { churnFigures, offeredErlang } from '../load/churn.js';
import { runWithLocalMesh } from '../mesh/local/run.js';
import { summarize } from '../stats/summary.js';
import { CostWindow } from '../stats/cost-window.js';
import { Progress, watchProgress } from '../report/progress.js';
import { describeEnvironment } from '../report/environment.js';
import type { Results } from '../report/results.js';
import { defaultResultsPath, writeRunFiles } from '../report/output.js';
import { renderSummary } from '../report/table.js';
import { checkSlo } from '../report/slo.js';
import { contentionBetween, sampleContention, type ContentionSample } from '../cpu-contention.js';
import { workerFigures } from '../stats/timeline.js';
import { FaultRuntime } from '../faults/runtime.js';
import type { WorkerPods } from '../faults/pod-replacement.js';
import { NgClient } from '../ng/client.js';
import { RTPENGINE_NG_PORT } from '../stack/l7mp-proxy.js';
import { KubernetesProvisioner } from '../mesh/kubernetes/provisioner.js';
import { MediaRepointer } from '../faults/repoint.js';
import { embeddedFaultMaker } from '../faults/worker-process.js';
import { meshPath, threadRepointPath } from '../faults/path.js';
import { meshFaultMaker } from '../mesh/local/control.js';
import { RestProvisioner } from '../mesh/rest/provisioner.js';
import { markFaults } from '../faults/summary.js';
import { sessionIdOf, formatSeconds } from '../shard.js';
import { loadShape } from '../load/shape.js';
import { runFiles } from '../report/run-files.js';
import { EXIT_GENERATOR_LIMITED, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, EXIT_SLO, EXIT_USAGE, RunSession, newRunId, type RunIo } from '../session.js';
import { startLiveMetrics, type LiveMetricsRun } from '../metrics/run.js';

export { EXIT_OK, EXIT_SLO, EXIT_USAGE, EXIT_RUN_FAILED, EXIT_GENERATOR_LIMITED, EXIT_INTERRUPTED, type RunIo } from '../session.js';

/**
 * Runs one benchmark from a validated plan and returns the process exit code (0 ok, 1 an SLO missed, a call
 * failed or none succeeded, 3 the run could not start or its results could not be written anywhere, 4 the
 * generator limited the run, 130 interrupted).
 */
export async function run(plan: RunPlan, io: RunIo = { err: process.stderr, out: process.stdout }, runId: string = plan.runId ?? newRunId()): Promise<number> {
  if (plan.mesh?.kind === 'local') {
    return runWithLocalMesh(plan, runId, (line) => plan.progress !== 'off' && io.err.write(`${line}\n`), io.err);
  }
  const shardText = plan.shard === null ? '' : ` shard ${plan.shard.index}/${plan.shard.count}`;
  if (plan.progress !== 'off') io.err.write(`rtp-bench run ${runId}${shardText}: ${describeLoad(plan)}, ${plan.codecPair.a.name}:${plan.codecPair.b.name}\n`);
  // --metrics-listen: bound first, so that a port in use is refused before rtpengine or the media threads start.
  let live: LiveMetricsRun | null = null;
  if (plan.metricsListen != null) {
    const started = await startLiveMetrics(plan, plan.metricsListen, runId);
    if (typeof started === 'string') {
      io.err.write(`rtp-bench: ${started}\n`);
      return EXIT_USAGE;
    }
    live = started;
    if (!plan.metricsListen.loopback) io.err.write(`rtp-bench: warning: --metrics-listen ${plan.metricsListen.host}: the metrics are served beyond this machine, without authentication\n`);
    if (plan.progress !== 'off') io.err.write(`metrics: ${live.url}\n`);
  }
  // A shard's calls, Redis keys and mesh objects carry the shard too (src/shard.ts), so shards never clean up each other's.
  const opened = await RunSession.open(plan, io, sessionIdOf(runId, plan.shard)).catch(async (err: unknown) => {
    await live?.close();
    throw err;
  });
  if (typeof opened === 'number') {
    await live?.close();
    return opened;
  }
  const session = opened;
  const { status } = session;
  const faults = faultsOf(session);
  try {
    const pool = session.pool!;
    const shape = loadShape(plan);
    // --start-at: everything is up; wait for the common start (a scheduled time, not a stand-in for readiness).
    const startPerf = await startTime(plan, session);
    if (session.stopSignal !== null) return EXIT_INTERRUPTED;
    const ctx = session.callContext(performance.timeOrigin + startPerf + shape.endMs);
    if (faults !== null) ctx.faults = faults;

    const costs = new CostWindow<CostAndContention>(
      () => {
        const atMs = performance.now();
        return { cpuUs: cpuUsNow(), packetOps: session.packetOps(), atMs, contention: sampleContention(atMs) };
      },
      startPerf + shape.steady.fromMs,
      shape.steady.toMs - shape.steady.fromMs,
    );
    const timeline = session.startTimeline(performance.timeOrigin + startPerf, live?.metrics ?? null);
    faults?.start(performance.timeOrigin + startPerf);
    // Ctrl-C: a paused worker resumes and a loss burst ends now, so that every call can still be deleted.
    session.abort.signal.addEventListener('abort', () => void faults?.halt(), { once: true });
    const records: CallRecord[] = [];
    const inFlight: Promise<void>[] = [];
    const tally = { started: 0, ok: 0, failed: 0 };
    const stopProgress = watchProgress(
      new Progress(io.err, plan.progress, shape.arrivals.length),
      pool.control,
      () => ({ ...tally, stopping: session.stopSignal !== null }),
      startPerf,
      shape.endMs,
    );

    try {
      for (const arrival of shape.arrivals) {
        const due = startPerf + arrival.dueMs;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait, undefined, { signal: session.abort.signal }).catch(() => undefined);
        if (session.stopSignal !== null) break;
        tally.started++;
        live?.metrics.callStarted();
        inFlight.push(
          placeCall(ctx, arrival.index, performance.timeOrigin + due, performance.timeOrigin + startPerf + arrival.endMs).then((record) => {
            records.push(record);
            live?.metrics.callEnded(record);
            if (record.status === 'ok') tally.ok++;
            else if (record.status === 'failed') tally.failed++;
          }),
        );
      }
      await Promise.all(inFlight);
    } finally {
      stopProgress();
    }

    const wallMs = performance.now() - session.wallStart;
    const faultRecords = (await faults?.finish()) ?? [];
    const points = markFaults(await timeline.stop(), faultRecords);
    const { cost, window, from, to } = costs.result();
    // The workers' steady state: the same window the generator's cost is taken over (after the ramp, before the end).
    const steadyMs = shape.steady.toMs - shape.steady.fromMs;
    const holdFrom = (shape.steady.fromMs + Math.min(1000, steadyMs * 0.2)) / 1000;
    const holdTo = (shape.steady.toMs - Math.min(500, steadyMs * 0.1)) / 1000;
    records.sort((x, y) => x.index - y.index);
    const dueOf = new Map(shape.arrivals.map((a) => [a.index, a.dueMs]));
    const summary = summarize(records, session.metrics, {
      wallMs,
      ngRetransmissions: session.stack?.workers.reduce((n, w) => n + w.ng.retransmissions, 0) ?? 0,
      cost,
      costWindow: window,
      contention: contentionBetween(from.contention, to.contention),
      threads: pool.threads,
      io: [...ctx.ioSeen].sort().join(', ') || null,
      priority: [...ctx.prioritySeen].sort().join(', ') || null,
      interrupted: session.stopSignal !== null,
      localSystemUnderTest: plan.target.kind === 'embedded',
      faults: faultRecords,
      ngInFlight: plan.ngInFlight,
      workers: workerFigures(points, window === 'hold' ? holdFrom : 0, window === 'hold' ? holdTo : Number.POSITIVE_INFINITY),
      churn:
        plan.churn === null
          ? null
          : churnFigures(
              plan.churn,
              points,
              records.map((r) => ({ dueMs: dueOf.get(r.index)!, ok: r.status === 'ok', failed: r.status === 'failed' })),
            ),
    });
    live?.metrics.finish(summary.packets, session.metrics);
    const environment = await describeEnvironment(session.stack);
    const results: Results = {
      runId,
      startedAt: session.startedAt.toISOString(),
      shard: plan.shard === null ? null : { index: plan.shard.index, count: plan.shard.count },
      startAt: plan.startAtEpochMs === null ? null : new Date(plan.startAtEpochMs).toISOString(),
      plan,
      environment,
      summary,
      histograms: session.metrics.encode(),
      timeline: points,
      calls: records,
    };
    const verdict = checkSlo(plan.slo, summary);
    // The table first: whatever happens to the files, the person at the terminal has the figures.
    if (!plan.json) io.out.write(renderSummary(plan, summary, environment, verdict, records));
    // Shards on one host share the run id: each writes results/<run id>-s<I>.json by default.
    const written = await writeResultFiles(results, plan.output ?? defaultResultsPath(sessionIdOf(runId, plan.shard)), plan, io.err);
    if (plan.json) io.out.write(`${JSON.stringify({ runId, results: written?.[0] ?? null, summary, slo: verdict }, null, 2)}\n`);
    if (written !== null) status(`results: ${written[0]}\ncharts:  ${written[1]}`);
    if (session.stopSignal !== null) return EXIT_INTERRUPTED;
    if (written === null) return EXIT_RUN_FAILED;
    if (summary.generator.limited !== null) return EXIT_GENERATOR_LIMITED;
    if (summary.calls.ok === 0) {
      status('no call succeeded: see the failures above and in the results file');
      return EXIT_SLO;
    }
    return verdict.passed ? EXIT_OK : EXIT_SLO;
  } finally {
    await faults?.halt();
    faults?.close();
    await session.close();
    if (live !== null) {
      // The final figures (calls ended, last packets) are in the registry now; a scraper gets one more look unless
      // the run was interrupted (Ctrl-C asks to end, not to wait).
      const lastScrape = session.stopSignal === null;
      if (lastScrape && live.lastScrapeWaitMs() > 0) session.status(`metrics: waiting up to ${(live.lastScrapeWaitMs() / 1000).toFixed(1)} s for a last scrape`);
      await live.close({ lastScrape });
    }
  }
}

/** The run's --fault list at work (src/faults/runtime.ts); null without faults. */
function faultsOf(session: RunSession): FaultRuntime | null {
  const { plan, stack, mesh } = session;
  if (plan.faults.length === 0) return null;
  // --mesh local: the mesh's daemons belong to the rtp-bench process that built it, which makes the faults.
  const local = plan.mesh?.kind === 'rest' && plan.mesh.local !== undefined;
  const maker = local ? meshFaultMaker() : stack?.kind === 'embedded' ? embeddedFaultMaker(stack) : null;
  const path =
    local && mesh?.provisioner instanceof RestProvisioner
      ? meshPath(mesh.provisioner, session.runId)
      : threadRepointPath(new MediaRepointer(session.pool!.faultChannel), session.pool!.threads);
  return new FaultRuntime({
    faults: plan.faults,
    stack,
    // A survivor holds every worker's calls only when the workers replicate them (--redis).
    takeover: stack?.redis != null,
    maker,
    path,
    clientPorts: session.ports!.range,
    runId: session.runId,
    status: session.status,
    workerPods: workerPods(session),
  });
}

/**
 * --mesh kubernetes: a kill deletes the worker's pod (named by its pin label) through the run's API client and
 * follows it; the replacement's ng is reached as the mesh's workers are (src/mesh/open.ts: <pod IP>:22222).
 */
function workerPods(session: RunSession): WorkerPods | null {
  const provisioner = session.mesh?.provisioner;
  if (!(provisioner instanceof KubernetesProvisioner)) return null;
  const { plan } = session;
  return {
    api: provisioner.api,
    namespace: provisioner.namespace,
    openNg: (podIP) => NgClient.open({ host: podIP, port: RTPENGINE_NG_PORT, timeoutMs: plan.ngTimeoutMs, maxInFlight: plan.ngInFlight }),
  };
}

interface CostAndContention {
  cpuUs: number;
  packetOps: number;
  atMs: number;
  contention: ContentionSample;
}

/**
 * The results file and its charts, where the plan says; if that fails at the end after all, in a fresh folder
 * under the system's temporary directory, said loudly. Returns the two paths, or null when nothing could be written.
 */
async function writeResultFiles(results: Results, output: string, plan: Pick<RunPlan, 'csv' | 'callsCsv' | 'hgrm'>, err: NodeJS.WriteStream): Promise<[string, string] | null> {
  try {
    const written = await writeRunFiles(runFiles(results, output, plan));
    if (written.fallbackReason !== null) err.write(`rtp-bench: ${written.fallbackReason}; the results were written to ${written.paths[0]} instead\n`);
    return [written.paths[0]!, written.paths[1]!];
  } catch (e) {
    err.write(`rtp-bench: the results could not be written to ${output} nor to the temporary directory: ${(e as Error).message}\n`);
    return null;
  }
}

function cpuUsNow(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function describeLoad(plan: RunPlan): string {
  const churn = plan.churn;
  if (churn === null) return `${plan.calls} calls at ${plan.rampPerSec}/s, hold ${plan.holdMs / 1000} s`;
  const held = churn.distribution === 'exponential' ? `held ${churn.callDurationMs / 1000} s on average (exponential)` : `held ${churn.callDurationMs / 1000} s`;
  return `churn, ${churn.ratePerSec} calls/s ${held}, ${offeredErlang(churn).toFixed(1)} Erlang offered, arrivals for ${churn.arrivalsMs / 1000} s`;
}

/**
 * performance.now() of the first call's due time: --start-at's moment when given (waited for here, after the stack
 * and the media threads are up, so the shards' ramps line up), else now plus a short lead so that the first arrival
 * is not late by the time it takes to schedule it. A shard that is ready after --start-at says how late and starts at once.
 */
async function startTime(plan: RunPlan, session: RunSession): Promise<number> {
  const lead = performance.now() + 20;
  if (plan.startAtEpochMs === null) return lead;
  const atPerf = plan.startAtEpochMs - performance.timeOrigin;
  const wait = atPerf - performance.now();
  const who = plan.shard === null ? 'the run' : `shard ${plan.shard.index}/${plan.shard.count}`;
  if (wait <= 0) {
    session.io.err.write(`rtp-bench: ${who} was ready ${formatSeconds(-wait)} after --start-at ${new Date(plan.startAtEpochMs).toISOString()}: starting at once\n`);
    return lead;
  }
  session.status(`waiting ${formatSeconds(wait)} for --start-at ${new Date(plan.startAtEpochMs).toISOString()}`);
  await sleep(wait, undefined, { signal: session.abort.signal }).catch(() => undefined);
  return atPerf;
}
