/**
 * `rtp-bench scale --mesh kubernetes`: the rtpengine workers are the pods of a StatefulSet (l7mp-worker,
 * kubernetes/rtpengine-workers.yaml). For each worker count, scaleWorkers() sets its replicas through the scale
 * subresource (a merge patch of spec.replicas, as `kubectl scale` does) and waits until exactly that many worker pods
 * are Ready with an address and a node, and none is terminating; assessWorkers() is that judgement, pure, and says
 * what is missing in the words of the pods' own status (Unschedulable, ImagePullBackOff, ...), so that a timeout
 * tells the user what to fix. WorkerScaler is what the scale command holds: it remembers the replicas it found and
 * puts them back at the end, after a failure, and on Ctrl-C / SIGTERM.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig, V1LabelSelector, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { MeshWorker } from '../model.js';
import { MeshError } from '../provisioner.js';
import type { RunPlan } from '../../run-plan.js';
import { KubernetesApi, labelSelector } from './api.js';
import { allowPlainHttp, loadKubeConfig } from './config.js';
import { meshWorkers, podReady } from './provisioner.js';

export const WORKERS_SCALE_DEFAULTS = {
  /** How long new workers may take to be Ready (scheduling, image pull, the sidecar's readiness probe), ms. */
  readyTimeoutMs: 120_000,
  /** How often the StatefulSet and its pods are read while waiting, ms: two cheap requests a second. */
  pollMs: 1000,
} as const;

/** `{matchLabels, matchExpressions}` as the API's label selector text, e.g. `app=l7mp-worker,tier in (a,b)`. */
export function selectorText(selector: V1LabelSelector | undefined): string {
  const terms = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') terms.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') terms.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') terms.push(e.key);
    else if (e.operator === 'DoesNotExist') terms.push(`!${e.key}`);
    else throw new MeshError(`the StatefulSet's selector has an operator rtp-bench does not know: ${e.operator}`);
  }
  // The API server refuses a StatefulSet without a selector; an empty one here would select every pod.
  if (terms.length === 0) throw new MeshError('the StatefulSet has an empty pod selector');
  return terms.join(',');
}

function podName(pod: V1Pod): string {
  return pod.metadata?.name ?? '?';
}

function terminating(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null;
}

/** "reason: message", either part possibly missing; '' for neither. */
function said(reason: string | undefined, message: string | undefined): string {
  return [reason, message].filter((s) => s !== undefined && s !== '').join(': ');
}

/**
 * Why a worker pod is not usable yet, in one phrase from its status (no events needed): e.g.
 * `l7mp-worker-3 Pending (Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.)`,
 * `l7mp-worker-1 Pending (rtpengine: ImagePullBackOff: Back-off pulling image "...")`,
 * `l7mp-worker-2 Running, not ready (ContainersNotReady: containers with unready status: [l7mp])`.
 */
export function describePod(pod: V1Pod): string {
  const name = podName(pod);
  if (terminating(pod)) return `${name} terminating`;
  const phase = pod.status?.phase ?? 'Pending';
  const conditions = pod.status?.conditions ?? [];
  const scheduled = conditions.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False') return `${name} ${phase} (${said(scheduled.reason ?? 'not scheduled', scheduled.message)})`;
  // A container that waits (image pull, crash loop, config error) or has exited says the most.
  for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = c.state?.waiting;
    if (waiting !== undefined && waiting.reason !== 'ContainerCreating') return `${name} ${phase} (${c.name}: ${said(waiting.reason, waiting.message) || 'waiting'})`;
    const exited = c.state?.terminated;
    if (exited !== undefined) return `${name} ${phase} (${c.name}: exited ${exited.exitCode}${exited.reason ? `, ${exited.reason}` : ''})`;
  }
  if (!pod.spec?.nodeName) return `${name} ${phase} (not placed on a node yet)`;
  if (phase !== 'Running') return `${name} ${phase}`;
  const ready = conditions.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') return `${name} Running, not ready${ready && said(ready.reason, ready.message) ? ` (${said(ready.reason, ready.message)})` : ''}`;
  return `${name} Running, no pod IP yet`;
}

export interface WorkersAssessment {
  /** Exactly `replicas` worker pods, each Ready with a pod IP and a node, none terminating, and the StatefulSet agrees. */
  done: boolean;
  /** The StatefulSet's pods that are usable now (ordinal order). */
  ready: V1Pod[];
  /** What keeps it from done, one phrase each (pods in ordinal order, then the StatefulSet's own state). */
  missing: string[];
}

