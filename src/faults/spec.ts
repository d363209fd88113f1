/**
 * --fault: what goes wrong during a run, and when. Pure: the text as typed and what the run is (its workers, its
 * length, where rtpengine runs) in, a list of faults or one FaultSpecError out. Each error names the item at fault,
 * what is wrong with it and what would have been accepted, so plan.ts only puts the flag in front.
 *
 *   kill-worker=1@30s         worker 1 gets SIGKILL 30 s after the run started (its first call's due time); with
 *                             --mesh local its rtpengine and its l7mp sidecar (the worker's pod); with --mesh
 *                             kubernetes its pod is deleted (grace period 0), worker N being the Nth pod by name
 *   restart-worker=1@30s      SIGKILL to rtpengine, then the same command line again (same address, ports, Redis DB)
 *   pause-worker=1@30s:2s     SIGSTOP to rtpengine, SIGCONT 2 s later
 *   loss=5%@30s:10s           5% of the media packets dropped for 10 s (--mesh local: the client namespace's firewall)
 *   kill-proxy=ingress@30s    --mesh local: the ingress proxy gets SIGKILL and is started again, empty; the calls'
 *                             objects are made on it again
 *
 * Workers count from 1, as their addresses do (127.R.S.1 is worker 1).
 */
import { UnitError, parseDecimal, parseDurationMs, quoteValue } from '../units.js';
import { closestName } from '../closest.js';

