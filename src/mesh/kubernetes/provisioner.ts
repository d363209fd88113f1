/**
 * `--mesh kubernetes`: each call's l7mp objects as namespaced custom resources (l7mp.io/v1 virtualservices, targets,
 * rules) through the Kubernetes API (kube-api.ts: limits, retries); the l7mp operator turns them into proxy
 * configuration. Also discovery (worker pods, the ingress) and the worker sidecar's config as the manifests carry it.
 *
 * Readiness cannot be observed through the API (the operator programs the proxies asynchronously), so a call is
 * "accepted" once every object is created and readyMs is null. Compact objects are refused: with the operator's
 * deletes, a compact VirtualService that has a live session crashes the l7mp 0.5.7 ingress proxy.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { renderL7mpConfigYaml, RTPENGINE_NG_PORT, workerProxyConfig } from '../../stack/l7mp-proxy.js';
import type { MeshCall, MeshOptions, MeshWorker } from '../model.js';
import { callObjects, CREATION_ORDER, DELETION_ORDER, deletionOrder, type L7mpKind, type L7mpObject } from '../objects.js';
import { MeshError, type MeshCost, type MeshProvisioner, type ProvisionTiming } from '../provisioner.js';
import { allowPlainHttp, loadKubeConfig, type KubeConfigChoice } from './config.js';
import {
  KubernetesApi,
  addCost,
  labelSelector,
  newCost,
  removeLabelled,
  runSelector,
  type Cost,
  type KubernetesApiOptions,
  type KubernetesApiStats,
  type RemoveOptions,
} from './api.js';
import { KubernetesApiError } from './failures.js';

export interface KubernetesProvisionerOptions extends KubeConfigChoice, KubernetesApiOptions, RemoveOptions {
  /** The objects' shape; namespace is where they are created. compact is refused. */
  mesh: MeshOptions;
  /** A ready KubeConfig (tests, embedding); when given, kubeconfig and context are not read. */
  kubeConfig?: KubeConfig;
}

export interface KubernetesProvisionResult extends ProvisionTiming, MeshCost {
  /** Attempts that were retries (429, 5xx, timeouts, dropped connections). */
  retries: number;
  /** Creates answered 409 for an identical object of this run (e.g. after a retried create), taken as done. */
  alreadyExisted: number;
}

export interface KubernetesReleaseResult extends MeshCost {
  /** Until every object's delete was answered, ms. */
  releasedMs: number;
  retries: number;
}

export const COMPACT_REJECTED =
  '--mesh-objects compact cannot be used with --mesh kubernetes: the l7mp operator deletes a compact VirtualService while its ' +
  'session is live, which crashes the l7mp ingress proxy (a verified l7mp 0.5.7 defect). Use classic objects (the default with ' +
  '--mesh kubernetes); compact is for --mesh rest and --mesh local, where rtp-bench sends the deletes itself in a safe order';

function kindGroups(objects: readonly L7mpObject[], order: readonly L7mpKind[]): L7mpObject[][] {
  return order.map((kind) => objects.filter((o) => o.kind === kind)).filter((g) => g.length > 0);
}

