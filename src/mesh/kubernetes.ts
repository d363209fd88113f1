/**
 * `--mesh kubernetes`: each call's l7mp objects as namespaced custom resources (l7mp.io/v1 virtualservices, targets,
 * rules) through the Kubernetes API; the l7mp operator turns them into proxy configuration. Also discovery (worker
 * pods, the ingress) and `rtp-bench cleanup` (everything a run left behind).
 *
 * How requests are sent: every API request of every call goes through one queue with at most `concurrency` requests
 * in flight and a token bucket of `ratePerSec` requests a second, first come first served, so a burst of calls is
 * spread over the API server instead of hitting it at once. A request is retried on 429, 5xx (but 501/505), a
 * timeout or a dropped or refused connection, with exponential backoff (and at least what Retry-After asks for);
 * any other refusal becomes a MeshError that says what to do. A create answered 409 AlreadyExists is fine when the
 * object there is this run's with the same spec (typically a retried create whose first attempt went through);
 * any other object of that name is reported. A delete answered 404 is fine.
 *
 * Readiness cannot be observed through the API (the operator programs the proxies asynchronously), so a call is
 * "accepted" once every object is created and readyMs is null. Compact objects are refused: with the operator's
 * deletes, a compact VirtualService that has a live session crashes the l7mp 0.5.7 ingress proxy.
 *
 * What it calls, exactly (API_PERMISSIONS; kubernetes/rbac.yaml grants exactly that, a test holds them equal):
 * create, get, delete, deletecollection and list on l7mp.io virtualservices/targets/rules, and list on pods.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  ServerConfiguration,
  createConfiguration,
  type Middleware,
  type V1Pod,
} from '@kubernetes/client-node';
import { renderL7mpConfigYaml, RTPENGINE_NG_PORT, workerProxyConfig } from '../stack/l7mp-proxy.js';
import { LABEL_RUN, type MeshCall, type MeshOptions, type MeshWorker } from './model.js';
import { callObjects, deletionOrder, L7MP_PLURALS, safeLabelValue, type L7mpKind, type L7mpObject } from './objects.js';
import { MeshError, type MeshCost, type MeshProvisioner, type ProvisionTiming } from './provisioner.js';
import { ConcurrencyLimit, TokenBucket, defaultBurst } from './rate-limit.js';

export const L7MP_GROUP = 'l7mp.io';
export const L7MP_VERSION = 'v1';

/** Kinds in the order they are created (and, reversed, deleted): a singleton session set up before its cluster or
 * rule exists loses media until the route's retry (facts/l7mp.md). */
export const CREATION_ORDER: readonly L7mpKind[] = ['Rule', 'Target', 'VirtualService'];

export type ApiVerb = 'create' | 'get' | 'list' | 'delete' | 'deletecollection';

/** One RBAC rule's worth of what the code calls. */
export interface ApiPermission {
  apiGroup: string;
  resources: string[];
  verbs: ApiVerb[];
}

/** Everything this module asks the API server for, as RBAC rules: kubernetes/rbac.yaml's Role grants exactly this. */
export const API_PERMISSIONS: readonly ApiPermission[] = [
  { apiGroup: L7MP_GROUP, resources: ['virtualservices', 'targets', 'rules'], verbs: ['create', 'get', 'list', 'delete', 'deletecollection'] },
  { apiGroup: '', resources: ['pods'], verbs: ['list'] },
];

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

/** Where the rtp-bench RBAC lives, for messages. */
const RBAC_FILE = 'kubernetes/rbac.yaml';

// ---- Kube config ----------------------------------------------------------------------------------------------

