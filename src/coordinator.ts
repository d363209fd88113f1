/**
 * One run, start to finish: the stack and the media threads come up, calls arrive at the planned rate, each goes
 * through its life (src/call.ts), all media stops at the common end time, and the run is summarised, written and
 * judged against the SLOs. Ctrl-C or SIGTERM stops arrivals, ends the media, deletes every call in rtpengine,
 * writes the partial results and exits 130.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { RunPlan } from './run-plan.js';
import { placeCall, type CallRecord } from './call.js';
import { PortPool, chooseClientPorts } from './ports.js';
import { boundUdpPorts } from './udp-table.js';
import { MediaPool } from './media-pool.js';
import { Stack } from './stack/stack.js';
import { openMesh, type OpenMesh } from './mesh/open.js';
import { runWithLocalMesh } from './mesh/local-run.js';
import { nativeTransportError } from '../workers/native/transport.js';
import { buildMediaBank, type BankEntry } from './media/bank.js';
import { toneFrequencyHz } from './media/tone.js';
import { MetricSet } from './stats/histogram.js';
import { summarize } from './stats/summary.js';
import { CostWindow } from './stats/cost-window.js';
import { Progress, watchProgress } from './report/progress.js';
import { describeEnvironment } from './report/environment.js';
import { resultsText, type Results } from './report/results.js';
import { defaultResultsPath, writeRunFiles } from './report/output.js';
import { renderSummary } from './report/table.js';
import { renderHtml, htmlPathFor } from './report/html.js';
import { checkSlo } from './report/slo.js';
import { P_RECEIVED, P_SENT } from './media/control.js';
import { contentionBetween, sampleContention, type ContentionSample } from './cpu-contention.js';
import { TimelineRecorder, timelineChannelName } from './timeline.js';
import { timelineCsv, workerFigures } from './stats/timeline.js';

export const EXIT_OK = 0;
export const EXIT_SLO = 1;
export const EXIT_USAGE = 2;
export const EXIT_RUN_FAILED = 3;
/** The generator, not the system under test, limited the run (its own drops or lateness): the figures are not the system's. */
export const EXIT_GENERATOR_LIMITED = 4;
export const EXIT_INTERRUPTED = 130;

export interface RunIo {
  /** Human-facing lines (status, progress, table); stdout stays clean for --json. */
  err: NodeJS.WriteStream;
  out: NodeJS.WriteStream;
}

/**
 * Runs one benchmark from a validated plan and returns the process exit code (0 ok, 1 an SLO missed, a call
 * failed or none succeeded, 3 the run could not start or its results could not be written anywhere, 4 the
 * generator limited the run, 130 interrupted).
 */
