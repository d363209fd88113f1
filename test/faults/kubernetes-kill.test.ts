/**
 * --fault kill-worker with --mesh kubernetes, against the Kubernetes API emulator: the worker pod read (its uid) and
 * deleted with grace period 0, then followed by name through its termination until the StatefulSet's new pod is
 * Running and Ready; the gap boundary between the two (src/faults/pod-replacement.ts) planted against packet times
 * chosen around the pod's life; the worker's ng re-aimed at the new pod's address (real ng clients against UDP peers
 * on the two pod addresses); and the refusals: a 403 on reading or deleting pods names the RBAC rule.
 * Every step waits for the emulator's events (a pod's change, a request answered), never for a time.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { K8sEmulator, type PodEvent, type RecordedRequest } from '../helpers/k8s-emulator.js';
import { KubernetesApi } from '../../src/mesh/kubernetes/api.js';
import { FaultRuntime } from '../../src/faults/runtime.js';
import type { WorkerPods } from '../../src/faults/pod-replacement.js';
import { epochNow } from '../../src/faults/worker-process.js';
import { parseFaults } from '../../src/faults/spec.js';
import { NgClient, NgClientClosedError } from '../../src/ng/client.js';
import { decodeNgMessage, encodeNgMessage } from '../../src/ng/message.js';
import { emptyReceived, type CallMediaResult, type LegResult, type ReceivedStream } from '../../src/media/task.js';
import type { Stack, Worker } from '../../src/stack/stack.js';
import type { FaultRecord } from '../../src/faults/model.js';

let emulator: K8sEmulator;
before(async () => {
  emulator = await K8sEmulator.start();
});
after(async () => {
  await emulator.close();
});

const LABELS = { app: 'l7mp-worker' };
const STS = 'l7mp-worker';
const POD = `${STS}-1`;
/** Pod addresses of their own on loopback: ordinal i's first pod is 127.77.<i>.1, the one made after it .2. */
const podIP = (ordinal: number, generation: number): string => `127.77.${ordinal}.${generation}`;

/** An ng peer at a pod's address: answers ping with pong and anything else with ok, or (held) nothing until release(). */
interface NgPeer {
  port: number;
  commands: string[];
  release(): void;
  close(): void;
}

const peers: Socket[] = [];
after(() => {
  for (const s of peers) s.close();
});

async function ngPeer(host: string, port: number, held: boolean): Promise<NgPeer> {
  const socket = createSocket('udp4');
  peers.push(socket);
  const waiting: [string, RemoteInfo][] = [];
  const commands: string[] = [];
  const answer = (cookie: string, command: string, to: RemoteInfo): void => {
    socket.send(encodeNgMessage(cookie, { result: command === 'ping' ? 'pong' : 'ok' }), to.port, to.address);
  };
  socket.on('message', (msg, from) => {
    const { cookie, body } = decodeNgMessage(msg);
    const command = String(body['command']);
    commands.push(command);
    if (held) waiting.push([cookie, from]);
    else answer(cookie, command, from);
  });
  socket.bind(port, host);
  await once(socket, 'listening');
  return {
    port: socket.address().port,
    commands,
    release: () => {
      held = false;
      for (const [cookie, from] of waiting.splice(0)) answer(cookie, 'delete', from);
    },
    close: () => socket.close(),
  };
}

function meshWorker(i: number, ng: NgClient): Worker {
  const name = `${STS}-${i}`;
  return { name: `${name} (${ng.endpoint})`, ng, local: null, metricsUrl: null, cap: null, activeCalls: 3, version: null, mesh: { name, address: podIP(i, 1), labels: { ...LABELS, 'statefulset.kubernetes.io/pod-name': name } }, redisDb: null };
}

/** Resolves with the first request answered from now on that `match`es. */
function answered(match: (r: RecordedRequest) => boolean): Promise<RecordedRequest> {
  return new Promise((resolve) => {
    const on = (r: RecordedRequest): void => {
      if (!match(r)) return;
      emulator.events.off('answered', on);
      resolve(r);
    };
    emulator.events.on('answered', on);
  });
}

/** The next read of the worker pod that the emulator receives after this moment, once answered. */
function nextRead(): Promise<RecordedRequest> {
  const after = emulator.requests.at(-1)?.seq ?? 0;
  return answered((r) => r.seq > after && r.verb === 'get' && r.resource === 'pods' && r.name === POD);
}

function podEvent(change: PodEvent['change']): Promise<PodEvent> {
  return new Promise((resolve) => {
    const on = (e: PodEvent): void => {
      if (e.change !== change || e.name !== POD) return;
      emulator.events.off('pod', on);
      resolve(e);
    };
    emulator.events.on('pod', on);
  });
}

