/**
 * The REST provisioner against REAL l7mp 0.5.7 proxies (strict mode) in the root network namespace, on loopback only:
 * an ingress and two workers.
 *
 * Addresses (all loopback, nothing to set up):
 * - The workers' JSONSocket listeners are bound to 127.0.0.2 (worker-0) and 127.0.0.3 (worker-1), both on the same
 *   ports (MeshOptions.workerPorts is one pair for all workers): workerProxyConfig's `address`. Unbound (wildcard), two
 *   workers on the same ports could not be told apart (l7mp binds every UDP socket with SO_REUSEADDR: the second
 *   bind succeeds and the kernel delivers to either).
 * - Clients are on 127.0.0.5: the worker's rule binds 127.0.0.1:<client port>, which a client on 127.0.0.1 would hold.
 * - rtpengine stand-ins bind 127.0.0.1:<rtpengine port> with SO_REUSEADDR, next to the ingress listener on
 *   0.0.0.0:<same port> (l7mp sets SO_REUSEADDR on all its UDP sockets). A singleton listener's socket is connected
 *   to the client, which makes the kernel pin its local address to 127.0.0.1 too, but it only gets the client's
 *   packets: the worker's packets to 127.0.0.1:<port> (from 127.0.0.1) reach the stand-in, the client's (sent to
 *   127.0.0.1:<port>) the listener. A server listener's socket is not connected: the client sends to 127.0.0.4
 *   (any loopback address reaches 0.0.0.0), which the stand-in on 127.0.0.1 does not hold.
 * - UDP ports come from 20000-32767, below the ephemeral range (32768-60999), so that no socket bound to port 0
 *   (the ingress's JSONSocket cluster sockets) can take one before its owner binds it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import type { MeshCall, MeshOptions } from '../../src/mesh/model.js';
import { MeshError } from '../../src/mesh/provisioner.js';
import { callObjects, inlineClusterName, proxyNameOf } from '../../src/mesh/objects.js';
import type { MeshProxy } from '../../src/mesh/rest/operator.js';
import { RestProvisioner, type RestProvisionerOptions } from '../../src/mesh/rest/provisioner.js';
import { findLeftovers, parseObjectName, removeLeftovers, type Leftover } from '../../src/mesh/rest/leftovers.js';
import { ingressProxyConfig, workerProxyConfig } from '../../src/stack/l7mp-proxy.js';
import { RTP_HEADER_BYTES, rtpPayloadType, rtpSequence, rtpSsrc, writeRtpHeader } from '../../src/media/rtp.js';
import { ulawEncode } from '../../src/media/g711.js';
import {
  listenersOf,
  meshCall,
  proxyConfig,
  proxySessions,
  stable,
  startProxies,
  stopProxies,
  waitConnected,
  type ProxySession,
  type StableConfig,
} from '../helpers/l7mp.js';
import { freeTcpPort, freeUdpPorts } from '../helpers/ports.js';
import { testOptions } from './fixture.js';

const CLIENT_ADDRESS = '127.0.0.5';
/** Where clients reach a server-mode ingress listener (bound to 0.0.0.0, so any loopback address but 127.0.0.1, which
 * the rtpengine stand-ins hold). */
const INGRESS_MEDIA_ADDRESS = '127.0.0.4';
const WORKER_ADDRESSES = ['127.0.0.2', '127.0.0.3'] as const;
const POD_NAME = 'statefulset.kubernetes.io/pod-name';

// ---- The proxies ----------------------------------------------------------------------------------------------

const servers: Server[] = [];
const sockets: Socket[] = [];
let workerPorts: MeshOptions['workerPorts'];
let ingress: MeshProxy;
let workers: MeshProxy[];

