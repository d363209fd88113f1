/**
 * --fault kill-worker with --mesh kubernetes, against the Kubernetes API emulator: the worker pod deleted with grace
 * period 0 (the one request it adds, and its RBAC rule), recorded like the other faults, the StatefulSet making the
 * pod again when the test drives its controller, and a 403 that says which rule is missing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { K8sEmulator, type PodEvent } from '../helpers/k8s-emulator.js';
import { KubernetesApi } from '../../src/mesh/kubernetes/api.js';
import { FaultRuntime, type PodDeleted } from '../../src/faults/runtime.js';
import { epochNow } from '../../src/faults/worker-process.js';
import { parseFaults } from '../../src/faults/spec.js';
import type { Stack, Worker } from '../../src/stack/stack.js';
import type { NgClient } from '../../src/ng/client.js';

let emulator: K8sEmulator;
before(async () => {
  emulator = await K8sEmulator.start();
});
after(async () => {
  await emulator.close();
});

const LABELS = { app: 'l7mp-worker' };

function meshWorker(i: number): Worker {
  const name = `l7mp-worker-${i}`;
  // The runtime only names the worker and counts its calls: no ng is sent in this test.
  return { name: `${name} (127.1.${i}.1:22222)`, ng: null as unknown as NgClient, local: null, metricsUrl: null, cap: null, activeCalls: 3, version: null, mesh: { name, address: `127.1.${i}.1`, labels: { ...LABELS, 'statefulset.kubernetes.io/pod-name': name } }, redisDb: null };
}

test('kill-worker=2 deletes the second worker pod (grace period 0), is recorded, and the StatefulSet makes the pod again', async () => {
  emulator.reset();
  emulator.addStatefulSet({ name: 'l7mp-worker', replicas: 2, labels: LABELS, startup: 'ready' });
  const api = new KubernetesApi(emulator.kubeConfig(), { ratePerSec: 100_000 });
  const workers = [meshWorker(0), meshWorker(1)];
  const deletePod = async (worker: Worker): Promise<PodDeleted> => {
    const atEpochMs = epochNow();
    const outcome = await api.deletePod('default', worker.mesh!.name);
    return { pod: `default/${worker.mesh!.name}`, atEpochMs, answeredEpochMs: epochNow(), outcome };
  };
  const statuses: string[] = [];
  const runtime = new FaultRuntime({
    faults: parseFaults('kill-worker=2@0s', { workers: null, runMs: 10_000, site: 'mesh-kubernetes' }),
    stack: { workers, redis: null } as unknown as Stack,
    takeover: false,
    maker: null,
    path: null,
    clientPorts: { min: 20000, max: 20099 },
    runId: 'kill-test',
    status: (line) => statuses.push(line),
    deletePod,
  });
  emulator.resetRecord();
  const gone = once(emulator.events, 'pod') as Promise<[PodEvent]>;
  runtime.start(epochNow());
  const [event] = await gone;
  assert.deepEqual(event, { change: 'deleted', name: 'l7mp-worker-1', namespace: 'default' });
  const [record] = await runtime.finish();
  runtime.close();
  assert.ok(record!.done, record!.note);
  assert.match(record!.note, /^DELETE pod default\/l7mp-worker-1 \(grace period 0\) with 3 call\(s\), answered in \d+ ms; /);
  assert.ok(record!.atMs !== null && record!.atT !== null && record!.atT >= 0);
  assert.ok(runtime.unavailable.has(workers[1]!), 'no new calls go to the deleted worker');
  assert.match(statuses.join('\n'), /fault kill-worker=2@0s at/);
  const deletes = emulator.requests.filter((r) => r.verb === 'delete');
  assert.deepEqual(deletes.map((r) => [r.method, r.path, r.query['gracePeriodSeconds']]), [['DELETE', '/api/v1/namespaces/default/pods/l7mp-worker-1', '0']]);
  assert.deepEqual(emulator.podNames('l7mp-worker'), ['l7mp-worker-0']);

  // The StatefulSet's controller: the same name again, a new pod.
  const made = once(emulator.events, 'pod') as Promise<[PodEvent]>;
  emulator.reconcileStatefulSet('l7mp-worker');
  assert.deepEqual((await made)[0], { change: 'created', name: 'l7mp-worker-1', namespace: 'default' });
  assert.deepEqual(emulator.podNames('l7mp-worker'), ['l7mp-worker-0', 'l7mp-worker-1']);

  // A pod that is already gone is not an error (a retried delete), but the fault says so.
  assert.equal(await api.deletePod('default', 'l7mp-worker-9'), 'gone');
  api.close();
});

test('a Role without delete on pods: the 403 names the rule, what needs it, and the way around it', async () => {
  emulator.reset();
  emulator.addStatefulSet({ name: 'l7mp-worker', replicas: 1, labels: LABELS, startup: 'ready' });
  emulator.forbid('delete', 'pods');
  const api = new KubernetesApi(emulator.kubeConfig(), { ratePerSec: 100_000 });
  await assert.rejects(api.deletePod('default', 'l7mp-worker-0'), (err: Error) => {
    assert.match(err.message, /forbidden/);
    assert.match(err.message, /The Role must have the rule \{apiGroups: \[""\], resources: \["pods"\], verbs: \["delete"\]\}, needed by --fault kill-worker/);
    assert.match(err.message, /kubectl apply -n default -f kubernetes\/rbac\.yaml/);
    assert.match(err.message, /Or run without --fault kill-worker\.$/);
    return true;
  });
  api.close();
  assert.deepEqual(emulator.podNames('l7mp-worker'), ['l7mp-worker-0'], 'nothing deleted');
});
