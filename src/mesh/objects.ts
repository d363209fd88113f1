/**
 * The l7mp.io/v1 custom resources of one call (VirtualService, Target, Rule), as the original suite made them, with
 * its known problems fixed (docs/l7mp-behaviour.md): Rules, Targets, VirtualServices are created in that order,
 * listeners can be singleton, the route retry timeout is short, names on the proxies follow the operator in use, the
 * Target's endpoints are pinned to the call's worker, and `compact` inlines the Target into the VirtualService (8
 * objects per call instead of 12). The types follow the CRD schemas in kubernetes/crds (src/mesh/crd.ts validates against
 * them); they cover what these objects use, not every protocol the CRDs know.
 */
import { createHash } from 'node:crypto';
import { LABEL_CALL, LABEL_RUN, type MeshCall, type MeshOptions, type MeshStream } from './model.js';

export const L7MP_API_VERSION = 'l7mp.io/v1';
export type L7mpKind = 'VirtualService' | 'Target' | 'Rule';
/** The CRDs' plural resource names (the URL segment, and the selfLink naming form). */
export const L7MP_PLURALS: Record<L7mpKind, string> = { VirtualService: 'virtualservices', Target: 'targets', Rule: 'rules' };

// ---- Values and selectors -----------------------------------------------------------------------------------

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Labels = Record<string, string>;

/** `DoesNotExist` is left out on purpose: the CRDs spell it `DoesNotexist` and the operator only knows
 * `DoesNotExist`, so neither spelling works. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface AddressPort {
  address?: string;
  port?: number;
}

// ---- Listeners ------------------------------------------------------------------------------------------------

export interface UdpListenerSpec {
  port: number;
  /** The remote: with both address and port, a singleton listener connects back to it; a server listener accepts
   * only that peer. */
  connect?: AddressPort;
  options?: { mode: 'server' | 'singleton' };
}

export type ListenerSpec = { UDP: UdpListenerSpec } | { JSONSocket: { transport: { UDP: UdpListenerSpec } } };

// ---- Clusters and endpoints -----------------------------------------------------------------------------------

export interface UdpClusterSpec {
  port: number;
  /** Local address and port of the cluster's socket. */
  bind?: AddressPort;
}

export type JsonSocketHeader = { path: { from: string; to: string } } | { set: { key: string; value: string } };

export interface JsonSocketClusterSpec {
  transport: { UDP: UdpClusterSpec };
  header?: JsonSocketHeader[];
}

export type ClusterSpec = { UDP: UdpClusterSpec } | { JSONSocket: JsonSocketClusterSpec };

export interface StaticEndpoint {
  name?: string;
  spec: { address: string; weight?: number };
}

/** Resolved by the operator, in a Target only: one endpoint per matching pod. */
export interface SelectorEndpoint {
  name?: string;
  selector: LabelSelector;
}

export type Endpoint = StaticEndpoint | SelectorEndpoint;

export interface LoadBalancer {
  policy: 'Trivial' | 'ConsistentHash' | 'HashRing';
  key?: string;
}

export interface Cluster {
  name?: string;
  spec: ClusterSpec;
  endpoints?: Endpoint[];
  loadbalancer?: LoadBalancer;
}

// ---- Rules, actions, routes -----------------------------------------------------------------------------------

/** A JSON predicate (draft-snell-json-test) on the session metadata. */
export interface JsonPredicate {
  op: string;
  path?: string;
  value?: JsonValue;
  apply?: JsonPredicate[];
}

/** In a CRD a string value must be `valueStr` (`value` is typed object there); the operator renames it `value`. */
export type Rewrite = { path: string; valueStr: string } | { path: string; value: { [key: string]: JsonValue } };

export interface Retry {
  retry_on: 'never' | 'connect-failure' | 'disconnect' | 'always';
  num_retries?: number;
  /** ms: the wait between attempts, and for a JSONSocket cluster also the reply timeout. */
  timeout?: number;
}

/** A transform stage on a route: a named cluster on the proxy, or one defined inline. */
export type RouteStage = { clusterRef: string } | { cluster: Cluster };

interface RouteCommon {
  name?: string;
  ingress?: RouteStage[];
  egress?: RouteStage[];
  retry?: Retry;
}

/** `destinationRef` is the name of a cluster on the proxy (in the naming form of the operator in use). */
export type Route = (RouteCommon & { destinationRef: string }) | (RouteCommon & { destination: Cluster });