before(async () => {
  const [rtp, rtcp] = await freeUdpPorts(2);
  workerPorts = { rtp: rtp!, rtcp: rtcp! };
  const [ci, c0, c1] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  const t = performance.now();
  // The workers' JSONSocket listeners bound to their addresses (see the header).
  const worker = (k: 0 | 1, controllerPort: number) => ({
    name: `worker-${k}`,
    address: WORKER_ADDRESSES[k],
    labels: { app: 'l7mp-worker', [POD_NAME]: `worker-${k}` },
    config: workerProxyConfig({ controllerPort, ports: workerPorts, address: WORKER_ADDRESSES[k] }),
  });
  const [i, w0, w1] = await startProxies([
    { name: 'ingress-0', address: '127.0.0.1', labels: { app: 'l7mp-ingress' }, config: ingressProxyConfig({ controllerPort: ci }) },
    worker(0, c0),
    worker(1, c1),
  ]);
  console.log(`# 3 l7mp proxies ready in ${Math.round(performance.now() - t)} ms`);
  ingress = i!;
  workers = [w0!, w1!];
});

after(async () => {
  for (const s of sockets) {
    try {
      s.close();
    } catch {
      // already closed
    }
  }
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await stopProxies();
});

function allProxies(): MeshProxy[] {
  return [ingress, ...workers];
}

// ---- Reading the proxies --------------------------------------------------------------------------------------

async function snapshot(): Promise<Record<string, StableConfig>> {
  const out: Record<string, StableConfig> = {};
  for (const p of allProxies()) out[p.name] = stable(await proxyConfig(p));
  return out;
}

async function assertSameConfig(before: Record<string, StableConfig>, what: string): Promise<void> {
  const now = await snapshot();
  for (const p of allProxies()) assert.deepEqual(now[p.name], before[p.name], `${what}: the configuration of ${p.name} differs from before`);
}

// ---- Calls ----------------------------------------------------------------------------------------------------

function makeCall(runId: string, index: number, worker: MeshProxy): Promise<MeshCall> {
  const callId = `${runId}-${index}`;
  return meshCall({ runId, callId, worker, clientAddress: CLIENT_ADDRESS, tags: [`a-${callId}`, `b-${callId}`] });
}

async function makeCalls(runId: string, count: number): Promise<MeshCall[]> {
  const out: MeshCall[] = [];
  for (let i = 0; i < count; i++) out.push(await makeCall(runId, i, workers[i % workers.length]!));
  return out;
}

function meshOptions(more: Partial<MeshOptions> = {}): MeshOptions {
  return testOptions({ workerPorts, ...more });
}

function provisioner(mesh: MeshOptions, more: Partial<RestProvisionerOptions> = {}): RestProvisioner {
  return new RestProvisioner({ proxies: allProxies(), mesh, ...more });
}

/** UDP sockets standing in for rtpengine: one per stream on 127.0.0.1:<rtpengine port>, echoing what they get. */
interface StandIn {
  socket: Socket;
  got: { data: Buffer; from: RemoteInfo }[];
}

async function bindUdp(address: string, port: number, reuseAddr: boolean): Promise<Socket> {
  const s = createSocket({ type: 'udp4', reuseAddr });
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, address, () => {
      s.off('error', reject);
      resolve();
    });
  });
  return s;
}

async function standIns(call: MeshCall, reply: (data: Buffer) => Buffer | null): Promise<StandIn[]> {
  return Promise.all(
    call.streams.map(async (s) => {
      const socket = await bindUdp('127.0.0.1', s.rtpenginePort, true);
      const st: StandIn = { socket, got: [] };
      socket.on('message', (data, from) => {
        st.got.push({ data, from });
        const r = reply(data);
        if (r) socket.send(r, from.port, from.address);
      });
      return st;
    }),
  );
}

function median(values: number[]): number {
  const v = [...values].sort((x, y) => x - y);
  return v[Math.floor(v.length / 2)]!;
}

function fmt(values: number[]): string {
  return `median ${Math.round(median(values))} ms, max ${Math.round(Math.max(...values))} ms`;
}

// ---- 1. Ten calls at once -------------------------------------------------------------------------------------