/**
 * Pure: are `replicas` workers of the StatefulSet `sts` up, judged from it and the pods its selector matches? Its
 * pods are known by name (<name>-<ordinal>, ordinals from spec.ordinals.start), so a pod that was never created is
 * named too, and other pods the selector happens to match are not its (checkWorkerSelector deals with those). Pods
 * beyond the count (a scale-down) must be gone, not only terminating: they still hold CPU on a node.
 */
export function assessWorkers(sts: V1StatefulSet, selected: readonly V1Pod[], replicas: number): WorkersAssessment {
  const name = sts.metadata?.name ?? '?';
  const start = sts.spec?.ordinals?.start ?? 0;
  const expected = Array.from({ length: replicas }, (_, i) => `${name}-${start + i}`);
  const own = new RegExp(`^${name.replace(/[.]/g, '\\.')}-\\d+$`);
  const pods = selected.filter((p) => own.test(podName(p)));
  const byName = new Map(pods.map((p) => [podName(p), p]));
  const ready: V1Pod[] = [];
  const missing: string[] = [];
  for (const n of expected) {
    const pod = byName.get(n);
    if (pod === undefined) missing.push(`${n} not created yet`);
    else if (podReady(pod) && pod.spec?.nodeName) ready.push(pod);
    else missing.push(describePod(pod));
  }
  for (const pod of pods) {
    if (!expected.includes(podName(pod))) missing.push(`${podName(pod)} ${terminating(pod) ? 'still terminating' : 'still there'} (beyond ${replicas} replicas)`);
  }
  const wanted = sts.spec?.replicas ?? 0;
  if (wanted !== replicas) missing.push(`StatefulSet ${name} now wants ${wanted} replicas, not ${replicas}: something else scales it (a HorizontalPodAutoscaler, another user?)`);
  const generation = sts.metadata?.generation ?? 0;
  const observed = sts.status?.observedGeneration ?? 0;
  const readyReplicas = sts.status?.readyReplicas ?? 0;
  if (missing.length === 0 && observed < generation) missing.push(`StatefulSet ${name}: its controller has not caught up (observed generation ${observed} of ${generation})`);
  else if (missing.length === 0 && readyReplicas !== replicas) missing.push(`StatefulSet ${name} reports ${readyReplicas} ready replicas`);
  return { done: missing.length === 0 && ready.length === replicas, ready, missing };
}

export interface ScaleWorkersOptions {
  namespace: string;
  statefulSet: string;
  replicas: number;
  /** Until the workers are ready, ms (default WORKERS_SCALE_DEFAULTS.readyTimeoutMs). */
  timeoutMs?: number;
  /** Aborts the wait (Ctrl-C): scaleWorkers then rejects with the signal's reason. The patch itself is never cut short. */
  signal?: AbortSignal;
  pollMs?: number;
  /** The label each call's objects pin their worker by: names the workers returned. */
  pinLabel: string;
  /**
   * The label selector a run finds its workers by (listWorkers, src/mesh/open.ts). Once the StatefulSet's pods are
   * ready, the pods it selects must be exactly those: otherwise the search would run on other workers than counted.
   */
  workerSelector: Record<string, string>;
  /** Progress lines. */
  status?: (line: string) => void;
}

/** The StatefulSet's replicas now (its scale subresource's spec.replicas; the API omits 0). */
export async function currentReplicas(api: KubernetesApi, namespace: string, statefulSet: string): Promise<number> {
  return (await api.readStatefulSetScale(namespace, statefulSet)).spec?.replicas ?? 0;
}

/** `p`, or the signal's reason as soon as it is aborted (the request itself goes on; a read, so harmless). */
function unlessAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Sets the StatefulSet to `replicas` (PATCH .../statefulsets/{name}/scale, merge patch {spec: {replicas}}), then
 * reads the StatefulSet and lists its pods every pollMs until assessWorkers says done, and returns the ready workers
 * (named by pinLabel, sorted). Throws MeshError naming what is missing after timeoutMs, or when the run's worker
 * selector would pick other pods than the StatefulSet's.
 */