interface Run {
  runtime: FaultRuntime;
  workers: Worker[];
  api: KubernetesApi;
  /** The status line the fault ends with (its note), once it has. */
  ended: Promise<string>;
}

/** kill-worker=2 at once, through the runtime, with the fake stack's two workers and the real API client. */
function killSecond(workers: Worker[], ngPort: number): Run {
  const api = new KubernetesApi(emulator.kubeConfig(), { ratePerSec: 100_000 });
  const pods: WorkerPods = { api, namespace: 'default', openNg: (ip) => NgClient.open({ host: ip, port: ngPort, timeoutMs: 30_000 }), pollMs: 2 };
  let end: (line: string) => void = () => undefined;
  const ended = new Promise<string>((resolve) => {
    end = resolve;
  });
  const runtime = new FaultRuntime({
    faults: parseFaults('kill-worker=2@0s', { workers: null, runMs: 60_000, site: 'mesh-kubernetes' }),
    stack: { workers, redis: null } as unknown as Stack,
    takeover: false,
    maker: null,
    path: null,
    clientPorts: { min: 20000, max: 20099 },
    runId: 'kill-test',
    // The line make() prints when the fault is over: its note (the interim one says "following its replacement").
    status: (line) => {
      if (!line.endsWith('following its replacement')) end(line);
    },
    workerPods: pods,
  });
  return { runtime, workers, api, ended };
}

/** A call's media whose legs both heard packets at these epoch ms (20 ms of audio each, none lost but the gap). */
function mediaHeard(arrivals: number[]): CallMediaResult {
  const rx = (): ReceivedStream => ({
    ...emptyReceived(),
    packets: arrivals.length,
    lastPacketEpochMs: arrivals.at(-1)!,
    faultWatch: { arrivalsEpochMs: arrivals, deficitsMs: arrivals.map((t, k) => t - arrivals[0]! - 20 * (k + 1)), laterMinDeficitMs: null, longestSilence: null },
  });
  const leg = (name: 'a' | 'b'): LegResult => ({
    leg: name,
    sent: { packets: 100, bytes: 0, failed: 0, skipped: 0, lastSeq: 99, lastFailed: false, refused: 0 },
    received: rx(),
    rtcp: { sent: 0, received: 0, malformed: 0, lastReport: null },
  });
  return {
    callId: 'c', error: null, mediaStartEpochMs: arrivals[0]! - 10_000, mediaEndEpochMs: arrivals.at(-1)! + 100, phaseMs: 0, stoppedEarly: false,
    legs: [leg('a'), leg('b')], histograms: {}, outliers: { clamped: 0, rejected: 0 }, io: 'dgram', priority: 'normal',
  };
}