for (const compact of [false, true]) {
  const layout = compact ? 'compact' : 'classic';
  test(`1. ${layout}, singleton: 10 calls provisioned at once are on the right proxies and connected; releasing them restores every proxy's configuration`, { timeout: 90_000 }, async () => {
    const options = meshOptions({ compact, listenerMode: 'singleton' });
    const before = await snapshot();
    const calls = await makeCalls(`rest-one-${layout}`, 10);
    const p = provisioner(options);
    const t = performance.now();
    const results = await Promise.all(calls.map((c) => p.provision(c)));
    const wallMs = performance.now() - t;
    for (const r of results) {
      assert.equal(r.objects, compact ? 8 : 12);
      assert.equal(r.requests, compact ? 8 : 16, 'add requests per call (no retries on loopback)');
      assert.ok(r.acceptedMs > 0);
      assert.ok(r.readyMs !== null && r.readyMs >= r.acceptedMs, `readyMs ${r.readyMs} acceptedMs ${r.acceptedMs}`);
    }
    const stats = p.requestStats();
    console.log(
      `# ${layout}: 10 calls at once in ${Math.round(wallMs)} ms; per call accepted ${fmt(results.map((r) => r.acceptedMs))}, ready ${fmt(results.map((r) => r.readyMs!))}; ` +
        `${results[0]!.requests} requests and ${results[0]!.objects} objects per call; ${stats.polls} session polls for all 10; max ${stats.maxInFlight} requests in flight, ${stats.maxSessionSetups} calls setting up sessions`,
    );
    assert.ok(stats.maxInFlight <= 16);
    // One poller for the ingress: far fewer polls than calls times polls per call.
    assert.ok(stats.polls <= Math.ceil(Math.max(...results.map((r) => r.readyMs!)) / 25) + 2, `${stats.polls} polls`);

    // ---- every object on the proxies its selector picks, and only there
    const ic = await proxyConfig(ingress);
    const wc = await Promise.all(workers.map(proxyConfig));
    for (const call of calls) {
      const objects = callObjects(call, options);
      const k = workers.findIndex((w) => w.name === call.worker.name);
      for (const o of objects) {
        const name = proxyNameOf(o, options.naming);
        if (o.kind === 'VirtualService') {
          const l = ic.listeners.find((x) => x.name === name);
          assert.ok(l, `listener ${name} on the ingress`);
          const i = objects.filter((x) => x.kind === 'VirtualService').indexOf(o);
          assert.equal(l.spec.port, call.streams[i]!.rtpenginePort);
          if (compact) {
            const cluster = ic.clusters.find((c) => c.name === inlineClusterName(name));
            assert.ok(cluster, `inline cluster of ${name}`);
            assert.deepEqual(ic.endpoints.filter((e) => e.name.startsWith(`${cluster.name}`)).map((e) => e.spec.address), [call.worker.address]);
          }
        } else if (o.kind === 'Target') {
          assert.ok(ic.clusters.some((c) => c.name === name && c.endpoints === 1), `cluster ${name} on the ingress, one endpoint`);
          assert.equal(ic.endpoints.find((e) => e.name === `${name}/${call.worker.address}`)?.spec.address, call.worker.address, `the endpoint of ${name} is the call's worker`);
        } else {
          assert.ok(wc[k]!.rules.some((r) => r.name === name), `rule ${name} on ${call.worker.name}`);
          assert.ok(wc[k]!.rulelists.find((rl) => rl.name === o.spec.rulelist)!.rules.includes(name), `rule ${name} in ${o.spec.rulelist}`);
          assert.ok(!wc[1 - k]!.rules.some((r) => r.name === name), `rule ${name} not on the other worker`);
        }
      }
    }
    // Nothing else got in: 40 listeners (plus the controller), 40 rules per rule list pair across both workers.
    assert.equal(ic.listeners.length - before[ingress.name]!.listeners.length, 40);
    assert.equal(wc.reduce((n, c) => n + c.rules.length, 0) - workers.reduce((n, w) => n + before[w.name]!.rules.length, 0), 40);

    // ---- connected: on the ingress (what provision waited for) and on each call's own worker
    const ingressSessions = await proxySessions(ingress);
    for (const call of calls) {
      for (const l of listenersOf(callObjects(call, options), options)) {
        assert.ok(ingressSessions.some((s) => s.source.origin === l && s.status === 'CONNECTED' && s.destination?.status === 'READY'), `session of ${l}`);
      }
    }
    const workerSessions = await Promise.all(workers.map(proxySessions));
    for (const call of calls) {
      const k = workers.findIndex((w) => w.name === call.worker.name);
      const mine = (list: ProxySession[]): string[] =>
        [...new Set(list.filter((s) => s.metadata.JSONSocket?.labels?.callid === call.callId && s.status === 'CONNECTED').map((s) => `${s.source.origin} ${s.metadata.JSONSocket?.labels?.tag}`))].sort();
      assert.deepEqual(mine(workerSessions[k]!), [
        `worker-rtcp-listener a-${call.callId}`,
        `worker-rtcp-listener b-${call.callId}`,
        `worker-rtp-listener a-${call.callId}`,
        `worker-rtp-listener b-${call.callId}`,
      ]);
      assert.deepEqual(mine(workerSessions[1 - k]!), [], `no session of ${call.callId} on the other worker`);
    }

    // ---- release: every proxy as before
    const t2 = performance.now();
    const released = await Promise.all(calls.map((c) => p.release(c)));
    console.log(`# ${layout}: 10 calls released in ${Math.round(performance.now() - t2)} ms, ${released[0]!.requests} requests per call`);
    for (const r of released) assert.deepEqual(r, { objects: compact ? 8 : 12, requests: 16 });
    await assertSameConfig(before, `${layout} after release`);
    assert.deepEqual(await proxySessions(ingress), [], 'no session left on the ingress');
    assert.deepEqual(p.liveCalls(), []);
    await p.close();
  });
}