export async function scaleWorkers(api: KubernetesApi, o: ScaleWorkersOptions): Promise<MeshWorker[]> {
  const { namespace, statefulSet, replicas, signal } = o;
  const timeoutMs = o.timeoutMs ?? WORKERS_SCALE_DEFAULTS.readyTimeoutMs;
  const pollMs = o.pollMs ?? WORKERS_SCALE_DEFAULTS.pollMs;
  signal?.throwIfAborted();
  await api.patchStatefulSetScale(namespace, statefulSet, replicas);
  const t0 = performance.now();
  let saidBefore = '';
  for (;;) {
    const sts = await unlessAborted(api.readStatefulSet(namespace, statefulSet), signal);
    const pods = await unlessAborted(api.listPods(namespace, selectorText(sts.spec?.selector)), signal);
    const a = assessWorkers(sts, pods, replicas);
    if (a.done) {
      await checkWorkerSelector(api, o, a.ready);
      const workers = meshWorkers(a.ready, o.pinLabel);
      o.status?.(`workers: ${replicas} of StatefulSet ${namespace}/${statefulSet} ready after ${((performance.now() - t0) / 1000).toFixed(1)} s: ${workers.map((w) => w.name).join(', ')}`);
      return workers;
    }
    const elapsedMs = performance.now() - t0;
    if (elapsedMs >= timeoutMs) throw new MeshError(timeoutMessage(namespace, statefulSet, replicas, a, timeoutMs));
    // Said again only when something changed (a pod scheduled, a container started): a line per poll would be noise.
    const line = `workers: ${a.ready.length} of ${replicas} ready; waiting for ${a.missing.join('; ')}`;
    if (line !== saidBefore) o.status?.(line);
    saidBefore = line;
    await sleep(Math.min(pollMs, timeoutMs - elapsedMs), undefined, signal ? { signal } : {});
  }
}

function timeoutMessage(namespace: string, statefulSet: string, replicas: number, a: WorkersAssessment, timeoutMs: number): string {
  const first = a.missing.find((m) => !m.startsWith('StatefulSet ')) ?? '';
  const firstPod = /^(\S+) /.exec(first)?.[1];
  const unschedulable = a.missing.some((m) => m.includes('Unschedulable'));
  // A pod that was never created has no description of its own: the StatefulSet's events say why (a quota, ...).
  const see = firstPod === undefined || first.endsWith('not created yet') ? `describe statefulset ${statefulSet}` : `describe pod ${firstPod}`;
  return (
    `${a.ready.length} of ${replicas} workers ready after ${Number((timeoutMs / 1000).toFixed(1))} s: ${a.missing.join('; ')}` +
    (unschedulable ? '. The nodes lack room for more workers: lower their CPU requests in kubernetes/rtpengine-workers.yaml, add nodes, or give fewer --workers' : '') +
    `. See kubectl -n ${namespace} ${see}`
  );
}

/** The run finds its workers by o.workerSelector: it must select exactly the StatefulSet's ready pods. */
async function checkWorkerSelector(api: KubernetesApi, o: ScaleWorkersOptions, ready: readonly V1Pod[]): Promise<void> {
  const selector = labelSelector(o.workerSelector);
  const selected = new Set((await api.listPods(o.namespace, selector)).filter(podReady).map(podName));
  const mine = new Set(ready.map(podName));
  const others = [...selected].filter((n) => !mine.has(n));
  const unselected = [...mine].filter((n) => !selected.has(n));
  if (others.length === 0 && unselected.length === 0) return;
  throw new MeshError(
    `a run finds its workers by the label selector ${selector}, but in namespace "${o.namespace}" ` +
      [others.length > 0 ? `it also selects ${others.join(', ')}, which are not StatefulSet ${o.statefulSet}'s pods` : '', unselected.length > 0 ? `it does not select ${unselected.join(', ')} of StatefulSet ${o.statefulSet}` : '']
        .filter((s) => s !== '')
        .join(', and ') +
      `: the search would not run on ${o.statefulSet}'s ${ready.length} worker(s) alone. Label the StatefulSet's pod template ${selector} and no other pods`,
  );
}

// ---- What the scale command holds ------------------------------------------------------------------------------

export interface WorkerScalerLog {
  /** Progress lines (stderr, not with --progress off). */
  status: (line: string) => void;
  /** A failure, one line, always shown. */
  error: (line: string) => void;
}

export interface WorkerScalerOptions {
  readyTimeoutMs?: number;
  pollMs?: number;
  /** A ready KubeConfig (tests); default: the plan's --kubeconfig/--context. */
  kubeConfig?: KubeConfig;
}

/**
 * The worker StatefulSet during `rtp-bench scale --mesh kubernetes`: scaled to each count in turn, and back to the
 * replicas found at open() by restore(). From open() to restore() it also listens for SIGINT/SIGTERM: the first
 * aborts a wait in progress (a search in progress is stopped by its own session), so that restore() still runs; a
 * second says how to restore by hand, since the process may then exit at once.
 */
