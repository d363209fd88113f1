/**
 * What the current l7mp Kubernetes operator (k8s-operator/l7mp.py) sends to each l7mp proxy for an l7mp.io/v1
 * object (docs/l7mp-behaviour.md#what-the-kubernetes-operator-does). The REST provisioner sends these requests
 * (addRequests, and restDeleteRequests, which is deleteRequests plus one safety delete for compact listeners), so a
 * mesh programmed without Kubernetes ends up configured like one programmed by the operator. Success is decided by isAccepted.
 *
 * - The object's spec.selector picks the proxies; a Target's endpoint selectors pick the proxies its cluster gets an
 *   endpoint for (named `<cluster>/<address>`).
 * - Names on the proxies follow options.naming (see proxyName), percent-encoded in URL paths.
 * - Bodies are converted to the proxy's own API: `{UDP: {...}}` -> `{protocol: 'UDP', ...}` for listener, cluster and
 *   JSONSocket transport specs; destinationRef -> destination (a cluster name); valueStr -> value;
 *   `{clusterRef: x}` -> x; rulesRef/routeRef -> rules/route; listener options (track) are dropped.
 *
 * Order: the requests returned for one object are grouped by proxy, and those of one proxy must be sent one after
 * the other, in the order given (a Target's cluster before its endpoints; a Rule's removal from its rule list before
 * the rule itself: the other way round the rule list keeps a stale entry and every later rule behind it becomes
 * unreachable). Requests to different proxies are independent.
 */
import type { MeshOptions } from '../model.js';
import {
  proxyNameOf,
  type Cluster,
  type ClusterSpec,
  type Endpoint,
  type JsonValue,
  type L7mpObject,
  type LabelSelector,
  type ListenerSpec,
  type LoadBalancer,
  type MatchActionRule,
  type Retry,
  type Rewrite,
  type Route,
  type RouteStage,
  type StaticEndpoint,
  type Target,
} from '../objects.js';

/** An l7mp proxy (a pod of the ingress gateway or a worker sidecar, or a local one). */
export interface MeshProxy {
  name: string;
  /** The pod IP: what a Target's endpoint points at. */
  address: string;
  /** Base URL of its REST API, e.g. http://10.0.0.5:1234 (the operator always uses port 1234). */
  restUrl: string;
  labels: Record<string, string>;
}

/** An answer that is not a 2xx but means the request did what it should (the object was already there / gone). */
export interface ToleratedAnswer {
  status: number;
  /** Regular expression source, tested against the answer's `content` string. */
  content: string;
}

export interface RestRequest {
  /** MeshProxy.name of the proxy to send it to. */
  proxy: string;
  method: 'POST' | 'DELETE';
  /** Path and query, names percent-encoded, e.g. /api/v1/listeners/%2Fl7mp.io%2Fv1%2F...?recursive=true */
  path: string;
  /** JSON body (POST only). */
  body?: unknown;
  /** Statuses that are success whatever the answer says. */
  okStatuses: number[];
  /** Statuses that are success only with a matching content (e.g. 400 "... already defined" on an add): the
   * proxy answers 400 for real failures too (a missing rule list answers 400 "Bad Request"). */
  tolerated: ToleratedAnswer[];
}

/** Whether an answer to `req` means success (see RestRequest.okStatuses and .tolerated). */
export function isAccepted(req: Pick<RestRequest, 'okStatuses' | 'tolerated'>, status: number, content: unknown): boolean {
  if (req.okStatuses.includes(status)) return true;
  const text = typeof content === 'string' ? content : JSON.stringify(content ?? '');
  return req.tolerated.some((t) => t.status === status && new RegExp(t.content).test(text));
}

const OK = [200];
const ALREADY_DEFINED: ToleratedAnswer[] = [{ status: 400, content: ' already defined$' }];

// ---- Selectors ------------------------------------------------------------------------------------------------

/** Whether a label selector (matchLabels, matchExpressions) selects these labels; as the operator: an empty
 * selector selects everything. Other selector kinds (matchFields, matchNamespace, matchService) need the pod
 * itself and are refused. */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const key of Object.keys(selector)) {
    if (key !== 'matchLabels' && key !== 'matchExpressions') throw new Error(`selector ${key} is not supported`);
  }
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const value = Object.hasOwn(labels, e.key) ? labels[e.key] : undefined;
    const values = e.values ?? [];
    if (e.operator === 'In' && (value === undefined || !values.includes(value))) return false;
    if (e.operator === 'NotIn' && value !== undefined && values.includes(value)) return false;
    if (e.operator === 'Exists' && value === undefined) return false;
  }
  return true;
}

