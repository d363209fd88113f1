/**
 * The operator's requests against two REAL l7mp 0.5.7 proxies in strict mode (an ingress and a worker with the
 * suite's rule lists), on loopback: every add request is accepted, the configuration then holds the call, singleton
 * sessions connect through the worker's rule, and after the delete requests the configuration is exactly what it was
 * before. This is what the REST provisioner relies on.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { freeUdpPort } from '../../src/stack/rtpengine.js';
import type { MeshCall, MeshOptions } from '../../src/mesh/model.js';
import { callObjects, deletionOrder, proxyNameOf, type L7mpObject } from '../../src/mesh/objects.js';
import { addRequests, deleteRequests, isAccepted, restDeleteRequests, type MeshProxy, type RestRequest } from '../../src/mesh/operator.js';
import { WORKER_LABELS, testOptions } from './fixture.js';

const require = createRequire(import.meta.url);
const YAML = require('yamljs') as { parse(text: string): unknown };
const L7MP_DIR = dirname(require.resolve('@l7mp/l7mp/package.json'));

interface ConfigListener {
  name: string;
  spec: { protocol: string; port?: number; transport?: { protocol: string; port: number } };
  rules: unknown;
}
interface ProxyConfig {
  listeners: { name: string; spec: Record<string, unknown>; rules: unknown }[];
  clusters: { name: string; spec: Record<string, unknown>; endpoints: number }[];
  rulelists: { name: string; rules: string[] }[];
  rules: { name: string; match: unknown; action: { route?: string } }[];
  routes: { name: string; destination: string; retry: unknown }[];
  endpoints: { name: string; spec: { address: string } }[];
  sessions?: Session[];
}
interface Session {
  name: string;
  status: string;
  metadata: { JSONSocket?: { labels?: Record<string, string> } };
  source: { origin: string };
  destination: { origin: string; status: string };
}

interface RunningProxy {
  proxy: MeshProxy;
  child: ChildProcess;
  output: () => string;
}

const tempDirs: string[] = [];
const running: RunningProxy[] = [];
let ingress: RunningProxy;
let worker: RunningProxy;
/** An ingress of its own for the test that kills it. */
let doomed: RunningProxy;
let workerPorts: MeshOptions['workerPorts'];

async function freeTcpPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  return address.port;
}

/** Distinct free UDP ports on loopback (the proxies bind the wildcard address: a port taken on 127.0.0.1 is
 * taken for them too). */
async function freeUdpPorts(count: number, taken: Set<number>): Promise<number[]> {
  const out: number[] = [];
  while (out.length < count) {
    const p = await freeUdpPort('127.0.0.1');
    if (!taken.has(p)) {
      taken.add(p);
      out.push(p);
    }
  }
  return out;
}
const usedPorts = new Set<number>();