/** A pod calls may go to: running, Ready, with an address, and not being deleted. */
export function podReady(pod: V1Pod): boolean {
  return (
    pod.status?.phase === 'Running' &&
    !pod.metadata?.deletionTimestamp &&
    typeof pod.status.podIP === 'string' &&
    pod.status.podIP !== '' &&
    (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name.localeCompare(b.name, 'en', { numeric: true });
}

/**
 * Ready worker pods as the mesh's workers, sorted by name, each named by its `pinLabel` value (what the call's
 * objects pin the worker by). Throws MeshError when one lacks pinLabel.
 */
export function meshWorkers(ready: readonly V1Pod[], pinLabel: string): MeshWorker[] {
  const unpinned = ready.filter((p) => !p.metadata?.labels?.[pinLabel]).map((p) => p.metadata?.name ?? '?');
  if (unpinned.length > 0) {
    throw new MeshError(
      `worker pod(s) ${unpinned.join(', ')} have no label ${pinLabel}, which each call's objects pin their worker by: ` +
        'run the workers as a StatefulSet (kubernetes/rtpengine-workers.yaml; Kubernetes labels its pods statefulset.kubernetes.io/pod-name) or label them',
    );
  }
  return ready
    .map((p) => ({ name: p.metadata!.labels![pinLabel]!, address: p.status!.podIP!, labels: { ...(p.metadata?.labels ?? {}) } }))
    .sort(byName);
}

export class KubernetesProvisioner implements MeshProvisioner {
  readonly kind = 'kubernetes' as const;
  readonly namespace: string;
  readonly api: KubernetesApi;
  private readonly mesh: MeshOptions;
  private readonly remove: RemoveOptions;

  constructor(options: KubernetesProvisionerOptions) {
    if (options.mesh.compact) throw new MeshError(COMPACT_REJECTED);
    this.mesh = { ...options.mesh };
    this.namespace = options.mesh.namespace;
    const kc = options.kubeConfig ? allowPlainHttp(options.kubeConfig) : loadKubeConfig(options);
    this.api = new KubernetesApi(kc, options);
    this.remove = { ...(options.removeWaitMs !== undefined ? { removeWaitMs: options.removeWaitMs } : {}), ...(options.removePollMs !== undefined ? { removePollMs: options.removePollMs } : {}) };
  }

  /** Requests, retries and throttling so far, over all calls. */
  stats(): KubernetesApiStats {
    return this.api.stats();
  }

  async provision(call: MeshCall): Promise<KubernetesProvisionResult> {
    const t0 = performance.now();
    const objects = callObjects(call, this.mesh);
    const cost = newCost();
    const made: L7mpObject[] = [];
    // Time the call waited for the client's own rate and concurrency limits: per group, the local wait of the
    // request that finished last (the group's critical path), so acceptedMs is the API's time alone.
    let throttledMs = 0;
    try {
      for (const group of kindGroups(objects, CREATION_ORDER)) {
        let last = { doneAt: -1, waitedMs: 0 };
        // Every request of the group is settled before the next group (or the rollback) starts.
        const results = await Promise.allSettled(
          group.map(async (o) => {
            const own = newCost();
            try {
              await this.api.create(o, own);
              made.push(o);
            } finally {
              addCost(cost, own);
              const doneAt = performance.now();
              if (doneAt >= last.doneAt) last = { doneAt, waitedMs: own.waitedMs };
            }
          }),
        );
        throttledMs += last.waitedMs;
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      }
    } catch (err) {
      throw await this.rollback(call, made, err, cost);
    }
    return {
      acceptedMs: performance.now() - t0 - throttledMs,
      throttledMs,
      readyMs: null,
      objects: objects.length,
      requests: cost.requests,
      retries: cost.retries,
      alreadyExisted: cost.alreadyExisted,
    };
  }

  /** Removes what a failed provision made; returns the error to throw (the original, with a note if it could not). */
  private async rollback(call: MeshCall, made: L7mpObject[], err: unknown, cost: Cost): Promise<unknown> {
    const leftovers: string[] = [];
    for (const group of kindGroups(deletionOrder(made), DELETION_ORDER)) {
      const results = await Promise.allSettled(group.map((o) => this.api.delete(o.kind, o.metadata.namespace, o.metadata.name, cost)));
      results.forEach((r, i) => {
        if (r.status === 'rejected') leftovers.push(`${group[i]!.kind} ${group[i]!.metadata.name}`);
      });
    }
    const base = err instanceof Error ? err.message : String(err);
    const prefix = `call ${call.callId}: `;
    const note = leftovers.length
      ? `\n(${leftovers.length} object(s) it had created could not be removed: ${leftovers.join(', ')}; rtp-bench cleanup --namespace ${this.namespace} --run ${call.runId} removes them)`
      : '';
    if (err instanceof KubernetesApiError) return new KubernetesApiError(prefix + base + note, err.op, err.failure, err.attempts, { cause: err });
    if (err instanceof MeshError) return new MeshError(prefix + base + note, err.status, { cause: err });
    return new MeshError(prefix + base + note, null, { cause: err });
  }

  async release(call: MeshCall): Promise<KubernetesReleaseResult> {
    const t0 = performance.now();
    const objects = deletionOrder(callObjects(call, this.mesh));
    const cost = newCost();
    for (const group of kindGroups(objects, DELETION_ORDER)) {
      const results = await Promise.allSettled(group.map((o) => this.api.delete(o.kind, o.metadata.namespace, o.metadata.name, cost)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        const err = failed.reason as unknown;
        const message = `call ${call.callId}: ${err instanceof Error ? err.message : String(err)} (its remaining objects are left: rtp-bench cleanup --namespace ${this.namespace} --run ${call.runId} removes them)`;
        throw err instanceof KubernetesApiError ? new KubernetesApiError(message, err.op, err.failure, err.attempts, { cause: err }) : new MeshError(message, null, { cause: err });
      }
    }
    return { releasedMs: performance.now() - t0, objects: objects.length, requests: cost.requests, retries: cost.retries };
  }

  async releaseRun(runId: string): Promise<void> {
    await removeLabelled(this.api, this.namespace, runSelector(runId), this.remove);
  }

  /**
   * The worker pods: running and ready pods matching `selector`, sorted by name, each named by its `pinLabel` value
   * (what the call's objects pin the worker by). Throws MeshError when none is ready, or a ready one lacks pinLabel.
   */
  async listWorkers(namespace: string, selector: Record<string, string>, pinLabel: string): Promise<MeshWorker[]> {
    const sel = labelSelector(selector);
    const pods = await this.api.listPods(namespace, sel);
    const ready = pods.filter(podReady);
    if (ready.length === 0) {
      throw new MeshError(
        `no ready worker pod matches ${sel} in namespace "${namespace}" (${pods.length} pod(s) match, none running and ready): ` +
          `kubectl -n ${namespace} apply -f kubernetes/rtpengine-workers.yaml, then kubectl -n ${namespace} get pods -l ${sel}`,
      );
    }
    return meshWorkers(ready, pinLabel);
  }

  /**
   * Where clients send media: the address of the first ready ingress pod (by name). The l7mp-ingress Helm chart runs
   * the ingress with hostNetwork, so this is its node's address.
   */
  async ingressAddress(namespace: string, selector: Record<string, string>): Promise<string> {
    const sel = labelSelector(selector);
    const pods = (await this.api.listPods(namespace, sel)).filter(podReady);
    const first = pods.map((p) => ({ name: p.metadata?.name ?? '', address: p.status!.podIP! })).sort(byName)[0];
    if (!first) {
      throw new MeshError(
        `no ready l7mp ingress pod matches ${sel} in namespace "${namespace}": install it (helm install l7mp l7mp/l7mp-ingress -n ${namespace}, see kubernetes/README.md) ` +
          'or give the address clients send media to with --mesh-media-address',
      );
    }
    return first.address;
  }

  async close(): Promise<void> {
    this.api.close();
  }
}

// ---- Manifests ------------------------------------------------------------------------------------------------

/**
 * The worker sidecar's l7mp config as kubernetes/rtpengine-workers.yaml carries it (ConfigMap l7mp-worker-config,
 * key l7mp-worker.yaml): the same template the local mesh starts (workerProxyConfig), with rtpengine's ng exposed on
 * <pod IP>:22222. The listener binds 0.0.0.0:22222 next to rtpengine's 127.0.0.1:22222; both sockets set
 * SO_REUSEADDR, so the kernel gives loopback traffic to rtpengine and pod-IP traffic to the proxy.
 */
export function workerConfigMapText(): string {
  return renderL7mpConfigYaml(
    workerProxyConfig({ ng: { listen: { port: RTPENGINE_NG_PORT }, rtpengine: { address: '127.0.0.1', port: RTPENGINE_NG_PORT } } }),
    'l7mp worker sidecar: rendered by rtp-bench (workerConfigMapText in src/mesh/kubernetes/provisioner.ts); edit there, not here',
  );
}
