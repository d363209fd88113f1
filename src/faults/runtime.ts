/**
 * A run's faults while it runs: each made at its time (kill, restart, pause a worker; kill the local mesh's ingress;
 * a loss burst), recorded as it happened, and, where a worker died and another holds its calls (--redis), what the
 * control plane does in production: the dead worker's media moved to the survivor, which binds the same ports on its
 * own address (MediaPathControl: the media threads re-point their legs, or, through a mesh, the calls' l7mp objects
 * are moved), and the calls' later ng commands (their delete) sent there. Calls ask it which workers take new calls,
 * where their delete goes and how their media fared (CallFaults).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PortRange } from '../run-plan.js';
import type { Stack, Worker } from '../stack/stack.js';
import type { CallMediaResult } from '../media/task.js';
import type { FaultSpec, LossFault, WorkerFault } from './spec.js';
import type { CallFailover, CallFaults, FaultRecord } from './model.js';
import { callFailover, duringMedia, survivorIndex } from './failover.js';
import { epochNow, type WorkerFaultMaker } from './worker-process.js';
import { addLoss, lossRule, notOwnNamespace, removeLoss } from './loss.js';
import { killWorkerPod, type WorkerPods } from './pod-replacement.js';
import { RedisClient } from '../stack/redis-client.js';
import { removeRunKeys } from '../stack/redis.js';

export interface FaultRuntimeOptions {
  faults: readonly FaultSpec[];
  /** The run's workers (embedded for worker faults); null without rtpengine. */
  stack: Stack | null;
  /** A survivor holds every worker's calls (the workers replicate them through Redis): a kill is a failover. */
  takeover: boolean;
  /** Makes worker faults (and kill-proxy) on the processes rtp-bench started; null: it started none. */
  maker: WorkerFaultMaker | null;
  /** Moves calls' media when a part of its path was replaced; null: nothing can (no media threads). */
  path: MediaPathControl | null;
  /** The clients' media ports (a loss burst drops what leaves them). */
  clientPorts: PortRange;
  runId: string;
  status: (line: string) => void;
  /**
   * --mesh kubernetes: a kill deletes the worker's pod through the API (grace period 0) and follows it until the
   * StatefulSet's new pod of the same name is Ready (src/faults/pod-replacement.ts); null elsewhere. The call's l7mp
   * objects pin its media to that name: with Redis per ordinal (kubernetes/redis/) the new rtpengine restores its
   * calls from its DB and their media can resume there.
   */
  workerPods?: WorkerPods | null;
}

/** A change to the calls' media path: how many calls or legs it moved, when it took effect, what went wrong. */
export interface PathChange {
  /** Legs whose media goes elsewhere now (two per call). */
  legs: number;
  /** When the last of it took effect, epoch ms; null: nothing was changed. */
  appliedEpochMs: number | null;
  /** Whatever did not go as it should, in words (threads that did not answer, calls that could not be moved). */
  problems: string[];
}

/**
 * What the control plane does to the media path when a part of it is replaced: for the embedded stack the media
 * threads re-point their legs' sockets from the dead worker's address to the survivor's; through a mesh the calls'
 * l7mp objects are moved (src/mesh/rest/provisioner.ts moveCalls) and, after the ingress proxy came back empty, made
 * again on it.
 */
export interface MediaPathControl {
  move(dead: Worker, survivor: Worker): Promise<PathChange>;
  /** The ingress proxy was restarted, empty: every live call's objects on it made again; null: no ingress of the run's own. */
  restoreIngress: (() => Promise<PathChange>) | null;
  /** A worker is dead for good: whatever of the path was on it went with it (a mesh's sidecar and its rules). */
  gone(worker: Worker): void;
  close(): void;
}

/** One planned fault and what became of it. */
interface Planned {
  spec: FaultSpec;
  record: FaultRecord;
  started: boolean;
  /** When it was made (the signal), and when its worker was certainly down (FailoverInput.boundaryEpochMs), epoch ms. */
  atEpochMs: number | null;
  downEpochMs: number | null;
  /** Worker faults: the worker (0-based index) and who carries its calls afterwards (null: nobody). */
  worker: Worker | null;
  index: number;
  carrier: Worker | null;
}

export class FaultRuntime implements CallFaults {
  readonly unavailable = new Set<Worker>();
  /** A dead worker -> the survivor that took its calls. */
  private readonly routes = new Map<Worker, Worker>();
  /** Workers that died for good (0-based indexes). */
  private readonly dead = new Set<number>();
  private readonly planned: Planned[];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running: Promise<void>[] = [];
  private readonly abort = new AbortController();
  private startEpochMs = Number.NaN;

