/**
 * The REST provisioner: programs already-running l7mp proxies directly, with the requests the l7mp Kubernetes operator
 * would send them (operator.ts: addRequests, and restDeleteRequests for removal), no Kubernetes involved.
 *
 * provision(call):
 * - The call's objects (objects.ts callObjects) are created kind by kind in creation order: every Rule, then every
 *   Target, then every VirtualService; a kind starts only once every request of the previous kind was answered
 *   (that order is what makes singleton listeners lossless, docs/l7mp-behaviour.md#creation-and-deletion-order).
 *   Within a kind the objects go out in parallel; the requests of one object for one proxy are sent one after the
 *   other (a Target's cluster before its endpoint), those for different proxies in parallel.
 * - Every request waits for one of `concurrency` slots shared by all calls (the bound on requests in flight towards
 *   the proxies). A connection error, a timeout or a 5xx is retried with exponential backoff; any other answer that
 *   isAccepted refuses (l7mp answers 400 to semantic errors: a missing rule list, a bad name...) fails at once.
 * - acceptedMs: from the start of provision() until every request was answered, less throttledMs: the time the
 *   call waited for a session-setup slot (rtp-bench's own bound on calls connecting at once). Waits for a request
 *   slot of the REST client are still inside it.
 * - Singleton listeners connect to the worker by themselves once created: readiness is when each ingress proxy lists,
 *   in GET /api/v1/sessions, a session of each of the call's listeners with status CONNECTED and destination status
 *   READY. One poller per ingress proxy serves every call waiting (one GET at a time per ingress, whatever the
 *   number of calls provisioning). readyMs: from the start of provision() to the poll answer that showed it ready.
 *   Server listeners make their session on the first packet only: readyMs null.
 * - With singleton listeners, at most maxSessionSetups calls are between creating their listeners and being seen
 *   ready; the others wait before their VirtualServices (a burst of session setups makes l7mp 0.5.7 workers exit).
 * - Any failure (a refusal, a proxy that does not answer, readiness not reached by the deadline, the run being
 *   released meanwhile) rolls back what the call created (deletes in deletion order) and throws a MeshError that
 *   names the proxy, the request and the proxy's answer, and says what the rollback did.
 *
 * release(call) deletes the call's objects kind by kind in deletion order (VirtualServices, Targets, Rules) with
 * restDeleteRequests (a compact listener's inline cluster goes first: l7mp 0.5.7 crashes on the operator's own
 * delete of a listener with a live session). Objects already gone are not an error. A listener whose session is
 * still connecting or retrying is deleted only once that session has settled (sessionSettled: l7mp 0.5.7 exits
 * otherwise); see settleCheck for when this is checked. releaseRun(runId) releases every call of the run that this
 * provisioner created and has not released. What a crashed run left on the proxies is found and removed by
 * leftovers.ts.
 */
import type { MeshCall, MeshOptions, MeshWorker } from '../model.js';
import { MeshError, type MeshCost, type MeshProvisioner, type ProvisionTiming } from '../provisioner.js';
import { callObjects, CREATION_ORDER, DELETION_ORDER, deletionOrder, proxyNameOf, type L7mpObject } from '../objects.js';
import { addRequests, endpointMoveRequests, matchingProxies, restDeleteRequests, type MeshProxy, type RestRequest } from './operator.js';
import { ConcurrencyLimit } from '../rate-limit.js';
import { combined, errorText, RestClient, runSequences, sequencesOf, type RestClientOptions, type RestRequestStats } from './client.js';
import {
  allConnected,
  allSettled,
  DEFAULT_READY_POLL_INTERVAL_MS,
  describeNotReady,
  describeUnsettled,
  SessionPoller,
  type Waiter,
} from './sessions.js';
import { findLeftoversWith, removeLeftoversWith, type Leftover, type LeftoverRemovalOptions } from './leftovers.js';

