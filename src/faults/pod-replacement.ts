/**
 * --fault kill-worker with --mesh kubernetes: the worker's pod deleted through the API, then followed by name until
 * the StatefulSet's replacement (the same name, another uid) is Running and Ready with an address; the moments seen
 * on the way, the gap boundary chosen from them, and the worker re-aimed at the replacement.
 *
 * Where the boundary is, and why. A call's objects pin its media to the pod's name, so the old pod carries it until it
 * stops and the replacement after that; the boundary must lie between the old pod's last packet and the
 * replacement's first (FailoverInput.boundaryEpochMs). What the API shows:
 * - The DELETE's answer: the old pod's containers still run (the kubelet stops them afterwards), and packets that
 *   come after it may be theirs. Not the boundary: a call would count as survived on the old pod's packets.
 * - The old pod seen gone (404, or the name held by another uid): with a grace period (or a finalizer) this waits for
 *   the kubelet, but the DELETE here has grace period 0, a forced deletion: the API server removes the pod object at
 *   once and its containers may still forward for seconds. Not enough alone.
 * - The replacement Running and Ready with an address: the l7mp operator programs a pod's sidecar (each call's Rule)
 *   and routes the pinned Target to its address only once it is Ready (kubernetes/rtpengine-workers.yaml), so no
 *   packet comes from it before; and the ingress no longer sends the call to the old pod, gone from the API by then.
 * So the boundary is the last moment the replacement was certainly not yet Ready: the send time of the last read
 * that found it not Ready (absent, Pending, Running but not Ready; the DELETE's answer if the first read found it
 * Ready already), yet never before the old pod was seen gone (the answer of the first read that found it so). Reads
 * come every pollMs, so it lies at most pollMs and one round trip before the replacement became Ready, and seconds
 * after the old pod's object went (the replacement's containers start, its readiness probe waits 3 s). A call's
 * media came back (CallFailover.resumed) only if a packet arrived after it: from the replacement.
 *
 * Until the boundary is known, the runtime gives the fault a boundary at infinity: a call whose media ended before
 * the replacement was seen Ready got nothing from it (unless it became Ready in the last poll interval), so it counts
 * as lost. When the replacement is not Ready by the end of the run (the runtime aborts the wait), or the pod cannot
 * be read, there is no boundary and every call on the worker counts as lost; the note says which.
 *
 * Re-aiming: a mesh worker's ng client goes straight to <pod IP>:22222 (the sidecar hands it to rtpengine on
 * 127.0.0.1, src/mesh/open.ts), so once the replacement is Ready the worker gets a new client for its address, and
 * its mesh address follows: the calls' final deletes (src/call.ts, through route(), which is the worker itself here)
 * reach the rtpengine that restored them. The old client takes no more requests and closes once those it has
 * settled. New calls stay off the worker from the DELETE on (`unavailable`); they go to it again once its new
 * address answers an ng ping, as a control plane would use a Ready worker again: they start after the fault, so no
 * fault figure is theirs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubernetesApi } from '../mesh/kubernetes/api.js';
import { podReady } from '../mesh/kubernetes/provisioner.js';
import { describePod } from '../mesh/kubernetes/workers-scale.js';
import type { NgClient } from '../ng/client.js';
import type { Worker } from '../stack/stack.js';
import type { PodReplacementRecord } from './model.js';
import { epochNow } from './worker-process.js';

/** Reads of the pod while it is replaced, ms apart: 5 requests a second of the API client's 50 by default. */
export const POD_POLL_MS = 200;

/** What the runtime needs to kill a worker pod and follow its replacement. */
export interface WorkerPods {
  api: KubernetesApi;
  namespace: string;
  /** An ng client for a worker pod at `podIP` (its sidecar's ng port, the run's ng options). */
  openNg: (podIP: string) => Promise<NgClient>;
  /** Default POD_POLL_MS. */
  pollMs?: number;
}