  constructor(private readonly o: FaultRuntimeOptions) {
    this.planned = o.faults.map((spec) => {
      const index = 'worker' in spec ? spec.worker - 1 : -1;
      const worker = index >= 0 ? (o.stack?.workers[index] ?? null) : null;
      return {
        spec,
        record: { kind: spec.kind, spec: spec.text, target: targetOf(spec, worker, o.clientPorts), atMs: null, atT: null, durationMs: null, done: false, note: '', failover: null },
        started: false,
        atEpochMs: null,
        downEpochMs: null,
        worker,
        index,
        carrier: null,
      };
    });
  }

  /** Arms every fault at its time after `startEpochMs` (the run's start, t = 0 of its timeline). */
  start(startEpochMs: number): void {
    this.startEpochMs = startEpochMs;
    for (const p of this.planned) {
      const timer = setTimeout(() => this.running.push(this.make(p)), Math.max(0, startEpochMs + p.spec.atMs - epochNow()));
      this.timers.push(timer);
    }
  }

  watchFrom(worker: Worker): number | null {
    const next = this.planned.find((p) => hits(p, worker) && !p.started);
    return next === undefined ? null : this.startEpochMs + next.spec.atMs;
  }

  route(worker: Worker): Worker {
    let owner = worker;
    for (let next = this.routes.get(owner); next !== undefined; next = this.routes.get(owner)) owner = next;
    return owner;
  }

  failover(worker: Worker, media: CallMediaResult, deleted: boolean): CallFailover | null {
    const hit = this.planned.find((p) => hits(p, worker) && p.atEpochMs !== null && p.downEpochMs !== null && duringMedia(p.atEpochMs, media));
    if (hit === undefined) return null;
    const proxy = hit.spec.kind === 'kill-proxy';
    return callFailover({
      fault: hit.spec.text,
      worker: proxy ? INGRESS : worker.name,
      survivor: proxy ? (hit.record.done ? INGRESS : null) : (hit.carrier?.name ?? null),
      faultAtEpochMs: hit.atEpochMs!,
      boundaryEpochMs: hit.downEpochMs!,
      media,
      deleted,
    });
  }

  /**
   * No more faults: those not yet made never will be, a paused worker is resumed and a loss rule removed at once
   * (an interrupted run must still delete its calls). Safe to call again.
   */
  async halt(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.abort.abort();
    await Promise.all(this.running);
  }

  /**
   * Once every call is deleted: halts, removes the keys a dead worker left in its Redis DB for the calls a survivor
   * took (see cleanUpAfter), and returns the record of every fault, in time order.
   */
  async finish(): Promise<FaultRecord[]> {
    await this.halt();
    for (const p of this.planned) {
      if (!p.started) p.record.note = 'not made: the run ended before its time';
      else if (p.carrier !== null && p.carrier !== p.worker) await this.cleanUpAfter(p);
    }
    return this.planned.map((p) => p.record);
  }

  /**
   * A survivor owns the calls it took (--active-switchover) and its delete removes them from its own DB, not from
   * the dead worker's: those keys would live on (a day by default) and a worker started again on that DB would
   * restore calls that ended long ago. A control plane removes them; only after the calls are gone, since the
   * survivor follows that DB and would drop a live call on its DEL.
   */
  private async cleanUpAfter(p: Planned): Promise<void> {
    const redis = this.o.stack?.redis ?? null;
    const db = p.worker?.redisDb ?? null;
    if (redis === null || db === null) return;
    try {
      const client = await RedisClient.connect({ host: redis.host, port: redis.port });
      try {
        const removed = await removeRunKeys(client, [db], this.o.runId);
        p.record.note += `; after the run, ${removed} key(s) its calls left in its Redis DB ${db} removed`;
      } finally {
        await client.close();
      }
    } catch (err) {
      p.record.note += `; its calls' keys in Redis DB ${db} could not be removed: ${(err as Error).message}`;
    }
  }

  close(): void {
    this.o.path?.close();
  }