// ---- 2. Server mode -------------------------------------------------------------------------------------------

for (const compact of [false, true]) {
  const layout = compact ? 'compact' : 'classic';
  test(`2. ${layout}, server listeners: readyMs null; with live sessions (first packets sent) the release restores every configuration`, { timeout: 60_000 }, async () => {
    const options = meshOptions({ compact, listenerMode: 'server' });
    const before = await snapshot();
    const calls = await makeCalls(`rest-two-${layout}`, 2);
    const p = provisioner(options);
    const results = await Promise.all(calls.map((c) => p.provision(c)));
    for (const r of results) {
      assert.equal(r.readyMs, null);
      assert.ok(r.acceptedMs > 0);
    }
    assert.equal(p.requestStats().polls, 0, 'no readiness polls in server mode');
    // No session before the first packet.
    assert.deepEqual(await proxySessions(ingress), []);
    for (const call of calls) {
      await standIns(call, () => null);
      for (const s of call.streams) {
        const client = await bindUdp(CLIENT_ADDRESS, s.clientPort, false);
        // To 127.0.0.4: a server listener's socket is unconnected on 0.0.0.0, and 127.0.0.1:<port> is the stand-in's.
        client.send(Buffer.from('first'), s.rtpenginePort, INGRESS_MEDIA_ADDRESS);
      }
    }
    await waitConnected(ingress, calls.flatMap((c) => listenersOf(callObjects(c, options), options)));
    // A compact listener with a live session: the operator's delete would kill the ingress (operator.ts
    // restDeleteRequests); the provisioner's must not.
    await Promise.all(calls.map((c) => p.release(c)));
    await assertSameConfig(before, `${layout} server mode after release`);
    assert.deepEqual(await proxySessions(ingress), []);
    await p.close();
  });
}

// ---- 3. Refusals, unreachable proxies, readiness timeouts: errors and rollback -------------------------------

test('3. a worker without the rule list refuses: MeshError naming proxy, request and answer; what was created is rolled back', { timeout: 60_000 }, async () => {
  const options = meshOptions({ workerRulelists: { rtp: 'worker-rtp-rulelist', rtcp: 'no-such-rulelist' } });
  const before = await snapshot();
  const [call] = await makeCalls('rest-three', 1);
  const p = provisioner(options);
  const err = await p.provision(call!).then(
    () => assert.fail('provisioned'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof MeshError, String(err));
  console.log(`# refusal: ${err.message}`);
  assert.equal(err.status, 400);
  assert.match(err.message, /^l7mp proxy "worker-0" \(http:\/\/127\.0\.0\.1:\d+\) refused POST \/api\/v1\/rulelists\/no-such-rulelist\/rules\/0 \(Rule \/l7mp\.io\/v1\/Rule\/default\/worker-rtcp-rule-rest-three-0-a-rest-three-0 of call rest-three-0\): HTTP 400: Bad Request/);
  assert.match(err.message, /does the proxy have the rule list "no-such-rulelist"\?/);
  assert.match(err.message, /and 1 more failure/, 'both RTCP rules were refused');
  // The two RTP rules were accepted, then removed again; no Target or VirtualService was sent.
  assert.match(err.message, /call rest-three-0: rolled back, its 4 objects removed again\)$/);
  assert.equal(p.requestStats().sent, 4 + 8, '4 rule adds, then 2 deletes for each of the 4 rules');
  assert.equal(p.requestStats().retried, 0, 'a 400 is not retried');
  await assertSameConfig(before, 'after the refused provision');
  assert.deepEqual(p.liveCalls(), []);
  await p.close();
});

