/**
 * One run, start to finish: the stack and the media threads come up, calls arrive at the planned rate, each goes
 * through its life (src/call.ts), all media stops at the common end time, and the run is summarised, written and
 * judged against the SLOs. Ctrl-C or SIGTERM stops arrivals, ends the media, deletes every call in rtpengine,
 * writes the partial results and exits 130.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { RunPlan } from './run-plan.js';
import { placeCall, type CallRecord } from './call.js';
import { PortPool } from './ports.js';
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
import { writeResults, defaultResultsPath } from './report/results.js';
import { renderSummary } from './report/table.js';
import { renderHtml, htmlPathFor } from './report/html.js';
import { checkSlo } from './report/slo.js';
import { P_RECEIVED, P_SENT } from './media/control.js';

export const EXIT_OK = 0;
export const EXIT_SLO = 1;
export const EXIT_USAGE = 2;
export const EXIT_RUN_FAILED = 3;
export const EXIT_INTERRUPTED = 130;

export interface RunIo {
  /** Human-facing lines (status, progress, table); stdout stays clean for --json. */
  err: NodeJS.WriteStream;
  out: NodeJS.WriteStream;
}

/**
 * Runs one benchmark from a validated plan and returns the process exit code
 * (0 ok, 1 an SLO missed or no call succeeded, 3 the run could not start, 130 interrupted).
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
    const bank = buildMediaBank(bankEntries(plan));
    pool = new MediaPool(plan.threads, bank, plan.io, plan.mediaPriority);
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

    const metrics = new MetricSet();
    const ports = new PortPool(plan.localPorts);
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

    const costs = new CostWindow(() => ({ cpuUs: cpuUsNow(), packetOps: packetOps(ctx.pool), atMs: performance.now() }), startPerf + rampMs, plan.holdMs);
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
            else tally.failed++;
          }),
        );
      }
      await Promise.all(inFlight);
    } finally {
      stopProgress();
    }

    const wallMs = performance.now() - wallStart;
    const { cost, window } = costs.result();
    records.sort((x, y) => x.index - y.index);
    const summary = summarize(records, metrics, {
      wallMs,
      ngRetransmissions: stack?.workers.reduce((n, w) => n + w.ng.retransmissions, 0) ?? 0,
      cost,
      costWindow: window,
      threads: pool.threads,
      io: [...ctx.ioSeen].sort().join(', ') || null,
      priority: [...ctx.prioritySeen].sort().join(', ') || null,
      interrupted: stopSignal !== null,
    });
    const environment = await describeEnvironment(stack);
    const output = plan.output ?? defaultResultsPath(runId);
    const results = { runId, startedAt: startedAt.toISOString(), plan, environment, summary, histograms: metrics.encode(), calls: records };
    await writeResults(output, results);
    // The same figures as charts: what a person opens first.
    const htmlPath = htmlPathFor(output);
    await writeFile(htmlPath, renderHtml([results]));
    const verdict = checkSlo(plan.slo, summary);
    if (plan.json) {
      io.out.write(`${JSON.stringify({ runId, results: output, summary, slo: verdict }, null, 2)}\n`);
    } else {
      io.out.write(renderSummary(plan, summary, environment, verdict));
    }
    status(`results: ${output}\ncharts:  ${htmlPath}`);
    if (stopSignal !== null) return EXIT_INTERRUPTED;
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
