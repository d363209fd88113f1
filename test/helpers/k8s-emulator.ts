/**
 * A Kubernetes API server emulator for the tests (no real API server can run on these machines): a real HTTP server
 * on 127.0.0.1 serving what @kubernetes/client-node sends for the l7mp custom resources and pods, with the API
 * server's answers (Status bodies, 201/404/409/422), every created object validated against the l7mp CRD schemas
 * (src/mesh/crd.ts), RBAC refusals on demand, fault injection (429 with Retry-After, 5xx, dropped connections,
 * stalls), finalizer-like delayed deletion, a record of every request and a gauge of requests in flight.
 *
 * Endpoints:
 *   POST   /apis/l7mp.io/v1/namespaces/{ns}/{plural}            create
 *   GET    /apis/l7mp.io/v1/namespaces/{ns}/{plural}[?labelSelector=]   list
 *   GET    /apis/l7mp.io/v1/namespaces/{ns}/{plural}/{name}     get
 *   DELETE /apis/l7mp.io/v1/namespaces/{ns}/{plural}/{name}     delete
 *   DELETE /apis/l7mp.io/v1/namespaces/{ns}/{plural}[?labelSelector=]   deletecollection
 *   GET    /api/v1/namespaces/{ns}/pods[?labelSelector=]        list (pods added with addPod, and StatefulSets' pods)
 *   GET    /api/v1/namespaces/{ns}/pods/{name}                  get
 *   DELETE /api/v1/namespaces/{ns}/pods/{name}?gracePeriodSeconds=0   delete (gone at once, made again by
 *                                                                    reconcileStatefulSet; or terminating, see below)
 *   GET    /apis/apps/v1/namespaces/{ns}/statefulsets/{name}    get (added with addStatefulSet; status from its pods)
 *   GET    /apis/apps/v1/namespaces/{ns}/statefulsets/{name}/scale   get (autoscaling/v1 Scale)
 *   PATCH  /apis/apps/v1/namespaces/{ns}/statefulsets/{name}/scale   patch spec.replicas (merge or strategic merge
 *                                                                    patch; a JSON patch must be an array; other types 415)
 * Anything else answers 404 and is recorded with verb "unknown". A subresource is recorded as RBAC names it:
 * resource "statefulsets/scale".
 *
 * A StatefulSet's pods follow its replicas as its controller would, but without time of their own: a new pod appears
 * Pending (not scheduled), and moves on only when the test says (setPodState), unless the StatefulSet was added with
 * startup 'ready'; a pod beyond the replicas is deleted at once, or (termination 'manual') stays terminating until
 * finishTermination(). A pod DELETEd (grace period 0) goes at once, as a real API server removes a force-deleted pod
 * whatever its containers still do; with termination 'manual' it stays terminating until finishTermination() instead,
 * as a deletion that waits for the kubelet would (a grace period, a finalizer): the test then holds the old pod
 * between the DELETE's answer and its end, and the controller makes the new pod (another uid) once it is gone.
 * `events` tells the test when pods appear, terminate or go ('pod'), and when a request has been answered
 * ('answered', with its RecordedRequest), so it never has to guess with a sleep.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { validateObject } from '../../src/mesh/crd.js';

export const GROUP = 'l7mp.io';
export const VERSION = 'v1';
const KINDS: Record<string, string> = { virtualservices: 'VirtualService', targets: 'Target', rules: 'Rule' };

export type Fault =
  /** Answer with this status (and a Status body); retryAfter goes into the Retry-After header as given. */
  | { kind: 'status'; status: number; retryAfter?: string; message?: string }
  /** Close the connection without an answer (the request is not applied). */
  | { kind: 'drop' }
  /** Apply the request at once, but answer only after ms (a client with a shorter timeout gives up first). */
  | { kind: 'stall'; ms: number };

export interface RecordedRequest {
  seq: number;
  method: string;
  path: string;
  query: Record<string, string>;
  /** Kubernetes verb: create, get, list, watch, delete, deletecollection, update, patch, or unknown. */
  verb: string;
  /** API group ('' for core) and resource (plural). */
  apiGroup: string;
  resource: string;
  namespace: string | null;
  name: string | null;
  labelSelector: string | null;
  /** kind/name of a created object. */
  objectKind: string | null;
  objectName: string | null;
  /** ms since the emulator started (performance.now based). */
  receivedMs: number;
  /** Wall clock when it arrived (Date.now()). */
  receivedAt: number;
  finishedMs: number | null;
  /** null: the connection was dropped. */
  status: number | null;
  fault: Fault['kind'] | null;
  /** The request's Content-Type header (patch: which patch type). */
  contentType: string | null;
  /** A patch's body, parsed (null for other verbs). */
  patch: unknown;
}

interface StoredObject {
  resource: string;
  body: Record<string, unknown> & { metadata: Record<string, unknown> & { name: string; namespace: string; labels?: Record<string, string> } };
}