export async function run(plan: RunPlan, io: RunIo = { err: process.stderr, out: process.stdout }, runId: string = newRunId()): Promise<number> {
  const status = (line: string): void => {
    if (plan.progress !== 'off') io.err.write(`${line}\n`);
  };
  if (plan.mesh?.kind === 'local') return runWithLocalMesh(plan, runId, status, io.err);
  const startedAt = new Date();
  const wallStart = performance.now();

  let stopSignal: string | null = null;
  const abort = new AbortController();
  let pool: MediaPool | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal !== null) {
      io.err.write(`\n${signal} again: exiting now; embedded rtpengine is killed, calls on remote rtpengine expire there\n`);
      process.exit(EXIT_INTERRUPTED);
    }
    stopSignal = signal;
    io.err.write(`\n${signal}: stopping arrivals, ending media and deleting calls (${signal} again to force)\n`);
    abort.abort();
    pool?.stopAll();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let stack: Stack | null = null;
  let mesh: OpenMesh | null = null;
  try {
    status(`rtp-bench run ${runId}: ${plan.calls} calls at ${plan.rampPerSec}/s, hold ${plan.holdMs / 1000} s, ${plan.codecPair.a.name}:${plan.codecPair.b.name}`);
    const nativeMissing = plan.io === 'native' ? nativeTransportError() : null;
    if (nativeMissing !== null) {
      io.err.write(`rtp-bench: --io native: ${nativeMissing.message}\n`);
      return EXIT_RUN_FAILED;
    }
    const demand = generatorDemand(plan);
    if (demand !== null) status(demand);
    const bank = buildMediaBank(bankEntries(plan));
    pool = new MediaPool(plan.threads, bank, plan.io, plan.mediaPriority, timelineChannelName());
    if (plan.target.kind !== 'direct') {
      try {
        mesh = await openMesh(plan, status);
        stack = await Stack.start(plan, status, mesh?.workers);
      } catch (err) {
        io.err.write(`rtp-bench: ${(err as Error).message}\n`);
        return EXIT_RUN_FAILED;
      }
    }
    if (stopSignal !== null) return EXIT_INTERRUPTED;

    const inUse = boundUdpPorts(plan.localIp);
    const portChoice = chooseClientPorts(plan.localPorts, plan.calls, inUse, plan.localPortsExplicit);
    if ('error' in portChoice) {
      io.err.write(`rtp-bench: ${portChoice.error}\n`);
      return EXIT_RUN_FAILED;
    }
    if (portChoice.note !== null) status(portChoice.note);
    const metrics = new MetricSet();
    const ports = new PortPool(portChoice.range, inUse);
    const rampMs = (plan.calls * 1000) / plan.rampPerSec;
    // A short lead so the first arrival is not late by the time it takes to schedule it.
    const startPerf = performance.now() + 20;
    const endAtEpochMs = performance.timeOrigin + startPerf + rampMs + plan.holdMs;
    const ctx = {
      plan,
      runId,
      stack,
      pool,
      ports,
      endAtEpochMs,
      stopping: () => stopSignal !== null,
      metrics,
      mesh: mesh === null ? null : { provisioner: mesh.provisioner, mediaAddress: mesh.mediaAddress },
      ioSeen: new Set<string>(),
      prioritySeen: new Set<string>(),
    };

    const costs = new CostWindow<CostAndContention>(
      () => {
        const atMs = performance.now();
        return { cpuUs: cpuUsNow(), packetOps: packetOps(ctx.pool), atMs, contention: sampleContention(atMs) };
      },
      startPerf + rampMs,
      plan.holdMs,
    );
    const timeline = new TimelineRecorder(pool.timelineChannel, pool.control, stack?.workers ?? []);
    timeline.start(performance.timeOrigin + startPerf);
    const records: CallRecord[] = [];
    const inFlight: Promise<void>[] = [];
    const tally = { started: 0, ok: 0, failed: 0 };
    const stopProgress = watchProgress(
      new Progress(io.err, plan.progress, plan.calls),
      pool.control,
      () => ({ ...tally, stopping: stopSignal !== null }),
      startPerf,
      rampMs + plan.holdMs,
    );

    try {
      for (let i = 0; i < plan.calls; i++) {
        const due = startPerf + (i * 1000) / plan.rampPerSec;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait, undefined, { signal: abort.signal }).catch(() => undefined);
        if (stopSignal !== null) break;
        tally.started++;
        inFlight.push(
          placeCall(ctx, i, performance.timeOrigin + due).then((record) => {
            records.push(record);
            if (record.status === 'ok') tally.ok++;
            else if (record.status === 'failed') tally.failed++;
          }),
        );
      }
      await Promise.all(inFlight);
    } finally {
      stopProgress();
    }

    const wallMs = performance.now() - wallStart;
    const points = await timeline.stop();
    const { cost, window, from, to } = costs.result();
    // The workers' steady state: the same window the generator's cost is taken over (after the ramp, before the end).
    const holdFrom = (rampMs + Math.min(1000, plan.holdMs * 0.2)) / 1000;
    const holdTo = (rampMs + plan.holdMs - Math.min(500, plan.holdMs * 0.1)) / 1000;
    records.sort((x, y) => x.index - y.index);
    const summary = summarize(records, metrics, {
      wallMs,
      ngRetransmissions: stack?.workers.reduce((n, w) => n + w.ng.retransmissions, 0) ?? 0,
      cost,
      costWindow: window,
      contention: contentionBetween(from.contention, to.contention),
      threads: pool.threads,
      io: [...ctx.ioSeen].sort().join(', ') || null,
      priority: [...ctx.prioritySeen].sort().join(', ') || null,
      interrupted: stopSignal !== null,
      localSystemUnderTest: plan.target.kind === 'embedded',
      ngInFlight: plan.ngInFlight,
      workers: workerFigures(points, window === 'hold' ? holdFrom : 0, window === 'hold' ? holdTo : Number.POSITIVE_INFINITY),
    });
    const environment = await describeEnvironment(stack);
    const results: Results = { runId, startedAt: startedAt.toISOString(), plan, environment, summary, histograms: metrics.encode(), timeline: points, calls: records };
    const verdict = checkSlo(plan.slo, summary);
    // The table first: whatever happens to the files, the person at the terminal has the figures.
    if (!plan.json) io.out.write(renderSummary(plan, summary, environment, verdict));
    const written = await writeResultFiles(results, plan.output ?? defaultResultsPath(runId), plan.csv, io.err);
    if (plan.json) io.out.write(`${JSON.stringify({ runId, results: written?.[0] ?? null, summary, slo: verdict }, null, 2)}\n`);
    if (written !== null) status(`results: ${written[0]}\ncharts:  ${written[1]}`);
    if (stopSignal !== null) return EXIT_INTERRUPTED;
    if (written === null) return EXIT_RUN_FAILED;
    if (summary.generator.limited !== null) return EXIT_GENERATOR_LIMITED;
    if (summary.calls.ok === 0) {
      status('no call succeeded: see the failures above and in the results file');
      return EXIT_SLO;
    }
    return verdict.passed ? EXIT_OK : EXIT_SLO;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await pool?.close();
    await stack?.stop();
    if (mesh !== null) await releaseMesh(mesh, runId, io.err);
  }
}