/** What the fault does to the rest of the run as it goes (FaultRuntime). */
export interface PodKillHooks {
  /** The run's end (or its stop): the wait for the replacement ends. */
  signal: AbortSignal;
  /** Whether new calls may go to the worker: not from just before the DELETE until it is back. */
  takesCalls: (yes: boolean) => void;
  /** The DELETE was sent at atEpochMs (the fault's time) and answered: the boundary is not known yet. */
  made: (atEpochMs: number) => void;
  /** The gap boundary, once the replacement was seen Ready. */
  boundary: (epochMs: number) => void;
}

/** How the fault went: FaultRecord.done, note and replacement. */
export interface PodKill {
  done: boolean;
  note: string;
  replacement: PodReplacementRecord | null;
}

/**
 * Deletes the worker's pod (grace period 0) and follows it until its replacement is Ready or `hooks.signal` ends the
 * wait; re-aims the worker at the replacement. Throws when the pod cannot be read or deleted (a 403 names the RBAC
 * rule): then nothing was deleted, or the DELETE failed for good.
 */
export async function killWorkerPod(pods: WorkerPods, worker: Worker, hooks: PodKillHooks): Promise<PodKill> {
  const name = worker.mesh!.name;
  const pod = `${pods.namespace}/${name}`;
  const calls = worker.activeCalls;
  // Read first: the uid that tells the old pod from its replacement, and a Role without get on pods refused before
  // anything is deleted (a kill that cannot be followed would count every call as lost).
  const before = await pods.api.readPod(pods.namespace, name);
  const oldUid = before?.metadata?.uid;
  if (before === null || oldUid === undefined) return { done: false, note: `pod ${pod} was not there (404): nothing deleted`, replacement: null };
  hooks.takesCalls(false);
  const atEpochMs = epochNow();
  let outcome: 'deleted' | 'gone';
  try {
    outcome = await pods.api.deletePod(pods.namespace, name);
  } catch (err) {
    hooks.takesCalls(true);
    throw err;
  }
  const answeredEpochMs = epochNow();
  hooks.made(atEpochMs);
  // A 404 here: someone else deleted it since it was read; it is being replaced all the same, so it is followed.
  const head =
    `DELETE pod ${pod} (uid ${oldUid}, grace period 0) with ${calls} call(s), answered in ${(answeredEpochMs - atEpochMs).toFixed(0)} ms` +
    (outcome === 'gone' ? ' with 404: it was already gone' : '');
  const done = outcome === 'deleted';
  const seen = await followReplacement(pods, name, oldUid, answeredEpochMs, hooks.signal);
  const replacement: PodReplacementRecord = { pod, oldUid, deleteAnsweredMs: answeredEpochMs, goneMs: seen.goneEpochMs, newUid: seen.newUid, readyMs: null, podIP: null, boundaryMs: null };
  const after = (t: number): string => `${(t - atEpochMs).toFixed(0)} ms after the DELETE`;
  const gone = seen.goneEpochMs === null ? 'the old pod was never seen gone' : `the old pod seen gone ${after(seen.goneEpochMs)}`;
  if (seen.ready === null) {
    const why = seen.error === null ? 'was not Ready when the run ended' : `could not be followed (${seen.error})`;
    return {
      done,
      note: `${head}; ${gone}; its replacement ${why}, last seen: ${seen.lastSeen}; no call's media came back from it: every call on the worker counts as lost`,
      replacement,
    };
  }
  const { epochMs: readyEpochMs, podIP, boundaryEpochMs } = seen.ready;
  Object.assign(replacement, { readyMs: readyEpochMs, podIP, boundaryMs: boundaryEpochMs });
  hooks.boundary(boundaryEpochMs);
  const reaimed = await reaim(worker, pods.openNg, podIP);
  if (reaimed.answered) hooks.takesCalls(true);
  return {
    done,
    note:
      `${head}; ${gone}, its replacement (uid ${seen.newUid}) Running and Ready at ${podIP} ${after(readyEpochMs)}; ` +
      `gap boundary ${after(boundaryEpochMs)} (the replacement last seen not Ready, the old pod already gone): a call survived only if its media came back after it, from the replacement; ` +
      reaimed.note,
    replacement,
  };
}