export function matchingProxies(selector: LabelSelector, proxies: readonly MeshProxy[]): MeshProxy[] {
  return proxies.filter((p) => selectorMatches(selector, p.labels));
}

// ---- Bodies in the proxy's API --------------------------------------------------------------------------------

/** A protocol spec in the proxy's form: `{protocol: 'UDP', port: ...}`. */
export interface ProxySpec {
  protocol: string;
  [field: string]: JsonValue;
}

export interface ProxyCluster {
  name?: string;
  spec: ProxySpec;
  endpoints?: Endpoint[];
  loadbalancer?: LoadBalancer;
}

export interface ProxyRoute {
  name?: string;
  destination: string | ProxyCluster;
  ingress?: (string | ProxyCluster)[];
  egress?: (string | ProxyCluster)[];
  retry?: Retry;
}

export interface ProxyRule {
  name?: string;
  match?: MatchActionRule['match'];
  action: {
    rewrite?: { path: string; value: JsonValue }[];
    route?: string | ProxyRoute;
    apply?: string;
  };
}

export interface ProxyListener {
  name: string;
  spec: ProxySpec;
  rules: string | ProxyRule[];
}

function toJson(v: object): { [key: string]: JsonValue } {
  return v as { [key: string]: JsonValue };
}

/** `{UDP: {...}}` -> `{protocol: 'UDP', ...}`; the inner spec of a JSONSocket gets the same for its transport. */
function protocolSpec(spec: ListenerSpec | ClusterSpec | { [k: string]: object }): ProxySpec {
  const entries = Object.entries(spec) as [string, object][];
  if (entries.length !== 1) throw new Error(`a protocol spec must have exactly one protocol key, has ${entries.length}`);
  const [protocol, inner] = entries[0]!;
  const out: ProxySpec = { protocol, ...toJson(inner) };
  if (protocol === 'JSONSocket' && 'transport' in inner) {
    out.transport = protocolSpec((inner as { transport: { [k: string]: object } }).transport) as unknown as JsonValue;
  }
  return out;
}

function staticEndpoints(endpoints: readonly Endpoint[] | undefined): StaticEndpoint[] {
  return (endpoints ?? []).filter((e): e is StaticEndpoint => 'spec' in e).map((e) => structuredClone(e));
}

/** A cluster as the proxy takes it. Endpoints are passed as they are (the operator resolves selector endpoints
 * only in a Target, see addRequests; an inline one reaches the proxy as it is, which refuses it). */
export function proxyCluster(cluster: Cluster): ProxyCluster {
  const out: ProxyCluster = { spec: protocolSpec(cluster.spec) };
  if (cluster.name !== undefined) out.name = cluster.name;
  if (cluster.endpoints !== undefined) out.endpoints = cluster.endpoints.map((e) => structuredClone(e));
  if (cluster.loadbalancer !== undefined) out.loadbalancer = { ...cluster.loadbalancer };
  return out;
}

function proxyStage(stage: RouteStage): string | ProxyCluster {
  return 'clusterRef' in stage ? stage.clusterRef : proxyCluster(stage.cluster);
}

function proxyRoute(route: Route): ProxyRoute {
  const out: ProxyRoute = { destination: 'destinationRef' in route ? route.destinationRef : proxyCluster(route.destination) };
  if (route.name !== undefined) out.name = route.name;
  if (route.ingress !== undefined) out.ingress = route.ingress.map(proxyStage);
  if (route.egress !== undefined) out.egress = route.egress.map(proxyStage);
  if (route.retry !== undefined) out.retry = { ...route.retry };
  return out;
}

function proxyRewrite(r: Rewrite): { path: string; value: JsonValue } {
  return { path: r.path, value: 'valueStr' in r ? r.valueStr : r.value };
}

export function proxyRule(rule: MatchActionRule): ProxyRule {
  const out: ProxyRule = { action: {} };
  if (rule.name !== undefined) out.name = rule.name;
  if (rule.match !== undefined) out.match = rule.match;
  const a = rule.action;
  if (a.rewrite !== undefined) out.action.rewrite = a.rewrite.map(proxyRewrite);
  if (a.route !== undefined) out.action.route = proxyRoute(a.route);
  else if (a.routeRef !== undefined) out.action.route = a.routeRef;
  if (a.apply !== undefined) out.action.apply = a.apply;
  return out;
}

// ---- Requests -------------------------------------------------------------------------------------------------

/** How the operator names the endpoint a pod gives a cluster: `<cluster>/<pod address>` (inline clusters' too, objects.ts). */
export function endpointName(cluster: string, address: string): string {
  return `${cluster}/${address}`;
}

