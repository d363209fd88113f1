/**
 * The Kubernetes provisioner against the API emulator (test/helpers/k8s-emulator.ts): objects valid against the l7mp
 * CRDs, creation order, the concurrency bound and the rate limit, retries (429 + Retry-After, 5xx, dropped and
 * timed-out requests), 409 and 4xx handling, release / releaseRun / cleanup, discovery, kubeconfig loading.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LABEL_CALL, LABEL_RUN, type MeshCall } from '../../src/mesh/model.js';
import { callObjects, L7MP_PLURALS, safeLabelValue } from '../../src/mesh/objects.js';
import { MeshError } from '../../src/mesh/provisioner.js';
import { COMPACT_REJECTED, KubernetesProvisioner, type KubernetesProvisionerOptions } from '../../src/mesh/kubernetes/provisioner.js';
import { KubernetesApiError, parseRetryAfter } from '../../src/mesh/kubernetes/failures.js';
import { loadKubeConfig } from '../../src/mesh/kubernetes/config.js';
import { cleanupRun } from '../../src/mesh/kubernetes/cleanup.js';
import { K8sEmulator, type RecordedRequest } from '../helpers/k8s-emulator.js';
import { testOptions } from './fixture.js';

const PLURAL_ORDER = ['rules', 'targets', 'virtualservices'];

/** Call `i` of run `runId`, on worker-(i % 2), with its own ports. */
function makeCall(i: number, runId = 'run-1'): MeshCall {
  const worker = `worker-${i % 2}`;
  const base = 30000 + i * 4;
  const client = 40000 + i * 4;
  return {
    runId,
    callId: `call-${i}@bench.example`,
    worker: { name: worker, address: `10.0.1.${10 + (i % 2)}`, labels: { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': worker } },
    streams: [
      { leg: 'a', tag: `a${i}`, kind: 'rtp', rtpenginePort: base, clientAddress: '10.0.0.1', clientPort: client },
      { leg: 'a', tag: `a${i}`, kind: 'rtcp', rtpenginePort: base + 1, clientAddress: '10.0.0.1', clientPort: client + 1 },
      { leg: 'b', tag: `b${i}`, kind: 'rtp', rtpenginePort: base + 2, clientAddress: '10.0.0.2', clientPort: client + 2 },
      { leg: 'b', tag: `b${i}`, kind: 'rtcp', rtpenginePort: base + 3, clientAddress: '10.0.0.2', clientPort: client + 3 },
    ],
  };
}

let emulator: K8sEmulator;

before(async () => {
  emulator = await K8sEmulator.start();
});

after(async () => {
  await emulator.close();
});

beforeEach(() => {
  // Each test starts from an empty, well-behaved API server.
  emulator.reset();
});

function provisioner(more: Partial<KubernetesProvisionerOptions> = {}): KubernetesProvisioner {
  return new KubernetesProvisioner({
    mesh: testOptions(),
    kubeConfig: emulator.kubeConfig(),
    // Fast by default; the tests of the limits set their own.
    ratePerSec: 100_000,
    backoffInitialMs: 10,
    ...more,
  });
}

function creates(requests: readonly RecordedRequest[]): RecordedRequest[] {
  return requests.filter((r) => r.verb === 'create');
}

/** For each call, creates of one kind all finished before any create of the next kind arrived. */
function assertCreationOrder(requests: readonly RecordedRequest[], callIds: string[]): void {
  for (const callId of callIds) {
    const label = callId.replace(/[^a-z0-9]+/g, '-');
    const mine = creates(requests).filter((r) => r.status === 201 && r.objectName !== null && r.objectName.includes(label));
    assert.equal(mine.length, 12, `${callId}: 12 objects created`);
    for (let k = 0; k + 1 < PLURAL_ORDER.length; k++) {
      const before = mine.filter((r) => r.resource === PLURAL_ORDER[k]);
      const next = mine.filter((r) => r.resource === PLURAL_ORDER[k + 1]);
      assert.equal(before.length, 4);
      assert.equal(next.length, 4);
      const lastDone = Math.max(...before.map((r) => r.finishedMs ?? Infinity));
      const firstNext = Math.min(...next.map((r) => r.receivedMs));
      assert.ok(lastDone <= firstNext, `${callId}: every ${PLURAL_ORDER[k]} create answered (${lastDone.toFixed(1)} ms) before the first ${PLURAL_ORDER[k + 1]} one (${firstNext.toFixed(1)} ms)`);
    }
  }
}

describe('KubernetesProvisioner', () => {
  test("a call's 12 objects are valid against the l7mp CRDs, labelled, and created Rules -> Targets -> VirtualServices", async () => {
    const p = provisioner();
    const call = makeCall(0);
    const result = await p.provision(call);
    assert.equal(result.objects, 12);
    assert.equal(result.requests, 12);
    assert.equal(result.retries, 0);
    assert.equal(result.readyMs, null);
    assert.ok(result.acceptedMs > 0);
    // The emulator validated each with src/mesh/crd.ts: any problem would have been a 422.
    assert.deepEqual(creates(emulator.requests).map((r) => r.status), Array(12).fill(201));
    const stored = emulator.stored();
    assert.equal(stored.length, 12);
    const expected = callObjects(call, testOptions());
    assert.deepEqual(
      stored.map((o) => `${String(o['kind'])}/${o.metadata.name}`).sort(),
      expected.map((o) => `${o.kind}/${o.metadata.name}`).sort(),
    );
    for (const o of stored) {
      assert.equal(o.metadata.labels?.[LABEL_RUN], 'run-1');
      assert.equal(o.metadata.labels?.[LABEL_CALL], safeLabelValue(call.callId));
      assert.equal(o.metadata.namespace, 'default');
    }
    assertCreationOrder(emulator.requests, [call.callId]);
    // Every request went to a known endpoint with the l7mp group/version.
    assert.ok(emulator.requests.every((r) => r.verb !== 'unknown' && r.path.startsWith('/apis/l7mp.io/v1/namespaces/default/')));

    const released = await p.release(call);
    assert.equal(released.objects, 12);
    assert.equal(released.requests, 12);
    assert.equal(emulator.stored().length, 0);
    const deletes = emulator.requests.filter((r) => r.verb === 'delete');
    assert.deepEqual([...new Set(deletes.map((r) => r.resource))], ['virtualservices', 'targets', 'rules'], 'deleted VirtualServices, Targets, Rules');
    await p.close();
  });

  test('20 calls at once: never more requests in flight than the bound, each call still in order, nothing left after release', async () => {
    emulator.latencyMs = 15;
    const p = provisioner({ concurrency: 8 });
    const calls = Array.from({ length: 20 }, (_, i) => makeCall(i));
    const results = await Promise.all(calls.map((c) => p.provision(c)));
    assert.ok(results.every((r) => r.objects === 12 && r.requests === 12));
    assert.equal(emulator.stored().length, 240);
    assert.ok(emulator.maxInFlight <= 8, `at most 8 in flight at the API server, saw ${emulator.maxInFlight}`);
    assert.ok(emulator.maxInFlight >= 6, `the bound was actually used (saw ${emulator.maxInFlight})`);
    assert.ok(p.stats().maxInFlight <= 8);
    assertCreationOrder(emulator.requests, calls.map((c) => c.callId));

    emulator.resetRecord();
    await Promise.all(calls.map((c) => p.release(c)));
    assert.ok(emulator.maxInFlight <= 8, `release: at most 8 in flight, saw ${emulator.maxInFlight}`);
    assert.equal(emulator.stored(undefined, `${LABEL_RUN}=run-1`).length, 0, 'nothing with the run label left');
    assert.equal(p.stats().notFound, 0);
    await p.close();
  });

  test('the rate limit holds over every window of request arrivals', async () => {
    const rate = 40;
    const burst = 2;
    const p = provisioner({ ratePerSec: rate, burst, concurrency: 8 });
    await Promise.all([p.provision(makeCall(0)), p.provision(makeCall(1))]);
    const t = emulator.requests.map((r) => r.receivedMs).sort((a, b) => a - b);
    assert.equal(t.length, 24);
    // In any window [t_i, t_j] at most burst + rate * (t_j - t_i) requests may start; 1 request of slack for timers.
    for (let i = 0; i < t.length; i++) {
      for (let j = i + 1; j < t.length; j++) {
        const allowed = burst + (rate * (t[j]! - t[i]!)) / 1000 + 1;
        assert.ok(j - i + 1 <= allowed, `${j - i + 1} requests within ${(t[j]! - t[i]!).toFixed(1)} ms (at most ${allowed.toFixed(1)} allowed)`);
      }
    }
    const span = t[t.length - 1]! - t[0]!;
    assert.ok(span >= ((t.length - burst - 1) / rate) * 1000 - 25, `24 requests at ${rate}/s took ${span.toFixed(0)} ms`);
    assert.ok(p.stats().throttledMs > 0);
    await p.close();
  });

  test('429 with Retry-After in seconds: the retry comes no earlier than it says', async () => {
    const p = provisioner();
    emulator.injectFaults(1, { kind: 'status', status: 429, retryAfter: '1' }, (r) => r.verb === 'create');
    const result = await p.provision(makeCall(0));
    assert.equal(result.retries, 1);
    assert.equal(result.requests, 13);
    const throttled = emulator.requests.find((r) => r.status === 429)!;
    const retry = emulator.requests.find((r) => r.seq > throttled.seq && r.objectName === throttled.objectName)!;
    const waited = retry.receivedMs - throttled.finishedMs!;
    assert.ok(waited >= 995, `retried ${waited.toFixed(0)} ms after the 429 (Retry-After: 1)`);
    assert.ok(waited < 2500, `and not much later (${waited.toFixed(0)} ms)`);
    assert.equal(emulator.stored().length, 12);
    await p.close();
  });

  test('429 with Retry-After as an HTTP date: the retry comes no earlier than that time', async () => {
    const p = provisioner();
    // Whole seconds (an HTTP date has no milliseconds), at least one second ahead.
    const at = Math.ceil((Date.now() + 1000) / 1000) * 1000;
    emulator.injectFaults(1, { kind: 'status', status: 429, retryAfter: new Date(at).toUTCString() }, (r) => r.verb === 'create');
    await p.provision(makeCall(0));
    const throttled = emulator.requests.find((r) => r.status === 429)!;
    const retry = emulator.requests.find((r) => r.seq > throttled.seq && r.objectName === throttled.objectName)!;
    const retryWallClock = retry.receivedAt;
    assert.ok(retryWallClock >= at, `retried at ${new Date(retryWallClock).toISOString()}, Retry-After was ${new Date(at).toISOString()}`);
    await p.close();
  });

  test('500 and 503 are retried with backoff; a dropped connection too', async () => {
    const p = provisioner();
    emulator.injectFaults(1, { kind: 'status', status: 500 }, (r) => r.resource === 'rules');
    emulator.injectFaults(1, { kind: 'status', status: 503 }, (r) => r.resource === 'targets');
    emulator.injectFaults(1, { kind: 'drop' }, (r) => r.resource === 'virtualservices');
    const result = await p.provision(makeCall(0));
    assert.equal(result.retries, 3);
    assert.equal(result.requests, 15);
    assert.equal(emulator.stored().length, 12);
    assert.equal(emulator.requests.filter((r) => r.fault === 'drop' && r.status === null).length, 1);
    await p.close();
  });

  test('a create that timed out but went through: the retry gets 409 for the same object, which is taken as done', async () => {
    const p = provisioner({ requestTimeoutMs: 150 });
    emulator.injectFaults(1, { kind: 'stall', ms: 300 }, (r) => r.resource === 'rules');
    const result = await p.provision(makeCall(0));
    assert.equal(emulator.stored().length, 12);
    assert.equal(result.retries, 1);
    assert.equal(result.alreadyExisted, 1);
    assert.equal(result.requests, 14, '12 creates, the retry, and the get that found the object identical');
    const stalled = emulator.requests.find((r) => r.fault === 'stall')!;
    const retry = emulator.requests.find((r) => r.seq > stalled.seq && r.objectName === stalled.objectName && r.verb === 'create')!;
    assert.equal(retry.status, 409);
    await p.close();
  });

  test('409 for an identical object of this run is tolerated and counted', async () => {
    const p = provisioner();
    const call = makeCall(0);
    const [rule] = callObjects(call, testOptions());
    emulator.put(rule!);
    const result = await p.provision(call);
    assert.equal(result.alreadyExisted, 1);
    assert.equal(result.requests, 13, '12 creates and one get of the existing object');
    assert.deepEqual(emulator.requests.filter((r) => r.verb === 'get').map((r) => r.name), [rule!.metadata.name]);
    assert.equal(p.stats().alreadyExisted, 1);
    await p.close();
  });

  test('409 for a leftover of another run is an error that says how to clean up, and nothing of the call is left', async () => {
    const p = provisioner();
    const call = makeCall(0);
    const stale = callObjects({ ...call, runId: 'old-run' }, testOptions()).find((o) => o.kind === 'Target')!;
    emulator.put(stale);
    await assert.rejects(p.provision(call), (err: unknown) => {
      assert.ok(err instanceof MeshError);
      assert.equal(err.status, 409);
      assert.match(err.message, /already exists/);
      assert.match(err.message, /run old-run/);
      assert.match(err.message, /rtp-bench cleanup --namespace default --run old-run/);
      return true;
    });
    // The call's Rules (created before) were rolled back; only the stale object is there.
    assert.deepEqual(emulator.stored().map((o) => o.metadata.name), [stale.metadata.name]);
    await p.close();
  });

  test('403 gives a MeshError that names the RBAC in kubernetes/rbac.yaml, without retrying', async () => {
    const p = provisioner();
    emulator.forbid('create', 'rules');
    await assert.rejects(p.provision(makeCall(0)), (err: unknown) => {
      assert.ok(err instanceof KubernetesApiError);
      assert.equal(err.status, 403);
      assert.match(err.message, /forbidden/);
      assert.match(err.message, /kubernetes\/rbac\.yaml/);
      assert.match(err.message, /service account rtp-bench/);
      assert.match(err.message, /cannot create resource "rules"/, "the API server's own message");
      return true;
    });
    assert.equal(emulator.requests.length, 4, 'the four Rule creates, once each');
    assert.equal(emulator.stored().length, 0);
    await p.close();
  });

  test('404 for the resource says the l7mp CRDs are not installed; a missing namespace says so', async () => {
    const p = provisioner();
    emulator.crdsInstalled = false;
    await assert.rejects(p.provision(makeCall(0)), (err: unknown) => {
      assert.ok(err instanceof MeshError);
      assert.equal(err.status, 404);
      assert.match(err.message, /l7mp CRDs are not installed/);
      assert.match(err.message, /kubectl apply -f kubernetes\/crds\//);
      return true;
    });
    emulator.crdsInstalled = true;
    const elsewhere = provisioner({ mesh: testOptions({ namespace: 'nowhere' }) });
    await assert.rejects(elsewhere.provision(makeCall(0)), /namespace "nowhere" does not exist/);
    await p.close();
    await elsewhere.close();
  });

  test("422: the message carries the server's field errors and the object", async () => {
    // A label value the API server refuses (the CRD check in the emulator is src/mesh/crd.ts).
    const p = provisioner({ mesh: testOptions({ labels: { team: 'not a valid label value!' } }) });
    await assert.rejects(p.provision(makeCall(0)), (err: unknown) => {
      assert.ok(err instanceof MeshError);
      assert.equal(err.status, 422);
      assert.match(err.message, /rejected it as invalid/);
      assert.match(err.message, /field errors:\n {2}- metadata\.labels\.team: invalid label value/);
      assert.match(err.message, /"apiVersion": "l7mp.io\/v1"/, 'the object itself');
      return true;
    });
    await p.close();
  });

  test('retries give up after maxAttempts with a message about the overloaded server', async () => {
    const p = provisioner({ maxAttempts: 3 });
    emulator.injectFaults(3, { kind: 'status', status: 503, message: 'etcd is sulking' }, (r) => r.resource === 'rules' && /^worker-rtp-rule-.*-a0$/.test(r.objectName ?? ''));
    await assert.rejects(p.provision(makeCall(0)), (err: unknown) => {
      assert.ok(err instanceof KubernetesApiError);
      assert.equal(err.attempts, 3);
      assert.match(err.message, /503 ServiceUnavailable: etcd is sulking/);
      assert.match(err.message, /gave up after 3 attempts/);
      return true;
    });
    assert.equal(emulator.stored().length, 0, 'the other Rules were rolled back');
    await p.close();
  });

  test('compact objects are refused for kubernetes, with the reason', () => {
    assert.throws(
      () => new KubernetesProvisioner({ mesh: testOptions({ compact: true }), kubeConfig: emulator.kubeConfig() }),
      (err: unknown) => err instanceof MeshError && err.message === COMPACT_REJECTED && /crashes the l7mp ingress proxy/.test(err.message),
    );
  });

  test('releaseRun deletes by label, waits out finalizers, and leaves other runs alone', async () => {
    emulator.deletionDelayMs = 300;
    const p = provisioner({ removePollMs: 50 });
    await Promise.all([0, 1, 2].map((i) => p.provision(makeCall(i))));
    const other = provisioner();
    await other.provision(makeCall(7, 'run-2'));
    emulator.resetRecord();
    const t0 = performance.now();
    await p.releaseRun('run-1');
    assert.ok(performance.now() - t0 >= 250, 'waited for the objects being deleted');
    assert.equal(emulator.stored(undefined, `${LABEL_RUN}=run-1`).length, 0, 'nothing of run-1 left');
    assert.equal(emulator.stored(undefined, `${LABEL_RUN}=run-2`).length, 12, 'run-2 untouched');
    const verbs = new Set(emulator.requests.map((r) => r.verb));
    assert.deepEqual([...verbs].sort(), ['deletecollection', 'list']);
    assert.deepEqual(
      emulator.requests.filter((r) => r.verb === 'deletecollection').slice(0, 3).map((r) => r.resource),
      ['virtualservices', 'targets', 'rules'],
    );
    assert.ok(emulator.requests.every((r) => r.labelSelector === `${LABEL_RUN}=run-1`));
    await p.close();
    await other.close();
  });

  test('releaseRun reports objects a finalizer never lets go of', async () => {
    emulator.deletionDelayMs = 60_000;
    const p = provisioner({ removePollMs: 20, removeWaitMs: 200 });
    await p.provision(makeCall(0));
    await assert.rejects(p.releaseRun('run-1'), /12 l7mp object\(s\) with rtp-bench\.l7mp\.io\/run=run-1 are still there.*l7mp operator to remove its finalizer/s);
    await p.close();
  });

  test('release tolerates objects already gone (404)', async () => {
    const p = provisioner();
    const call = makeCall(0);
    await p.provision(call);
    await p.releaseRun('run-1');
    const released = await p.release(call);
    assert.equal(released.requests, 12);
    assert.equal(p.stats().notFound, 12);
    await p.close();
  });
});

describe('cleanupRun (rtp-bench cleanup)', () => {
  test("removes a crashed run's leftovers, prints what it removed, and leaves the rest", async () => {
    for (const o of callObjects(makeCall(0, 'crashed-run'), testOptions())) emulator.put(o);
    for (const o of callObjects(makeCall(1, 'crashed-run'), testOptions()).slice(0, 5)) emulator.put(o);
    for (const o of callObjects(makeCall(2, 'live-run'), testOptions())) emulator.put(o);
    emulator.put({ apiVersion: 'l7mp.io/v1', kind: 'Target', metadata: { name: 'someone-elses', labels: { app: 'x' } }, spec: {} });
    const lines: string[] = [];
    const result = await cleanupRun({ runId: 'crashed-run', kubeConfig: emulator.kubeConfig(), print: (l) => lines.push(l), removePollMs: 20 });
    assert.equal(result.namespace, 'default');
    assert.equal(result.removed.length, 17);
    assert.equal(emulator.stored(undefined, `${LABEL_RUN}=crashed-run`).length, 0);
    assert.equal(emulator.stored(undefined, `${LABEL_RUN}=live-run`).length, 12);
    assert.equal(emulator.stored('targets').filter((o) => o.metadata.name === 'someone-elses').length, 1);
    assert.match(lines[0]!, /removing 17 l7mp object\(s\) of run crashed-run from namespace default/);
    assert.ok(lines.some((l) => /^removed VirtualService default\/ingress-rtp-vsvc-call-0-bench-example-\w+-a0 \(run crashed-run\)$/.test(l)), lines.join('\n'));
    assert.match(lines[lines.length - 1]!, /removed 17 object\(s\): 4 VirtualService, 5 Target, 8 Rule; run\(s\): crashed-run/);

    // Without --run: every run's objects (but not objects without the run label).
    const all: string[] = [];
    const second = await cleanupRun({ kubeConfig: emulator.kubeConfig(), print: (l) => all.push(l) });
    assert.equal(second.selector, LABEL_RUN);
    assert.equal(second.removed.length, 12);
    assert.equal(emulator.stored().length, 1, 'only the unlabelled object is left');
    const none: string[] = [];
    await cleanupRun({ kubeConfig: emulator.kubeConfig(), print: (l) => none.push(l) });
    assert.deepEqual(none, ['cleanup: no l7mp objects of any rtp-bench run in namespace default (selector rtp-bench.l7mp.io/run)']);
  });

  test("uses the context's namespace when none is given", async () => {
    emulator.namespaces.add('bench');
    emulator.put({ ...callObjects(makeCall(0, 'r'), testOptions({ namespace: 'bench' }))[0]! });
    const result = await cleanupRun({ kubeConfig: emulator.kubeConfig({ namespace: 'bench' }), print: () => {} });
    assert.equal(result.namespace, 'bench');
    assert.equal(result.removed.length, 1);
  });
});

describe('discovery', () => {
  test('listWorkers: ready worker pods, named by their pin label, sorted; ingressAddress: the ingress pod', async () => {
    emulator.addPod({ name: 'l7mp-worker-10', labels: { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': 'l7mp-worker-10' }, podIP: '10.244.0.20' });
    emulator.addPod({ name: 'l7mp-worker-2', labels: { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': 'l7mp-worker-2' }, podIP: '10.244.0.12' });
    emulator.addPod({ name: 'l7mp-worker-3', labels: { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': 'l7mp-worker-3' }, podIP: '10.244.0.13', ready: false });
    emulator.addPod({ name: 'l7mp-worker-4', labels: { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': 'l7mp-worker-4' }, phase: 'Pending' });
    emulator.addPod({ name: 'other', labels: { app: 'other' }, podIP: '10.244.0.99' });
    emulator.addPod({ name: 'l7mp-ingress-abcde', labels: { app: 'l7mp-ingress' }, podIP: '172.18.0.2', hostIP: '172.18.0.2' });
    const p = provisioner();
    const workers = await p.listWorkers('default', { app: 'l7mp-worker' }, 'statefulset.kubernetes.io/pod-name');
    assert.deepEqual(
      workers.map((w) => [w.name, w.address]),
      [
        ['l7mp-worker-2', '10.244.0.12'],
        ['l7mp-worker-10', '10.244.0.20'],
      ],
    );
    assert.equal(workers[0]!.labels['app'], 'l7mp-worker');
    assert.equal(emulator.requests.at(-1)!.labelSelector, 'app=l7mp-worker');
    assert.equal(await p.ingressAddress('default', { app: 'l7mp-ingress' }), '172.18.0.2');
    await assert.rejects(p.ingressAddress('default', { app: 'no-such-ingress' }), /no ready l7mp ingress pod matches app=no-such-ingress.*--mesh-media-address/s);
    await assert.rejects(p.listWorkers('default', { app: 'other' }, 'statefulset.kubernetes.io/pod-name'), /have no label statefulset\.kubernetes\.io\/pod-name/);
    await assert.rejects(p.listWorkers('default', { app: 'none' }, 'x'), /no ready worker pod matches app=none/);
    emulator.forbid('list', 'pods');
    await assert.rejects(p.listWorkers('default', { app: 'l7mp-worker' }, 'x'), /forbidden.*kubernetes\/rbac\.yaml/s);
    await p.close();
  });
});

describe('kube config', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rtp-bench-kubeconfig-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('an explicit kubeconfig file and context; plain http works without skipTLSVerify (kubectl proxy)', async () => {
    const file = join(dir, 'config');
    await writeFile(file, emulator.kubeconfigYaml());
    const kc = loadKubeConfig({ kubeconfig: file, context: 'emulator' });
    assert.equal(kc.getCurrentContext(), 'emulator');
    assert.equal(kc.getCurrentCluster()?.skipTLSVerify, true);
    const p = new KubernetesProvisioner({ mesh: testOptions(), kubeconfig: file, context: 'emulator', ratePerSec: 100_000 });
    await p.provision(makeCall(0));
    assert.equal(emulator.stored().length, 12);
    assert.equal(emulator.requests[0]!.status, 201);
    await p.close();
    // A KubeConfig built in code without skipTLSVerify is fixed the same way.
    const q = new KubernetesProvisioner({ mesh: testOptions(), kubeConfig: emulator.kubeConfig({ skipTLSVerify: false }), ratePerSec: 100_000 });
    await q.release(makeCall(0));
    assert.equal(emulator.stored().length, 0);
    await q.close();
  });

  test('clear errors: missing file, unknown context', async () => {
    const file = join(dir, 'config2');
    await writeFile(file, emulator.kubeconfigYaml());
    assert.throws(() => loadKubeConfig({ kubeconfig: join(dir, 'nope') }), /--kubeconfig .*nope: no such file/);
    assert.throws(() => loadKubeConfig({ kubeconfig: file, context: 'prod' }), /--context prod: no such context in --kubeconfig .*config2; its contexts: emulator, elsewhere/);
  });

  test('an unreachable API server is retried, then reported as unreachable', async () => {
    const file = join(dir, 'config3');
    await writeFile(file, emulator.kubeconfigYaml());
    // A port nothing listens on: connection refused.
    const gone = await K8sEmulator.start();
    const kc = gone.kubeConfig();
    await gone.close();
    const p = new KubernetesProvisioner({ mesh: testOptions(), kubeConfig: kc, maxAttempts: 2, backoffInitialMs: 10 });
    await assert.rejects(p.provision(makeCall(0)), (err: unknown) => {
      assert.ok(err instanceof KubernetesApiError);
      assert.equal(err.status, null);
      assert.match(err.message, /ECONNREFUSED/);
      assert.match(err.message, /after 2 attempts/);
      assert.match(err.message, /unreachable or overloaded/);
      return true;
    });
    await p.close();
  });
});

test('parseRetryAfter: seconds or an HTTP date', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('3', now), 3000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now), 0, 'a date in the past: no wait');
  assert.equal(parseRetryAfter('soon', now), null);
  assert.equal(parseRetryAfter(undefined, now), null);
  assert.equal(L7MP_PLURALS.Rule, 'rules');
});