export class WorkerScaler {
  private readonly abort = new AbortController();
  private signals = 0;
  private restored = false;
  /** A patch was sent (or may have been): only then is there something to restore. */
  private touched = false;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.interrupt()) return;
    this.log.error(`${signal} again: the worker StatefulSet may not be restored; restore it with ${this.kubectlRestore()}`);
    // Alone, this listener would keep the process alive; with a run session open, its own handler exits.
    if (process.listenerCount(signal) === 1) process.exit(130); // EXIT_INTERRUPTED (src/session.ts)
  };

  private constructor(
    private readonly api: KubernetesApi,
    private readonly plan: { namespace: string; statefulSet: string; pinLabel: string; workerSelector: Record<string, string> },
    /** The replicas found at open(), put back by restore(). */
    readonly original: number,
    private readonly log: WorkerScalerLog,
    private readonly options: WorkerScalerOptions,
  ) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /**
   * Reads the StatefulSet's replicas (to restore at the end). Null, having said why through log.error, when the
   * cluster or the StatefulSet cannot be reached.
   */
  static async open(plan: Pick<RunPlan, 'mesh'>, statefulSet: string, log: WorkerScalerLog, options: WorkerScalerOptions = {}): Promise<WorkerScaler | null> {
    const mesh = plan.mesh;
    if (mesh?.kind !== 'kubernetes') throw new Error('internal: WorkerScaler needs a --mesh kubernetes plan');
    let api: KubernetesApi | null = null;
    try {
      const kc = options.kubeConfig ? allowPlainHttp(options.kubeConfig) : loadKubeConfig({ kubeconfig: mesh.kubeconfig, context: mesh.context });
      api = new KubernetesApi(kc, { concurrency: mesh.concurrency, ratePerSec: mesh.ratePerSec, log: log.status });
      const { namespace, workerPinLabel, workerSelector } = mesh.options;
      const original = await currentReplicas(api, namespace, statefulSet);
      log.status(`workers: StatefulSet ${namespace}/${statefulSet} has ${original} replica(s); scale sets each count through its scale subresource and restores ${original} at the end`);
      return new WorkerScaler(api, { namespace, statefulSet, pinLabel: workerPinLabel, workerSelector }, original, log, options);
    } catch (err) {
      api?.close();
      log.error(`${(err as Error).message}`);
      return null;
    }
  }

  /** What the first SIGINT/SIGTERM does: a wait in progress ends, and no other starts. True the first time. */
  interrupt(): boolean {
    this.signals++;
    this.abort.abort();
    return this.signals === 1;
  }

  /** Scales to `replicas` and waits for the workers: 'interrupted' after a signal, 'failed' having said why. */
  async scaleTo(replicas: number): Promise<'ready' | 'interrupted' | 'failed'> {
    if (this.abort.signal.aborted) return 'interrupted';
    const { namespace, statefulSet, pinLabel, workerSelector } = this.plan;
    this.log.status(`workers: scaling StatefulSet ${namespace}/${statefulSet} to ${replicas}`);
    this.touched = true;
    try {
      await scaleWorkers(this.api, {
        namespace,
        statefulSet,
        replicas,
        pinLabel,
        workerSelector,
        signal: this.abort.signal,
        status: this.log.status,
        ...(this.options.readyTimeoutMs !== undefined ? { timeoutMs: this.options.readyTimeoutMs } : {}),
        ...(this.options.pollMs !== undefined ? { pollMs: this.options.pollMs } : {}),
      });
      return 'ready';
    } catch (err) {
      if (this.abort.signal.aborted) return 'interrupted';
      this.log.error((err as Error).message);
      return 'failed';
    }
  }

  /** Puts back the replicas found at open(); once. Never throws: when it cannot, it says how to do it by hand. */
  async restore(): Promise<void> {
    if (this.restored) return;
    this.restored = true;
    const { namespace, statefulSet } = this.plan;
    try {
      if (!this.touched) return;
      // Not waited for: the next user of the workers waits for them as this run did, and Ctrl-C should not wait.
      await this.api.patchStatefulSetScale(namespace, statefulSet, this.original);
      this.log.status(`workers: StatefulSet ${namespace}/${statefulSet} set back to ${this.original} replica(s)`);
    } catch (err) {
      this.log.error(`could not set StatefulSet ${namespace}/${statefulSet} back to ${this.original} replica(s): ${(err as Error).message}; restore it with ${this.kubectlRestore()}`);
    } finally {
      process.off('SIGINT', this.onSignal);
      process.off('SIGTERM', this.onSignal);
      this.api.close();
    }
  }

  private kubectlRestore(): string {
    return `kubectl -n ${this.plan.namespace} scale statefulset ${this.plan.statefulSet} --replicas=${this.original}`;
  }
}