export interface Action {
  rewrite?: Rewrite[];
  route?: Route;
  routeRef?: string;
  apply?: string;
}

export interface MatchActionRule {
  name?: string;
  match?: JsonPredicate;
  action: Action;
}

export type Listener = {
  name?: string;
  spec: ListenerSpec;
  /** Sessions are kept listed this many seconds after they end. The operator drops listener options. */
  options?: { track?: number };
} & ({ rules: MatchActionRule[] } | { rulesRef: string });

// ---- The three kinds ------------------------------------------------------------------------------------------

export interface ObjectMeta {
  name: string;
  namespace: string;
  labels: Labels;
}

export interface VirtualService {
  apiVersion: typeof L7MP_API_VERSION;
  kind: 'VirtualService';
  metadata: ObjectMeta;
  spec: { selector: LabelSelector; listener: Listener; updateOwners?: boolean };
}

export interface Target {
  apiVersion: typeof L7MP_API_VERSION;
  kind: 'Target';
  metadata: ObjectMeta;
  spec: { selector: LabelSelector; cluster: Cluster };
}

export interface Rule {
  apiVersion: typeof L7MP_API_VERSION;
  kind: 'Rule';
  metadata: ObjectMeta;
  spec: { selector: LabelSelector; rulelist: string; position: number; rule: MatchActionRule; updateOwners?: boolean };
}

export type L7mpObject = VirtualService | Target | Rule;

// ---- Constants of the topology --------------------------------------------------------------------------------

/** The worker's rule sends to rtpengine here, from this address and the client's port
 * (docs/l7mp-behaviour.md#topology). */
export const WORKER_LOOPBACK = '127.0.0.1';
/** The suite's `track` on the ingress listeners, s. Kept in the objects; the operator drops it. */
export const INGRESS_LISTENER_TRACK_S = 600;
/** How long the ingress keeps retrying the worker (the JSONSocket session request) before it gives the session up:
 * a singleton session that gives up is gone for the rest of the call. num_retries = this / retryTimeoutMs. */
export const INGRESS_RETRY_WINDOW_MS = 30_000;
/** The worker route (UDP to rtpengine on the pod's loopback) as in the suite: a failure there is a local one
 * (typically the client port still bound by a stale session), worth a few quick retries only. */
export const WORKER_NUM_RETRIES = 5;
/** Label values and name segments derived from call-ids get this many hex digits of SHA-256 when they had to be
 * changed (48 bits: no collision in practice, also among millions of calls). */
const HASH_HEX = 12;

// ---- Names and labels -----------------------------------------------------------------------------------------

function digest(raw: string): string {
  return createHash('sha256').update(raw, 'utf8').digest('hex').slice(0, HASH_HEX);
}

/**
 * A Kubernetes label value (<= 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends, or empty) that stands
 * for `raw`: `raw` itself when it is one, otherwise its sanitised, shortened form plus a hash of `raw`, so two
 * different inputs never give the same value. Deterministic.
 */
export function safeLabelValue(raw: string): string {
  if (raw.length <= 63 && /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(raw)) return raw;
  const keep = 63 - HASH_HEX - 1;
  const cleaned = raw
    .replace(/[^-A-Za-z0-9_.]+/g, '_')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, keep)
    .replace(/[^A-Za-z0-9]+$/, '');
  return cleaned === '' ? digest(raw) : `${cleaned}-${digest(raw)}`;
}

/**
 * A segment of an object name: lowercase alphanumerics and '-', alphanumeric at both ends, <= 63 characters
 * (a DNS-1123 label), standing for `raw` the same way as safeLabelValue (hash of `raw` appended when changed).
 */