export interface PodSpec {
  name: string;
  namespace?: string;
  labels: Record<string, string>;
  podIP?: string;
  hostIP?: string;
  phase?: string;
  ready?: boolean;
}

export interface StatefulSetSpec {
  name: string;
  namespace?: string;
  replicas: number;
  /** spec.selector.matchLabels and the pod template's labels (pods also get statefulset.kubernetes.io/pod-name). */
  labels: Record<string, string>;
  /** The pod IP of ordinal i once it runs; default 127.1.<i>.1 (loopback: nothing is sent to it). */
  podIP?: (ordinal: number) => string;
  /** Default node-<i % 3>. */
  nodeName?: (ordinal: number) => string;
  /** How a new pod comes up: 'manual' (default: Pending until setPodState) or 'ready' (Running and Ready at once). */
  startup?: 'manual' | 'ready';
  /** How a pod beyond the replicas goes: 'immediate' (default) or 'manual' (terminating until finishTermination). */
  termination?: 'immediate' | 'manual';
}

/** Where a StatefulSet's pod is in its life, as the test moves it (setPodState). */
export type PodState =
  | { state: 'pending' }
  | { state: 'unschedulable'; message: string }
  /** Scheduled, a container waiting (e.g. ImagePullBackOff). */
  | { state: 'waiting'; container: string; reason: string; message?: string }
  /** Running on its node with an IP, not Ready (e.g. the readiness probe fails). */
  | { state: 'running' }
  | { state: 'ready' };

/** What `events` emits, as 'pod' events. */
export interface PodEvent {
  change: 'created' | 'terminating' | 'deleted';
  name: string;
  namespace: string;
}

interface StoredStatefulSet {
  spec: Required<Omit<StatefulSetSpec, 'namespace'>> & { namespace: string };
  uid: string;
  generation: number;
  creationTimestamp: string;
}

export interface EmulatorOptions {
  /** Added before every answer, ms (makes concurrency observable). Default 0. */
  latencyMs?: number;
  /** Namespaces that exist; default ["default"]. */
  namespaces?: string[];
  /** When > 0, deleted objects get a deletionTimestamp and disappear this much later (like an operator's finalizer). */
  deletionDelayMs?: number;
  /** false: the l7mp CRDs are not installed (every l7mp.io request answers 404). Default true. */
  crdsInstalled?: boolean;
}

interface PendingFault {
  fault: Fault;
  remaining: number;
  match: (r: RecordedRequest) => boolean;
}

/** A label selector requirement as the API server parses it (equality- and set-based). */
type Requirement = { key: string; op: 'exists' | '!exists' | '=' | '!=' | 'in' | 'notin'; values: string[] };

export function parseLabelSelector(selector: string): Requirement[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  const out: Requirement[] = [];
  for (const raw of parts.map((p) => p.trim()).filter((p) => p !== '')) {
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(raw))) {
      out.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) });
    } else if ((m = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(raw))) {
      out.push({ key: m[1]!, op: m[2] === '!=' ? '!=' : '=', values: [m[3]!] });
    } else if ((m = /^!\s*([^\s!=(),]+)$/.exec(raw))) {
      out.push({ key: m[1]!, op: '!exists', values: [] });
    } else if ((m = /^([^\s!=(),]+)$/.exec(raw))) {
      out.push({ key: m[1]!, op: 'exists', values: [] });
    } else {
      throw new Error(`unable to parse requirement: ${raw}`);
    }
  }
  return out;
}

export function selectorMatches(requirements: Requirement[], labels: Record<string, string>): boolean {
  return requirements.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case '=':
        return has && v === r.values[0];
      case '!=':
        return !has || v !== r.values[0];
      case 'in':
        return has && r.values.includes(v!);
      case 'notin':
        return !has || !r.values.includes(v!);
    }
  });
}

