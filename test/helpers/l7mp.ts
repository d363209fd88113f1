/**
 * REAL l7mp 0.5.7 proxies on loopback for the mesh tests (started with startL7mpProxy, strict mode, the REST controller
 * listening on 127.0.0.1 only: nothing outside this host can program them): the MeshProxy
 * the operator and the provisioner get for each, reading their configuration and sessions back through the REST
 * API, waiting for the ingress's sessions, and calls on free ports.
 */
import assert from 'node:assert/strict';
import type { MeshCall, MeshOptions } from '../../src/mesh/model.js';
import { proxyNameOf, type L7mpObject } from '../../src/mesh/objects.js';
import type { MeshProxy } from '../../src/mesh/rest/operator.js';
import { startL7mpProxy, type L7mpConfig, type L7mpProxy } from '../../src/stack/l7mp-proxy.js';
import { freeUdpPorts } from './ports.js';

export interface ProxySpec {
  /** MeshProxy.name, also the proxy's own name in its messages. */
  name: string;
  /** MeshProxy.address: where the ingress reaches a worker. */
  address: string;
  labels: Record<string, string>;
  /** Its controller listener's port (any), on 127.0.0.1, gives MeshProxy.restUrl. */
  config: L7mpConfig;
}

/** Where every test proxy's REST controller listens. */
const CONTROLLER_ADDRESS = '127.0.0.1';

/** The proxies started here, by MeshProxy name. */
const running = new Map<string, L7mpProxy>();

/** Starts the proxies in parallel; rejects with the first failure (stopProxies stops the ones that did start). */
export async function startProxies(specs: readonly ProxySpec[]): Promise<MeshProxy[]> {
  const results = await Promise.allSettled(specs.map((s) => startL7mpProxy({ name: s.name, config: s.config, controllerAddress: CONTROLLER_ADDRESS })));
  results.forEach((r, i) => r.status === 'fulfilled' && running.set(specs[i]!.name, r.value));
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return specs.map((s) => ({ name: s.name, address: s.address, restUrl: `http://${CONTROLLER_ADDRESS}:${l7mpOf(s.name).controllerPort}`, labels: s.labels }));
}

/** By PID (SIGTERM, then SIGKILL after 3 s). */
export async function stopProxies(): Promise<void> {
  await Promise.all([...running.values()].map((p) => p.stop()));
}

/** The process behind a proxy startProxies started. */
export function l7mpOf(name: string): L7mpProxy {
  const p = running.get(name);
  if (!p) throw new Error(`no proxy ${name}`);
  return p;
}

/** For a message about a failed request: whether the proxy still runs, and the end of its log. */
export function proxyState(name: string): string {
  const p = running.get(name);
  if (!p) return '';
  const exit = p.exitStatus();
  const state = exit === null ? 'is running' : `exited (${exit.code ?? exit.signal})`;
  return `; the proxy ${state}, its output ends:\n${p.logTail(200).join('\n').slice(-4000)}`;
}

// ---- Reading the proxies --------------------------------------------------------------------------------------

/** l7mp 0.5.7's GET /api/v1/config, as far as the tests read it. */
export interface ProxyConfig {
  listeners: { name: string; spec: { port?: number; [key: string]: unknown }; rules: unknown }[];
  clusters: { name: string; spec: Record<string, unknown>; endpoints: number }[];
  rulelists: { name: string; rules: string[] }[];
  rules: { name: string; match: unknown; action: { route?: string } }[];
  routes: { name: string; destination: string; retry: unknown }[];
  endpoints: { name: string; spec: { address: string } }[];
  sessions?: unknown[];
}

export type StableConfig = Omit<ProxyConfig, 'sessions'>;

export interface ProxySession {
  name: string;
  status: string;
  metadata: { labels?: Record<string, string>; JSONSocket?: { labels?: Record<string, string> } };
  source: { origin: string };
  destination?: { origin: string; status: string };
}

export async function getJson(p: MeshProxy, path: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${p.restUrl}${path}`, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new Error(`GET ${path} on ${p.name}: ${String(err)}${proxyState(p.name)}`, { cause: err });
  }
  assert.equal(res.status, 200, `${p.name}: GET ${path}`);
  return res.json();
}

export async function proxyConfig(p: MeshProxy): Promise<ProxyConfig> {
  return (await getJson(p, '/api/v1/config')) as ProxyConfig;
}

/**
 * The configuration without its volatile part: `sessions` (every REST request, this GET included, is a session of
 * the controller listener, with its client port and timestamps). Nothing else in l7mp 0.5.7's GET /api/v1/config
 * changes by itself: there are no counters or uptimes in it (the names l7mp generates, `<listener>-RuleList-<n>`,
 * go with the listener).
 */
export function stable(c: ProxyConfig): StableConfig {
  const { sessions: _s, ...rest } = c;
  return rest;
}

/** The sessions, without the controller listener's (the REST requests). */
export async function proxySessions(p: MeshProxy): Promise<ProxySession[]> {
  return ((await getJson(p, '/api/v1/sessions')) as ProxySession[]).filter((s) => s.source.origin !== 'controller-listener');
}

/** The names of the listeners the call's VirtualServices make on the ingress. */
export function listenersOf(objects: readonly L7mpObject[], options: MeshOptions): string[] {
  return objects.filter((o) => o.kind === 'VirtualService').map((o) => proxyNameOf(o, options.naming));
}

/** Waits (bounded) until `ingress` lists a CONNECTED session with a READY destination for each listener. */
export async function waitConnected(ingress: MeshProxy, listeners: readonly string[], timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const seen = await proxySessions(ingress);
    const missing = listeners.filter((l) => !seen.some((s) => s.source.origin === l && s.status === 'CONNECTED' && s.destination?.status === 'READY'));
    if (missing.length === 0) return;
    assert.ok(
      performance.now() < deadline,
      `sessions not connected within ${timeoutMs} ms: ${missing.join(', ')}; the ingress has ${JSON.stringify(seen.map((s) => [s.source.origin, s.status]))}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ---- Calls ----------------------------------------------------------------------------------------------------

/** A call on `worker`: legs a and b (tags `tags`), RTP and RTCP each, on 8 fresh UDP ports (4 rtpengine, 4 client). */
export async function meshCall(o: { runId: string; callId: string; worker: MeshProxy; clientAddress: string; tags: readonly [string, string] }): Promise<MeshCall> {
  const [a, b, c, d, ca, cb, cc, cd] = await freeUdpPorts(8);
  const [tagA, tagB] = o.tags;
  const client = { clientAddress: o.clientAddress };
  return {
    runId: o.runId,
    callId: o.callId,
    worker: { name: o.worker.name, address: o.worker.address, labels: { ...o.worker.labels } },
    streams: [
      { leg: 'a', tag: tagA, kind: 'rtp', rtpenginePort: a!, clientPort: ca!, ...client },
      { leg: 'a', tag: tagA, kind: 'rtcp', rtpenginePort: b!, clientPort: cb!, ...client },
      { leg: 'b', tag: tagB, kind: 'rtp', rtpenginePort: c!, clientPort: cc!, ...client },
      { leg: 'b', tag: tagB, kind: 'rtcp', rtpenginePort: d!, clientPort: cd!, ...client },
    ],
  };
}