test('3b. a proxy that does not answer: retried with backoff, then a MeshError naming it; nothing sent further', { timeout: 30_000 }, async () => {
  const options = meshOptions();
  const before = await snapshot();
  const [call] = await makeCalls('rest-three-b', 1);
  const dead: MeshProxy = { ...workers[0]!, restUrl: `http://127.0.0.1:${await freeTcpPort()}` };
  const p = new RestProvisioner({ proxies: [ingress, dead, workers[1]!], mesh: options, retries: 2, retryBackoffMs: 20 });
  const t = performance.now();
  const err = await p.provision(call!).then(
    () => assert.fail('provisioned'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof MeshError, String(err));
  assert.equal(err.status, null);
  assert.match(err.message, /^l7mp proxy "worker-0" \(http:\/\/127\.0\.0\.1:\d+\) did not accept POST \/api\/v1\/rulelists\/worker-rtp-rulelist\/rules\/0 \(Rule .* of call rest-three-b-0\) in 3 attempts; the last one: .*ECONNREFUSED/);
  // 4 rules x 3 attempts, then the rollback's deletes fail the same way: the call stays known for releaseRun.
  assert.match(err.message, /the rollback failed, objects may be left behind/);
  assert.ok(performance.now() - t >= 20 + 40, 'backoff 20 ms, then 40 ms');
  // The rollback: each rule's first delete, 3 attempts each (its sequence stops there).
  assert.equal(p.requestStats().retried, 4 * 2 + 4 * 2);
  assert.deepEqual(p.liveCalls().map((c) => c.callId), ['rest-three-b-0']);
  await assertSameConfig(before, 'nothing reached the ingress');
  await p.close();
});

test('3c. sessions that never connect: MeshError after the readiness deadline naming the listener and what its session showed; rolled back once they gave up, the ingress survives', { timeout: 120_000 }, async () => {
  const options = meshOptions();
  const before = await snapshot();
  // The Target's endpoint is the worker proxy's address: give worker-0 one where nothing listens.
  const lost: MeshProxy = { ...workers[0]!, address: '127.0.0.9' };
  const call = await makeCall('rest-three-c', 0, lost);
  const p = new RestProvisioner({ proxies: [ingress, lost, workers[1]!], mesh: options, readyTimeoutMs: 1500 });
  const t = performance.now();
  const err = await p.provision(call).then(
    () => assert.fail('provisioned'),
    (e: unknown) => e,
  );
  const tookMs = performance.now() - t;
  assert.ok(err instanceof MeshError, String(err));
  console.log(`# readiness deadline 1500 ms; provision failed after ${Math.round(tookMs)} ms (the rollback waited for the retrying sessions to give up): ${err.message.slice(0, 700)}`);
  assert.match(err.message, /^call rest-three-c-0: the ingress l7mp proxy "ingress-0" did not show the call's sessions CONNECTED with destination READY within 1500 ms \(\d+ polls of GET \/api\/v1\/sessions\): listener \/l7mp\.io\/v1\/VirtualService\/default\/ingress-rtp-vsvc-rest-three-c-0-a-rest-three-c-0: /);
  assert.match(err.message, /session UDP:127\.0\.0\.5:\d+-0\.0\.0\.0:\d+-\d+ status \S+, destination/);
  assert.match(err.message, /rolled back, its 12 objects removed again\)$/);
  // The sessions were retrying: deleting their listeners then would have made l7mp 0.5.7 exit. The rollback waited
  // until they gave up (120 retries of 250 ms: about 30 s after they started).
  assert.ok(tookMs >= 25_000 && tookMs < 70_000, `${tookMs} ms`);
  await assertSameConfig(before, 'after the readiness timeout');
  assert.deepEqual(await proxySessions(ingress), []);
  await p.close();
});

// ---- 4. releaseRun, leftovers of a crashed run ----------------------------------------------------------------

test('4. releaseRun removes exactly what the run left (released calls and other runs untouched)', { timeout: 60_000 }, async () => {
  const options = meshOptions();
  const before = await snapshot();
  const runA = await makeCalls('rest-four-a', 3);
  const [other] = await makeCalls('rest-four-b', 1);
  const p = provisioner(options);
  await Promise.all([...runA, other!].map((c) => p.provision(c)));
  await p.release(runA[0]!);
  assert.deepEqual(p.liveCalls('rest-four-a').map((c) => c.callId).sort(), ['rest-four-a-1', 'rest-four-a-2']);
  await p.releaseRun('rest-four-a');
  assert.deepEqual(p.liveCalls('rest-four-a'), []);
  assert.deepEqual(await findLeftovers(allProxies(), 'rest-four-a'), []);
  // The other run's 12 objects are all still there: 4 listeners and 4 clusters on the ingress, 4 rules on its worker.
  const left = await findLeftovers(allProxies());
  assert.deepEqual(
    left.map((l) => `${l.proxy} ${l.type} ${l.kind}`).sort(),
    [...Array<string>(4).fill('ingress-0 cluster Target'), ...Array<string>(4).fill('ingress-0 listener VirtualService'), ...Array<string>(4).fill('worker-0 rule Rule')],
  );
  assert.ok(left.every((l) => l.object.includes('rest-four-b-0')));
  await p.releaseRun('rest-four-b');
  await p.releaseRun('rest-four-b'); // nothing left: a no-op
  await assertSameConfig(before, 'after releaseRun');
  assert.deepEqual(p.liveCalls(), []);
  await p.close();
});

test('4b. after a crash: findLeftovers lists what the runs left (both naming forms), removeLeftovers removes it, also compact listeners with live sessions', { timeout: 60_000 }, async () => {
  const before = await snapshot();
  // Run "rest-crash": compact, operator names; run "rest-crash-x": classic, selflink names. Both provisioners
  // "crash": closed without releasing anything.
  const compact = meshOptions({ compact: true });
  const classic = meshOptions({ naming: 'selflink' });
  const crashCalls = await makeCalls('rest-crash', 2);
  const otherCalls = await makeCalls('rest-crash-x', 1);
  const p1 = provisioner(compact);
  const p2 = provisioner(classic);
  await Promise.all([...crashCalls.map((c) => p1.provision(c)), ...otherCalls.map((c) => p2.provision(c))]);
  await p1.close();
  await p2.close();

  const leftovers = await findLeftovers(allProxies(), 'rest-crash');
  const expected = (calls: MeshCall[], options: MeshOptions): string[] =>
    calls
      .flatMap((call) =>
        callObjects(call, options).flatMap((o) => {
          const name = proxyNameOf(o, options.naming);
          if (o.kind === 'Rule') return [`${call.worker.name} rule ${name} [${o.spec.rulelist}]`];
          if (o.kind === 'Target') return [`ingress-0 cluster ${name} []`];
          return [`ingress-0 listener ${name} []`, ...(options.compact ? [`ingress-0 cluster ${inlineClusterName(name)} []`] : [])];
        }),
      )
      .sort();
  const show = (list: Leftover[]): string[] => list.map((l) => `${l.proxy} ${l.type} ${l.name} [${l.rulelists.join(',')}]`).sort();
  // "rest-crash-x-0" also starts with "rest-crash-": the run prefix matches it. A run id that is a prefix of another
  // one's is the caller's to avoid (rtp-bench's run ids are a timestamp and 4 hex digits: never).
  assert.deepEqual(show(leftovers), [...expected(crashCalls, compact), ...expected(otherCalls, classic)].sort());
  assert.deepEqual(show(await findLeftovers(allProxies(), 'rest-crash-x')), expected(otherCalls, classic));
  assert.deepEqual(await findLeftovers(allProxies(), 'rest-nothing'), []);
  for (const l of leftovers) assert.ok(parseObjectName(l.name), l.name);

  // The compact listeners have live singleton sessions: removing them must not kill the ingress.
  const cost = await removeLeftovers(await findLeftovers(allProxies(), 'rest-crash-x'));
  assert.equal(cost.objects, 12);
  assert.deepEqual(show(await findLeftovers(allProxies())), expected(crashCalls, compact));
  const cost2 = await removeLeftovers(await findLeftovers(allProxies()));
  assert.equal(cost2.objects, 2 * (4 + 4 + 4));
  console.log(`# leftovers: ${cost.objects} objects in ${cost.requests} requests (classic), ${cost2.objects} in ${cost2.requests} (compact)`);
  assert.deepEqual(await findLeftovers(allProxies()), []);
  await assertSameConfig(before, 'after removeLeftovers');
  assert.deepEqual(await proxySessions(ingress), []);
});

// ---- 5. The concurrency bound ---------------------------------------------------------------------------------

/** An HTTP forwarder in front of a proxy's REST API that counts the POST/DELETE requests in flight (all forwarders together). */
const forwarded = { inFlight: 0, max: 0, total: 0 };
async function forwarder(target: MeshProxy): Promise<MeshProxy> {
  const to = new URL(target.restUrl);
  const server = createHttpServer((req, res) => {
    const counted = req.method !== 'GET';
    if (counted) {
      forwarded.total++;
      forwarded.max = Math.max(forwarded.max, ++forwarded.inFlight);
    }
    let done = false;
    const finish = (): void => {
      if (counted && !done) forwarded.inFlight--;
      done = true;
    };
    res.on('finish', finish);
    res.on('close', finish);
    const up = httpRequest({ hostname: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { ...target, restUrl: `http://127.0.0.1:${address.port}` };
}

test('5. the bounds hold across calls: requests in flight (counted by the provisioner and by forwarders in front of the proxies), calls setting up sessions', { timeout: 60_000 }, async () => {
  const options = meshOptions();
  const before = await snapshot();
  const bound = 4;
  const proxies = await Promise.all(allProxies().map(forwarder));
  const calls = await makeCalls('rest-five', 10);
  const p = new RestProvisioner({ proxies, mesh: options, concurrency: bound, maxSessionSetups: 3 });
  const results = await Promise.all(calls.map((c) => p.provision(c)));
  const sent = p.requestStats();
  assert.equal(sent.sent, 160);
  assert.equal(forwarded.total, 160, 'every add went through the forwarders');
  console.log(`# bound ${bound}: provisioner max in flight ${sent.maxInFlight}, forwarders ${forwarded.max}; ${sent.maxSessionSetups} calls setting up sessions at most; accepted ${fmt(results.map((r) => r.acceptedMs))}, ready ${fmt(results.map((r) => r.readyMs!))}`);
  assert.ok(sent.maxInFlight <= bound, `provisioner: ${sent.maxInFlight} in flight`);
  assert.ok(forwarded.max <= bound, `forwarders: ${forwarded.max} in flight`);
  assert.equal(sent.maxInFlight, bound, 'ten calls at once use the whole bound');
  assert.equal(sent.maxSessionSetups, 3, 'at most 3 calls between creating their listeners and being ready, and 3 did');
  assert.equal(sent.sessionSetups, 0);
  p.resetMaxInFlight();
  forwarded.max = 0;
  await Promise.all(calls.map((c) => p.release(c)));
  assert.ok(p.requestStats().maxInFlight <= bound && forwarded.max <= bound, `release: ${p.requestStats().maxInFlight} / ${forwarded.max} in flight`);
  await assertSameConfig(before, 'after release through forwarders');
  await p.close();
});

// ---- 6. Media through the mesh --------------------------------------------------------------------------------

function pcmuPacket(seq: number, ssrc: number): Buffer {
  const buf = Buffer.alloc(RTP_HEADER_BYTES + 160);
  writeRtpHeader(buf, { marker: seq === 0, payloadType: 0, sequenceNumber: seq, timestamp: seq * 160, ssrc });
  for (let i = 0; i < 160; i++) buf[RTP_HEADER_BYTES + i] = ulawEncode(Math.round(8000 * Math.sin((2 * Math.PI * 440 * (seq * 160 + i)) / 8000)));
  return buf;
}

/** A minimal RTCP receiver report (no report blocks). */
function rtcpRr(ssrc: number): Buffer {
  const buf = Buffer.alloc(8);
  buf[0] = 0x80;
  buf[1] = 201;
  buf.writeUInt16BE(1, 2);
  buf.writeUInt32BE(ssrc, 4);
  return buf;
}

test('6. media: a pcmu call\'s packets reach rtpengine\'s port from 127.0.0.1:<client port>, and its replies reach the client', { timeout: 60_000 }, async () => {
  for (const compact of [false, true]) {
    const options = meshOptions({ compact });
    const before = await snapshot();
    const call = await makeCall(`rest-six-${compact ? 'compact' : 'classic'}`, 0, workers[1]!);
    // rtpengine is there before the call: the stand-ins answer every packet with a packet of their own SSRC.
    const replyOf = (data: Buffer): Buffer => (data[1] === 201 ? rtcpRr(0xbeef) : pcmuPacket(rtpSequence(data), 0xbeef));
    const rtpengine = await standIns(call, replyOf);
    const clients = await Promise.all(call.streams.map((s) => bindUdp(CLIENT_ADDRESS, s.clientPort, false)));
    const heard = clients.map(() => [] as { data: Buffer; from: RemoteInfo }[]);
    clients.forEach((c, i) => c.on('message', (data, from) => heard[i]!.push({ data, from })));

    const p = provisioner(options);
    const r = await p.provision(call);
    assert.ok(r.readyMs !== null);
    // Right after provision resolved: 5 packets per stream, 20 ms apart, to the ingress (which the singleton
    // listener's socket, connected to the client, is at 127.0.0.1:<rtpengine port>).
    for (let seq = 0; seq < 5; seq++) {
      call.streams.forEach((s, i) => clients[i]!.send(s.kind === 'rtp' ? pcmuPacket(seq, 0x1000 + i) : rtcpRr(0x1000 + i), s.rtpenginePort, '127.0.0.1'));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const deadline = performance.now() + 3000;
    while (heard.some((h) => h.length < 5) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));

    call.streams.forEach((s, i) => {
      const got = rtpengine[i]!.got;
      const what = `${s.leg}/${s.kind}`;
      assert.equal(got.length, 5, `${what}: rtpengine's port ${s.rtpenginePort} got ${got.length} of 5`);
      for (const g of got) {
        // What the worker's rule does: from rtpengine's loopback, bound to the client's port.
        assert.deepEqual([g.from.address, g.from.port], ['127.0.0.1', s.clientPort], `${what}: source`);
        if (s.kind === 'rtp') {
          assert.equal(rtpPayloadType(g.data), 0);
          assert.equal(rtpSsrc(g.data), 0x1000 + i);
        }
      }
      if (s.kind === 'rtp') {
        assert.deepEqual(got.map((g) => rtpSequence(g.data)), [0, 1, 2, 3, 4], `${what}: none lost, in order`);
        assert.deepEqual(got[2]!.data, pcmuPacket(2, 0x1000 + i), `${what}: bytes unchanged`);
      }
      assert.equal(heard[i]!.length, 5, `${what}: the client got ${heard[i]!.length} of 5 replies`);
      for (const h of heard[i]!) assert.equal(h.from.port, s.rtpenginePort, `${what}: the reply comes from the ingress port`);
      if (s.kind === 'rtp') assert.deepEqual(heard[i]!.map((h) => [rtpSsrc(h.data), rtpPayloadType(h.data)]), Array(5).fill([0xbeef, 0]), `${what}: rtpengine's replies`);
      else assert.deepEqual(heard[i]!.map((h) => h.data), Array(5).fill(rtcpRr(0xbeef)), `${what}: rtpengine's replies`);
    });
    console.log(`# media (${compact ? 'compact' : 'classic'}): provisioned, accepted ${Math.round(r.acceptedMs)} ms, ready ${Math.round(r.readyMs)} ms; 5 of 5 packets each way on all 4 streams`);

    await p.release(call);
    for (const s of [...rtpengine.map((x) => x.socket), ...clients]) s.close();
    await assertSameConfig(before, 'after the media call');
    await p.close();
  }
});