function status(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

const REASONS: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'AlreadyExists', 422: 'Invalid', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout' };

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class K8sEmulator {
  readonly requests: RecordedRequest[] = [];
  /** Requests being served now, and the most at once. */
  inFlight = 0;
  maxInFlight = 0;
  latencyMs: number;
  deletionDelayMs: number;
  crdsInstalled: boolean;
  readonly namespaces: Set<string>;
  private readonly objects = new Map<string, StoredObject>();
  private readonly pods = new Map<string, Record<string, unknown>>();
  private readonly statefulSets = new Map<string, StoredStatefulSet>();
  /**
   * 'pod' (PodEvent) when a StatefulSet's pod appears, starts terminating or goes; 'scaled' ({name, namespace,
   * replicas}); 'answered' (RecordedRequest, its status set) when an answer has been sent.
   */
  readonly events = new EventEmitter();
  private readonly faults: PendingFault[] = [];
  private readonly forbidden = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private resourceVersion = 1000;
  private seq = 0;
  private readonly t0 = performance.now();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    o: EmulatorOptions,
  ) {
    this.latencyMs = o.latencyMs ?? 0;
    this.deletionDelayMs = o.deletionDelayMs ?? 0;
    this.crdsInstalled = o.crdsInstalled ?? true;
    this.namespaces = new Set(o.namespaces ?? ['default']);
  }

  static async start(o: EmulatorOptions = {}): Promise<K8sEmulator> {
    let emulator: K8sEmulator | undefined;
    const server = createServer((req, res) => void emulator!.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    emulator = new K8sEmulator(server, (server.address() as AddressInfo).port, o);
    return emulator;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * A KubeConfig pointing at the emulator, built in code (no file). skipTLSVerify: client-node 1.4 refuses plain
   * http without it; pass false to check that the provisioner copes (kubectl proxy users have exactly that).
   */
  kubeConfig(o: { skipTLSVerify?: boolean; namespace?: string } = {}): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'emulator', server: this.url, skipTLSVerify: o.skipTLSVerify ?? true }],
      users: [{ name: 'emulator-user', token: 'emulator-token' }],
      contexts: [{ name: 'emulator', cluster: 'emulator', user: 'emulator-user', ...(o.namespace ? { namespace: o.namespace } : {}) }],
      currentContext: 'emulator',
    });
    return kc;
  }

  /** The same as a kubeconfig file's text (for tests of loading from a file), with a second, unusable context. */
  kubeconfigYaml(o: { namespace?: string } = {}): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: emulator',
      '  cluster:',
      `    server: ${this.url}`,
      '- name: elsewhere',
      '  cluster:',
      '    server: https://192.0.2.1:6443',
      'users:',
      '- name: emulator-user',
      '  user:',
      '    token: emulator-token',
      'contexts:',
      '- name: emulator',
      '  context:',
      '    cluster: emulator',
      '    user: emulator-user',
      ...(o.namespace ? [`    namespace: ${o.namespace}`] : []),
      '- name: elsewhere',
      '  context:',
      '    cluster: elsewhere',
      '    user: emulator-user',
      'current-context: elsewhere',
      '',
    ].join('\n');
  }

  /** The next `count` requests that `match` (default: any) get `fault`. */
  injectFaults(count: number, fault: Fault, match: (r: RecordedRequest) => boolean = () => true): void {
    this.faults.push({ fault, remaining: count, match });
  }

  /** Answer 403 to `verb` on `resource` (e.g. 'create', 'rules'), as a missing RBAC grant would. */
  forbid(verb: string, resource: string): void {
    this.forbidden.add(`${verb} ${resource}`);
  }

  addPod(p: PodSpec): void {
    const namespace = p.namespace ?? 'default';
    const ready = p.ready ?? true;
    this.pods.set(`${namespace}/${p.name}`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace, labels: { ...p.labels }, uid: randomUUID(), resourceVersion: String(++this.resourceVersion) },
      spec: { containers: [{ name: 'main', image: 'example' }] },
      status: {
        phase: p.phase ?? 'Running',
        ...(p.podIP ? { podIP: p.podIP, podIPs: [{ ip: p.podIP }] } : {}),
        ...(p.hostIP ? { hostIP: p.hostIP } : {}),
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      },
    });
  }

  /** A StatefulSet whose controller keeps `replicas` pods (see the top of this file for how they live). */
  addStatefulSet(spec: StatefulSetSpec): void {
    const namespace = spec.namespace ?? 'default';
    const stored: StoredStatefulSet = {
      spec: {
        name: spec.name,
        namespace,
        replicas: spec.replicas,
        labels: { ...spec.labels },
        podIP: spec.podIP ?? ((i) => `127.1.${i}.1`),
        nodeName: spec.nodeName ?? ((i) => `node-${i % 3}`),
        startup: spec.startup ?? 'manual',
        termination: spec.termination ?? 'immediate',
      },
      uid: randomUUID(),
      generation: 1,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    this.statefulSets.set(`${namespace}/${spec.name}`, stored);
    this.reconcile(stored);
  }

  /** The StatefulSet's replicas now (spec). */
  replicasOf(name: string, namespace = 'default'): number {
    const sts = this.statefulSets.get(`${namespace}/${name}`);
    if (!sts) throw new Error(`no StatefulSet ${namespace}/${name}`);
    return sts.spec.replicas;
  }

  /** Names of the pods that exist now (terminating ones too), optionally of one StatefulSet, sorted by ordinal. */
  podNames(statefulSet?: string, namespace = 'default'): string[] {
    return [...this.pods.values()]
      .filter((p) => {
        const md = p['metadata'] as { namespace: string; ownerReferences?: { name: string }[] };
        return md.namespace === namespace && (statefulSet === undefined || md.ownerReferences?.[0]?.name === statefulSet);
      })
      .map((p) => (p['metadata'] as { name: string }).name)
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  }

  /** Moves a StatefulSet's pod on (scheduled or not, a container waiting, running, ready), as the kubelet would. */
  setPodState(name: string, state: PodState, namespace = 'default'): void {
    const pod = this.pods.get(`${namespace}/${name}`);
    const sts = pod && this.ownerOf(pod);
    if (!pod || !sts) throw new Error(`no StatefulSet pod ${namespace}/${name}`);
    const ordinal = Number(name.slice(sts.spec.name.length + 1));
    Object.assign(pod, this.podStatus(sts, ordinal, state));
    (pod['metadata'] as Record<string, unknown>)['resourceVersion'] = String(++this.resourceVersion);
  }

  /** Ends the termination of a StatefulSet's pod (termination 'manual'), or of all its terminating pods. */
  finishTermination(name?: string, namespace = 'default'): void {
    for (const [key, pod] of [...this.pods.entries()]) {
      const md = pod['metadata'] as { name: string; namespace: string; deletionTimestamp?: string };
      if (md.namespace !== namespace || md.deletionTimestamp === undefined || (name !== undefined && md.name !== name)) continue;
      const sts = this.ownerOf(pod);
      this.pods.delete(key);
      this.events.emit('pod', { change: 'deleted', name: md.name, namespace } satisfies PodEvent);
      // As the controller does: a pod of a wanted ordinal that was terminating is made again once it is gone.
      if (sts) this.reconcile(sts);
    }
  }

  private ownerOf(pod: Record<string, unknown>): StoredStatefulSet | undefined {
    const md = pod['metadata'] as { namespace: string; ownerReferences?: { name: string }[] };
    const owner = md.ownerReferences?.[0]?.name;
    return owner === undefined ? undefined : this.statefulSets.get(`${md.namespace}/${owner}`);
  }

  /** spec and status of ordinal's pod in `state` (what setPodState and a new pod get). */
  private podStatus(sts: StoredStatefulSet, ordinal: number, state: PodState): { spec: Record<string, unknown>; status: Record<string, unknown> } {
    const containers = [{ name: 'rtpengine', image: 'rtp-bench/rtpengine:bookworm' }, { name: 'l7mp', image: 'l7mp/l7mp:0.5.7' }];
    const unplaced = state.state === 'pending' || state.state === 'unschedulable';
    const spec = { containers, ...(unplaced ? {} : { nodeName: sts.spec.nodeName(ordinal) }) };
    const condition = (type: string, ok: boolean, reason?: string, message?: string): Record<string, unknown> => ({ type, status: ok ? 'True' : 'False', ...(reason ? { reason } : {}), ...(message ? { message } : {}) });
    const containerStatus = (c: { name: string; image: string }, ready: boolean, waiting?: { reason: string; message?: string }): Record<string, unknown> => ({
      name: c.name,
      image: c.image,
      imageID: '',
      ready,
      restartCount: 0,
      state: waiting ? { waiting } : { running: { startedAt: new Date().toISOString() } },
    });
    switch (state.state) {
      case 'pending':
        return { spec, status: { phase: 'Pending' } };
      case 'unschedulable':
        return { spec, status: { phase: 'Pending', conditions: [condition('PodScheduled', false, 'Unschedulable', state.message)] } };
      case 'waiting':
        return {
          spec,
          status: {
            phase: 'Pending',
            conditions: [condition('PodScheduled', true), condition('Ready', false, 'ContainersNotReady', `containers with unready status: [${state.container}]`)],
            containerStatuses: containers.map((c) => containerStatus(c, false, c.name === state.container ? { reason: state.reason, ...(state.message ? { message: state.message } : {}) } : { reason: 'ContainerCreating' })),
          },
        };
      case 'running':
      case 'ready': {
        const ready = state.state === 'ready';
        const ip = sts.spec.podIP(ordinal);
        return {
          spec,
          status: {
            phase: 'Running',
            podIP: ip,
            podIPs: [{ ip }],
            hostIP: '127.0.0.1',
            conditions: [condition('PodScheduled', true), condition('ContainersReady', ready), condition('Ready', ready, ready ? undefined : 'ContainersNotReady', ready ? undefined : 'containers with unready status: [l7mp]')],
            containerStatuses: containers.map((c) => containerStatus(c, ready || c.name === 'rtpengine')),
          },
        };
      }
    }
  }

  /** The StatefulSet controller, at once: pods for the wanted ordinals, none beyond. */
  private reconcile(sts: StoredStatefulSet): void {
    const { name, namespace, replicas, labels } = sts.spec;
    for (let i = 0; i < replicas; i++) {
      const podName = `${name}-${i}`;
      if (this.pods.has(`${namespace}/${podName}`)) continue;
      this.pods.set(`${namespace}/${podName}`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: podName,
          namespace,
          labels: { ...labels, 'statefulset.kubernetes.io/pod-name': podName },
          uid: randomUUID(),
          resourceVersion: String(++this.resourceVersion),
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name, uid: sts.uid, controller: true }],
        },
        ...this.podStatus(sts, i, { state: sts.spec.startup === 'ready' ? 'ready' : 'pending' }),
      });
      this.events.emit('pod', { change: 'created', name: podName, namespace } satisfies PodEvent);
    }
    for (const [key, pod] of [...this.pods.entries()]) {
      if (this.ownerOf(pod) !== sts) continue;
      const md = pod['metadata'] as { name: string; deletionTimestamp?: string; deletionGracePeriodSeconds?: number };
      if (Number(md.name.slice(name.length + 1)) < replicas || md.deletionTimestamp !== undefined) continue;
      if (sts.spec.termination === 'immediate') {
        this.pods.delete(key);
        this.events.emit('pod', { change: 'deleted', name: md.name, namespace } satisfies PodEvent);
      } else {
        md.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        md.deletionGracePeriodSeconds = 5;
        this.events.emit('pod', { change: 'terminating', name: md.name, namespace } satisfies PodEvent);
      }
    }
  }

  /** Stores an object directly (as if made by someone else, e.g. a run that crashed); no validation. */
  put(obj: { apiVersion?: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: unknown }): void {
    const resource = Object.keys(KINDS).find((p) => KINDS[p] === obj.kind);
    if (!resource) throw new Error(`not an l7mp kind: ${obj.kind}`);
    const namespace = obj.metadata.namespace ?? 'default';
    const body = this.stamp(JSON.parse(JSON.stringify(obj)) as StoredObject['body'], namespace);
    this.objects.set(`${resource}/${namespace}/${obj.metadata.name}`, { resource, body });
  }

  /** Stored objects (optionally of one resource and matching a selector), in creation order. */
  stored(resource?: string, selector?: string, namespace?: string): StoredObject['body'][] {
    const req = selector ? parseLabelSelector(selector) : [];
    return [...this.objects.values()]
      .filter((o) => (resource === undefined || o.resource === resource) && (namespace === undefined || o.body.metadata.namespace === namespace))
      .filter((o) => selectorMatches(req, o.body.metadata.labels ?? {}))
      .map((o) => o.body);
  }

  /** Back to an empty, well-behaved server with the given options (objects, pods, faults, refusals, record). */
  reset(o: EmulatorOptions = {}): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.objects.clear();
    this.pods.clear();
    this.statefulSets.clear();
    this.events.removeAllListeners();
    this.faults.length = 0;
    this.forbidden.clear();
    this.latencyMs = o.latencyMs ?? 0;
    this.deletionDelayMs = o.deletionDelayMs ?? 0;
    this.crdsInstalled = o.crdsInstalled ?? true;
    this.namespaces.clear();
    for (const ns of o.namespaces ?? ['default']) this.namespaces.add(ns);
    this.resetRecord();
  }

  /** Forget recorded requests and the in-flight peak. */
  resetRecord(): void {
    this.requests.length = 0;
    this.maxInFlight = this.inFlight;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- Serving ------------------------------------------------------------------------------------------------

  private now(): number {
    return performance.now() - this.t0;
  }

  private stamp(body: StoredObject['body'], namespace: string): StoredObject['body'] {
    body.metadata.namespace = namespace;
    body.metadata['uid'] = randomUUID();
    body.metadata['resourceVersion'] = String(++this.resourceVersion);
    body.metadata['creationTimestamp'] = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    body.metadata['generation'] = 1;
    return body;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const record: RecordedRequest = {
      seq: ++this.seq,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      verb: 'unknown',
      apiGroup: '',
      resource: '',
      namespace: null,
      name: null,
      labelSelector: url.searchParams.get('labelSelector'),
      objectKind: null,
      objectName: null,
      receivedMs: this.now(),
      receivedAt: Date.now(),
      finishedMs: null,
      status: null,
      fault: null,
      contentType: req.headers['content-type'] ?? null,
      patch: null,
    };
    this.requests.push(record);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let counted = true;
    const done = (): void => {
      if (!counted) return;
      counted = false;
      this.inFlight--;
      record.finishedMs = this.now();
    };
    res.on('finish', done);
    res.on('close', done);

    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');

    this.route(record);
    if (record.verb === 'patch') {
      try {
        record.patch = JSON.parse(text) as unknown;
      } catch {
        record.patch = text;
      }
    }
    let body: unknown = null;
    if (record.verb === 'create' && text !== '') {
      try {
        body = JSON.parse(text);
        const md = (body as { metadata?: { name?: unknown } }).metadata;
        record.objectKind = String((body as { kind?: unknown }).kind ?? '');
        record.objectName = typeof md?.name === 'string' ? md.name : null;
      } catch {
        body = undefined;
      }
    }

    const pending = this.faults.find((f) => f.remaining > 0 && f.match(record));
    if (pending) {
      pending.remaining--;
      record.fault = pending.fault.kind;
      if (pending.fault.kind === 'drop') {
        req.socket.destroy();
        done();
        return;
      }
      if (pending.fault.kind === 'status') {
        const f = pending.fault;
        if (this.latencyMs > 0) await sleep(this.latencyMs);
        const headers: Record<string, string> = f.retryAfter !== undefined ? { 'Retry-After': f.retryAfter } : {};
        this.send(res, record, f.status, status(f.status, REASONS[f.status] ?? 'Unknown', f.message ?? `injected fault ${f.status}`), headers);
        return;
      }
      // Applied now, answered late: a client that gives up first does not know it went through.
      const [code, answer] = this.safeAnswer(record, body, text);
      await sleep(pending.fault.ms);
      this.send(res, record, code, answer);
      return;
    }
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const [code, answer] = this.safeAnswer(record, body, text);
    this.send(res, record, code, answer);
  }

  private send(res: ServerResponse, record: RecordedRequest, code: number, body: unknown, headers: Record<string, string> = {}): void {
    record.status = code;
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
    this.events.emit('answered', record);
  }

  /** Fills verb, group, resource, namespace and name from the method and path. */
  private route(r: RecordedRequest): void {
    const parts = r.path.split('/').filter((p) => p !== '').map(decodeURIComponent);
    let rest: string[];
    if (parts[0] === 'apis' && parts.length >= 5 && parts[3] === 'namespaces') {
      r.apiGroup = parts[1]!;
      if (parts[2] !== VERSION) return;
      rest = parts.slice(4);
    } else if (parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'namespaces' && parts.length >= 5) {
      r.apiGroup = '';
      rest = parts.slice(3);
    } else {
      return;
    }
    r.namespace = rest[0]!;
    r.resource = rest[1]!;
    r.name = rest[2] ?? null;
    if (rest.length > 4) return;
    // A subresource (.../statefulsets/{name}/scale) is a resource of its own to RBAC: "statefulsets/scale".
    if (rest.length === 4) r.resource = `${rest[1]!}/${rest[3]!}`;
    const collection = r.name === null;
    switch (r.method) {
      case 'POST':
        r.verb = collection ? 'create' : 'unknown';
        break;
      case 'GET':
        r.verb = collection ? (r.query['watch'] === 'true' || r.query['watch'] === '1' ? 'watch' : 'list') : 'get';
        break;
      case 'DELETE':
        r.verb = collection ? 'deletecollection' : 'delete';
        break;
      case 'PUT':
        r.verb = collection ? 'unknown' : 'update';
        break;
      case 'PATCH':
        r.verb = collection ? 'unknown' : 'patch';
        break;
    }
  }

  private safeAnswer(r: RecordedRequest, body: unknown, text: string): [number, unknown] {
    try {
      return this.answer(r, body, text);
    } catch (err) {
      return [400, status(400, 'BadRequest', (err as Error).message)];
    }
  }

  private answer(r: RecordedRequest, body: unknown, text: string): [number, unknown] {
    if (r.verb === 'unknown' || r.verb === 'watch') return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
    if (this.forbidden.has(`${r.verb} ${r.resource}`)) {
      const what = r.apiGroup === '' ? r.resource : `${r.resource}.${r.apiGroup}`;
      const msg = `${what}${r.name ? ` "${r.name}"` : ''} is forbidden: User "system:serviceaccount:default:default" cannot ${r.verb} resource "${r.resource}" in API group "${r.apiGroup}" in the namespace "${r.namespace}"`;
      return [403, status(403, 'Forbidden', msg, { ...(r.name ? { name: r.name } : {}), group: r.apiGroup, kind: r.resource })];
    }
    if (r.apiGroup === '') return this.answerPods(r);
    if (r.apiGroup === 'apps') return this.answerApps(r);
    if (r.apiGroup !== GROUP || !this.crdsInstalled || !(r.resource in KINDS)) {
      return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
    }
    const ns = r.namespace!;
    const kind = KINDS[r.resource]!;
    const key = (name: string): string => `${r.resource}/${ns}/${name}`;
    const notFound = (name: string): [number, unknown] => [404, status(404, 'NotFound', `${r.resource}.${GROUP} "${name}" not found`, { name, group: GROUP, kind: r.resource })];
    const list = (items: unknown[]): unknown => ({ apiVersion: `${GROUP}/${VERSION}`, kind: `${kind}List`, metadata: { resourceVersion: String(this.resourceVersion), continue: '' }, items });
    const selected = (): StoredObject[] => {
      const req = parseLabelSelector(r.labelSelector ?? '');
      return [...this.objects.values()].filter((o) => o.resource === r.resource && o.body.metadata.namespace === ns && selectorMatches(req, o.body.metadata.labels ?? {}));
    };
    switch (r.verb) {
      case 'create': {
        if (!this.namespaces.has(ns)) return [404, status(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' })];
        if (body === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) {
          return [400, status(400, 'BadRequest', `the body of the request was in an unknown format: ${text.slice(0, 100)}`)];
        }
        const obj = body as StoredObject['body'];
        if (obj.kind !== kind || obj.apiVersion !== `${GROUP}/${VERSION}`) {
          return [400, status(400, 'BadRequest', `the API version and kind in the data (${String(obj.apiVersion)}, ${String(obj.kind)}) do not match the expected ${GROUP}/${VERSION} ${kind}`)];
        }
        if (obj.metadata?.namespace !== undefined && obj.metadata.namespace !== ns) {
          return [400, status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request')];
        }
        const name = obj.metadata?.name;
        const problems = validateObject({ ...obj, metadata: { ...obj.metadata, namespace: ns } });
        if (problems.length > 0) {
          const causes = problems.map((p) => {
            const m = /^[^:]*: (\/[^:]*|\/): (.*)$/.exec(p);
            const field = m ? m[1]!.split('/').filter((s) => s !== '').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.') : '';
            return { reason: 'FieldValueInvalid', message: m ? m[2]! : p, field };
          });
          return [422, status(422, 'Invalid', `${kind}.${GROUP} "${String(name)}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`, { name, group: GROUP, kind, causes })];
        }
        if (this.objects.has(key(name))) {
          return [409, status(409, 'AlreadyExists', `${r.resource}.${GROUP} "${name}" already exists`, { name, group: GROUP, kind: r.resource })];
        }
        const stored = this.stamp(JSON.parse(JSON.stringify(obj)) as StoredObject['body'], ns);
        this.objects.set(key(name), { resource: r.resource, body: stored });
        return [201, stored];
      }
      case 'get': {
        const o = this.objects.get(key(r.name!));
        return o ? [200, o.body] : notFound(r.name!);
      }
      case 'list':
        return [200, list(selected().map((o) => o.body))];
      case 'delete': {
        const o = this.objects.get(key(r.name!));
        if (!o) return notFound(r.name!);
        this.remove(key(r.name!), o);
        return [200, o.body];
      }
      case 'deletecollection': {
        const items = selected();
        for (const o of items) this.remove(key(o.body.metadata.name), o);
        return [200, list(items.map((o) => o.body))];
      }
      default:
        return [405, status(405, 'MethodNotAllowed', `${r.verb} is not supported here`)];
    }
  }

  private remove(k: string, o: StoredObject): void {
    if (this.deletionDelayMs <= 0) {
      this.objects.delete(k);
      return;
    }
    if (o.body.metadata['deletionTimestamp'] !== undefined) return;
    o.body.metadata['deletionTimestamp'] = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.objects.get(k) === o) this.objects.delete(k);
    }, this.deletionDelayMs);
    this.timers.add(t);
  }

  /** apps/v1: a StatefulSet (get), its scale subresource (get, patch). */
  private answerApps(r: RecordedRequest): [number, unknown] {
    const base = r.resource.split('/')[0];
    const sts = r.name === null ? undefined : this.statefulSets.get(`${r.namespace}/${r.name}`);
    if (base !== 'statefulsets' || r.name === null || !['statefulsets', 'statefulsets/scale'].includes(r.resource)) {
      return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
    }
    if (!sts) return [404, status(404, 'NotFound', `statefulsets.apps "${r.name}" not found`, { name: r.name, group: 'apps', kind: 'statefulsets' })];
    if (r.resource === 'statefulsets') {
      if (r.verb !== 'get') return [405, status(405, 'MethodNotAllowed', `${r.verb} on statefulsets is not supported here`)];
      return [200, this.statefulSetBody(sts)];
    }
    if (r.verb === 'get') return [200, this.scaleBody(sts)];
    if (r.verb !== 'patch') return [405, status(405, 'MethodNotAllowed', `${r.verb} on statefulsets/scale is not supported here`)];
    let replicas: unknown;
    const type = (r.contentType ?? '').split(';')[0]!.trim();
    if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
      if (typeof r.patch !== 'object' || r.patch === null || Array.isArray(r.patch)) return [400, status(400, 'BadRequest', `the body of the request was in an unknown format: ${JSON.stringify(r.patch)}`)];
      replicas = (r.patch as { spec?: { replicas?: unknown } }).spec?.replicas;
    } else if (type === 'application/json-patch+json') {
      // What a client that forgets the patch type sends an object as: the API server cannot read it as a JSON patch.
      if (!Array.isArray(r.patch)) return [400, status(400, 'BadRequest', 'json: cannot unmarshal object into Go value of type jsonpatch.Patch')];
      replicas = (r.patch as { op?: string; path?: string; value?: unknown }[]).filter((op) => (op.op === 'replace' || op.op === 'add') && op.path === '/spec/replicas').at(-1)?.value;
    } else {
      return [415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`)];
    }
    if (replicas !== undefined) {
      if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
        return [422, status(422, 'Invalid', `Scale.autoscaling "${sts.spec.name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`, { name: sts.spec.name, group: 'autoscaling', kind: 'Scale' })];
      }
      if (replicas !== sts.spec.replicas) {
        sts.spec.replicas = replicas;
        sts.generation++;
        this.resourceVersion++;
        this.reconcile(sts);
        this.events.emit('scaled', { name: sts.spec.name, namespace: sts.spec.namespace, replicas });
      }
    }
    return [200, this.scaleBody(sts)];
  }

  private statefulSetPods(sts: StoredStatefulSet): Record<string, unknown>[] {
    return [...this.pods.values()].filter((p) => this.ownerOf(p) === sts);
  }

  private statefulSetBody(sts: StoredStatefulSet): Record<string, unknown> {
    const { name, namespace, replicas, labels } = sts.spec;
    const live = this.statefulSetPods(sts).filter((p) => (p['metadata'] as { deletionTimestamp?: string }).deletionTimestamp === undefined);
    const ready = live.filter((p) => ((p['status'] as { conditions?: { type: string; status: string }[] }).conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));
    return {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name, namespace, uid: sts.uid, generation: sts.generation, resourceVersion: String(this.resourceVersion), creationTimestamp: sts.creationTimestamp, labels: { ...labels } },
      spec: {
        replicas,
        serviceName: name,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: { ...labels } },
        template: { metadata: { labels: { ...labels } }, spec: { containers: [{ name: 'rtpengine', image: 'rtp-bench/rtpengine:bookworm' }, { name: 'l7mp', image: 'l7mp/l7mp:0.5.7' }] } },
      },
      // The controller here is synchronous: it has always seen the latest generation.
      status: { observedGeneration: sts.generation, replicas: live.length, readyReplicas: ready.length, currentReplicas: live.length, updatedReplicas: live.length, availableReplicas: ready.length },
    };
  }

  private scaleBody(sts: StoredStatefulSet): Record<string, unknown> {
    const { name, namespace, replicas, labels } = sts.spec;
    const live = this.statefulSetPods(sts).filter((p) => (p['metadata'] as { deletionTimestamp?: string }).deletionTimestamp === undefined);
    return {
      apiVersion: 'autoscaling/v1',
      kind: 'Scale',
      metadata: { name, namespace, uid: sts.uid, resourceVersion: String(this.resourceVersion), creationTimestamp: sts.creationTimestamp },
      // As the API server serialises it: replicas 0 is omitted (omitempty).
      spec: replicas === 0 ? {} : { replicas },
      status: { replicas: live.length, selector: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') },
    };
  }

  private answerPods(r: RecordedRequest): [number, unknown] {
    if (r.resource !== 'pods') return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
    const ns = r.namespace!;
    if (r.verb === 'get') {
      const p = this.pods.get(`${ns}/${r.name}`);
      return p ? [200, p] : [404, status(404, 'NotFound', `pods "${r.name}" not found`, { name: r.name, kind: 'pods' })];
    }
    if (r.verb === 'list') {
      const req = parseLabelSelector(r.labelSelector ?? '');
      const items = [...this.pods.entries()]
        .filter(([k]) => k.startsWith(`${ns}/`))
        .map(([, p]) => p)
        .filter((p) => selectorMatches(req, ((p['metadata'] as { labels?: Record<string, string> }).labels) ?? {}));
      return [200, { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: String(this.resourceVersion) }, items }];
    }
    if (r.verb === 'delete') {
      const key = `${ns}/${r.name}`;
      const p = this.pods.get(key);
      if (!p) return [404, status(404, 'NotFound', `pods "${r.name}" not found`, { name: r.name, kind: 'pods' })];
      // Grace period 0 removes the object at once (what a fault asks); the StatefulSet makes the pod again only
      // when the test says (reconcileStatefulSet), so that it can look at the run between the two. Termination
      // 'manual': terminating until finishTermination (see the top of this file), which then makes it again.
      if (r.query['gracePeriodSeconds'] !== '0') return [405, status(405, 'MethodNotAllowed', 'only deletes with gracePeriodSeconds=0 are supported here')];
      const md = p['metadata'] as Record<string, unknown>;
      if (this.ownerOf(p)?.spec.termination === 'manual') {
        if (md['deletionTimestamp'] === undefined) {
          md['deletionTimestamp'] = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
          md['deletionGracePeriodSeconds'] = 0;
          md['resourceVersion'] = String(++this.resourceVersion);
          this.events.emit('pod', { change: 'terminating', name: r.name!, namespace: ns } satisfies PodEvent);
        }
        return [200, p];
      }
      this.pods.delete(key);
      this.events.emit('pod', { change: 'deleted', name: r.name!, namespace: ns } satisfies PodEvent);
      return [200, p];
    }
    return [405, status(405, 'MethodNotAllowed', `${r.verb} on pods is not supported here`)];
  }

  /** The StatefulSet controller's pass after a pod was deleted: the missing ordinals made again (as new pods). */
  reconcileStatefulSet(name: string, namespace = 'default'): void {
    const sts = this.statefulSets.get(`${namespace}/${name}`);
    if (!sts) throw new Error(`no StatefulSet ${namespace}/${name}`);
    this.reconcile(sts);
  }
}
