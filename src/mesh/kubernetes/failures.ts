/**
 * Why a Kubernetes API request failed, and what to tell the user: the failure read from the client's exception (the
 * server's Status, a network error code, a timeout), whether it is worth another attempt (429, 5xx but 501/505, a
 * timeout, a dropped or refused connection), and an explanation that says what to do (credentials, RBAC, missing
 * CRDs or namespace, an invalid object, an overloaded server).
 */
import { ApiException } from '@kubernetes/client-node';
import type { L7mpObject } from '../objects.js';
import { MeshError } from '../provisioner.js';
import { APPS_GROUP, L7MP_GROUP, L7MP_VERSION, permissionFor, RBAC_FILE, roleRuleText, type ApiVerb } from './permissions.js';

/** A Kubernetes Status body (what the API server answers on failure). */
interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[]; retryAfterSeconds?: number };
}

export type Failure =
  | { kind: 'http'; status: number; body: KubeStatus | null; text: string; retryAfterMs: number | null }
  | { kind: 'network'; code: string; message: string }
  | { kind: 'other'; message: string; error: unknown };

/** Network failures worth another attempt: the request may not have reached the server, or its answer was lost. */
const RETRYABLE_NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'TIMEOUT']);

/** A JSON object: not null, not an array. */
export function isRecord(v: unknown): v is Record<string, unknown> {
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

export function classify(err: unknown, timeoutMs: number): Failure {
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

export function isRetryable(f: Failure): boolean {
  if (f.kind === 'http') return f.status === 429 || (f.status >= 500 && f.status !== 501 && f.status !== 505);
  if (f.kind === 'network') return RETRYABLE_NETWORK.has(f.code);
  return false;
}

export function describeFailure(f: Failure): string {
  if (f.kind === 'http') {
    const reason = f.body?.reason ? ` ${f.body.reason}` : '';
    const message = f.body?.message ?? (f.text.trim().slice(0, 300) || '(no message)');
    return `${f.status}${reason}: ${message}`;
  }
  if (f.kind === 'network') return f.code === 'TIMEOUT' ? f.message : `${f.code}: ${f.message}`;
  return f.message;
}

/** What a request was, for messages and for the permission check. */
export interface ApiOp {
  verb: ApiVerb;
  apiGroup: string;
  resource: string;
  namespace: string;
  name?: string;
  labelSelector?: string;
  /** The object sent (create). */
  object?: L7mpObject;
}

export function opText(op: ApiOp): string {
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

export function statusOf(err: unknown): number | null {
  return err instanceof KubernetesApiError && err.failure.kind === 'http' ? err.failure.status : null;
}

/** The user-facing explanation of a failed request, with what to do. */
export function explain(op: ApiOp, f: Failure, attempts: number, elapsedMs: number, server: string): string {
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
    case 403: {
      // Name the very rule the Role lacks: a Role applied from an older rbac.yaml (before scale) misses only that.
      const rule = permissionFor(op.verb, op.apiGroup, op.resource);
      const lacks = rule === undefined ? '' : ` The Role must have the rule ${roleRuleText(rule)}, needed by ${rule.usedBy}.`;
      // The requests only a fault makes: a run can go on without them, a Role without them on pods is a choice.
      const instead = (op.verb === 'delete' || op.verb === 'get') && op.resource === 'pods' ? ' Or run without --fault kill-worker.' : '';
      return (
        `${head}: forbidden (${said}).${lacks} rtp-bench needs the permissions in ${RBAC_FILE}: ` +
        `kubectl apply -n ${op.namespace} -f ${RBAC_FILE}, then run as its service account rtp-bench (kubernetes/rtp-bench-job.yaml does) ` +
        `or bind the Role rtp-bench to your own user (kubectl create rolebinding ... --role=rtp-bench --user=...).${instead}`
      );
    }
    case 404: {
      if (f.body?.details?.kind === 'namespaces') {
        return `${head}: the namespace "${op.namespace}" does not exist (${said}): create it (kubectl create namespace ${op.namespace}) or pass --namespace`;
      }
      if (op.apiGroup === APPS_GROUP && op.resource.startsWith('statefulsets')) {
        return (
          `${head}: 404 (${said}): there is no StatefulSet "${op.name ?? ''}" in namespace "${op.namespace}": ` +
          `kubectl apply -n ${op.namespace} -f kubernetes/rtpengine-workers.yaml, or name yours with --worker-statefulset (and --namespace)`
        );
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

/** A 404 for the object itself (a Status naming it), not for the resource type (CRDs missing) or the namespace. */
export function isObjectNotFound(err: KubernetesApiError): boolean {
  const f = err.failure;
  if (f.kind !== 'http' || f.status !== 404) return false;
  const details = f.body?.details;
  return details !== undefined && details.kind !== 'namespaces' && details.name !== undefined && details.name === err.op.name;
}