test('kill-worker=2: the old pod followed through its termination to its Ready replacement; the boundary lies between; the ng re-aimed at the new pod', async () => {
  emulator.reset();
  let generation = 1;
  emulator.addStatefulSet({ name: STS, replicas: 2, labels: LABELS, startup: 'manual', termination: 'manual', podIP: (i) => podIP(i, generation) });
  for (const i of [0, 1]) emulator.setPodState(`${STS}-${i}`, { state: 'ready' });
  // The new pod's ng peer answers; the old pod's takes a request and answers only when the test says.
  const fresh = await ngPeer(podIP(1, 2), 0, false);
  const old = await ngPeer(podIP(1, 1), fresh.port, true);
  const oldNg = await NgClient.open({ host: podIP(1, 1), port: fresh.port, timeoutMs: 30_000 });
  const workers = [meshWorker(0, await NgClient.open({ host: podIP(0, 1), port: fresh.port })), meshWorker(1, oldNg)];
  const { runtime, api, ended } = killSecond(workers, fresh.port);
  const oldUid = (await api.readPod('default', POD))!.metadata!.uid!;
  // A call's delete in flight to the old pod when the replacement comes: it must end as it would, not be cut.
  const inFlight = oldNg.request('delete', { 'call-id': 'before' });

  emulator.resetRecord();
  const terminating = podEvent('terminating');
  const startEpochMs = epochNow();
  runtime.start(startEpochMs);
  await terminating;
  // A read after the DELETE: the runtime has its answer. The old pod still runs: packets now are still its own.
  await nextRead();
  const betweenEpochMs = epochNow();
  assert.ok(runtime.unavailable.has(workers[1]!), 'no new calls go to the worker while it is down');
  const deletes = emulator.requests.filter((r) => r.verb === 'delete');
  assert.deepEqual(deletes.map((r) => [r.method, r.path, r.query['gracePeriodSeconds']]), [['DELETE', `/api/v1/namespaces/default/pods/${POD}`, '0']]);
  assert.equal(emulator.requests[0]!.verb, 'get', 'the pod read (its uid) before it is deleted');
  // Until the replacement is seen Ready, media that came after the DELETE's answer is not a return.
  assert.equal(runtime.failover(workers[1]!, mediaHeard([betweenEpochMs - 20, betweenEpochMs]), true)?.resumed, false);

  // The old pod's end: the StatefulSet makes the new pod (another uid, another address), Pending.
  generation = 2;
  const gone = podEvent('deleted');
  const oldEndEpochMs = epochNow();
  emulator.finishTermination(POD);
  await gone;
  // Two reads of the new pod before it is Ready: once the second is served, the runtime has seen the first.
  await nextRead();
  emulator.setPodState(POD, { state: 'running' });
  await nextRead();
  const readySetEpochMs = epochNow();
  emulator.setPodState(POD, { state: 'ready' });
  const line = await ended;
  const [record] = (await runtime.finish()) as [FaultRecord];
  runtime.close();

  assert.ok(record.done, record.note);
  const r = record.replacement!;
  assert.equal(r.pod, `default/${POD}`);
  assert.equal(r.oldUid, oldUid);
  assert.ok(r.newUid !== null && r.newUid !== oldUid, 'the replacement is another pod');
  assert.equal(r.podIP, podIP(1, 2));
  // The moments, in the order they happened, with the test's own around them.
  const order: [string, number][] = [
    ['DELETE sent', record.atMs!], ['DELETE answered', r.deleteAnsweredMs], ['a packet of the old pod', betweenEpochMs], ['the old pod ended', oldEndEpochMs],
    ['seen gone', r.goneMs!], ['boundary', r.boundaryMs!], ['made Ready', readySetEpochMs], ['seen Ready', r.readyMs!],
  ];
  for (let k = 1; k < order.length; k++) assert.ok(order[k - 1]![1] <= order[k]![1], `${order[k - 1]![0]} (${order[k - 1]![1]}) before ${order[k]![0]} (${order[k]![1]})`);
  assert.ok(startEpochMs <= record.atMs!);
  assert.match(line, new RegExp(`^fault kill-worker=2@0s at \\d+\\.\\d{3} s: DELETE pod default/${POD} \\(uid ${oldUid}, grace period 0\\) with 3 call\\(s\\), answered in \\d+ ms; `));
  assert.match(record.note, /; the old pod seen gone \d+ ms after the DELETE, its replacement \(uid [-0-9a-f]+\) Running and Ready at 127\.77\.1\.2 \d+ ms after the DELETE; gap boundary \d+ ms after the DELETE/);

  // The boundary at work: the old pod's packet after the DELETE's answer is not a return; the replacement's is.
  const lost = runtime.failover(workers[1]!, mediaHeard([betweenEpochMs - 20, betweenEpochMs]), true)!;
  assert.deepEqual([lost.resumed, lost.gapMs.a, lost.recoverMs], [false, null, null]);
  const back = r.readyMs! + 20;
  const survived = runtime.failover(workers[1]!, mediaHeard([betweenEpochMs - 20, betweenEpochMs, back, back + 20]), true)!;
  assert.deepEqual([survived.resumed, survived.gapMs.a, survived.gapMs.b, survived.recoverMs], [true, back - betweenEpochMs, back - betweenEpochMs, back - record.atMs!]);

  // The worker re-aimed at the new pod, which answered a ping; it takes calls again; its deletes go there.
  assert.equal(workers[1]!.ng.endpoint, `${podIP(1, 2)}:${fresh.port}`);
  assert.equal(workers[1]!.mesh!.address, podIP(1, 2));
  assert.equal(workers[1]!.name, `${POD} (${podIP(1, 1)}:${fresh.port})`, 'the worker keeps its name: its calls are recorded under it');
  assert.equal(runtime.route(workers[1]!), workers[1]);
  assert.deepEqual(fresh.commands, ['ping']);
  assert.match(record.note, new RegExp(`ng re-aimed from ${podIP(1, 1)}:${fresh.port} to ${podIP(1, 2)}:${fresh.port}, which answered a ping in [\\d.]+ ms: the worker takes new calls again$`));
  assert.ok(!runtime.unavailable.has(workers[1]!));
  assert.deepEqual(await runtime.route(workers[1]!).ng.request('delete', { 'call-id': 'after' }), { result: 'ok' });
  assert.deepEqual(fresh.commands, ['ping', 'delete']);
  // The old client: its request in flight ends as the old peer answers it; it takes no new ones.
  await assert.rejects(oldNg.request('ping'), NgClientClosedError);
  old.release();
  assert.deepEqual(await inFlight, { result: 'ok' });
  assert.deepEqual(old.commands, ['delete']);
  await workers[1]!.ng.close();
  await workers[0]!.ng.close();
  api.close();
});