  private async make(p: Planned): Promise<void> {
    p.started = true;
    try {
      if (p.spec.kind === 'loss') await this.loss(p, p.spec);
      else if (p.spec.kind === 'kill-proxy') await this.restartIngress(p);
      else await this.workerFault(p, p.spec);
    } catch (err) {
      p.record.done = false;
      p.record.note = `${p.record.note ? `${p.record.note}; ` : ''}failed: ${(err as Error).message}`;
    }
    this.o.status(`fault ${p.spec.text}${p.record.atT === null ? '' : ` at ${p.record.atT.toFixed(3)} s`}: ${p.record.note}`);
  }

  private made(p: Planned, atEpochMs: number, downEpochMs: number | null = null): void {
    p.atEpochMs = atEpochMs;
    p.downEpochMs = downEpochMs;
    p.record.atMs = atEpochMs;
    p.record.atT = (atEpochMs - this.startEpochMs) / 1000;
  }

  private async workerFault(p: Planned, spec: WorkerFault): Promise<void> {
    const { stack, maker } = this.o;
    const worker = p.worker;
    if (this.o.workerPods != null && spec.kind === 'kill-worker') return this.deleteWorkerPod(p, spec);
    if (stack === null || worker === null || maker === null) throw new Error(`worker ${spec.worker} is not an rtpengine rtp-bench started`);
    const calls = worker.activeCalls;
    this.unavailable.add(worker);
    if (spec.kind === 'pause-worker') {
      const paused = await maker.pause(p.index);
      this.made(p, paused.atEpochMs, paused.downEpochMs);
      p.carrier = worker;
      // The fault's own length, cut short only when the run is stopped.
      await sleep(spec.durationMs!, undefined, { signal: this.abort.signal }).catch(() => undefined);
      p.record.durationMs = (await maker.resume(p.index)) - p.atEpochMs!;
      this.unavailable.delete(worker);
      const cut = this.abort.signal.aborted;
      p.record.done = !cut;
      p.record.note = `SIGSTOP to ${paused.what} with ${calls} call(s), SIGCONT after ${p.record.durationMs.toFixed(1)} ms${cut ? ' (early: the run was stopped)' : ''}`;
      return;
    }
    if (spec.kind === 'restart-worker') {
      const r = await maker.restart(p.index);
      this.made(p, r.atEpochMs, r.downEpochMs);
      p.carrier = worker;
      p.record.durationMs = r.readyEpochMs - r.atEpochMs;
      this.unavailable.delete(worker);
      p.record.done = true;
      p.record.note =
        `SIGKILL to ${r.what} with ${calls} call(s); started again with the same command line as pid ${r.pid}, answering ng ${p.record.durationMs.toFixed(0)} ms after the kill` +
        (this.o.takeover ? ' (it restores its calls from Redis)' : ' (without --redis its calls are gone)');
      return;
    }
    const killed = await maker.kill(p.index);
    this.made(p, killed.atEpochMs, killed.downEpochMs);
    this.dead.add(p.index);
    this.o.path?.gone(worker);
    p.record.done = true;
    p.record.note = `SIGKILL to ${killed.what} with ${calls} call(s)`;
    if (!this.o.takeover) {
      p.record.note += '; no survivor holds its calls (no --redis): they are lost';
      return;
    }
    const s = survivorIndex(p.index, stack.workers.length, this.dead);
    if (s === null) {
      p.record.note += '; no worker is left to take its calls: they are lost';
      return;
    }
    await this.takeOver(p, worker, stack.workers[s]!, s);
  }

  /**
   * kill-worker with --mesh kubernetes: the pod deleted through the API and followed until its replacement is Ready
   * (killWorkerPod: why the boundary is where it is, and the worker re-aimed at the new pod). Its calls' media is not
   * moved elsewhere: their objects pin it to the pod's name, which the StatefulSet's new pod takes, so a call survives
   * when its media comes back through that pod before it ends. The wait ends with the run (halt).
   */
  private async deleteWorkerPod(p: Planned, spec: WorkerFault): Promise<void> {
    const workers = this.o.stack?.workers ?? [];
    const worker = p.worker;
    if (worker === null || worker.mesh === null) throw new Error(`worker ${spec.worker} does not exist: the run found ${workers.length} worker pod(s)`);
    p.carrier = worker;
    const killed = await killWorkerPod(this.o.workerPods!, worker, {
      signal: this.abort.signal,
      takesCalls: (yes) => {
        if (yes) this.unavailable.delete(worker);
        else this.unavailable.add(worker);
      },
      made: (atEpochMs) => {
        // No call's media counts as back until the boundary is known: a boundary at infinity.
        this.made(p, atEpochMs, Number.POSITIVE_INFINITY);
        this.o.status(`fault ${spec.text} at ${p.record.atT!.toFixed(3)} s: pod ${worker.mesh!.name} deleted, following its replacement`);
      },
      boundary: (epochMs) => {
        p.downEpochMs = epochMs;
      },
    });
    p.record.done = killed.done;
    p.record.note = killed.note;
    p.record.replacement = killed.replacement;
  }