async function startProxy(name: string, fixture: string, labels: Record<string, string>, patch: (config: { listeners: ConfigListener[] }) => void): Promise<RunningProxy> {
  const config = YAML.parse(await readFile(join(packageRoot(), 'test', 'fixtures', fixture), 'utf8')) as { listeners: ConfigListener[] };
  const controllerPort = await freeTcpPort();
  const controller = config.listeners.find((l) => l.name === 'controller-listener');
  assert.ok(controller, `${fixture}: no controller-listener`);
  controller.spec.port = controllerPort;
  patch(config);
  const dir = await mkdtemp(join(tmpdir(), 'rtp-bench-l7mp-'));
  tempDirs.push(dir);
  // Not .yaml: the proxy reads any other extension as JSON.
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(config));
  // Its working directory must be the package folder: it opens openapi/l7mp-openapi.yaml relative to it.
  const child = spawn(process.execPath, ['l7mp-proxy.js', '-c', file, '-s', '-l', 'warn'], { cwd: L7MP_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (b: Buffer): void => {
    if (output.length < 100_000) output += b.toString();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const r: RunningProxy = {
    proxy: { name, address: '127.0.0.1', restUrl: `http://127.0.0.1:${controllerPort}`, labels },
    child,
    output: () => output,
  };
  running.push(r);
  const deadline = performance.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`l7mp ${name} exited (${child.exitCode ?? child.signalCode}):\n${output}`);
    try {
      const res = await fetch(`${r.proxy.restUrl}/api/v1/config`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return r;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`l7mp ${name} did not answer GET /api/v1/config within 30 s:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function stopProxy(r: RunningProxy): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  const exited = once(r.child, 'exit');
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

before(async () => {
  const [rtp, rtcp] = await freeUdpPorts(2, usedPorts);
  workerPorts = { rtp: rtp!, rtcp: rtcp! };
  [ingress, doomed, worker] = await Promise.all([
    startProxy('ingress-0', 'l7mp-ingress.yaml', { app: 'l7mp-ingress' }, () => {}),
    startProxy('ingress-doomed', 'l7mp-ingress.yaml', { app: 'l7mp-ingress' }, () => {}),
    startProxy('worker-0', 'l7mp-worker.yaml', { ...WORKER_LABELS }, (config) => {
      for (const l of config.listeners) {
        if (l.name === 'worker-rtp-listener') l.spec.transport!.port = workerPorts.rtp;
        if (l.name === 'worker-rtcp-listener') l.spec.transport!.port = workerPorts.rtcp;
      }
    }),
  ]);
});

after(async () => {
  await Promise.all(running.map(stopProxy));
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

function proxies(): MeshProxy[] {
  return [ingress.proxy, worker.proxy];
}

function byName(name: string): RunningProxy {
  const r = running.find((p) => p.proxy.name === name);
  if (!r) throw new Error(`no proxy ${name}`);
  return r;
}

async function send(req: RestRequest): Promise<{ status: number; content: unknown }> {
  const r = byName(req.proxy);
  const init: RequestInit = { method: req.method, signal: AbortSignal.timeout(5000) };
  if (req.body !== undefined) {
    init.headers = { 'content-type': 'application/json' };
    init.body = JSON.stringify(req.body);
  }
  let res: Response;
  try {
    res = await fetch(`${r.proxy.restUrl}${req.path}`, init);
  } catch (err) {
    throw new Error(`${req.method} ${req.path} on ${req.proxy}: ${String(err)}; the proxy ${alive(r)}, its output ends:\n${r.output().slice(-4000)}`, { cause: err });
  }
  const text = await res.text();
  let content: unknown = text;
  try {
    content = (JSON.parse(text) as { content?: unknown }).content;
  } catch {
    // not JSON
  }
  return { status: res.status, content };
}

function alive(r: RunningProxy): string {
  return r.child.exitCode === null && r.child.signalCode === null ? 'is running' : `exited (${r.child.exitCode ?? r.child.signalCode})`;
}

async function get(r: RunningProxy, path: string): Promise<Response> {
  try {
    return await fetch(`${r.proxy.restUrl}${path}`, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new Error(`GET ${path} on ${r.proxy.name}: ${String(err)}; the proxy ${alive(r)}, its output ends:\n${r.output().slice(-4000)}`, { cause: err });
  }
}

async function config(r: RunningProxy): Promise<ProxyConfig> {
  const res = await get(r, '/api/v1/config');
  assert.equal(res.status, 200, `${r.proxy.name}: GET /api/v1/config`);
  return (await res.json()) as ProxyConfig;
}

/** The configuration without sessions (each REST request is a session of the controller listener). */
function objectsOf(c: ProxyConfig): Omit<ProxyConfig, 'sessions'> {
  const { sessions: _s, ...rest } = c;
  return rest;
}

async function sessions(r: RunningProxy): Promise<Session[]> {
  const res = await get(r, '/api/v1/sessions');
  assert.equal(res.status, 200, `${r.proxy.name}: GET /api/v1/sessions`);
  return ((await res.json()) as Session[]).filter((s) => s.source.origin !== 'controller-listener');
}

async function makeCall(callId: string): Promise<MeshCall> {
  const [a, b, c, d, ca, cb, cc, cd] = await freeUdpPorts(8, usedPorts);
  // Clients on 127.0.0.2: the worker binds 127.0.0.1:<client port>, nothing can loop back to an ingress listener.
  return {
    runId: 'proxy-test',
    callId,
    worker: { name: 'worker-0', address: '127.0.0.1', labels: { ...WORKER_LABELS } },
    streams: [
      { leg: 'a', tag: 'Tag-A', kind: 'rtp', rtpenginePort: a!, clientAddress: '127.0.0.2', clientPort: ca! },
      { leg: 'a', tag: 'Tag-A', kind: 'rtcp', rtpenginePort: b!, clientAddress: '127.0.0.2', clientPort: cb! },
      { leg: 'b', tag: 'Tag-B', kind: 'rtp', rtpenginePort: c!, clientAddress: '127.0.0.2', clientPort: cc! },
      { leg: 'b', tag: 'Tag-B', kind: 'rtcp', rtpenginePort: d!, clientAddress: '127.0.0.2', clientPort: cd! },
    ],
  };
}

/** Each singleton listener connects at once (a server one on the client's first packet): its JSONSocket request
 * reaches the worker, the worker's rule matches the call-id and tag labels and answers. CONNECTED on the ingress
 * proves the whole control path. */
async function sessionsConnected(on: RunningProxy, objects: L7mpObject[], options: MeshOptions): Promise<void> {
  const listeners = objects.filter((o) => o.kind === 'VirtualService').map((o) => proxyNameOf(o, options.naming));
  const deadline = performance.now() + 15_000;
  for (;;) {
    const seen = await sessions(on);
    const connected = listeners.filter((l) => seen.some((s) => s.source.origin === l && s.status === 'CONNECTED' && s.destination.status === 'READY'));
    if (connected.length === listeners.length) return;
    assert.ok(performance.now() < deadline, `sessions not connected within 15 s: ${JSON.stringify(seen.map((s) => [s.source.origin, s.status]))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One datagram from each stream's client address and port to its ingress listener. (What the worker then sends to
 * 127.0.0.1:<rtpengine port> reaches the ingress listener from 127.0.0.1, not from the client: dropped.) */
async function firstPackets(call: MeshCall): Promise<void> {
  for (const s of call.streams) {
    const socket = createSocket('udp4');
    socket.bind(s.clientPort, s.clientAddress);
    await once(socket, 'listening');
    socket.send(Buffer.from('first'), s.rtpenginePort, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 20));
    socket.close();
  }
}

interface Variant {
  compact: boolean;
  listenerMode: MeshOptions['listenerMode'];
  naming: MeshOptions['naming'];
  callId: string;
}

const VARIANTS: Variant[] = [
  { compact: false, listenerMode: 'singleton', naming: 'operator', callId: 'Call/7@Example.COM' },
  { compact: false, listenerMode: 'server', naming: 'selflink', callId: 'call-2' },
  { compact: true, listenerMode: 'singleton', naming: 'selflink', callId: 'Call/9@Example.COM' },
  { compact: true, listenerMode: 'server', naming: 'operator', callId: 'call-4' },
];

async function sendAll(objects: L7mpObject[], make: (o: L7mpObject) => RestRequest[]): Promise<{ req: RestRequest; status: number; content: unknown }[]> {
  const answers: { req: RestRequest; status: number; content: unknown }[] = [];
  // One request after the other: the order within an object matters, and the objects' order is the point.
  for (const o of objects) {
    for (const req of make(o)) {
      const answer = await send(req);
      assert.ok(isAccepted(req, answer.status, answer.content), `${req.method} ${req.path} on ${req.proxy}: ${answer.status} ${JSON.stringify(answer.content)}`);
      answers.push({ req, ...answer });
    }
  }
  return answers;
}

for (const v of VARIANTS) {
  const title = `${v.compact ? 'compact' : 'classic'}, ${v.listenerMode}, ${v.naming} names`;
  test(`real l7mp proxies, ${title}: the call's requests are accepted, configure the call, and deleting restores the configuration`, { timeout: 60_000 }, async () => {
    const options = testOptions({ ...v, workerPorts });
    const call = await makeCall(v.callId);
    const objects = callObjects(call, options);
    const beforeIngress = objectsOf(await config(ingress));
    const beforeWorker = objectsOf(await config(worker));

    // ---- add, in creation order
    const added = await sendAll(objects, (o) => addRequests(o, proxies(), options));
    assert.equal(added.length, v.compact ? 8 : 16);
    assert.deepEqual(added.map((a) => a.status), added.map(() => 200));

    const ic = await config(ingress);
    const wc = await config(worker);
    for (const o of objects) {
      const name = proxyNameOf(o, options.naming);
      const [body] = addRequests(o, proxies(), options).map((r) => r.body as Record<string, Record<string, unknown>>);
      if (o.kind === 'VirtualService') {
        const l = ic.listeners.find((x) => x.name === name);
        assert.ok(l, `listener ${name}`);
        assert.deepEqual(l.spec, body!.listener!.spec);
        // The listener's inline rule became a rule list, a rule and a route on the proxy.
        const rule = ic.rules.find((r) => r.name.startsWith(`${name}-RuleList-`));
        assert.ok(rule?.action.route, `rule of ${name}`);
        const route = ic.routes.find((r) => r.name === rule.action.route);
        assert.ok(route, `route of ${name}`);
        const i = objects.filter((x) => x.kind === 'VirtualService').indexOf(o);
        const stream = call.streams[i]!;
        assert.equal((l.spec as { port: number }).port, stream.rtpenginePort);
        if (v.compact) {
          // The inline cluster, with the worker as its static endpoint.
          const cluster = ic.clusters.find((c) => c.name === route.destination);
          assert.ok(cluster && cluster.name.startsWith(name), `inline cluster of ${name}`);
          assert.deepEqual(cluster.spec, { protocol: 'JSONSocket', transport: { protocol: 'UDP', port: workerPorts[stream.kind] }, header: [{ path: { from: '/labels', to: '/labels' } }] });
          assert.equal(cluster.endpoints, 1);
          assert.deepEqual(ic.endpoints.filter((e) => e.name.startsWith(cluster.name)).map((e) => e.spec.address), ['127.0.0.1']);
        } else {
          // The Target of the same stream.
          const target = objects.filter((x) => x.kind === 'Target')[i]!;
          assert.equal(route.destination, proxyNameOf(target, options.naming));
        }
      } else if (o.kind === 'Target') {
        const c = ic.clusters.find((x) => x.name === name);
        assert.ok(c, `cluster ${name}`);
        assert.deepEqual(c.spec, body!.cluster!.spec);
        assert.equal(c.endpoints, 1);
        assert.deepEqual(ic.endpoints.find((e) => e.name === `${name}/127.0.0.1`)?.spec.address, '127.0.0.1');
      } else {
        const r = wc.rules.find((x) => x.name === name);
        assert.ok(r, `rule ${name}`);
        assert.deepEqual(r.match, body!.rule!.match);
        const route = wc.routes.find((x) => x.name === r.action.route);
        const cluster = wc.clusters.find((c) => c.name === route?.destination);
        assert.deepEqual(cluster?.spec, (body!.rule!.action as { route: { destination: { spec: unknown } } }).route.destination.spec);
      }
    }
    // Position 0: the rule added last comes first.
    const names = (kind: 'rtp' | 'rtcp'): string[] =>
      objects.filter((o) => o.kind === 'Rule' && o.spec.rulelist === options.workerRulelists[kind]).map((o) => proxyNameOf(o, options.naming)).reverse();
    assert.deepEqual(wc.rulelists.find((l) => l.name === options.workerRulelists.rtp)?.rules, names('rtp'));
    assert.deepEqual(wc.rulelists.find((l) => l.name === options.workerRulelists.rtcp)?.rules, names('rtcp'));

    {
      // A server listener makes its session when the client's first packet arrives: send one per stream.
      if (v.listenerMode === 'server') await firstPackets(call);
      await sessionsConnected(ingress, objects, options);
      // On the worker: a connected session per stream, labelled with the raw call-id and tag (a lost JSONSocket reply
      // can leave a duplicate: compare as a set).
      const workerSide = (await sessions(worker)).filter((s) => s.metadata.JSONSocket?.labels?.callid === call.callId && s.status === 'CONNECTED');
      assert.deepEqual(
        [...new Set(workerSide.map((s) => `${s.source.origin} ${s.metadata.JSONSocket?.labels?.tag}`))].sort(),
        ['worker-rtcp-listener Tag-A', 'worker-rtcp-listener Tag-B', 'worker-rtp-listener Tag-A', 'worker-rtp-listener Tag-B'],
      );
    }

    // ---- delete, in deletion order (the REST provisioner's deletes: the operator's, plus the compact listeners'
    // inline clusters first; see the next test for why)
    const deleted = await sendAll(deletionOrder(objects), (o) => restDeleteRequests(o, proxies(), options));
    assert.equal(deleted.length, 16);
    for (const d of deleted) {
      const second = d.req.path.startsWith('/api/v1/rules/');
      assert.equal(d.status, second ? 400 : 200, `${d.req.method} ${d.req.path}: ${JSON.stringify(d.content)}`);
    }
    assert.deepEqual(objectsOf(await config(ingress)), beforeIngress);
    assert.deepEqual(objectsOf(await config(worker)), beforeWorker);
    assert.deepEqual(await sessions(ingress), [], 'no session left on the ingress');
  });
}

test('l7mp 0.5.7 defect: the operator\'s delete of a compact VirtualService with a live session kills the ingress proxy', { timeout: 60_000 }, async () => {
  const options = testOptions({ compact: true, listenerMode: 'singleton', workerPorts });
  const call = await makeCall('call-doomed');
  const objects = callObjects(call, options);
  const mesh = [doomed.proxy, worker.proxy];
  await sendAll(objects, (o) => addRequests(o, mesh, options));
  await sessionsConnected(doomed, objects, options);
  const exited = once(doomed.child, 'exit');
  const vs = objects.find((o) => o.kind === 'VirtualService')!;
  // The listener delete is answered, then the second end of its session throws in a setImmediate, l7mp-proxy.js
  // logs it with log.error, and its log.error handler exits.
  for (const req of deleteRequests(vs, mesh, options)) {
    await send(req).catch(() => undefined);
  }
  const timer = setTimeout(() => doomed.child.kill('SIGKILL'), 10_000);
  const [code] = (await exited) as [number | null];
  clearTimeout(timer);
  assert.equal(code, 1, `the doomed ingress should have exited with 1 (l7mp fixed? then restDeleteRequests needs no extra cluster delete):\n${doomed.output()}`);
  assert.match(doomed.output(), /Cannot delete session: Unknown session "UDP:127\.0\.0\.2:\d+-0\.0\.0\.0:\d+-0"/);
  // The worker's rules were not touched: remove them.
  await sendAll(deletionOrder(objects).filter((o) => o.kind === 'Rule'), (o) => restDeleteRequests(o, [worker.proxy], options));
});