export const DEFAULT_READY_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_SESSION_SETUPS = 8;
/** Calls moveCalls moves at once (see there). */
const MOVES_AT_ONCE = 2;

export interface RestProvisionerOptions extends RestClientOptions {
  /** The ingress gateway proxies and the workers' sidecars, with their labels (selectors pick among them). */
  proxies: readonly MeshProxy[];
  mesh: MeshOptions;
  /** Singleton listeners: how long provision() waits for the ingress to show the call's sessions connected, ms. */
  readyTimeoutMs?: number;
  /**
   * Singleton listeners: how many calls may have their sessions being set up at once (from their first listener's
   * creation until their sessions are seen connected); the others wait before creating their listeners. Every new
   * session sends a JSONSocket request to the worker, which must answer within the route's retry timeout (250 ms by
   * default): in a burst, a busy worker answers late, the ingress has already retried from a new socket, the late
   * answer draws an ICMP error, and l7mp 0.5.7 leaves one such error unhandled and exits (seen with 50 calls, 200
   * sessions, provisioned at once on a 2-core box). Default DEFAULT_MAX_SESSION_SETUPS; Infinity: unbounded.
   */
  maxSessionSetups?: number;
  /** Pause between two polls of GET /api/v1/sessions of one ingress, ms. */
  pollIntervalMs?: number;
  /**
   * Before deleting listeners, wait until none of their sessions is still connecting or retrying (sessionSettled:
   * deleting such a listener crashes l7mp 0.5.7). 'unready' (default): for calls whose sessions were not seen
   * connected (server listeners, a failed provision's rollback, calls this provisioner did not make); 'always': for
   * every call (a session seen connected goes back to retrying when its worker stops answering); 'never'.
   * Each check waits for one poll of the ingress's sessions, shared by all calls waiting.
   */
  settleCheck?: 'unready' | 'always' | 'never';
  /** How long to wait for sessions to settle, ms; default: the ingress route's whole retry budget
   * (2 x timeout x (num_retries + 1), plus 2 s). Listeners whose sessions have not settled by then are not deleted. */
  settleTimeoutMs?: number;
}

/** What RestProvisioner.moveCalls did. */
export interface CallsMoved {
  calls: number;
  requests: number;
  /** When the last call's last request was answered, epoch ms; null: none was moved. */
  appliedEpochMs: number | null;
  /** "<call-id>: why", one per call that could not be moved. */
  failed: string[];
}

// ---- The provisioner ------------------------------------------------------------------------------------------

interface Tracked {
  call: MeshCall;
  /** Set while provision() runs. */
  provisioning: Promise<unknown> | null;
  /** Whether every session of the call was seen connected. */
  ready: boolean;
  /** Set once release() began: the call is ending, nothing more is made for it. */
  releasing: boolean;
  waiters: Set<{ poller: SessionPoller; waiter: Waiter }>;
}

/** How long a session of these listeners can keep retrying (see RestProvisionerOptions.settleTimeoutMs). */
function retryBudgetMs(objects: readonly L7mpObject[]): number {
  let budget = 0;
  for (const o of objects) {
    if (o.kind !== 'VirtualService' || !('rules' in o.spec.listener)) continue;
    for (const r of o.spec.listener.rules) {
      const retry = r.action.route?.retry;
      if (retry) budget = Math.max(budget, 2 * (retry.timeout ?? 2000) * ((retry.num_retries ?? 1) + 1));
    }
  }
  return budget + 2000;
}

export class RestProvisioner implements MeshProvisioner {
  readonly kind = 'rest' as const;
  /** The proxies requests go to: every one given, less those forgotten (forgetProxy). */
  proxies: readonly MeshProxy[];
  readonly mesh: MeshOptions;
  readonly readyTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly settleCheck: NonNullable<RestProvisionerOptions['settleCheck']>;
  private readonly settleTimeoutMs: number | undefined;
  private readonly client: RestClient;
  /** Calls whose singleton sessions are being set up (listeners created, not yet seen connected); null: unbounded. */
  private readonly setupSlots: ConcurrencyLimit | null;
  private readonly pollers = new Map<string, SessionPoller>();
  /** runId -> callId -> what this provisioner created and has not released yet. */
  private readonly live = new Map<string, Map<string, Tracked>>();
  private readonly releasing = new Set<string>();
  private closed = false;