  /** What the control plane does when a worker died: its calls' media and later commands go to the survivor. */
  private async takeOver(p: Planned, dead: Worker, survivor: Worker, survivorIdx: number): Promise<void> {
    p.carrier = survivor;
    // Both at once (no await between): a call ending now decrements the count where route() sends it.
    this.routes.set(dead, survivor);
    survivor.activeCalls += dead.activeCalls;
    dead.activeCalls = 0;
    const which = this.o.stack!.workers.length > 2 ? ` (the next live worker after it, worker ${survivorIdx + 1})` : '';
    p.record.note += `; worker ${survivorIdx + 1} (${survivor.name})${which} took its calls from Redis`;
    if (this.o.path === null) return;
    const change = await this.o.path.move(dead, survivor);
    this.notePathChange(p, change, survivor.name, dead.mesh === null ? `media re-pointed to ${survivor.local?.address ?? survivor.name} (same ports)` : `its calls' l7mp objects moved to ${survivor.name}`);
  }

  /**
   * kill-proxy=ingress: the local mesh's ingress killed and started again (empty, as a restarted pod would be), then
   * every live call's objects made on it again, as the operator would for a new ingress pod. Every call's media
   * stops from the kill until its listeners are back.
   */
  private async restartIngress(p: Planned): Promise<void> {
    const restart = this.o.maker?.restartIngress ?? null;
    if (restart === null) throw new Error('this run has no ingress proxy of its own to kill (kill-proxy needs --mesh local)');
    const r = await restart();
    this.made(p, r.atEpochMs, r.downEpochMs);
    p.record.durationMs = r.readyEpochMs - r.atEpochMs;
    p.record.done = true;
    p.record.note = `SIGKILL to ${r.what}; started again as pid ${r.pid}, answering REST ${p.record.durationMs.toFixed(0)} ms after the kill`;
    const restore = this.o.path?.restoreIngress ?? null;
    if (restore === null) return;
    this.notePathChange(p, await restore(), INGRESS, 'the calls\' objects on it made again');
  }

  private notePathChange(p: Planned, change: PathChange, carrier: string, what: string): void {
    p.record.note += `; ${what}`;
    if (change.appliedEpochMs !== null) {
      const repointMs = change.appliedEpochMs - p.atEpochMs!;
      p.record.note += ` ${repointMs.toFixed(1)} ms after the kill, ${change.legs} leg(s)`;
      p.record.failover = { survivor: carrier, repointMs, legs: change.legs };
    }
    if (change.problems.length > 0) p.record.note += `; ${change.problems.join('; ')}`;
  }

  private async loss(p: Planned, spec: LossFault): Promise<void> {
    const why = notOwnNamespace(this.o.runId);
    if (why !== null) throw new Error(why);
    const rule = lossRule(this.o.clientPorts, spec.percent, `rtp-bench-${this.o.runId}`);
    await addLoss(rule);
    this.made(p, epochNow());
    try {
      await sleep(spec.durationMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
    } finally {
      await removeLoss(rule);
    }
    p.record.durationMs = epochNow() - p.atEpochMs!;
    p.record.done = true;
    p.record.note = `${spec.percent}% of the media packets arriving at the clients dropped (iptables statistic match in the client namespace) for ${p.record.durationMs.toFixed(0)} ms`;
  }
}

/** How CallFailover names the ingress proxy, as the part a kill-proxy fault hit and that carried the calls after it. */
const INGRESS = 'ingress proxy';

/** Whether a fault concerns calls on `worker`: one on that worker, or on the ingress every call's media crosses. */
function hits(p: Planned, worker: Worker): boolean {
  return p.worker === worker || p.spec.kind === 'kill-proxy';
}

function targetOf(spec: FaultSpec, worker: Worker | null, ports: PortRange): string {
  if (spec.kind === 'loss') return `media path: client namespace, UDP to ports ${ports.min}-${ports.max}`;
  if (spec.kind === 'kill-proxy') return 'ingress proxy';
  return `worker ${spec.worker}${worker === null ? '' : ` (${worker.name})`}`;
}