test('a replacement not Ready when the run ends: no boundary, every call on the worker lost, and it says what it last saw', async () => {
  emulator.reset();
  // Termination 'immediate': the pod object goes at once, as a real API server removes a force-deleted pod.
  emulator.addStatefulSet({ name: STS, replicas: 2, labels: LABELS, startup: 'manual', podIP: (i) => podIP(i, 1) });
  for (const i of [0, 1]) emulator.setPodState(`${STS}-${i}`, { state: 'ready' });
  const ng = await NgClient.open({ host: podIP(1, 1), port: 9 });
  const workers = [meshWorker(0, ng), meshWorker(1, ng)];
  const { runtime, api } = killSecond(workers, 9);
  const deleted = podEvent('deleted');
  runtime.start(epochNow());
  await deleted;
  const created = podEvent('created');
  emulator.reconcileStatefulSet(STS);
  await created;
  // The new pod read twice (Pending): once the second is served, the runtime has seen the first.
  await nextRead();
  await nextRead();
  const afterEpochMs = epochNow();
  const [record] = (await runtime.finish()) as [FaultRecord];
  runtime.close();
  assert.ok(record.done);
  assert.match(
    record.note,
    /; the old pod seen gone \d+ ms after the DELETE; its replacement was not Ready when the run ended, last seen: the replacement \(uid [-0-9a-f]+\): l7mp-worker-1 Pending \(not placed on a node yet\); no call's media came back from it: every call on the worker counts as lost$/,
  );
  const r = record.replacement!;
  assert.deepEqual([r.readyMs, r.podIP, r.boundaryMs], [null, null, null]);
  assert.ok(r.goneMs !== null && r.newUid !== null && r.newUid !== r.oldUid);
  assert.equal(runtime.failover(workers[1]!, mediaHeard([afterEpochMs - 20, afterEpochMs]), true)?.resumed, false, 'media after the DELETE is not a return');
  assert.ok(runtime.unavailable.has(workers[1]!), 'no new calls go there');
  assert.equal(workers[1]!.ng, ng, 'ng not re-aimed');
  await ng.close();
  api.close();
});

/** kill-worker=2 with `verb` on pods forbidden: the fault's last status line and record, and what it left. */
async function refusedKill(verb: 'get' | 'delete'): Promise<{ line: string; record: FaultRecord; api: KubernetesApi }> {
  emulator.reset();
  emulator.addStatefulSet({ name: STS, replicas: 2, labels: LABELS, startup: 'ready' });
  emulator.forbid(verb, 'pods');
  const ng = await NgClient.open({ host: podIP(1, 1), port: 9 });
  const workers = [meshWorker(0, ng), meshWorker(1, ng)];
  const { runtime, api, ended } = killSecond(workers, 9);
  emulator.resetRecord();
  runtime.start(epochNow());
  const line = await ended;
  const [record] = (await runtime.finish()) as [FaultRecord];
  runtime.close();
  await ng.close();
  assert.equal(record.done, false);
  assert.match(record.note, /The Role must have the rule \{apiGroups: \[""\], resources: \["pods"\], verbs: \["get", "delete"\]\}, needed by --fault kill-worker=N@TIME with --mesh kubernetes/);
  assert.match(record.note, /kubectl apply -n default -f kubernetes\/rbac\.yaml.*Or run without --fault kill-worker\.$/);
  assert.deepEqual(emulator.podNames(STS), [`${STS}-0`, POD], 'nothing deleted');
  assert.ok(!runtime.unavailable.has(workers[1]!), 'the worker still takes calls');
  return { line, record, api };
}

test('a Role without get on pods: the kill is refused before anything is deleted, and the 403 names the rule', async () => {
  const { line, api } = await refusedKill('get');
  assert.match(line, /: failed: Kubernetes API \(http:\/\/127\.0\.0\.1:\d+\): get pods default\/l7mp-worker-1: forbidden/);
  assert.deepEqual(emulator.requests.map((r) => `${r.verb} ${r.resource} ${r.status}`), ['get pods 403']);
  api.close();
});

test('a Role without delete on pods: the worker takes calls again, and the 403 names the rule and the way around it', async () => {
  const { record, api } = await refusedKill('delete');
  assert.match(record.note, /failed: .*delete pods default\/l7mp-worker-1: forbidden/);
  assert.deepEqual(emulator.requests.map((r) => `${r.verb} ${r.resource} ${r.status}`), ['get pods 200', 'delete pods 403']);
  // Reading or deleting a pod that is not there is no error.
  emulator.reset();
  assert.equal(await api.deletePod('default', 'l7mp-worker-9'), 'gone');
  assert.equal(await api.readPod('default', 'l7mp-worker-9'), null);
  api.close();
});
