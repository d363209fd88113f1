/**
 * The Kubernetes API requests rtp-bench makes (l7mp objects, pods, and the worker StatefulSet's scale), each through shared limits and a retry
 * policy; and removing a run's objects by label. Every request of every call goes through one queue with at most
 * `concurrency` requests in flight and a token bucket of `ratePerSec` requests a second, first come first served, so
 * a burst of calls is spread over the API server instead of hitting it at once. A request is retried on 429, 5xx
 * (but 501/505), a timeout or a dropped or refused connection, with exponential backoff (and at least what
 * Retry-After asks for); any other refusal becomes a MeshError that says what to do (kube-failures.ts). A create
 * answered 409 AlreadyExists is fine when the object there is this run's with the same spec (typically a retried
 * create whose first attempt went through); any other object of that name is reported. A delete answered 404 is fine.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  ServerConfiguration,
  createConfiguration,
  setHeaderOptions,
  type KubeConfig,
  type Middleware,
  type V1Pod,
  type V1Scale,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { LABEL_RUN } from '../model.js';
import { DELETION_ORDER, L7MP_PLURALS, safeLabelValue, type L7mpKind, type L7mpObject } from '../objects.js';
import { MeshError } from '../provisioner.js';
import { ConcurrencyLimit, TokenBucket, defaultBurst } from '../rate-limit.js';
import { APPS_GROUP, L7MP_GROUP, L7MP_VERSION, permitted } from './permissions.js';
import {
  classify,
  describeFailure,
  explain,
  isObjectNotFound,
  isRecord,
  isRetryable,
  KubernetesApiError,
  opText,
  statusOf,
  type ApiOp,
  type Failure,
} from './failures.js';

export const KUBERNETES_DEFAULTS = {
  /** API requests in flight at most, across all calls. */
  concurrency: 8,
  /** API requests started per second at most (token bucket; the bucket holds defaultBurst(rate)). */
  ratePerSec: 50,
  /** One request, from sending to the whole answer, ms. */
  requestTimeoutMs: 10_000,
  /** Attempts per request, the first included. */
  maxAttempts: 6,
  /** Backoff before the n-th retry: initial * 2^(n-1), at most max, jittered to 50-100% of that; never less than a
   * Retry-After the server sent. */
  backoffInitialMs: 200,
  backoffMaxMs: 10_000,
  /** A Retry-After longer than this is cut to it (a confused server should not stall a run for hours). */
  maxRetryAfterMs: 120_000,
  /** releaseRun / cleanup: how long to wait for objects that are being deleted (the operator's finalizer). */
  removeWaitMs: 60_000,
  removePollMs: 500,
} as const;

// ---- Selectors ------------------------------------------------------------------------------------------------

/** `{a: 'b', c: 'd'}` -> `a=b,c=d` (an equality-based label selector). */
export function labelSelector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** The selector of a run's objects; without a run id, of every run's (the run label present at all). */
export function runSelector(runId: string | null): string {
  return runId === null ? LABEL_RUN : `${LABEL_RUN}=${safeLabelValue(runId)}`;
}

// ---- The API client -------------------------------------------------------------------------------------------

export interface KubernetesApiOptions {
  /** API requests in flight at most (default 8). */
  concurrency?: number;
  /** API requests per second at most (default 50). */
  ratePerSec?: number;
  /** Token bucket size: requests that may start at once after a pause (default defaultBurst(rate): 1/5 s worth). */
  burst?: number;
  requestTimeoutMs?: number;
  maxAttempts?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  maxRetryAfterMs?: number;
  /** Notices (retries); default: none. */
  log?: (line: string) => void;
}

/** Requests one call (or one operation) cost. */
export interface Cost {
  requests: number;
  retries: number;
  alreadyExisted: number;
  /** Time the requests waited for this client's own limits (a slot, a rate token) before leaving, summed, ms. */
  waitedMs: number;
}

export function newCost(): Cost {
  return { requests: 0, retries: 0, alreadyExisted: 0, waitedMs: 0 };
}

/** Adds `part` into `total`. */
export function addCost(total: Cost, part: Cost): void {
  total.requests += part.requests;
  total.retries += part.retries;
  total.alreadyExisted += part.alreadyExisted;
  total.waitedMs += part.waitedMs;
}