export function safeNameSegment(raw: string): string {
  if (raw.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(raw)) return raw;
  const keep = 63 - HASH_HEX - 1;
  const cleaned = raw
    .toLowerCase()
    .replace(/[^-a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, keep)
    .replace(/-+$/, '');
  return cleaned === '' ? digest(raw) : `${cleaned}-${digest(raw)}`;
}

/** The suite's name pattern, e.g. `ingress-rtp-vsvc-<callid>-<tag>`, with both parts made safe. */
export function objectName(kind: L7mpKind, stream: Pick<MeshStream, 'kind' | 'tag'>, callId: string): string {
  const role = kind === 'Rule' ? 'worker' : 'ingress';
  const what = kind === 'VirtualService' ? 'vsvc' : kind === 'Target' ? 'target' : 'rule';
  return `${role}-${stream.kind}-${what}-${safeNameSegment(callId)}-${safeNameSegment(stream.tag)}`;
}

/**
 * The name an object gets on the l7mp proxies (listener, cluster or rule name), which is what other objects refer to
 * it by: `operator` = /<apiVersion>/<kind>/<ns>/<name> (operators since April 2021), `selflink` =
 * /apis/l7mp.io/v1/namespaces/<ns>/<plural>/<name> (older operators; the original suite's destinationRef).
 */
export function proxyName(kind: L7mpKind, namespace: string, name: string, naming: MeshOptions['naming']): string {
  return naming === 'operator'
    ? `/${L7MP_API_VERSION}/${kind}/${namespace}/${name}`
    : `/apis/${L7MP_API_VERSION}/namespaces/${namespace}/${L7MP_PLURALS[kind]}/${name}`;
}

export function proxyNameOf(obj: L7mpObject, naming: MeshOptions['naming']): string {
  return proxyName(obj.kind, obj.metadata.namespace, obj.metadata.name, naming);
}

// ---- The call's objects ---------------------------------------------------------------------------------------

export function ingressNumRetries(retryTimeoutMs: number): number {
  return Math.max(1, Math.ceil(INGRESS_RETRY_WINDOW_MS / retryTimeoutMs));
}

function workerSelectorOf(call: MeshCall, options: MeshOptions): LabelSelector {
  return { matchLabels: { ...options.workerSelector, [options.workerPinLabel]: call.worker.name } };
}

/**
 * The name of a compact VirtualService's inline cluster on the proxies: `<the listener's name>/cluster`. Unnamed, the
 * proxy would generate one from a global counter; named, the REST provisioner can delete the cluster before the
 * listener, which l7mp 0.5.7 needs (see restDeleteRequests in operator.ts).
 */
export function inlineClusterName(listenerProxyName: string): string {
  return `${listenerProxyName}/cluster`;
}

/** The JSONSocket cluster from the ingress to the worker sidecar (the Target's cluster, or inline when compact). */
function workerCluster(call: MeshCall, stream: MeshStream, options: MeshOptions): Cluster {
  const inlineName = options.compact ? inlineClusterName(proxyName('VirtualService', options.namespace, objectName('VirtualService', stream, call.callId), options.naming)) : null;
  return {
    ...(inlineName === null ? {} : { name: inlineName }),
    spec: {
      JSONSocket: {
        transport: { UDP: { port: options.workerPorts[stream.kind] } },
        header: [{ path: { from: '/labels', to: '/labels' } }],
      },
    },
    // The operator resolves endpoint selectors only in a Target: inline, the worker is given by address.
    // Named inline as the operator names a pod's endpoint (`<cluster>/<address>`), so that a failover can remove it.
    endpoints: inlineName === null ? [{ selector: workerSelectorOf(call, options) }] : [{ name: `${inlineName}/${call.worker.address}`, spec: { address: call.worker.address } }],
    loadbalancer: { policy: 'ConsistentHash', key: '/labels/callid' },
  };
}

function meta(name: string, labels: Labels, options: MeshOptions): ObjectMeta {
  return { name, namespace: options.namespace, labels: { ...labels } };
}

function ruleObject(call: MeshCall, stream: MeshStream, labels: Labels, options: MeshOptions): Rule {
  return {
    apiVersion: L7MP_API_VERSION,
    kind: 'Rule',
    metadata: meta(objectName('Rule', stream, call.callId), labels, options),
    spec: {
      // Pinned like the Target's endpoints: only the call's worker needs the rule.
      selector: workerSelectorOf(call, options),
      position: 0,
      rulelist: options.workerRulelists[stream.kind],
      rule: {
        match: {
          op: 'and',
          apply: [
            { op: 'test', path: '/JSONSocket/labels/callid', value: call.callId },
            { op: 'test', path: '/JSONSocket/labels/tag', value: stream.tag },
          ],
        },
        action: {
          route: {
            destination: {
              spec: { UDP: { port: stream.rtpenginePort, bind: { address: WORKER_LOOPBACK, port: stream.clientPort } } },
              endpoints: [{ spec: { address: WORKER_LOOPBACK } }],
            },
            retry: { retry_on: 'always', num_retries: WORKER_NUM_RETRIES, timeout: options.retryTimeoutMs },
          },
        },
      },
    },
  };
}

function targetObject(call: MeshCall, stream: MeshStream, labels: Labels, options: MeshOptions): Target {
  return {
    apiVersion: L7MP_API_VERSION,
    kind: 'Target',
    metadata: meta(objectName('Target', stream, call.callId), labels, options),
    spec: { selector: { matchLabels: { ...options.ingressSelector } }, cluster: workerCluster(call, stream, options) },
  };
}

function virtualServiceObject(call: MeshCall, stream: MeshStream, labels: Labels, options: MeshOptions): VirtualService {
  const retry: Retry = { retry_on: 'always', num_retries: ingressNumRetries(options.retryTimeoutMs), timeout: options.retryTimeoutMs };
  const route: Route = options.compact
    ? { destination: workerCluster(call, stream, options), retry }
    : {
        destinationRef: proxyName('Target', options.namespace, objectName('Target', stream, call.callId), options.naming),
        retry,
      };
  return {
    apiVersion: L7MP_API_VERSION,
    kind: 'VirtualService',
    metadata: meta(objectName('VirtualService', stream, call.callId), labels, options),
    spec: {
      selector: { matchLabels: { ...options.ingressSelector } },
      listener: {
        spec: {
          UDP: {
            port: stream.rtpenginePort,
            connect: { address: stream.clientAddress, port: stream.clientPort },
            options: { mode: options.listenerMode },
          },
        },
        rules: [
          {
            action: {
              rewrite: [
                { path: '/labels/callid', valueStr: call.callId },
                { path: '/labels/tag', valueStr: stream.tag },
              ],
              route,
            },
          },
        ],
        options: { track: INGRESS_LISTENER_TRACK_S },
      },
      updateOwners: true,
    },
  };
}

/** The labels every object of the call carries: options.labels plus the run and call labels (made safe). */
export function callLabels(call: Pick<MeshCall, 'runId' | 'callId'>, options: Pick<MeshOptions, 'labels'>): Labels {
  return { ...options.labels, [LABEL_RUN]: safeLabelValue(call.runId), [LABEL_CALL]: safeLabelValue(call.callId) };
}

/**
 * The call's objects in creation order: every Rule, then every Target (none when compact), then every
 * VirtualService, each kind in the order of call.streams. Created in another order, a singleton session looks up a
 * cluster or rule that is not there yet and loses media until the route's retry
 * (docs/l7mp-behaviour.md#creation-and-deletion-order).
 */
export function callObjects(call: MeshCall, options: MeshOptions): L7mpObject[] {
  const labels = callLabels(call, options);
  const rules = call.streams.map((s) => ruleObject(call, s, labels, options));
  const targets = options.compact ? [] : call.streams.map((s) => targetObject(call, s, labels, options));
  const services = call.streams.map((s) => virtualServiceObject(call, s, labels, options));
  const objects: L7mpObject[] = [...rules, ...targets, ...services];
  const seen = new Set<string>();
  for (const o of objects) {
    const key = `${o.kind}/${o.metadata.name}`;
    if (seen.has(key)) throw new Error(`call ${call.callId}: two streams give the same ${o.kind} name ${o.metadata.name} (same leg tag and kind twice?)`);
    seen.add(key);
  }
  return objects;
}

/** Kinds in the order they are created: a singleton session set up before its cluster or rule exists loses media
 * until the route's retry (docs/l7mp-behaviour.md#creation-and-deletion-order). */
export const CREATION_ORDER: readonly L7mpKind[] = ['Rule', 'Target', 'VirtualService'];
/** Kinds in the order they are deleted: CREATION_ORDER reversed. */
export const DELETION_ORDER: readonly L7mpKind[] = [...CREATION_ORDER].reverse();

const DELETION_RANK: Record<L7mpKind, number> = { VirtualService: 0, Target: 1, Rule: 2 };

/** The same objects in the order that leaves nothing behind: VirtualServices, Targets, Rules (stable within a kind). */
export function deletionOrder(objects: readonly L7mpObject[]): L7mpObject[] {
  return objects
    .map((o, i) => ({ o, i }))
    .sort((x, y) => DELETION_RANK[x.o.kind] - DELETION_RANK[y.o.kind] || x.i - y.i)
    .map(({ o }) => o);
}

/** Objects per call (four streams: legs a and b, RTP and RTCP): 12, or 8 when compact. */
export function objectCount(options: Pick<MeshOptions, 'compact'>): number {
  return (options.compact ? 2 : 3) * 4;
}