interface Followed {
  goneEpochMs: number | null;
  newUid: string | null;
  ready: { epochMs: number; podIP: string; boundaryEpochMs: number } | null;
  /** What the last read found, for a note. */
  lastSeen: string;
  /** Why following stopped early (a read failed for good); null: it did not. */
  error: string | null;
}

/** Reads the pod every pollMs until another uid holds its name and is Ready (see the top of this file), or the end. */
async function followReplacement(pods: WorkerPods, name: string, oldUid: string, answeredEpochMs: number, signal: AbortSignal): Promise<Followed> {
  const followed: Followed = { goneEpochMs: null, newUid: null, ready: null, lastSeen: 'not read', error: null };
  // The replacement cannot have been Ready when the DELETE was answered: it did not exist before.
  let notReadyEpochMs = answeredEpochMs;
  while (!signal.aborted) {
    const sentEpochMs = epochNow();
    let pod: V1Pod | null | typeof ENDED;
    try {
      pod = await untilAborted(pods.api.readPod(pods.namespace, name), signal);
    } catch (err) {
      // The API client already retried what is worth retrying (429, 5xx, timeouts).
      followed.error = (err as Error).message;
      return followed;
    }
    if (pod === ENDED) break;
    const answered = epochNow();
    const uid = pod?.metadata?.uid;
    if (pod !== null && uid === oldUid) {
      followed.lastSeen = `the old pod, still there${pod.metadata?.deletionTimestamp ? ' (terminating)' : ''}`;
    } else {
      followed.goneEpochMs ??= answered;
      if (pod !== null && podReady(pod)) {
        followed.newUid = uid ?? null;
        followed.ready = { epochMs: answered, podIP: pod.status!.podIP!, boundaryEpochMs: Math.max(followed.goneEpochMs, notReadyEpochMs) };
        return followed;
      }
      followed.newUid = uid ?? followed.newUid;
      followed.lastSeen = pod === null ? 'no pod of that name' : `the replacement (uid ${uid}): ${describePod(pod)}`;
    }
    notReadyEpochMs = sentEpochMs;
    await sleep(pods.pollMs ?? POD_POLL_MS, undefined, { signal }).catch(() => undefined);
  }
  return followed;
}

const ENDED = Symbol('ended');

/** The request's answer, or ENDED as soon as `signal` aborts (the request goes on; its outcome is dropped). */
async function untilAborted<T>(request: Promise<T>, signal: AbortSignal): Promise<T | typeof ENDED> {
  if (signal.aborted) return ENDED;
  let onAbort: () => void = () => undefined;
  const ended = new Promise<typeof ENDED>((resolve) => {
    onAbort = () => resolve(ENDED);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([request, ended]);
  } finally {
    signal.removeEventListener('abort', onAbort);
    request.catch(() => undefined);
  }
}

/**
 * The worker's ng client and mesh address aimed at its replacement (see the top of this file); `answered`: the new
 * address answered an ng ping, so the worker may take calls again.
 */
async function reaim(worker: Worker, openNg: WorkerPods['openNg'], podIP: string): Promise<{ answered: boolean; note: string }> {
  const mesh = worker.mesh!;
  let what = `ng stays on ${worker.ng.endpoint} (the same address)`;
  if (podIP !== mesh.address) {
    let fresh: NgClient;
    try {
      fresh = await openNg(podIP);
    } catch (err) {
      return { answered: false, note: `its ng could not be aimed at ${podIP} (${(err as Error).message}): its calls' deletes go to the old address, no new calls go there` };
    }
    const old = worker.ng;
    worker.ng = fresh;
    // A new object: calls provisioned before keep the worker they were provisioned with.
    worker.mesh = { ...mesh, address: podIP };
    void old.closeWhenIdle();
    what = `ng re-aimed from ${old.endpoint} to ${fresh.endpoint}`;
  }
  try {
    const rttMs = await worker.ng.ping();
    return { answered: true, note: `${what}, which answered a ping in ${rttMs.toFixed(1)} ms: the worker takes new calls again` };
  } catch (err) {
    return { answered: false, note: `${what}, which did not answer a ping (${(err as Error).message}): no new calls go there` };
  }
}