export interface KubernetesApiStats {
  /** HTTP requests sent (every attempt counts). */
  requests: number;
  retries: number;
  /** Creates answered 409 for this run's identical object, taken as done. */
  alreadyExisted: number;
  /** Deletes answered 404, taken as done. */
  notFound: number;
  /** Most requests in flight at once. */
  maxInFlight: number;
  /** Time requests waited for the rate limit, summed, ms. */
  throttledMs: number;
}

/** A listed l7mp object (what callers need of it). */
export interface ListedObject {
  kind: L7mpKind;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** Set when deletion has started but a finalizer (the operator's) holds the object. */
  deletionTimestamp: string | null;
  spec: unknown;
}

/** JSON with object keys sorted, for comparing objects regardless of key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isRecord(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * The requests this module makes, each through the shared limits and the retry policy. Exported for cleanupRun and
 * for tests; the provisioner is the usual entry point.
 */
export class KubernetesApi {
  readonly server: string;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly slots: ConcurrencyLimit;
  private readonly bucket: TokenBucket;
  private readonly o: Required<Omit<KubernetesApiOptions, 'log' | 'burst'>> & { log: ((line: string) => void) | null };
  private readonly totals = { requests: 0, retries: 0, alreadyExisted: 0, notFound: 0 };
  private closed = false;

  constructor(kc: KubeConfig, options: KubernetesApiOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new MeshError('the kube config has no current cluster: pass --context');
    this.server = cluster.server;
    const positive = (name: string, v: number | undefined, fallback: number, integer: boolean): number => {
      const value = v ?? fallback;
      if (!(value > 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
        throw new RangeError(`Kubernetes provisioner: ${name} must be a positive ${integer ? 'whole ' : ''}number, not ${value}`);
      }
      return value;
    };
    this.o = {
      concurrency: positive('concurrency', options.concurrency, KUBERNETES_DEFAULTS.concurrency, true),
      ratePerSec: positive('ratePerSec', options.ratePerSec, KUBERNETES_DEFAULTS.ratePerSec, false),
      requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, KUBERNETES_DEFAULTS.requestTimeoutMs, false),
      maxAttempts: positive('maxAttempts', options.maxAttempts, KUBERNETES_DEFAULTS.maxAttempts, true),
      backoffInitialMs: positive('backoffInitialMs', options.backoffInitialMs, KUBERNETES_DEFAULTS.backoffInitialMs, false),
      backoffMaxMs: positive('backoffMaxMs', options.backoffMaxMs, KUBERNETES_DEFAULTS.backoffMaxMs, false),
      maxRetryAfterMs: positive('maxRetryAfterMs', options.maxRetryAfterMs, KUBERNETES_DEFAULTS.maxRetryAfterMs, false),
      log: options.log ?? null,
    };
    this.slots = new ConcurrencyLimit(this.o.concurrency);
    this.bucket = new TokenBucket(this.o.ratePerSec, options.burst ?? defaultBurst(this.o.ratePerSec));
    // Per-request timeout: client-node sets no timeout of its own (a request to a hung server would wait forever).
    const timeoutMs = this.o.requestTimeoutMs;
    const timeout: Middleware = {
      pre: async (ctx) => {
        ctx.setSignal(AbortSignal.timeout(timeoutMs));
        return ctx;
      },
      post: async (ctx) => ctx,
    };
    const configuration = createConfiguration({
      baseServer: new ServerConfiguration<Record<string, string>>(cluster.server, {}),
      authMethods: { default: kc },
      promiseMiddleware: [timeout],
    });
    this.custom = new CustomObjectsApi(configuration);
    this.core = new CoreV1Api(configuration);
    this.apps = new AppsV1Api(configuration);
  }

  stats(): KubernetesApiStats {
    return { ...this.totals, maxInFlight: this.slots.maxInFlight, throttledMs: this.bucket.throttledMs };
  }

  close(): void {
    this.closed = true;
  }

  private backoff(attempt: number, f: Failure): number {
    const exp = Math.min(this.o.backoffMaxMs, this.o.backoffInitialMs * 2 ** (attempt - 1));
    const jittered = exp * (0.5 + Math.random() / 2);
    const asked = f.kind === 'http' && f.retryAfterMs !== null ? Math.min(f.retryAfterMs, this.o.maxRetryAfterMs) : 0;
    return Math.max(jittered, asked);
  }