  constructor(o: RestProvisionerOptions) {
    this.proxies = o.proxies.map((p) => ({ ...p, labels: { ...p.labels } }));
    this.mesh = o.mesh;
    this.readyTimeoutMs = o.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.pollIntervalMs = o.pollIntervalMs ?? DEFAULT_READY_POLL_INTERVAL_MS;
    this.settleCheck = o.settleCheck ?? 'unready';
    this.settleTimeoutMs = o.settleTimeoutMs;
    if (!(this.readyTimeoutMs > 0)) throw new RangeError(`readyTimeoutMs must be positive, is ${this.readyTimeoutMs}`);
    if (!(this.pollIntervalMs >= 0)) throw new RangeError(`pollIntervalMs must be >= 0, is ${this.pollIntervalMs}`);
    if (this.settleTimeoutMs !== undefined && !(this.settleTimeoutMs > 0)) throw new RangeError(`settleTimeoutMs must be positive, is ${this.settleTimeoutMs}`);
    this.client = new RestClient(this.proxies, o);
    const setups = o.maxSessionSetups ?? DEFAULT_MAX_SESSION_SETUPS;
    if (!(setups >= 1)) throw new RangeError(`maxSessionSetups must be >= 1 (Infinity: unbounded), is ${setups}`);
    this.setupSlots = Number.isFinite(setups) ? new ConcurrencyLimit(Math.floor(setups)) : null;
  }

  get concurrency(): number {
    return this.client.concurrency;
  }

  /** Requests sent so far, in flight now, and the most in flight at once. */
  requestStats(): RestRequestStats {
    return { ...this.client.stats };
  }

  resetMaxInFlight(): void {
    this.client.resetMaxInFlight();
  }

  /** Calls provisioned (or provisioning) and not released, per run. */
  liveCalls(runId?: string): MeshCall[] {
    const runs = runId === undefined ? [...this.live.values()] : [this.live.get(runId) ?? new Map<string, Tracked>()];
    return runs.flatMap((m) => [...m.values()].map((t) => t.call));
  }

  private assertOpen(): void {
    if (this.closed) throw new MeshError('the REST provisioner is closed');
  }

  private addRequestsOf(obj: L7mpObject): RestRequest[] {
    const requests = addRequests(obj, this.proxies, this.mesh);
    const name = proxyNameOf(obj, this.mesh.naming);
    if (requests.length === 0) {
      throw new MeshError(
        `no l7mp proxy matches the selector of ${obj.kind} ${name} (${JSON.stringify(obj.spec.selector)}); the proxies: ${this.proxies.map((p) => `${p.name} ${JSON.stringify(p.labels)}`).join(', ')}`,
      );
    }
    if (obj.kind === 'Target' && obj.spec.cluster.endpoints?.some((e) => 'selector' in e) && !requests.some((r) => r.path.endsWith('/endpoints'))) {
      const selectors = obj.spec.cluster.endpoints.flatMap((e) => ('selector' in e ? [JSON.stringify(e.selector)] : []));
      throw new MeshError(`no l7mp proxy matches the endpoint selector of Target ${name} (${selectors.join(', ')}): the cluster would have no endpoint`);
    }
    return requests;
  }

  private track(call: MeshCall): Tracked {
    let run = this.live.get(call.runId);
    if (!run) this.live.set(call.runId, (run = new Map()));
    const existing = run.get(call.callId);
    if (existing?.provisioning) throw new MeshError(`call ${call.callId} of run ${call.runId} is already being provisioned`);
    const t: Tracked = existing ?? { call, provisioning: null, ready: false, releasing: false, waiters: new Set() };
    t.call = call;
    t.ready = false;
    t.releasing = false;
    run.set(call.callId, t);
    return t;
  }