function enc(name: string): string {
  return encodeURIComponent(name);
}

function targetEndpointRequests(target: Target, clusterName: string, proxy: MeshProxy, all: readonly MeshProxy[]): RestRequest[] {
  const out: RestRequest[] = [];
  for (const ep of target.spec.cluster.endpoints ?? []) {
    if (!('selector' in ep)) continue;
    for (const pod of matchingProxies(ep.selector, all)) out.push(endpointAddRequest(proxy, clusterName, pod.address));
  }
  return out;
}

function endpointAddRequest(proxy: MeshProxy, cluster: string, address: string): RestRequest {
  return {
    proxy: proxy.name,
    method: 'POST',
    path: `/api/v1/clusters/${enc(cluster)}/endpoints`,
    body: { endpoint: { name: endpointName(cluster, address), spec: { address } } },
    okStatuses: OK,
    tolerated: ALREADY_DEFINED,
  };
}

/** The named clusters a compact VirtualService's routes hold inline (none for any other object). */
function inlineClusters(obj: L7mpObject): string[] {
  if (obj.kind !== 'VirtualService' || !('rules' in obj.spec.listener)) return [];
  return obj.spec.listener.rules.flatMap((r) => {
    const route = r.action.route;
    return route && 'destination' in route && route.destination.name !== undefined ? [route.destination.name] : [];
  });
}

/**
 * A cluster's endpoint moved from worker `from` to worker `to` (a worker died and its calls live on `to` now), as the
 * operator does when the pods a Target's endpoint selector picks change; the same for a compact VirtualService's
 * inline cluster, whose endpoint is named the same way. Per proxy holding the cluster: the new endpoint added, then
 * the old one deleted recursively, which ends the sessions connected through it; their route retries on disconnect
 * and the cluster's load balancer now has only `to` to give them (docs/l7mp-behaviour.md#failover).
 */
export function endpointMoveRequests(obj: L7mpObject, from: Pick<MeshProxy, 'address'>, to: Pick<MeshProxy, 'address'>, proxies: readonly MeshProxy[], options: Pick<MeshOptions, 'naming'>): RestRequest[] {
  const clusters = obj.kind === 'Target' ? [proxyNameOf(obj, options.naming)] : inlineClusters(obj);
  return matchingProxies(obj.spec.selector, proxies).flatMap((proxy) =>
    clusters.flatMap((name): RestRequest[] => [
      endpointAddRequest(proxy, name, to.address),
      {
        proxy: proxy.name,
        method: 'DELETE',
        path: `/api/v1/endpoints/${enc(endpointName(name, from.address))}?recursive=true`,
        okStatuses: OK,
        tolerated: [
          { status: 404, content: 'Unknown endpoint' },
          { status: 400, content: 'Unknown endpoint' },
        ],
      },
    ]),
  );
}

/** What the operator sends when the object is created: per proxy that the object's selector picks, in order. */
export function addRequests(obj: L7mpObject, proxies: readonly MeshProxy[], options: Pick<MeshOptions, 'naming'>): RestRequest[] {
  const name = proxyNameOf(obj, options.naming);
  const out: RestRequest[] = [];
  for (const proxy of matchingProxies(obj.spec.selector, proxies)) {
    switch (obj.kind) {
      case 'VirtualService': {
        const l = obj.spec.listener;
        const listener: ProxyListener = {
          name,
          spec: protocolSpec(l.spec),
          rules: 'rules' in l ? l.rules.map(proxyRule) : l.rulesRef,
        };
        out.push({ proxy: proxy.name, method: 'POST', path: '/api/v1/listeners', body: { listener }, okStatuses: OK, tolerated: ALREADY_DEFINED });
        break;
      }
      case 'Target': {
        // The operator keeps the static endpoints in the cluster (an empty list when there are none) and adds one
        // endpoint per pod that an endpoint selector picks, each with a request of its own.
        const cluster: ProxyCluster = { ...proxyCluster(obj.spec.cluster), endpoints: staticEndpoints(obj.spec.cluster.endpoints), name };
        out.push({ proxy: proxy.name, method: 'POST', path: '/api/v1/clusters', body: { cluster }, okStatuses: OK, tolerated: ALREADY_DEFINED });
        out.push(...targetEndpointRequests(obj, name, proxy, proxies));
        break;
      }
      case 'Rule': {
        const rule: ProxyRule = { ...proxyRule(obj.spec.rule), name };
        out.push({
          proxy: proxy.name,
          method: 'POST',
          path: `/api/v1/rulelists/${enc(obj.spec.rulelist)}/rules/${obj.spec.position}`,
          body: { rule },
          okStatuses: OK,
          tolerated: ALREADY_DEFINED,
        });
        break;
      }
    }
  }
  return out;
}