export interface KubeConfigChoice {
  /** A kubeconfig file; default: $KUBECONFIG, then ~/.kube/config, then the pod's service account (in-cluster). */
  kubeconfig?: string | null;
  /** A context of that kubeconfig; default: its current context. */
  context?: string | null;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The Kubernetes client configuration, from the usual places (an explicit file, $KUBECONFIG, ~/.kube/config, or
 * in-cluster), with the context chosen. Unlike KubeConfig.loadFromDefault it never falls back to an unauthenticated
 * http://localhost:8080: with nothing found it says so. A plain-http server (kubectl proxy) is allowed.
 */
export function loadKubeConfig(choice: KubeConfigChoice = {}): KubeConfig {
  const kc = new KubeConfig();
  let source: string;
  try {
    if (choice.kubeconfig) {
      source = `--kubeconfig ${choice.kubeconfig}`;
      if (!existsSync(choice.kubeconfig)) throw new MeshError(`${source}: no such file`);
      kc.loadFromFile(choice.kubeconfig);
    } else if (process.env['KUBECONFIG']) {
      source = `KUBECONFIG=${process.env['KUBECONFIG']}`;
      kc.loadFromDefault();
    } else if (existsSync(join(homedir(), '.kube', 'config'))) {
      source = join(homedir(), '.kube', 'config');
      kc.loadFromDefault();
    } else if (process.env['KUBERNETES_SERVICE_HOST'] && existsSync(SERVICE_ACCOUNT_TOKEN)) {
      source = "the pod's service account (in-cluster)";
      kc.loadFromCluster();
    } else {
      throw new MeshError(
        'no Kubernetes configuration found: no --kubeconfig, no $KUBECONFIG, no ~/.kube/config, and not running in a pod. ' +
          'Point --kubeconfig at a kubeconfig file (e.g. the one `kind get kubeconfig` or minikube writes), or run rtp-bench in the cluster (kubernetes/rtp-bench-job.yaml)',
      );
    }
  } catch (err) {
    if (err instanceof MeshError) throw err;
    throw new MeshError(`cannot read the Kubernetes configuration: ${(err as Error).message}`, null, { cause: err });
  }
  if (choice.context) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(choice.context)) {
      throw new MeshError(`--context ${choice.context}: no such context in ${source}; its contexts: ${names.length ? names.join(', ') : '(none)'}`);
    }
    kc.setCurrentContext(choice.context);
  }
  if (!kc.getCurrentCluster()) {
    const names = kc.getContexts().map((c) => c.name);
    throw new MeshError(`${source} names no usable current context (or its cluster is missing): pass --context, one of: ${names.length ? names.join(', ') : '(none)'}`);
  }
  return allowPlainHttp(kc);
}

/**
 * client-node 1.4 refuses an http:// server unless the cluster says skipTLSVerify ("HTTP protocol is not allowed
 * when skipTLSVerify is not set or false"), at the first request. There is no TLS to verify on plain http (kubectl
 * proxy, an emulator), so the flag is set on that cluster.
 */
export function allowPlainHttp(kc: KubeConfig): KubeConfig {
  const current = kc.getCurrentCluster();
  if (!current || !current.server.startsWith('http:') || current.skipTLSVerify) return kc;
  kc.loadFromOptions({
    clusters: kc.getClusters().map((c) => (c.name === current.name ? { ...c, skipTLSVerify: true } : c)),
    contexts: kc.getContexts(),
    users: kc.getUsers(),
    currentContext: kc.getCurrentContext(),
  });
  return kc;
}

/** The current context's namespace, if it names one. */
export function contextNamespace(kc: KubeConfig): string | null {
  return kc.getContextObject(kc.getCurrentContext())?.namespace ?? null;
}

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

// ---- Failures -------------------------------------------------------------------------------------------------

/** A Kubernetes Status body (what the API server answers on failure). */
interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[]; retryAfterSeconds?: number };
}

type Failure =
  | { kind: 'http'; status: number; body: KubeStatus | null; text: string; retryAfterMs: number | null }
  | { kind: 'network'; code: string; message: string }
  | { kind: 'other'; message: string; error: unknown };

