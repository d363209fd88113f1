/**
 * `rtp-bench scale --mesh kubernetes` below the command: scaling the worker StatefulSet through its scale subresource
 * against the API emulator (test/helpers/k8s-emulator.ts), whose pods move on only when the test says so (no sleep
 * stands in for readiness: the test waits for the emulator's events, or for a request it can see); the pure
 * judgement of the workers' state; restoring the replicas; the RBAC explanation; and the scale plan's flags.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { KubernetesApi } from '../../src/mesh/kubernetes/api.js';
import { KubernetesApiError } from '../../src/mesh/kubernetes/failures.js';
import { MeshError } from '../../src/mesh/provisioner.js';
import { assessWorkers, currentReplicas, describePod, scaleWorkers, selectorText, WorkerScaler, type ScaleWorkersOptions } from '../../src/mesh/kubernetes/workers-scale.js';
import { buildScalePlan, KUBERNETES_WORKER_CPU } from '../../src/capacity/plan.js';
import { buildPlan, PlanError, type HostFacts } from '../../src/plan.js';
import { DEFAULT_MESH_OPTIONS } from '../../src/mesh/model.js';
import type { RunPlan } from '../../src/run-plan.js';
import { K8sEmulator, type PodEvent, type RecordedRequest } from '../helpers/k8s-emulator.js';
import { waitFor } from '../helpers/run-cli.js';
import { testOptions } from './fixture.js';

const STS = 'l7mp-worker';
const LABELS = { app: 'l7mp-worker' };
const SCALE_PATH = `/apis/apps/v1/namespaces/default/statefulsets/${STS}/scale`;

let emulator: K8sEmulator;
let api: KubernetesApi;

before(async () => {
  emulator = await K8sEmulator.start();
});

after(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.reset();
  api = new KubernetesApi(emulator.kubeConfig(), { ratePerSec: 100_000, backoffInitialMs: 10 });
});

/** A StatefulSet of `replicas` pods that are ready now; later pods wait for the test (startup manual). */
function workersUp(replicas: number, termination: 'immediate' | 'manual' = 'immediate'): void {
  emulator.addStatefulSet({ name: STS, replicas, labels: LABELS, termination });
  for (const name of emulator.podNames(STS)) emulator.setPodState(name, { state: 'ready' });
}

function options(replicas: number, more: Partial<ScaleWorkersOptions> = {}): ScaleWorkersOptions {
  return { namespace: 'default', statefulSet: STS, replicas, pinLabel: DEFAULT_MESH_OPTIONS.workerPinLabel, workerSelector: LABELS, pollMs: 5, timeoutMs: 10_000, ...more };
}

function patches(): RecordedRequest[] {
  return emulator.requests.filter((r) => r.verb === 'patch');
}

/** Pods the emulator makes from now on, by name, as they appear. */
function created(): string[] {
  const names: string[] = [];
  emulator.events.on('pod', (e: PodEvent) => {
    if (e.change === 'created') names.push(e.name);
  });
  return names;
}

/** Resolves once scaleWorkers has read the pods again after this point, still waiting (a poll that saw the state). */
async function pollSeen(pending: { settled: boolean }): Promise<void> {
  const from = emulator.requests.length;
  await waitFor('a poll of the pods', () => emulator.requests.slice(from).some((r) => r.verb === 'list' && r.resource === 'pods' && r.status === 200), 5000, 2);
  assert.equal(pending.settled, false, 'still waiting');
}

function track<T>(p: Promise<T>): { promise: Promise<T>; settled: boolean } {
  const t = { promise: p, settled: false };
  p.then(
    () => (t.settled = true),
    () => (t.settled = true),
  );
  return t;
}