  /** One request with the limits and the retry policy; throws KubernetesApiError when it fails for good. */
  private async send<T>(op: ApiOp, cost: Cost, fn: () => Promise<T>): Promise<T> {
    if (!permitted(op.verb, op.apiGroup, op.resource)) {
      // A programming error: every request must be covered by API_PERMISSIONS (and so by kubernetes/rbac.yaml).
      throw new Error(`internal: ${opText(op)} is not in API_PERMISSIONS`);
    }
    const t0 = performance.now();
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new MeshError(`Kubernetes provisioner closed: ${opText(op)} not sent`);
      let failure: Failure;
      const waitFrom = performance.now();
      const release = await this.slots.acquire();
      try {
        await this.bucket.take();
        cost.waitedMs += performance.now() - waitFrom;
        cost.requests++;
        this.totals.requests++;
        return await fn();
      } catch (err) {
        failure = classify(err, this.o.requestTimeoutMs);
      } finally {
        release();
      }
      if (!isRetryable(failure) || attempt >= this.o.maxAttempts) {
        const message = explain(op, failure, attempt, performance.now() - t0, this.server);
        throw new KubernetesApiError(message, op, failure, attempt, failure.kind === 'other' ? { cause: failure.error } : undefined);
      }
      const delay = this.backoff(attempt, failure);
      cost.retries++;
      this.totals.retries++;
      this.o.log?.(`Kubernetes API: ${opText(op)}: ${describeFailure(failure)}; retry ${attempt} of ${this.o.maxAttempts - 1} in ${Math.round(delay)} ms`);
      await sleep(delay);
    }
  }

  /**
   * Creates `obj`; a 409 is success when the object there is this run's with the same spec (counted in
   * cost.alreadyExisted), a KubernetesApiError (409) otherwise.
   */
  async create(obj: L7mpObject, cost: Cost = newCost()): Promise<'created' | 'existed'> {
    const plural = L7MP_PLURALS[obj.kind];
    const { namespace, name } = obj.metadata;
    const op: ApiOp = { verb: 'create', apiGroup: L7MP_GROUP, resource: plural, namespace, name, object: obj };
    for (let round = 0; ; round++) {
      try {
        await this.send(op, cost, () => this.custom.createNamespacedCustomObject({ group: L7MP_GROUP, version: L7MP_VERSION, namespace, plural, body: obj }));
        return 'created';
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
        const existing = await this.get(obj.kind, namespace, name, cost);
        if (existing === null && round === 0) continue; // deleted meanwhile: create again, once
        const runLabel = obj.metadata.labels[LABEL_RUN];
        if (existing !== null && existing.deletionTimestamp === null && existing.labels[LABEL_RUN] === runLabel && canonical(existing.spec) === canonical(obj.spec)) {
          cost.alreadyExisted++;
          this.totals.alreadyExisted++;
          return 'existed';
        }
        const why =
          existing === null
            ? 'it was there, then gone, then there again'
            : existing.deletionTimestamp !== null
              ? `it is still being deleted (since ${existing.deletionTimestamp}; the l7mp operator removes its finalizer)`
              : existing.labels[LABEL_RUN] !== runLabel
                ? `it belongs to ${existing.labels[LABEL_RUN] === undefined ? 'no rtp-bench run' : `run ${existing.labels[LABEL_RUN]}`}, a leftover: rtp-bench cleanup --namespace ${namespace}${existing.labels[LABEL_RUN] ? ` --run ${existing.labels[LABEL_RUN]}` : ''} removes it`
                : 'it is this run\'s but with a different spec (a call id used twice?)';
        const e = err as KubernetesApiError;
        throw new KubernetesApiError(`Kubernetes API (${this.server}): ${obj.kind} ${namespace}/${name} already exists and is not this call's: ${why}`, e.op, e.failure, e.attempts, { cause: err });
      }
    }
  }

  /** The object, or null when there is none. */
  async get(kind: L7mpKind, namespace: string, name: string, cost: Cost = newCost()): Promise<ListedObject | null> {
    const plural = L7MP_PLURALS[kind];
    const body = await this.found(() =>
      this.send({ verb: 'get', apiGroup: L7MP_GROUP, resource: plural, namespace, name }, cost, (): Promise<unknown> =>
        this.custom.getNamespacedCustomObject({ group: L7MP_GROUP, version: L7MP_VERSION, namespace, plural, name }),
      ),
    );
    return body === null ? null : toListed(kind, body);
  }