/** Network failures worth another attempt: the request may not have reached the server, or its answer was lost. */
const RETRYABLE_NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'TIMEOUT']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Retry-After: delta-seconds or an HTTP date; ms from now, or null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | null {
  if (value === undefined || value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (text === '') return null;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function classify(err: unknown, timeoutMs: number): Failure {
  if (err instanceof ApiException) {
    const status = Number(err.code);
    const text = typeof err.body === 'string' ? err.body : err.body === undefined ? '' : JSON.stringify(err.body);
    let body: KubeStatus | null = null;
    try {
      const parsed: unknown = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      if (isRecord(parsed)) body = parsed as KubeStatus;
    } catch {
      // not JSON (e.g. "404 page not found")
    }
    const headers = (isRecord(err.headers) ? err.headers : {}) as Record<string, string>;
    let retryAfterMs = parseRetryAfter(headers['retry-after']);
    if (retryAfterMs === null && typeof body?.details?.retryAfterSeconds === 'number') retryAfterMs = body.details.retryAfterSeconds * 1000;
    return { kind: 'http', status, body, text, retryAfterMs };
  }
  if (err instanceof Error) {
    if (err.name === 'AbortError' || err.name === 'TimeoutError') return { kind: 'network', code: 'TIMEOUT', message: `no answer within ${timeoutMs} ms` };
    const code = (err as { code?: unknown }).code;
    if (err.name === 'FetchError' && typeof code === 'string') return { kind: 'network', code, message: err.message };
    return { kind: 'other', message: err.message, error: err };
  }
  return { kind: 'other', message: String(err), error: err };
}

function isRetryable(f: Failure): boolean {
  if (f.kind === 'http') return f.status === 429 || (f.status >= 500 && f.status !== 501 && f.status !== 505);
  if (f.kind === 'network') return RETRYABLE_NETWORK.has(f.code);
  return false;
}

function describeFailure(f: Failure): string {
  if (f.kind === 'http') {
    const reason = f.body?.reason ? ` ${f.body.reason}` : '';
    const message = f.body?.message ?? (f.text.trim().slice(0, 300) || '(no message)');
    return `${f.status}${reason}: ${message}`;
  }
  if (f.kind === 'network') return f.code === 'TIMEOUT' ? f.message : `${f.code}: ${f.message}`;
  return f.message;
}

/** What a request was, for messages and for the permission check. */
interface ApiOp {
  verb: ApiVerb;
  apiGroup: string;
  resource: string;
  namespace: string;
  name?: string;
  labelSelector?: string;
  /** The object sent (create). */
  object?: L7mpObject;
}

function opText(op: ApiOp): string {
  const what = op.apiGroup === '' ? op.resource : `${op.resource}.${op.apiGroup}`;
  const target = op.name !== undefined ? ` ${op.namespace}/${op.name}` : ` in namespace "${op.namespace}"`;
  const sel = op.labelSelector !== undefined ? ` (selector ${op.labelSelector})` : '';
  return `${op.verb} ${what}${target}${sel}`;
}

/** A request that failed for good: carries what the server said, for callers that tolerate some answers. */
export class KubernetesApiError extends MeshError {
  override readonly name = 'KubernetesApiError';
  constructor(
    message: string,
    readonly op: Readonly<ApiOp>,
    readonly failure: Readonly<Failure>,
    readonly attempts: number,
    options?: ErrorOptions,
  ) {
    super(message, failure.kind === 'http' ? failure.status : null, options);
  }
}

function statusOf(err: unknown): number | null {
  return err instanceof KubernetesApiError && err.failure.kind === 'http' ? err.failure.status : null;
}

/** The user-facing explanation of a failed request, with what to do. */
function explain(op: ApiOp, f: Failure, attempts: number, elapsedMs: number, server: string): string {
  const head = `Kubernetes API (${server}): ${opText(op)}`;
  if (f.kind !== 'http') {
    const tried = attempts > 1 ? ` after ${attempts} attempts in ${(elapsedMs / 1000).toFixed(1)} s` : '';
    const hint = isRetryable(f)
      ? 'the API server is unreachable or overloaded: check the cluster (kubectl cluster-info) and --kubeconfig/--context, or lower --mesh-rate/--mesh-concurrency'
      : 'check the cluster address and credentials in the kubeconfig (--kubeconfig, --context)';
    return `${head} failed${tried}: ${describeFailure(f)}; ${hint}`;
  }
  const said = describeFailure(f);
  switch (f.status) {
    case 401:
      return `${head}: 401 Unauthorized: the credentials of the kube context were refused (expired token or certificate?): check --kubeconfig/--context, e.g. kubectl auth whoami`;
    case 403:
      return (
        `${head}: forbidden (${said}). rtp-bench needs the permissions in ${RBAC_FILE}: ` +
        `kubectl apply -n ${op.namespace} -f ${RBAC_FILE}, then run as its service account rtp-bench (kubernetes/rtp-bench-job.yaml does) ` +
        `or bind the Role rtp-bench to your own user (kubectl create rolebinding ... --role=rtp-bench --user=...)`
      );
    case 404: {
      if (f.body?.details?.kind === 'namespaces') {
        return `${head}: the namespace "${op.namespace}" does not exist (${said}): create it (kubectl create namespace ${op.namespace}) or pass --namespace`;
      }
      if (op.apiGroup === L7MP_GROUP) {
        return (
          `${head}: 404 (${said}): the l7mp CRDs are not installed in this cluster (the API server does not know ${op.resource}.${L7MP_GROUP}/${L7MP_VERSION}): ` +
          'kubectl apply -f kubernetes/crds/ and install the l7mp operator and ingress (helm install ... l7mp/l7mp-ingress, see kubernetes/README.md)'
        );
      }
      return `${head}: 404 (${said})`;
    }
    case 409:
      return `${head}: 409 Conflict (${said})`;
    case 422: {
      const causes = (f.body?.details?.causes ?? []).map((c) => `  - ${c.field ?? '(object)'}: ${c.message ?? c.reason ?? 'invalid'}`);
      const object = op.object ? `\nthe object:\n${JSON.stringify(op.object, null, 2)}` : '';
      return (
        `${head}: the API server rejected it as invalid (${said})` +
        (causes.length ? `\nfield errors:\n${causes.join('\n')}` : '') +
        object +
        '\nThe l7mp CRDs installed in the cluster differ from kubernetes/crds (which rtp-bench validates its objects against): ' +
        'kubectl apply -f kubernetes/crds/ — or, if they are the same, this is a bug in rtp-bench: report it with this message'
      );
    }
    default: {
      const tried = attempts > 1 ? ` (gave up after ${attempts} attempts in ${(elapsedMs / 1000).toFixed(1)} s)` : '';
      const object = f.status === 400 && op.object ? `\nthe object:\n${JSON.stringify(op.object, null, 2)}` : '';
      const hint = isRetryable(f) ? '; the API server is overloaded or failing: lower --mesh-rate/--mesh-concurrency, or check its health' : '';
      return `${head}: ${said}${tried}${hint}${object}`;
    }
  }
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
interface Cost {
  requests: number;
  retries: number;
  alreadyExisted: number;
}

function newCost(): Cost {
  return { requests: 0, retries: 0, alreadyExisted: 0 };
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


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function permitted(verb: ApiVerb, apiGroup: string, resource: string): boolean {
  return API_PERMISSIONS.some((p) => p.apiGroup === apiGroup && p.resources.includes(resource) && p.verbs.includes(verb));
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
      const release = await this.slots.acquire();
      try {
        await this.bucket.take();
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
    try {
      const body: unknown = await this.send({ verb: 'get', apiGroup: L7MP_GROUP, resource: plural, namespace, name }, cost, () =>
        this.custom.getNamespacedCustomObject({ group: L7MP_GROUP, version: L7MP_VERSION, namespace, plural, name }),
      );
      return toListed(kind, body);
    } catch (err) {
      if (statusOf(err) === 404 && isObjectNotFound(err as KubernetesApiError)) return null;
      throw err;
    }
  }

  /** Deletes one object; 'gone' when it was not there (404). */
  async delete(kind: L7mpKind, namespace: string, name: string, cost: Cost = newCost()): Promise<'deleted' | 'gone'> {
    const plural = L7MP_PLURALS[kind];
    try {
      await this.send({ verb: 'delete', apiGroup: L7MP_GROUP, resource: plural, namespace, name }, cost, () =>
        this.custom.deleteNamespacedCustomObject({ group: L7MP_GROUP, version: L7MP_VERSION, namespace, plural, name }),
      );
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
}

/** A 404 for the object itself (a Status naming it), not for the resource type (CRDs missing) or the namespace. */
function isObjectNotFound(err: KubernetesApiError): boolean {
  const f = err.failure;
  if (f.kind !== 'http' || f.status !== 404) return false;
  const details = f.body?.details;
  return details !== undefined && details.kind !== 'namespaces' && details.name !== undefined && details.name === err.op.name;
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
  const kinds = [...CREATION_ORDER].reverse();
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

// ---- The provisioner ------------------------------------------------------------------------------------------

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

function podReady(pod: V1Pod): boolean {
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
    try {
      for (const group of kindGroups(objects, CREATION_ORDER)) {
        // Every request of the group is settled before the next group (or the rollback) starts.
        const results = await Promise.allSettled(
          group.map(async (o) => {
            await this.api.create(o, cost);
            made.push(o);
          }),
        );
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      }
    } catch (err) {
      throw await this.rollback(call, made, err, cost);
    }
    return {
      acceptedMs: performance.now() - t0,
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
    for (const group of kindGroups(deletionOrder(made), [...CREATION_ORDER].reverse())) {
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
    for (const group of kindGroups(objects, [...CREATION_ORDER].reverse())) {
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

// ---- rtp-bench cleanup ----------------------------------------------------------------------------------------

export interface CleanupOptions extends KubeConfigChoice, KubernetesApiOptions, RemoveOptions {
  /** Only this run's objects; null or absent: every object with the run label (any run). */
  runId?: string | null;
  /** Default: the kube context's namespace, else "default". */
  namespace?: string | null;
  kubeConfig?: KubeConfig;
  /** Where the report lines go; default: standard output. */
  print?: (line: string) => void;
}

export interface CleanupResult {
  namespace: string;
  selector: string;
  /** What was there and is gone now, by kind (VirtualServices, Targets, Rules). */
  removed: { kind: L7mpKind; name: string; run: string | null }[];
}

/** `rtp-bench cleanup`: deletes every l7mp object of a run (or of any run) that is still in the namespace. */
export async function cleanupRun(options: CleanupOptions = {}): Promise<CleanupResult> {
  const print = options.print ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const kc = options.kubeConfig ? allowPlainHttp(options.kubeConfig) : loadKubeConfig(options);
  const namespace = options.namespace ?? contextNamespace(kc) ?? 'default';
  const selector = runSelector(options.runId ?? null);
  const api = new KubernetesApi(kc, options);
  try {
    const kinds = [...CREATION_ORDER].reverse();
    const found: ListedObject[] = [];
    for (const kind of kinds) found.push(...(await api.list(kind, namespace, selector)));
    const what = options.runId ? `run ${options.runId}` : 'any rtp-bench run';
    if (found.length === 0) {
      print(`cleanup: no l7mp objects of ${what} in namespace ${namespace} (selector ${selector})`);
      return { namespace, selector, removed: [] };
    }
    print(`cleanup: removing ${found.length} l7mp object(s) of ${what} from namespace ${namespace} (selector ${selector})`);
    await removeLabelled(api, namespace, selector, options);
    const removed = found.map((o) => ({ kind: o.kind, name: o.name, run: o.labels[LABEL_RUN] ?? null }));
    for (const o of removed) print(`removed ${o.kind} ${namespace}/${o.name}${o.run ? ` (run ${o.run})` : ''}`);
    const counts = kinds.map((k) => `${removed.filter((o) => o.kind === k).length} ${k}`).join(', ');
    const runs = [...new Set(removed.map((o) => o.run).filter((r): r is string => r !== null))];
    print(`cleanup: removed ${removed.length} object(s): ${counts}; run(s): ${runs.join(', ')}`);
    return { namespace, selector, removed };
  } finally {
    api.close();
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
    'l7mp worker sidecar: rendered by rtp-bench (workerConfigMapText in src/mesh/kubernetes.ts); edit there, not here',
  );
}