export const FAULT_KINDS = ['kill-worker', 'restart-worker', 'pause-worker', 'loss', 'kill-proxy'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type WorkerFaultKind = 'kill-worker' | 'restart-worker' | 'pause-worker';

interface Common {
  /** The item as typed, for messages and the results. */
  text: string;
  /** When it happens, ms after the run's start (the first call's due time). */
  atMs: number;
}

export type WorkerFault = Common & {
  kind: WorkerFaultKind;
  /** 1-based, as --workers counts. */
  worker: number;
  /** pause-worker: how long the worker stays stopped; null for kill and restart (they are instants). */
  durationMs: number | null;
};

export type LossFault = Common & { kind: 'loss'; percent: number; durationMs: number };
export type ProxyFault = Common & { kind: 'kill-proxy'; proxy: 'ingress'; durationMs: null };
export type FaultSpec = WorkerFault | LossFault | ProxyFault;

/** Where the run's rtpengine workers and media path are: what decides which faults rtp-bench can make. */
export type FaultSite = 'embedded' | 'remote' | 'direct' | 'mesh-local' | 'mesh-rest' | 'mesh-kubernetes';

export interface FaultContext {
  /** rtpengine workers of the run (--workers for embedded ones); null: known only once the run finds them (the worker
   * pods of --mesh kubernetes), where the runtime refuses a worker number beyond them. */
  workers: number | null;
  /** How long the run lasts from its start, ms: faults must start, and end, inside it. */
  runMs: number;
  site: FaultSite;
}

export class FaultSpecError extends Error {
  override readonly name = 'FaultSpecError';
}

const FORMAT = 'KIND=TARGET@TIME[:DURATION], e.g. kill-worker=1@30s, pause-worker=1@30s:2s or loss=5%@30s:10s';
const DURATION_EXAMPLE = 'a duration like 2s or 500ms';

/** Comma-separated faults (a repeated --fault arrives joined with commas), in the order of their times. */
export function parseFaults(text: string, context: FaultContext): FaultSpec[] {
  const items = text.split(',').map((item) => item.trim());
  if (items.some((item) => item === '')) throw new FaultSpecError(`${quoteValue(text)} has an empty item: expected ${FORMAT}`);
  const faults = items.map((item) => parseFault(item, context)).sort((x, y) => x.atMs - y.atMs);
  checkSequence(faults);
  return faults;
}

export function parseFault(item: string, context: FaultContext): FaultSpec {
  const bad = (problem: string, expected: string): never => {
    throw new FaultSpecError(`${quoteValue(item)} ${problem}: expected ${expected}`);
  };
  const match = /^([^=@]+)=([^@]*)@(.*)$/.exec(item);
  if (!match) bad('is not a fault', FORMAT);
  const [, kindText = '', targetText = '', whenText = ''] = match!;
  const kind = FAULT_KINDS.find((k) => k === kindText.trim().toLowerCase());
  if (kind === undefined) {
    const near = closestName(kindText.trim(), FAULT_KINDS);
    bad(`names an unknown fault ${quoteValue(kindText.trim())}${near === undefined ? '' : ` (did you mean ${near}?)`}`, `one of ${FAULT_KINDS.join(', ')}`);
  }
  const [atText = '', durationText, ...extra] = whenText.split(':');
  if (extra.length > 0) bad('has more than one duration', FORMAT);
  const atMs = time(item, atText, 'time', 'a time after the start like 30s or 1m30s');
  const durationMs = durationText === undefined ? null : time(item, durationText, 'duration', DURATION_EXAMPLE);
  const target = targetText.trim();

  let fault: FaultSpec;
  if (kind === 'kill-worker' || kind === 'restart-worker' || kind === 'pause-worker') {
    const n = parseDecimal(target);
    const workers = context.workers === null ? 'a worker number from 1 (the worker pods in name order)' : `a worker number from 1 to ${context.workers} (--workers ${context.workers})`;
    if (n === undefined || !Number.isInteger(n)) bad(`names worker ${quoteValue(target)}, which is not a whole number`, workers);
    if (n! < 1 || (context.workers !== null && n! > context.workers)) bad(`names worker ${n}, but the run has ${context.workers ?? 0} worker(s)`, workers);
    if (kind === 'pause-worker') {
      if (durationMs === null) bad('has no duration: how long the worker stays paused', `pause-worker=${n}@TIME:DURATION, e.g. pause-worker=${n}@30s:2s`);
    } else if (durationMs !== null) {
      bad(`has a duration, but ${kind} is an instant`, `${kind}=${n}@TIME, e.g. ${kind}=${n}@30s`);
    }
    fault = { kind, worker: n!, atMs, durationMs, text: item };
  } else if (kind === 'loss') {
    const percent = lossPercent(item, target);
    if (durationMs === null) bad('has no duration: how long the loss lasts', `loss=${target}@TIME:DURATION, e.g. loss=${target}@30s:10s`);
    fault = { kind, percent, atMs, durationMs: durationMs!, text: item };
  } else {
    if (target.toLowerCase() !== 'ingress') bad(`names proxy ${quoteValue(target)}`, 'kill-proxy=ingress@TIME (the local mesh has one ingress proxy)');
    if (durationMs !== null) bad('has a duration, but kill-proxy is an instant', 'kill-proxy=ingress@TIME');
    fault = { kind: 'kill-proxy', proxy: 'ingress', atMs, durationMs: null, text: item };
  }
  if (durationMs === 0) bad('lasts 0 ms', `a duration above 0, ${DURATION_EXAMPLE}`);
  const endMs = fault.atMs + (fault.durationMs ?? 0);
  if (fault.atMs >= context.runMs || endMs > context.runMs) {
    const which = fault.atMs >= context.runMs ? `starts at ${seconds(fault.atMs)}` : `ends at ${seconds(endMs)}`;
    bad(`${which}, after the run's end (${seconds(context.runMs)} after its start: the ramp plus --hold, or churn's --duration)`, 'a fault inside the run: an earlier time, or a longer --hold');
  }
  checkSite(fault, context.site);
  return fault;
}

function time(item: string, text: string, what: string, expected: string): number {
  try {
    return parseDurationMs(text);
  } catch (err) {
    if (!(err instanceof UnitError)) throw err;
    throw new FaultSpecError(`${quoteValue(item)} has ${what} ${quoteValue(text)}, which ${err.problem}: expected ${expected}`);
  }
}

/** The share of packets a loss burst drops: above 0 and at most 100 percent; "5%" or "5". */
function lossPercent(item: string, text: string): number {
  const expected = 'a share of packets above 0% and at most 100%, e.g. loss=5%@30s:10s';
  const amount = parseDecimal(text.endsWith('%') ? text.slice(0, -1).trim() : text);
  if (amount === undefined) throw new FaultSpecError(`${quoteValue(item)} has loss ${quoteValue(text)}, which is not a percentage: expected ${expected}`);
  if (!(amount > 0 && amount <= 100)) throw new FaultSpecError(`${quoteValue(item)} has loss ${quoteValue(text)}, which is out of range: expected ${expected}`);
  return amount;
}

/**
 * rtp-bench makes a fault only to what it started and owns: worker faults on the rtpengine daemons it started on
 * this machine, loss inside the network namespaces of its own local mesh. Anything else is refused before the run.
 */
function checkSite(fault: FaultSpec, site: FaultSite): void {
  const refuse = (why: string): never => {
    throw new FaultSpecError(`${quoteValue(fault.text)} ${why}`);
  };
  if (site === 'direct') refuse('cannot apply to calibrate: it has no rtpengine and no media path but its own sockets');
  if (fault.kind === 'kill-proxy') {
    if (site !== 'mesh-local') refuse('needs --mesh local: rtp-bench kills only an ingress proxy it started (that of its own local mesh)');
    return;
  }
  if (fault.kind === 'loss') {
    if (site !== 'mesh-local') {
      refuse(
        'needs --mesh local: rtp-bench drops packets only on a media path it owns (the firewall of its own client network namespace); ' +
          'on the embedded rtpengine the path is this machine\'s loopback, and elsewhere it is not rtp-bench\'s',
      );
    }
    return;
  }
  if (site === 'embedded' || site === 'mesh-local') return;
  if (site === 'remote') refuse('needs a worker rtp-bench started: --rtpengine names instances that are not rtp-bench\'s to kill or pause; drop --rtpengine to use embedded workers');
  if (site === 'mesh-kubernetes') {
    // The pod is deleted through the API (RBAC: delete on pods); a restart or a pause has no API of its own.
    if (fault.kind === 'kill-worker') return;
    refuse(`is not supported with --mesh kubernetes: a worker pod can only be deleted through the API (kill-worker=N@TIME); the StatefulSet makes it again`);
  }
  refuse(`needs a worker rtp-bench started, but the workers of --mesh ${site === 'mesh-rest' ? 'rest' : 'kubernetes'} are not rtp-bench's`);
}

/** A killed worker stays dead: nothing more can happen to it; and one worker can be paused only once at a time. */
function checkSequence(faults: readonly FaultSpec[]): void {
  const killedAt = new Map<number, FaultSpec>();
  const busyUntil = new Map<number, { until: number; by: FaultSpec }>();
  let ingressBusy: { until: number; by: FaultSpec } | null = null;
  for (const fault of faults) {
    if (fault.kind === 'kill-proxy') {
      if (ingressBusy !== null && fault.atMs < ingressBusy.until) {
        throw new FaultSpecError(`${quoteValue(fault.text)} comes while ${quoteValue(ingressBusy.by.text)} may still be starting the ingress again: expected kill-proxy faults ${seconds(INGRESS_RESTART_ALLOWANCE_MS)} or more apart`);
      }
      ingressBusy = { until: fault.atMs + INGRESS_RESTART_ALLOWANCE_MS, by: fault };
      continue;
    }
    if (fault.kind !== 'kill-worker' && fault.kind !== 'restart-worker' && fault.kind !== 'pause-worker') continue;
    const killed = killedAt.get(fault.worker);
    if (killed !== undefined) {
      throw new FaultSpecError(`${quoteValue(fault.text)} comes after ${quoteValue(killed.text)}, which leaves worker ${fault.worker} dead: expected faults on a live worker (restart-worker kills and starts it again)`);
    }
    const busy = busyUntil.get(fault.worker);
    if (busy !== undefined && fault.atMs < busy.until) {
      throw new FaultSpecError(`${quoteValue(fault.text)} starts while ${quoteValue(busy.by.text)} still holds worker ${fault.worker}: expected one fault on a worker at a time`);
    }
    if (fault.kind === 'kill-worker') killedAt.set(fault.worker, fault);
    // A restart takes the worker down until it answers again; 1 s is ample for rtpengine's start (about 0.1 s).
    busyUntil.set(fault.worker, { until: fault.atMs + (fault.durationMs ?? RESTART_ALLOWANCE_MS), by: fault });
  }
}

/** How long after a kill-proxy another one is refused: the ingress takes 2-6 s to answer again (schema compilation). */
const INGRESS_RESTART_ALLOWANCE_MS = 10_000;

/** How long after a restart-worker another fault on the same worker is refused. */
const RESTART_ALLOWANCE_MS = 1000;

function seconds(ms: number): string {
  return `${Math.round(ms) / 1000} s`;
}