  private tracked(call: MeshCall): Tracked | undefined {
    return this.live.get(call.runId)?.get(call.callId);
  }

  private untrack(call: MeshCall): void {
    const run = this.live.get(call.runId);
    if (!run) return;
    run.delete(call.callId);
    if (run.size === 0) this.live.delete(call.runId);
  }

  private what(obj: L7mpObject, call: MeshCall): string {
    return `${obj.kind} ${proxyNameOf(obj, this.mesh.naming)} of call ${call.callId}`;
  }

  async provision(call: MeshCall): Promise<ProvisionTiming & MeshCost> {
    this.assertOpen();
    if (this.releasing.has(call.runId)) throw new MeshError(`run ${call.runId} is being released: call ${call.callId} is not provisioned`);
    const t0 = performance.now();
    const objects = callObjects(call, this.mesh);
    const plan = objects.map((obj) => ({ obj, requests: this.addRequestsOf(obj) }));
    const tracked = this.track(call);
    const cost: MeshCost = { objects: objects.length, requests: 0 };
    const count = (n: number): void => {
      cost.requests += n;
    };
    const attempted = new Set<L7mpObject>();
    const singleton = this.mesh.listenerMode === 'singleton';
    let releaseSetupSlot: (() => void) | null = null;
    let throttledMs = 0;
    let inSetup = false;
    const endSetup = (): void => {
      if (inSetup) this.client.stats.sessionSetups--;
      releaseSetupSlot?.();
      inSetup = false;
      releaseSetupSlot = null;
    };
    const work = (async (): Promise<ProvisionTiming & MeshCost> => {
      try {
        for (const kind of CREATION_ORDER) {
          if (kind === 'VirtualService' && singleton && this.setupSlots) {
            // Singleton sessions start connecting as soon as their listener exists: bound how many calls do that at once.
            const waitFrom = performance.now();
            releaseSetupSlot = await this.setupSlots.acquire();
            throttledMs += performance.now() - waitFrom;
          }
          if (kind === 'VirtualService' && singleton) {
            inSetup = true;
            const st = this.client.stats;
            st.maxSessionSetups = Math.max(st.maxSessionSetups, ++st.sessionSetups);
          }
          if (this.releasing.has(call.runId) || this.closed) throw new MeshError(`run ${call.runId} was released while call ${call.callId} was being provisioned`);
          const sequences = plan
            .filter((p) => p.obj.kind === kind)
            .flatMap((p) => sequencesOf(p.requests, this.what(p.obj, call), () => attempted.add(p.obj)));
          const failures = await runSequences(this.client, sequences, count);
          if (failures.length > 0) throw combined(failures);
        }
        const acceptedMs = performance.now() - t0 - throttledMs;
        let readyMs: number | null = null;
        if (singleton) {
          const at = await this.waitReady(call, objects, tracked);
          readyMs = at - t0 - throttledMs;
          tracked.ready = true;
        }
        return { acceptedMs, throttledMs, readyMs, ...cost };
      } catch (err) {
        // A rollback may wait long for sessions to settle: it creates none, so it holds no setup slot.
        endSetup();
        const cause = err instanceof MeshError ? err : new MeshError(errorText(err), null, { cause: err });
        throw await this.rollback(call, objects.filter((o) => attempted.has(o)), cause);
      } finally {
        endSetup();
      }
    })();
    tracked.provisioning = work;
    try {
      return await work;
    } finally {
      tracked.provisioning = null;
    }
  }