/** What the operator sends when the object is deleted: per proxy that the object's selector picks, in order. An
 * object already gone is not a failure. The second request of a Rule (DELETE /api/v1/rules/{name}) answers 400
 * "Unknown rule" whenever the first one worked (the recursive removal already deleted it): tolerated. */
export function deleteRequests(obj: L7mpObject, proxies: readonly MeshProxy[], options: Pick<MeshOptions, 'naming'>): RestRequest[] {
  const name = proxyNameOf(obj, options.naming);
  const out: RestRequest[] = [];
  for (const proxy of matchingProxies(obj.spec.selector, proxies)) {
    switch (obj.kind) {
      case 'VirtualService':
        out.push({
          proxy: proxy.name,
          method: 'DELETE',
          path: `/api/v1/listeners/${enc(name)}?recursive=true`,
          okStatuses: OK,
          tolerated: [
            { status: 400, content: '^Cannot delete listener: Unknown listener' },
            // The operator's comment: "a bug (?) in l7mp, but the deletion is successful".
            { status: 400, content: '^Not running' },
          ],
        });
        break;
      case 'Target':
        // Recursive: the cluster's endpoints go with it (the operator sends no endpoint deletes then).
        out.push({
          proxy: proxy.name,
          method: 'DELETE',
          path: `/api/v1/clusters/${enc(name)}?recursive=true`,
          okStatuses: OK,
          tolerated: [{ status: 400, content: '^Cannot delete cluster: Unknown cluster' }],
        });
        break;
      case 'Rule':
        out.push({
          proxy: proxy.name,
          method: 'DELETE',
          path: `/api/v1/rulelists/${enc(obj.spec.rulelist)}/rules/${enc(name)}?recursive=true`,
          okStatuses: OK,
          tolerated: [
            { status: 400, content: '^No rule .* on rulelist ' },
            { status: 400, content: '^No such rule list: ' },
          ],
        });
        out.push({
          proxy: proxy.name,
          method: 'DELETE',
          path: `/api/v1/rules/${enc(name)}`,
          okStatuses: OK,
          tolerated: [{ status: 400, content: '^Cannot delete rule: Unknown rule' }],
        });
        break;
    }
  }
  return out;
}

/**
 * What the REST provisioner sends to delete an object: the operator's requests (deleteRequests), except that a
 * listener whose route has a named inline cluster (a compact VirtualService) gets that cluster deleted first.
 *
 * Why: l7mp 0.5.7 deletes a listener recursively by first deleting its autogenerated rule list, rule, route and
 * inline cluster (which ends every session through that cluster), then ending every session of the listener once
 * more. Session.end() is not idempotent: the second end emits a second 'destroy', the second removal of the session
 * throws "Cannot delete session: Unknown session", which l7mp-proxy.js logs with log.error, and its log.error handler
 * calls process.exit(1). So deleting a compact VirtualService that has a session (always, with a singleton listener;
 * after the first packet, with a server one) kills the ingress proxy. Deleting the cluster first ends the sessions
 * once, and the proxy has removed them before the listener delete arrives (the requests are sequential). The
 * Kubernetes operator only sends the listener delete: compact is not safe with it.
 */
export function restDeleteRequests(obj: L7mpObject, proxies: readonly MeshProxy[], options: Pick<MeshOptions, 'naming'>): RestRequest[] {
  const requests = deleteRequests(obj, proxies, options);
  const inline = inlineClusters(obj);
  if (inline.length === 0) return requests;
  const out: RestRequest[] = [];
  for (const req of requests) {
    for (const cluster of inline) {
      out.push({
        proxy: req.proxy,
        method: 'DELETE',
        path: `/api/v1/clusters/${enc(cluster)}?recursive=true`,
        okStatuses: OK,
        tolerated: [{ status: 400, content: '^Cannot delete cluster: Unknown cluster' }],
      });
    }
    out.push(req);
  }
  return out;
}

/** Requests a whole call costs: adds, the operator's deletes, and the REST provisioner's deletes. */
export function requestCount(
  objects: readonly L7mpObject[],
  proxies: readonly MeshProxy[],
  options: Pick<MeshOptions, 'naming'>,
): { add: number; delete: number; restDelete: number } {
  let add = 0;
  let del = 0;
  let restDelete = 0;
  for (const o of objects) {
    add += addRequests(o, proxies, options).length;
    del += deleteRequests(o, proxies, options).length;
    restDelete += restDeleteRequests(o, proxies, options).length;
  }
  return { add, delete: del, restDelete };
}

