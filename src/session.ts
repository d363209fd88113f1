/**
 * What every command that places calls needs around them, set up and torn down in one place: Ctrl-C handling, the
 * pre-encoded media, the media threads, the rtpengine workers (started, reached, or behind a mesh), the client
 * ports, the run's histograms and its timeline. `run` (src/commands/run.ts) places a fixed population and ends it;
 * `capacity` (src/commands/capacity.ts) grows and shrinks one, step by step. Ctrl-C or SIGTERM stops arrivals and
 * media (each call still gets its delete); a second signal exits at once.
 */
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { RunPlan } from './run-plan.js';
import type { CallContext } from './call.js';
import { PortPool, chooseClientPorts } from './ports.js';
import { boundUdpPorts } from './udp-table.js';
import { MediaPool } from './media-pool.js';
import { Stack } from './stack/stack.js';
import { openMesh, type OpenMesh } from './mesh/open.js';
import { nativeTransportError } from '../workers/native/transport.js';
import { buildMediaBank, type BankEntry } from './media/bank.js';
import { TONE_SLOTS, toneFrequencyHz } from './media/tone.js';
import { MetricSet } from './stats/histogram.js';
import { TimelineRecorder, timelineChannelName, type TimelineListener } from './timeline.js';
import { P_RECEIVED, P_SENT } from './media/control.js';

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

export class RunSession {
  /** The first Ctrl-C or SIGTERM, once one came. */
  stopSignal: string | null = null;
  readonly abort = new AbortController();
  readonly startedAt = new Date();
  readonly wallStart = performance.now();
  pool: MediaPool | null = null;
  stack: Stack | null = null;
  mesh: OpenMesh | null = null;
  ports: PortPool | null = null;
  readonly metrics = new MetricSet();
  timeline: TimelineRecorder | null = null;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.stopSignal !== null) {
      this.io.err.write(`\n${signal} again: exiting now; embedded rtpengine is killed, calls on remote rtpengine expire there\n`);
      process.exit(EXIT_INTERRUPTED);
    }
    this.stopSignal = signal;
    this.io.err.write(`\n${signal}: stopping arrivals, ending media and deleting calls (${signal} again to force)\n`);
    this.abort.abort();
    this.pool?.stopAll();
  };

  private constructor(
    readonly plan: RunPlan,
    readonly runId: string,
    readonly io: RunIo,
  ) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Status lines on stderr (not with --progress off or --quiet). */
  readonly status = (line: string): void => {
    if (this.plan.progress !== 'off') this.io.err.write(`${line}\n`);
  };

  /**
   * Sets everything up for at most `plan.calls` calls at once. Returns the session, or the exit code when it could
   * not start (having said why on stderr and taken down what it had started).
   */
  static async open(plan: RunPlan, io: RunIo, runId: string): Promise<RunSession | number> {
    const s = new RunSession(plan, runId, io);
    try {
      const nativeMissing = plan.io === 'native' ? nativeTransportError() : null;
      if (nativeMissing !== null) {
        io.err.write(`rtp-bench: --io native: ${nativeMissing.message}\n`);
        await s.close();
        return EXIT_RUN_FAILED;
      }
      const demand = generatorDemand(plan);
      if (demand !== null) s.status(demand);
      s.pool = new MediaPool(plan.threads, buildMediaBank(bankEntries(plan)), plan.io, plan.mediaPriority, timelineChannelName());
      if (plan.target.kind !== 'direct') {
        try {
          s.mesh = await openMesh(plan, s.status);
          s.stack = await Stack.start(plan, s.status, s.mesh?.workers, runId);
        } catch (err) {
          io.err.write(`rtp-bench: ${(err as Error).message}\n`);
          await s.close();
          return EXIT_RUN_FAILED;
        }
      }
      if (s.stopSignal !== null) {
        await s.close();
        return EXIT_INTERRUPTED;
      }
      const inUse = boundUdpPorts(plan.localIp);
      const portChoice = chooseClientPorts(plan.localPorts, plan.calls, inUse, plan.localPortsExplicit);
      if ('error' in portChoice) {
        io.err.write(`rtp-bench: ${portChoice.error}\n`);
        await s.close();
        return EXIT_RUN_FAILED;
      }
      if (portChoice.note !== null) s.status(portChoice.note);
      // A range the user chose is used in order from its bottom; the default one from a random block (PortPool).
      s.ports = new PortPool(portChoice.range, inUse, plan.localPortsExplicit ? 0 : Math.random());
      return s;
    } catch (err) {
      await s.close();
      throw err;
    }
  }

  /** What each call needs (src/call.ts); `endAtEpochMs`: when the calls' media ends (far off for open-ended calls). */
  callContext(endAtEpochMs: number): CallContext {
    return {
      plan: this.plan,
      runId: this.runId,
      stack: this.stack,
      pool: this.pool!,
      ports: this.ports!,
      endAtEpochMs,
      stopping: () => this.stopSignal !== null,
      metrics: this.metrics,
      mesh: this.mesh === null ? null : { provisioner: this.mesh.provisioner, mediaAddress: this.mesh.mediaAddress },
      ioSeen: new Set<string>(),
      prioritySeen: new Set<string>(),
    };
  }

  /** Starts the timeline with t = 0 at `startEpochMs`; `listener` hears each sample as it is taken (--metrics-listen). */
  startTimeline(startEpochMs: number, listener: TimelineListener | null = null): TimelineRecorder {
    this.timeline = new TimelineRecorder(this.pool!.timelineChannel, this.pool!.control, this.stack?.workers ?? [], listener);
    this.timeline.start(startEpochMs);
    return this.timeline;
  }

  /** RTP packets sent and received so far (the generator's cost figure's denominator). */
  packetOps(): number {
    const c = this.pool!.control;
    return c.total(P_SENT) + c.total(P_RECEIVED);
  }

  /** Takes everything down: media threads, workers (their cgroups), the run's Redis keys, the mesh's leftovers. Idempotent. */
  async close(): Promise<void> {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    await this.pool?.close();
    this.pool = null;
    const stack = this.stack;
    this.stack = null;
    // Said even with --quiet: a correct run has none, so each is news (keys of calls rtpengine never deleted).
    for (const warning of (await stack?.stop()) ?? []) this.io.err.write(`rtp-bench: warning: ${warning}\n`);
    if (this.mesh !== null) {
      const mesh = this.mesh;
      this.mesh = null;
      await releaseMesh(mesh, this.runId, this.io.err);
    }
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

function bankEntries(plan: RunPlan): BankEntry[] {
  const entries: BankEntry[] = [];
  const seen = new Set<string>();
  // Every tone a call index can get, not only the first plan.calls: a capacity search or a churn run places calls
  // with indexes far beyond its concurrency, and a call whose tone is not in the bank could not send.
  for (let i = 0; i < TONE_SLOTS; i++) {
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

/** A run's id: its start time to the second and 4 random hex digits, e.g. 20261207-114019-a258. */
export function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${t}-${randomBytes(2).toString('hex')}`;
}