describe('scaleWorkers', () => {
  test('2 -> 1 -> 2 -> 4: merge patches on the scale subresource, each waits until exactly that many workers are ready and placed', async () => {
    workersUp(2, 'manual');
    assert.equal(await currentReplicas(api, 'default', STS), 2);
    const made = created();

    // Down to 1: the pod beyond must be gone, not only terminating (it still holds a node's CPU).
    const terminating = once(emulator.events, 'pod');
    const down = track(scaleWorkers(api, options(1)));
    assert.deepEqual((await terminating)[0], { change: 'terminating', name: `${STS}-1`, namespace: 'default' });
    await pollSeen(down);
    emulator.finishTermination(`${STS}-1`);
    assert.deepEqual((await down.promise).map((w) => w.name), [`${STS}-0`]);

    // Up to 2: the new pod appears Pending, runs unready, then is ready.
    const up = track(scaleWorkers(api, options(2)));
    await once(emulator.events, 'pod');
    assert.deepEqual(made, [`${STS}-1`]);
    await pollSeen(up);
    emulator.setPodState(`${STS}-1`, { state: 'running' });
    await pollSeen(up);
    emulator.setPodState(`${STS}-1`, { state: 'ready' });
    const two = await up.promise;
    assert.deepEqual(two.map((w) => [w.name, w.address]), [
      [`${STS}-0`, '127.1.0.1'],
      [`${STS}-1`, '127.1.1.1'],
    ]);

    // Up to 4: both new pods must be ready.
    const four = track(scaleWorkers(api, options(4)));
    await waitFor('two new pods', () => made.length === 3, 5000, 2);
    emulator.setPodState(`${STS}-2`, { state: 'ready' });
    await pollSeen(four);
    emulator.setPodState(`${STS}-3`, { state: 'ready' });
    assert.deepEqual((await four.promise).map((w) => w.name), [0, 1, 2, 3].map((i) => `${STS}-${i}`));

    assert.deepEqual(
      patches().map((r) => [r.path, r.contentType, r.patch]),
      [1, 2, 4].map((n) => [SCALE_PATH, 'application/merge-patch+json', { spec: { replicas: n } }]),
    );
    assert.equal(emulator.replicasOf(STS), 4);
    // Only the requests the Role grants for this (kubernetes/rbac.yaml).
    assert.deepEqual([...new Set(emulator.requests.map((r) => `${r.verb} ${r.apiGroup}/${r.resource}`))].sort(), ['get apps/statefulsets', 'get apps/statefulsets/scale', 'list /pods', 'patch apps/statefulsets/scale']);
  });

  test('a worker that never becomes ready: after the timeout, one line naming each missing worker and why, from its status', async () => {
    workersUp(1);
    emulator.events.on('pod', (e: PodEvent) => {
      if (e.change !== 'created') return;
      if (e.name.endsWith('-1')) emulator.setPodState(e.name, { state: 'ready' });
      if (e.name.endsWith('-2')) emulator.setPodState(e.name, { state: 'unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.' });
      if (e.name.endsWith('-3')) emulator.setPodState(e.name, { state: 'waiting', container: 'rtpengine', reason: 'ImagePullBackOff', message: 'Back-off pulling image "rtp-bench/rtpengine:bookworm"' });
    });
    await assert.rejects(scaleWorkers(api, options(4, { timeoutMs: 1000, pollMs: 50 })), (err: unknown) => {
      assert.ok(err instanceof MeshError);
      assert.equal(
        err.message,
        '2 of 4 workers ready after 1 s: l7mp-worker-2 Pending (Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.); ' +
          'l7mp-worker-3 Pending (rtpengine: ImagePullBackOff: Back-off pulling image "rtp-bench/rtpengine:bookworm"). ' +
          'The nodes lack room for more workers: lower their CPU requests in kubernetes/rtpengine-workers.yaml, add nodes, or give fewer --workers. ' +
          'See kubectl -n default describe pod l7mp-worker-2',
      );
      return true;
    });
  });

  test('an abort signal ends the wait at once, with no request after it', async () => {
    workersUp(1);
    const abort = new AbortController();
    const up = track(scaleWorkers(api, options(2, { signal: abort.signal })));
    await once(emulator.events, 'pod');
    await pollSeen(up);
    abort.abort();
    await assert.rejects(up.promise, { name: 'AbortError' });
    const count = emulator.requests.length;
    await assert.rejects(scaleWorkers(api, options(3, { signal: abort.signal })), { name: 'AbortError' });
    assert.equal(emulator.requests.length, count, 'an aborted signal sends nothing');
  });

  test("the run's worker selector must pick exactly the StatefulSet's pods", async () => {
    workersUp(1);
    emulator.addPod({ name: 'stray-worker', labels: { ...LABELS, 'statefulset.kubernetes.io/pod-name': 'stray-worker' }, podIP: '127.1.9.1' });
    await assert.rejects(scaleWorkers(api, options(1)), /selector app=l7mp-worker, but in namespace "default" it also selects stray-worker, which are not StatefulSet l7mp-worker's pods/);
    await assert.rejects(scaleWorkers(api, options(1, { workerSelector: { app: 'elsewhere' } })), /it does not select l7mp-worker-0 of StatefulSet l7mp-worker/);
  });

  test('403 on statefulsets/scale explains which Role rule is missing; 404 names the StatefulSet and the flag', async () => {
    workersUp(1);
    emulator.forbid('patch', 'statefulsets/scale');
    await assert.rejects(scaleWorkers(api, options(2)), (err: unknown) => {
      assert.ok(err instanceof KubernetesApiError);
      assert.equal(err.status, 403);
      assert.match(err.message, /patch statefulsets\/scale\.apps default\/l7mp-worker: forbidden/);
      assert.match(err.message, /cannot patch resource "statefulsets\/scale" in API group "apps"/, "the API server's own words");
      assert.ok(err.message.includes('The Role must have the rule {apiGroups: ["apps"], resources: ["statefulsets/scale"], verbs: ["get", "patch"]}, needed by rtp-bench scale --mesh kubernetes'), err.message);
      assert.match(err.message, /kubectl apply -n default -f kubernetes\/rbac\.yaml/);
      return true;
    });
    assert.equal(patches().length, 1, 'a 403 is not retried');
    emulator.reset();
    await assert.rejects(currentReplicas(api, 'default', 'nope'), /no StatefulSet "nope" in namespace "default".*--worker-statefulset/);
  });
});

describe('WorkerScaler (what the scale command holds)', () => {
  const mesh: Pick<RunPlan, 'mesh'> = { mesh: { kind: 'kubernetes', options: testOptions(), kubeconfig: null, context: null, concurrency: 8, ratePerSec: 100_000, mediaAddress: null } };

  async function open(lines: string[]): Promise<WorkerScaler> {
    const scaler = await WorkerScaler.open(mesh, STS, { status: (l) => lines.push(l), error: (l) => lines.push(`error: ${l}`) }, { kubeConfig: emulator.kubeConfig(), pollMs: 5 });
    assert.ok(scaler !== null, lines.join('\n'));
    return scaler;
  }

  test('scales to each count, then restores the replicas it found', async () => {
    workersUp(3);
    emulator.events.on('pod', (e: PodEvent) => e.change === 'created' && emulator.setPodState(e.name, { state: 'ready' }));
    const lines: string[] = [];
    const scaler = await open(lines);
    assert.equal(scaler.original, 3);
    for (const n of [1, 2, 4]) assert.equal(await scaler.scaleTo(n), 'ready');
    await scaler.restore();
    await scaler.restore();
    assert.deepEqual(patches().map((r) => (r.patch as { spec: { replicas: number } }).spec.replicas), [1, 2, 4, 3], 'restored once');
    assert.equal(emulator.replicasOf(STS), 3);
    assert.ok(lines.some((l) => l === `workers: StatefulSet default/${STS} set back to 3 replica(s)`), lines.join('\n'));
  });

  test('interrupted while waiting: the wait ends, no further count is scaled, and the replicas are restored', async () => {
    workersUp(2);
    const lines: string[] = [];
    const scaler = await open(lines);
    const waiting = track(scaler.scaleTo(4));
    await once(emulator.events, 'pod');
    await pollSeen(waiting);
    assert.equal(scaler.interrupt(), true, 'the first signal');
    assert.equal(await waiting.promise, 'interrupted');
    assert.equal(await scaler.scaleTo(1), 'interrupted');
    await scaler.restore();
    assert.deepEqual(patches().map((r) => (r.patch as { spec: { replicas: number } }).spec.replicas), [4, 2]);
    assert.equal(emulator.replicasOf(STS), 2);
    assert.ok(!lines.some((l) => l.startsWith('error:')), lines.join('\n'));
  });

  test('a timeout fails the count with its message, and the replicas are still restored; an unreadable StatefulSet fails open()', async () => {
    workersUp(1);
    const lines: string[] = [];
    const scaler = await WorkerScaler.open(mesh, STS, { status: () => undefined, error: (l) => lines.push(l) }, { kubeConfig: emulator.kubeConfig(), pollMs: 20, readyTimeoutMs: 200 });
    assert.equal(await scaler!.scaleTo(2), 'failed');
    assert.match(lines[0]!, /^1 of 2 workers ready after 0.2 s: l7mp-worker-1 Pending \(not placed on a node yet\)/);
    await scaler!.restore();
    assert.equal(emulator.replicasOf(STS), 1);

    emulator.forbid('get', 'statefulsets/scale');
    lines.length = 0;
    assert.equal(await WorkerScaler.open(mesh, STS, { status: () => undefined, error: (l) => lines.push(l) }, { kubeConfig: emulator.kubeConfig() }), null);
    assert.match(lines[0]!, /get statefulsets\/scale\.apps default\/l7mp-worker: forbidden .*The Role must have the rule \{apiGroups: \["apps"\], resources: \["statefulsets\/scale"\]/);
  });
});

// ---- The judgement, pure ----------------------------------------------------------------------------------------

function sts(replicas: number, more: { generation?: number; observed?: number; readyReplicas?: number; start?: number } = {}): V1StatefulSet {
  return {
    metadata: { name: STS, generation: more.generation ?? 2 },
    spec: { replicas, selector: { matchLabels: LABELS }, serviceName: STS, template: {}, ...(more.start !== undefined ? { ordinals: { start: more.start } } : {}) },
    status: { replicas, observedGeneration: more.observed ?? more.generation ?? 2, readyReplicas: more.readyReplicas ?? replicas },
  };
}

function pod(name: string, o: { ready?: boolean; node?: string | null; ip?: string | null; deleting?: boolean; phase?: string } = {}): V1Pod {
  return {
    metadata: { name, labels: { ...LABELS }, ...(o.deleting ? { deletionTimestamp: new Date() } : {}) },
    spec: { containers: [], ...(o.node === null ? {} : { nodeName: o.node ?? 'node-0' }) },
    status: { phase: o.phase ?? 'Running', ...(o.ip === null ? {} : { podIP: o.ip ?? '127.1.0.1' }), conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

test('assessWorkers: exactly N ready and placed pods, none beyond, and the StatefulSet agrees', () => {
  const names = (n: number, from = 0): V1Pod[] => Array.from({ length: n }, (_, i) => pod(`${STS}-${from + i}`));
  assert.deepEqual(assessWorkers(sts(2), names(2), 2).missing, []);
  assert.equal(assessWorkers(sts(2), names(2), 2).done, true);
  const cases: [string, V1StatefulSet, V1Pod[], number, string[]][] = [
    ['a pod not created', sts(2), names(1), 2, [`${STS}-1 not created yet`]],
    ['a pod beyond, terminating', sts(1), [pod(`${STS}-0`), pod(`${STS}-1`, { deleting: true })], 1, [`${STS}-1 still terminating (beyond 1 replicas)`]],
    ['a ready pod with no node is not placed', sts(1), [pod(`${STS}-0`, { node: null })], 1, [`${STS}-0 Running (not placed on a node yet)`]],
    ['a ready pod with no IP', sts(1), [pod(`${STS}-0`, { ip: null })], 1, [`${STS}-0 Running, no pod IP yet`]],
    ['a terminating pod of a wanted ordinal', sts(1), [pod(`${STS}-0`, { deleting: true })], 1, [`${STS}-0 terminating`]],
    ['someone else scaled it', sts(3), names(2), 2, [`StatefulSet ${STS} now wants 3 replicas, not 2: something else scales it (a HorizontalPodAutoscaler, another user?)`]],
    ['the controller has not caught up', sts(2, { generation: 3, observed: 2 }), names(2), 2, [`StatefulSet ${STS}: its controller has not caught up (observed generation 2 of 3)`]],
    ['its status lags', sts(2, { readyReplicas: 1 }), names(2), 2, [`StatefulSet ${STS} reports 1 ready replicas`]],
    ['ordinals from 5', sts(2, { start: 5 }), names(2), 2, [`${STS}-5 not created yet`, `${STS}-6 not created yet`, `${STS}-0 still there (beyond 2 replicas)`, `${STS}-1 still there (beyond 2 replicas)`]],
  ];
  for (const [what, s, pods, n, missing] of cases) {
    const a = assessWorkers(s, pods, n);
    assert.deepEqual(a.missing, missing, what);
    assert.equal(a.done, false, what);
  }
  assert.equal(assessWorkers(sts(2, { start: 5 }), names(2, 5), 2).done, true);
  assert.equal(assessWorkers(sts(1), [...names(1), pod('other-0'), pod(`${STS}-x-0`)], 1).done, true, "pods the selector matches that are not the StatefulSet's are not judged here");
});

test('describePod: the reason a pod is not usable, from its status', () => {
  assert.equal(describePod({ metadata: { name: 'w-0' }, status: { phase: 'Pending' } }), 'w-0 Pending (not placed on a node yet)');
  assert.equal(
    describePod({ metadata: { name: 'w-0' }, spec: { containers: [], nodeName: 'n' }, status: { phase: 'Running', containerStatuses: [{ name: 'l7mp', image: '', imageID: '', ready: false, restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } } }] } }),
    'w-0 Running (l7mp: CrashLoopBackOff: back-off 40s)',
  );
  assert.equal(
    describePod({ metadata: { name: 'w-0' }, spec: { containers: [], nodeName: 'n' }, status: { phase: 'Failed', containerStatuses: [{ name: 'rtpengine', image: '', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 1, reason: 'Error' } } }] } }),
    'w-0 Failed (rtpengine: exited 1, Error)',
  );
  assert.equal(
    describePod({ metadata: { name: 'w-0' }, spec: { containers: [], nodeName: 'n' }, status: { phase: 'Running', podIP: '127.1.0.1', conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [l7mp]' }] } }),
    'w-0 Running, not ready (ContainersNotReady: containers with unready status: [l7mp])',
  );
});

test('selectorText: matchLabels and matchExpressions as the API reads them', () => {
  assert.equal(selectorText({ matchLabels: { app: 'l7mp-worker' } }), 'app=l7mp-worker');
  assert.equal(
    selectorText({
      matchLabels: { app: 'w' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['a', 'b'] },
        { key: 'x', operator: 'NotIn', values: ['c'] },
        { key: 'y', operator: 'Exists' },
        { key: 'z', operator: 'DoesNotExist' },
      ],
    }),
    'app=w,tier in (a,b),x notin (c),y,!z',
  );
  assert.throws(() => selectorText({}), /empty pod selector/);
});

// ---- The plan ---------------------------------------------------------------------------------------------------

describe('scale --mesh kubernetes: the plan', () => {
  const HOST: HostFacts = { addresses: ['127.0.0.1'], parallelism: 2, isRoot: true };
  const refused = (options: Parameters<typeof buildScalePlan>[0], message: RegExp | string): void => {
    assert.throws(
      () => buildScalePlan(options, HOST),
      (err: unknown) => err instanceof PlanError && (typeof message === 'string' ? err.message === message : message.test(err.message)),
    );
  };

  test('accepted: each count is a search on the mesh, and the StatefulSet is l7mp-worker unless named', () => {
    const scale = buildScalePlan({ workers: '4,1,2', mesh: 'kubernetes', codecPair: 'opus:pcmu', namespace: 'bench' }, HOST);
    assert.deepEqual(scale.counts, [1, 2, 4]);
    assert.deepEqual(scale.kubernetes, { statefulSet: 'l7mp-worker' });
    for (const s of scale.searches) {
      assert.equal(s.plan.target.kind, 'mesh');
      assert.equal(s.plan.mesh?.kind, 'kubernetes');
      assert.equal(s.plan.mesh?.options.namespace, 'bench');
    }
    assert.deepEqual(buildScalePlan({ workers: '1,2', mesh: 'kubernetes', workerStatefulset: 'rtpengine' }, HOST).kubernetes, { statefulSet: 'rtpengine' });
    assert.equal(buildScalePlan({ workers: '1,2' }, HOST).kubernetes, null, 'embedded workers');
  });

  test('refused: --worker-cpu (the manifests set the CPU), other meshes, --rtpengine, the StatefulSet flag elsewhere', () => {
    refused({ workers: '1,2', mesh: 'kubernetes', workerCpu: '0.5' }, KUBERNETES_WORKER_CPU);
    assert.match(KUBERNETES_WORKER_CPU, /resources\.limits\.cpu of the rtpengine container in kubernetes\/rtpengine-workers\.yaml/);
    refused({ workers: '1,2', mesh: 'rest', meshConfig: 'mesh.json' }, /^--mesh rest cannot be scaled by rtp-bench: its workers are the running proxies of --mesh-config/);
    refused({ workers: '1,2', mesh: 'local' }, /^--mesh local does not work with scale yet/);
    refused({ workers: '1,2', mesh: 'kubernetes', rtpengine: '127.0.0.1:2223' }, /^scale starts its own rtpengine workers \(or scales the worker StatefulSet with --mesh kubernetes\)/);
    refused({ workers: '1,2', workerStatefulset: 'x' }, /^--worker-statefulset only applies with --mesh kubernetes/);
    refused({ workers: '1,2', mesh: 'kubernetes', workerStatefulset: 'Not_A_Name' }, /^--worker-statefulset Not_A_Name is not a StatefulSet name/);
    refused({ workers: '1,2', mesh: 'kubernetes', rtpenginePorts: '40000-40999' }, /^--rtpengine-ports does not apply to --mesh kubernetes/);
    assert.throws(() => buildPlan('run', { calls: '10', mesh: 'kubernetes', workerStatefulset: 'x' }, HOST), /^PlanError: --worker-statefulset only applies to rtp-bench scale --mesh kubernetes/);
  });
});