  /** A get whose object is not there (404 for the object, not for its kind or namespace) is no failure: null. */
  private async found<T>(request: () => Promise<T>): Promise<T | null> {
    try {
      return await request();
    } catch (err) {
      if (statusOf(err) === 404 && isObjectNotFound(err as KubernetesApiError)) return null;
      throw err;
    }
  }

  /** Deletes one object; 'gone' when it was not there (404). */
  async delete(kind: L7mpKind, namespace: string, name: string, cost: Cost = newCost()): Promise<'deleted' | 'gone'> {
    const plural = L7MP_PLURALS[kind];
    return this.deleting(() =>
      this.send({ verb: 'delete', apiGroup: L7MP_GROUP, resource: plural, namespace, name }, cost, () =>
        this.custom.deleteNamespacedCustomObject({ group: L7MP_GROUP, version: L7MP_VERSION, namespace, plural, name }),
      ),
    );
  }

  /** A delete whose object was already gone (404 for the object, not for its kind) is no failure: 'gone'. */
  private async deleting(request: () => Promise<unknown>): Promise<'deleted' | 'gone'> {
    try {
      await request();
      return 'deleted';
    } catch (err) {
      if (statusOf(err) === 404 && isObjectNotFound(err as KubernetesApiError)) {
        this.totals.notFound++;
        return 'gone';
      }
      throw err;
    }
  }

  async deleteCollection(kind: L7mpKind, namespace: string, selector: string, cost: Cost = newCost()): Promise<void> {
    const plural = L7MP_PLURALS[kind];
    await this.send({ verb: 'deletecollection', apiGroup: L7MP_GROUP, resource: plural, namespace, labelSelector: selector }, cost, () =>
      this.custom.deleteCollectionNamespacedCustomObject({ group: L7MP_GROUP, version: L7MP_VERSION, namespace, plural, labelSelector: selector }),
    );
  }

  async list(kind: L7mpKind, namespace: string, selector: string, cost: Cost = newCost()): Promise<ListedObject[]> {
    const plural = L7MP_PLURALS[kind];
    const body: unknown = await this.send({ verb: 'list', apiGroup: L7MP_GROUP, resource: plural, namespace, labelSelector: selector }, cost, () =>
      this.custom.listNamespacedCustomObject({ group: L7MP_GROUP, version: L7MP_VERSION, namespace, plural, labelSelector: selector }),
    );
    const items = isRecord(body) && Array.isArray(body['items']) ? (body['items'] as unknown[]) : [];
    return items.map((item) => toListed(kind, item)).filter((o): o is ListedObject => o !== null);
  }

  async listPods(namespace: string, selector: string, cost: Cost = newCost()): Promise<V1Pod[]> {
    const list = await this.send({ verb: 'list', apiGroup: '', resource: 'pods', namespace, labelSelector: selector }, cost, () =>
      this.core.listNamespacedPod({ namespace, labelSelector: selector }),
    );
    return list.items;
  }