  /** Deletes `created` (a failed provision's objects); the MeshError to throw, saying what the rollback did. */
  private async rollback(call: MeshCall, created: L7mpObject[], cause: MeshError): Promise<MeshError> {
    if (created.length === 0) {
      this.untrack(call);
      return new MeshError(`${cause.message} (call ${call.callId}: nothing was created)`, cause.status, { cause });
    }
    const failures = await this.deleteObjects(call, created, true, () => undefined);
    if (failures.length === 0) {
      this.untrack(call);
      return new MeshError(`${cause.message} (call ${call.callId}: rolled back, its ${created.length} object${created.length === 1 ? '' : 's'} removed again)`, cause.status, { cause });
    }
    // Left tracked: releaseRun tries again.
    const f = combined(failures);
    return new MeshError(`${cause.message} (call ${call.callId}: the rollback failed, objects may be left behind: ${f.message})`, cause.status, { cause });
  }

  /**
   * Registers a waiter with the ingress's poller: resolves with the time of the poll that satisfied it, rejects with
   * onTimeout's error after timeoutMs. cancel() withdraws it.
   */
  private watch(
    proxyName: string,
    listeners: readonly string[],
    satisfied: Waiter['satisfied'],
    timeoutMs: number,
    onTimeout: (w: Waiter) => MeshError,
    tracked: Tracked | undefined,
  ): { promise: Promise<number>; cancel: () => void } {
    let poller = this.pollers.get(proxyName);
    if (!poller) this.pollers.set(proxyName, (poller = new SessionPoller(this.client, proxyName, this.pollIntervalMs)));
    const p = poller;
    let timer: NodeJS.Timeout | undefined;
    let entry: { poller: SessionPoller; waiter: Waiter } | undefined;
    const promise = new Promise<number>((resolve, reject) => {
      const waiter: Waiter = {
        listeners,
        satisfied,
        seen: null,
        pollError: null,
        polls: 0,
        failedPolls: 0,
        done: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      timer = setTimeout(() => {
        p.remove(waiter);
        waiter.fail(onTimeout(waiter));
      }, timeoutMs);
      entry = { poller: p, waiter };
      tracked?.waiters.add(entry);
      p.add(waiter);
    });
    const cancel = (): void => {
      if (!entry) return;
      clearTimeout(timer);
      entry.poller.remove(entry.waiter);
      tracked?.waiters.delete(entry);
    };
    return { promise, cancel };
  }

  /** The call's listener names per ingress proxy that holds them. */
  private listenersByIngress(objects: readonly L7mpObject[]): Map<string, string[]> {
    const byIngress = new Map<string, string[]>();
    for (const o of objects) {
      if (o.kind !== 'VirtualService') continue;
      const name = proxyNameOf(o, this.mesh.naming);
      for (const p of matchingProxies(o.spec.selector, this.proxies)) {
        const list = byIngress.get(p.name);
        if (list) list.push(name);
        else byIngress.set(p.name, [name]);
      }
    }
    return byIngress;
  }

  /** Resolves with the time the last ingress was seen ready. */
  private async waitReady(call: MeshCall, objects: readonly L7mpObject[], tracked: Tracked): Promise<number> {
    const watches = [...this.listenersByIngress(objects)].map(([proxyName, listeners]) =>
      this.watch(
        proxyName,
        listeners,
        allConnected(listeners),
        this.readyTimeoutMs,
        (w) =>
          new MeshError(
            `call ${call.callId}: the ingress l7mp proxy "${proxyName}" did not show the call's sessions CONNECTED with destination READY within ${this.readyTimeoutMs} ms (${w.polls} polls of GET /api/v1/sessions): ${describeNotReady(w)}`,
          ),
        tracked,
      ),
    );
    try {
      return Math.max(...(await Promise.all(watches.map((w) => w.promise))));
    } finally {
      for (const w of watches) w.cancel();
    }
  }

  /**
   * Waits until the sessions of the listeners on each ingress have settled (sessionSettled); resolves with the
   * (proxy, listener) pairs that did not within the settle timeout, with the reason.
   */
  private async waitSettled(call: MeshCall, objects: readonly L7mpObject[]): Promise<{ unsettled: Set<string>; errors: MeshError[] }> {
    const timeoutMs = this.settleTimeoutMs ?? retryBudgetMs(objects);
    const unsettled = new Set<string>();
    const errors: MeshError[] = [];
    const tracked = this.tracked(call);
    await Promise.all(
      [...this.listenersByIngress(objects)].map(async ([proxyName, listeners]) => {
        const w = this.watch(
          proxyName,
          listeners,
          allSettled,
          timeoutMs,
          (waiter) =>
            new MeshError(
              `call ${call.callId}: listeners not deleted from the ingress l7mp proxy "${proxyName}": their sessions were still connecting or retrying after ${timeoutMs} ms, and l7mp 0.5.7 exits when such a session is deleted (${describeUnsettled(waiter)})`,
            ),
          tracked,
        );
        try {
          await w.promise;
        } catch (err) {
          for (const l of listeners) unsettled.add(`${proxyName}\n${l}`);
          errors.push(err instanceof MeshError ? err : new MeshError(errorText(err), null, { cause: err }));
        } finally {
          w.cancel();
        }
      }),
    );
    return { unsettled, errors };
  }

  /**
   * Deletes the objects kind by kind in deletion order; resolves with the failures (objects already gone are none).
   * With `settle`, listeners are deleted only once their sessions have settled (see settleCheck).
   */
  private async deleteObjects(call: MeshCall, objects: readonly L7mpObject[], settle: boolean, count: (n: number) => void): Promise<MeshError[]> {
    const failures: MeshError[] = [];
    const ordered = deletionOrder(objects);
    let unsettled = new Set<string>();
    if (settle && ordered.some((o) => o.kind === 'VirtualService')) {
      const r = await this.waitSettled(call, ordered);
      unsettled = r.unsettled;
      failures.push(...r.errors);
    }
    for (const kind of DELETION_ORDER) {
      const sequences = ordered
        .filter((o) => o.kind === kind)
        .flatMap((o) => {
          const name = proxyNameOf(o, this.mesh.naming);
          const seqs = sequencesOf(restDeleteRequests(o, this.proxies, this.mesh), this.what(o, call));
          // An unsettled listener stays, and so does a compact one's inline cluster (deleted in the same sequence).
          return o.kind === 'VirtualService' ? seqs.filter((seq) => !unsettled.has(`${seq.proxy}\n${name}`)) : seqs;
        });
      // Later kinds are deleted even when an earlier one failed: what can go, goes (all deletes are idempotent).
      failures.push(...(await runSequences(this.client, sequences, count)));
    }
    return failures;
  }

  /**
   * A proxy is gone with everything on it (a killed worker's pod, its sidecar's rules with it): no request goes there
   * any more, so releasing its calls does not wait for a proxy that will never answer. New calls must not be pinned
   * to it (the fault runtime takes the worker out of the choice).
   */
  forgetProxy(name: string): void {
    this.proxies = this.proxies.filter((p) => p.name !== name);
  }

  /**
   * Worker `from` died and `to` holds its calls (restored from Redis, on the same ports on its own 127.0.0.1): every
   * live call of run `runId` pinned to `from` is moved to `to`, as the operator would once the pods its objects
   * select changed. Per call, in the order that loses least: its Rules added to `to`'s sidecar (where its packets
   * will arrive), then each cluster holding `from` (a Target's, or a compact listener's inline one) given `to` as an
   * endpoint and rid of `from`'s (endpointMoveRequests: that ends the sessions through `from`, and their routes
   * re-connect them through `to`). From then on the call is `to`'s:
   * its release deletes its Rules there. Calls still being provisioned are left to fail (their worker is gone).
   * Resolves with the calls moved, the requests sent, when the last request was answered (epoch ms) and the calls
   * that could not be moved, with why.
   */
  async moveCalls(runId: string, from: MeshWorker, to: MeshWorker): Promise<CallsMoved> {
    this.assertOpen();
    const toProxy = this.proxies.find((p) => p.name === to.name);
    if (toProxy === undefined) throw new MeshError(`no l7mp proxy is named ${to.name}: the calls cannot be moved there`);
    const moving = [...(this.live.get(runId)?.values() ?? [])].filter((t) => t.provisioning === null && !t.releasing && t.call.worker.name === from.name);
    const outcome: CallsMoved = { calls: 0, requests: 0, appliedEpochMs: null, failed: [] };
    const count = (n: number): void => {
      outcome.requests += n;
    };
    // A few calls at a time, in order: the proxies answer one request after another (about 6 ms each), so all calls
    // at once would finish together at the end, while this way each call's media comes back as soon as its own
    // requests are done and the total is the same.
    const slots = new ConcurrencyLimit(MOVES_AT_ONCE);
    await Promise.all(
      moving.map(async (t) => {
        const release = await slots.acquire();
        try {
          await this.moveCall(t, from, to, toProxy, outcome, count);
        } finally {
          release();
        }
      }),
    );
    return outcome;
  }

  /** One call of moveCalls: its Rules on `to`, then its clusters' endpoint moved. */
  private async moveCall(t: Tracked, from: MeshWorker, to: MeshWorker, toProxy: MeshProxy, outcome: CallsMoved, count: (n: number) => void): Promise<void> {
    const moved: MeshCall = { ...t.call, worker: to };
    const objects = callObjects(moved, this.mesh);
    const rules = objects.filter((o) => o.kind === 'Rule');
    // The clusters that hold the worker as an endpoint: the Targets', or the compact VirtualServices' inline ones.
    const holders = objects.filter((o) => o.kind !== 'Rule');
    const ruleFailures = await runSequences(
      this.client,
      rules.flatMap((o) => sequencesOf(this.addRequestsOf(o), this.what(o, moved))),
      count,
    );
    if (ruleFailures.length > 0) {
      outcome.failed.push(`${t.call.callId}: ${combined(ruleFailures).message}`);
      return;
    }
    const endpointFailures = await runSequences(
      this.client,
      holders.flatMap((o) => sequencesOf(endpointMoveRequests(o, from, toProxy, this.proxies, this.mesh), this.what(o, moved))),
      count,
    );
    // Its Rules are on `to` now, whatever the endpoints did: its release must look there.
    t.call = moved;
    if (endpointFailures.length > 0) {
      outcome.failed.push(`${t.call.callId}: ${combined(endpointFailures).message}`);
      return;
    }
    outcome.calls++;
    outcome.appliedEpochMs = Math.max(outcome.appliedEpochMs ?? 0, performance.timeOrigin + performance.now());
  }

  /**
   * The ingress proxies came back empty (restarted): every live call of run `runId` gets its ingress objects again,
   * as the operator programs a new ingress pod: its Targets, then its VirtualServices, whose singleton sessions
   * connect to the call's worker, where its Rules still are. At most maxSessionSetups calls connect at once (as in
   * provision). Calls still being provisioned are left to their own provision, which fails or retries.
   */
  async restoreIngress(runId: string): Promise<CallsMoved> {
    this.assertOpen();
    const calls = [...(this.live.get(runId)?.values() ?? [])].filter((t) => t.provisioning === null && !t.releasing);
    const outcome: CallsMoved = { calls: 0, requests: 0, appliedEpochMs: null, failed: [] };
    const count = (n: number): void => {
      outcome.requests += n;
    };
    await Promise.all(
      calls.map(async (t) => {
        const objects = callObjects(t.call, this.mesh);
        const release = await this.setupSlots?.acquire();
        try {
          for (const kind of ['Target', 'VirtualService'] as const) {
            const failures = await runSequences(
              this.client,
              objects.filter((o) => o.kind === kind).flatMap((o) => sequencesOf(this.addRequestsOf(o), this.what(o, t.call))),
              count,
            );
            if (failures.length > 0) throw combined(failures);
          }
          if (this.mesh.listenerMode === 'singleton') await this.waitReady(t.call, objects, t);
          outcome.calls++;
          outcome.appliedEpochMs = Math.max(outcome.appliedEpochMs ?? 0, performance.timeOrigin + performance.now());
        } catch (err) {
          // A call that began to end meanwhile (its release removes what was being made) did not fail to be restored.
          if (!t.releasing) outcome.failed.push(`${t.call.callId}: ${errorText(err)}`);
        } finally {
          release?.();
        }
      }),
    );
    return outcome;
  }

  async release(given: MeshCall): Promise<MeshCost> {
    this.assertOpen();
    // The call as this provisioner has it now: moveCalls may have given it another worker.
    const current = this.tracked(given);
    if (current !== undefined) current.releasing = true;
    const call = current?.call ?? given;
    const objects = callObjects(call, this.mesh);
    const cost: MeshCost = { objects: objects.length, requests: 0 };
    const tracked = this.tracked(call);
    const settle = this.settleCheck === 'always' || (this.settleCheck === 'unready' && !(tracked?.ready ?? false));
    const failures = await this.deleteObjects(call, objects, settle, (n) => {
      cost.requests += n;
    });
    if (failures.length > 0) {
      // Stays tracked: releaseRun tries again.
      throw combined(failures, `call ${call.callId} was not fully released: `);
    }
    this.untrack(call);
    return cost;
  }

  async releaseRun(runId: string): Promise<void> {
    this.assertOpen();
    this.releasing.add(runId);
    try {
      const run = this.live.get(runId);
      if (!run) return;
      // Calls still provisioning: stop waiting for their readiness (provision rolls them back), let them settle.
      for (const t of run.values()) {
        if (!t.provisioning) continue;
        for (const { poller, waiter } of [...t.waiters]) {
          poller.remove(waiter);
          waiter.fail(new MeshError(`run ${runId} was released while call ${t.call.callId} waited for its sessions`));
        }
      }
      await Promise.allSettled([...run.values()].flatMap((t) => (t.provisioning ? [t.provisioning] : [])));
      const left = [...(this.live.get(runId)?.values() ?? [])];
      const failures: MeshError[] = [];
      await Promise.all(
        left.map(async (t) => {
          try {
            await this.release(t.call);
          } catch (err) {
            failures.push(err instanceof MeshError ? err : new MeshError(errorText(err), null, { cause: err }));
          }
        }),
      );
      if (failures.length > 0) throw combined(failures, `run ${runId}: ${failures.length} of ${left.length} calls were not fully released: `);
    } finally {
      this.releasing.delete(runId);
    }
  }

  /** Leftovers of a run (or of every run) on this provisioner's proxies; see findLeftovers. */
  findLeftovers(runId?: string): Promise<Leftover[]> {
    this.assertOpen();
    return findLeftoversWith(this.client, this.proxies, runId);
  }

  /** Removes leftovers (see removeLeftovers). */
  removeLeftovers(leftovers: readonly Leftover[], o: Pick<LeftoverRemovalOptions, 'settleTimeoutMs'> = {}): Promise<MeshCost> {
    this.assertOpen();
    return removeLeftoversWith(this.client, leftovers, { pollIntervalMs: this.pollIntervalMs, ...o });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const run of this.live.values()) {
      for (const t of run.values()) {
        for (const { poller, waiter } of [...t.waiters]) {
          poller.remove(waiter);
          waiter.fail(new MeshError(`the REST provisioner was closed while call ${t.call.callId} waited for its sessions`));
        }
      }
    }
    // In-flight provisions roll back (their requests still go out) before the connections go.
    await Promise.allSettled([...this.live.values()].flatMap((run) => [...run.values()].flatMap((t) => (t.provisioning ? [t.provisioning] : []))));
    for (const p of this.pollers.values()) p.stop();
    this.client.close();
  }
}