/** Whatever the calls did not remove (a call that failed half-way, an interrupted run) goes now. */
async function releaseMesh(mesh: OpenMesh, runId: string, err: NodeJS.WriteStream): Promise<void> {
  try {
    await mesh.provisioner.releaseRun(runId);
  } catch (e) {
    err.write(`rtp-bench: could not remove every mesh object of run ${runId}: ${(e as Error).message}; run rtp-bench cleanup --run ${runId}\n`);
  } finally {
    await mesh.provisioner.close();
  }
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
async function writeResultFiles(results: Results, output: string, csv: string | null, err: NodeJS.WriteStream): Promise<[string, string] | null> {
  try {
    const written = await writeRunFiles([
      { path: output, text: resultsText(results) },
      // The same figures as charts: what a person opens first.
      { path: htmlPathFor(output), text: renderHtml([results]) },
      ...(csv === null ? [] : [{ path: csv, text: timelineCsv(results.timeline) }]),
    ]);
    if (written.fallbackReason !== null) err.write(`rtp-bench: ${written.fallbackReason}; the results were written to ${written.paths[0]} instead\n`);
    return [written.paths[0]!, written.paths[1]!];
  } catch (e) {
    err.write(`rtp-bench: the results could not be written to ${output} nor to the temporary directory: ${(e as Error).message}\n`);
    return null;
  }
}

/**
 * Said before the run when the load asks more of this machine than it has: packet operations (each leg sends and
 * receives 50 packets a second) times what one costs here, against the cores the media threads may use.
 */
function generatorDemand(plan: RunPlan): string | null {
  const packetOpsPerSec = plan.calls * 2 * 2 * (1000 / Math.min(plan.codecPair.a.ptimeMs, plan.codecPair.b.ptimeMs));
  const cores = (packetOpsPerSec * (plan.io === 'dgram' ? DGRAM_US_PER_PACKET_OP : GENERATOR_US_PER_PACKET_OP)) / 1e6;
  const usable = Math.min(plan.threads, availableParallelism());
  const target = plan.target;
  if (target.kind === 'embedded' && target.cpuCores !== null && target.workers * target.cpuCores + cores > availableParallelism()) {
    return (
      `warning: ${target.workers} worker(s) capped at ${target.cpuCores} core(s) each and the generator (about ${cores.toFixed(1)} core(s)) need more than ` +
      `this machine's ${availableParallelism()} cores: the run measures contention between them, not scaling; lower --worker-cpu or --workers`
    );
  }
  if (cores <= usable * 0.8) return null;
  return (
    `warning: ${plan.calls} calls are about ${Math.round(packetOpsPerSec).toLocaleString('en')} packet operations a second, ` +
    `about ${cores.toFixed(1)} cores of generator CPU at best, but ${plan.threads} media thread(s) on ${availableParallelism()} core(s) can use ${usable}: ` +
    'expect a generator-limited run (more --threads, another machine, or fewer --calls)'
  );
}

/** CPU per packet operation of a media thread with native I/O on this kind of machine, us (bench/generator.ts). */
const GENERATOR_US_PER_PACKET_OP = 2.5;
const DGRAM_US_PER_PACKET_OP = 8;

function cpuUsNow(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function packetOps(pool: MediaPool): number {
  return pool.control.total(P_SENT) + pool.control.total(P_RECEIVED);
}

function bankEntries(plan: RunPlan): BankEntry[] {
  const entries: BankEntry[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < plan.calls; i++) {
    for (const [codec, toneHz] of [
      [plan.codecPair.a, toneFrequencyHz(i, 'a')],
      [plan.codecPair.b, toneFrequencyHz(i, 'b')],
    ] as const) {
      const key = `${codec.name}@${toneHz}`;
      if (seen.has(key)) continue;
      seen.add(key);
      entries.push({ codec, toneHz });
    }
  }
  return entries;
}

function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${t}-${randomBytes(2).toString('hex')}`;
}