  /**
   * Deletes a pod at once (gracePeriodSeconds 0: no SIGTERM grace, as a crash would be); 'gone' when it was not
   * there. Retried like every request: a second delete of the same pod is only a 404.
   */
  async deletePod(namespace: string, name: string, cost: Cost = newCost()): Promise<'deleted' | 'gone'> {
    return this.deleting(() =>
      this.send({ verb: 'delete', apiGroup: '', resource: 'pods', namespace, name }, cost, () =>
        this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }),
      ),
    );
  }

  /** One pod by name (--fault kill-worker follows a worker pod until its replacement is Ready), or null when there is none. */
  async readPod(namespace: string, name: string, cost: Cost = newCost()): Promise<V1Pod | null> {
    return this.found(() => this.send({ verb: 'get', apiGroup: '', resource: 'pods', namespace, name }, cost, () => this.core.readNamespacedPod({ namespace, name })));
  }

  async readStatefulSet(namespace: string, name: string, cost: Cost = newCost()): Promise<V1StatefulSet> {
    return this.send({ verb: 'get', apiGroup: APPS_GROUP, resource: 'statefulsets', namespace, name }, cost, () => this.apps.readNamespacedStatefulSet({ namespace, name }));
  }

  /** The StatefulSet's scale subresource: spec.replicas, and status.replicas/selector. */
  async readStatefulSetScale(namespace: string, name: string, cost: Cost = newCost()): Promise<V1Scale> {
    return this.send({ verb: 'get', apiGroup: APPS_GROUP, resource: 'statefulsets/scale', namespace, name }, cost, () => this.apps.readNamespacedStatefulSetScale({ namespace, name }));
  }

  /**
   * Sets the StatefulSet's replicas through its scale subresource, as `kubectl scale` does: a merge patch
   * {spec: {replicas}} (client-node would otherwise send it as a JSON patch, which the server refuses for an object
   * body). Setting a value is idempotent, so the usual retries are safe.
   */
  async patchStatefulSetScale(namespace: string, name: string, replicas: number, cost: Cost = newCost()): Promise<V1Scale> {
    return this.send({ verb: 'patch', apiGroup: APPS_GROUP, resource: 'statefulsets/scale', namespace, name }, cost, () =>
      this.apps.patchNamespacedStatefulSetScale({ namespace, name, body: { spec: { replicas } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    );
  }
}

function toListed(kind: L7mpKind, body: unknown): ListedObject | null {
  if (!isRecord(body) || !isRecord(body['metadata'])) return null;
  const md = body['metadata'];
  const labels = isRecord(md['labels']) ? (md['labels'] as Record<string, string>) : {};
  const ts = md['deletionTimestamp'];
  return {
    kind: typeof body['kind'] === 'string' && body['kind'] in L7MP_PLURALS ? (body['kind'] as L7mpKind) : kind,
    name: String(md['name']),
    namespace: String(md['namespace']),
    labels,
    deletionTimestamp: typeof ts === 'string' ? ts : ts instanceof Date ? ts.toISOString() : null,
    spec: body['spec'] ?? null,
  };
}

// ---- Removing by label (releaseRun, cleanup) ------------------------------------------------------------------

export interface RemoveOptions {
  /** How long to wait for objects held by a finalizer, ms (default 60 s). */
  removeWaitMs?: number;
  removePollMs?: number;
}

/**
 * Deletes every l7mp object matching `selector` in `namespace` (delete-collection per kind, VirtualServices first),
 * then lists until none is left: objects created meanwhile are deleted again, objects being deleted (the operator's
 * finalizer) are waited for. Throws MeshError naming what is left after removeWaitMs.
 */
export async function removeLabelled(api: KubernetesApi, namespace: string, selector: string, options: RemoveOptions = {}, cost: Cost = newCost()): Promise<void> {
  const removeWaitMs = options.removeWaitMs ?? KUBERNETES_DEFAULTS.removeWaitMs;
  const removePollMs = options.removePollMs ?? KUBERNETES_DEFAULTS.removePollMs;
  const kinds = DELETION_ORDER;
  const deadline = performance.now() + removeWaitMs;
  for (const kind of kinds) await api.deleteCollection(kind, namespace, selector, cost);
  for (;;) {
    const left: ListedObject[] = [];
    for (const kind of kinds) left.push(...(await api.list(kind, namespace, selector, cost)));
    if (left.length === 0) return;
    const live = left.filter((o) => o.deletionTimestamp === null);
    if (performance.now() >= deadline) {
      const dying = left.length - live.length;
      const names = left.slice(0, 10).map((o) => `${o.kind} ${o.namespace}/${o.name}${o.deletionTimestamp ? ' (being deleted)' : ''}`);
      throw new MeshError(
        `${left.length} l7mp object(s) with ${selector} are still there after ${(removeWaitMs / 1000).toFixed(1)} s: ${names.join(', ')}${left.length > 10 ? ', ...' : ''}` +
          (dying > 0
            ? `; ${dying} wait for the l7mp operator to remove its finalizer: is the operator running (kubectl -n ${namespace} get pods -l app=l7mp-operator)? ` +
              `If it is gone for good: kubectl -n ${namespace} patch <kind>/<name> --type=merge -p '{"metadata":{"finalizers":null}}'`
            : '; something keeps creating them: is another rtp-bench run using this namespace?'),
      );
    }
    for (const kind of kinds) {
      if (live.some((o) => o.kind === kind)) await api.deleteCollection(kind, namespace, selector, cost);
    }
    await sleep(removePollMs);
  }
}
