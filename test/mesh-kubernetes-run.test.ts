/**
 * `--mesh kubernetes` through the CLI, as far as it can run here: the Kubernetes API is the emulator (no API server can
 * run on these machines), the worker "pod" is a real rtpengine whose ng listens on <pod IP>:22222 like a worker
 * sidecar's, and --mesh-media-address points media at it. So discovery, per-call provisioning of the l7mp.io
 * objects, release and the run's final cleanup are rtp-bench's real code paths, and the media is real; only the
 * l7mp operator and proxies that would carry it in a cluster are missing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { K8sEmulator } from './helpers/k8s-emulator.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/emulated-cluster.js';
import { startCli, tempResults, jsonSummary, readResults, waitFor, why, type CliRun } from './helpers/run-cli.js';
import { LABEL_RUN } from '../src/mesh/model.js';

let cluster: EmulatedCluster;
let emulator: K8sEmulator;
let kubeconfig: string;
let POD_IP: string;

before(async () => {
  cluster = await startEmulatedCluster();
  ({ emulator, kubeconfig, podIP: POD_IP } = cluster);
  emulator.addPod({ name: 'rtpengine-worker-0', labels: { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': 'rtpengine-worker-0' }, podIP: POD_IP });
  emulator.addPod({ name: 'l7mp-ingress-0', labels: { app: 'l7mp-ingress' }, podIP: POD_IP });
});

after(async () => {
  await cluster?.close();
});

function meshArgs(calls: number, hold: string, output: string): string[] {
  return ['--mesh', 'kubernetes', '--kubeconfig', kubeconfig, '--context', 'emulator', '--calls', String(calls), '--ramp', '20/s', '--hold', hold, '--local-ip', '127.0.0.1', '--mesh-media-address', POD_IP, '--output', output];
}

test('--mesh kubernetes: every call gets its 12 valid l7mp.io objects in order, and none is left after the run', async () => {
  const out = tempResults();
  try {
    emulator.resetRecord();
    const r = await startCli([...meshArgs(5, '2s', out.file), '--json', '--progress', 'off']).done;
    assert.equal(r.code, 0, why(r));
    const s = jsonSummary(r.stdout);
    assert.equal(s.calls.ok, 5, JSON.stringify(s.calls.failedByCause));
    assert.equal(s.packets.lost, 0);
    assert.equal(s.mesh?.objectsPerCall, 12, 'classic objects with kubernetes');
    // Readiness cannot be seen through the API; the time until media flowed both ways stands in for it.
    assert.equal(s.mesh?.readyMs, null);
    assert.equal(s.mesh?.firstMediaMs?.count, 5, 'provisioning until media both ways, for every call');
    assert.ok(s.mesh!.firstMediaMs!.min >= s.mesh!.acceptedMs!.min, 'media cannot flow both ways before the objects are accepted');
    const results = readResults(out.file);
    const creates = emulator.requests.filter((q) => q.verb === 'create');
    assert.equal(creates.length, 5 * 12, 'every object created once (the emulator validates each against the CRDs)');
    // Per call: Rules, then Targets, then VirtualServices.
    for (const call of results.calls) {
      const kinds = creates.filter((q) => (q.objectName ?? '').includes(call.callId)).map((q) => q.resource);
      assert.equal(kinds.length, 12, `${call.callId}: its objects`);
      const order = ['rules', 'targets', 'virtualservices'];
      assert.deepEqual([...kinds].sort((x, y) => order.indexOf(x) - order.indexOf(y)), kinds, `${call.callId}: ${kinds.join(', ')}`);
    }
    assert.deepEqual(emulator.stored(undefined, `${LABEL_RUN}=${results.runId}`), [], 'nothing with the run label left');
  } finally {
    out.cleanup();
  }
});

test('--mesh kubernetes: after SIGINT mid-run nothing with the run label is left', async () => {
  const out = tempResults();
  let run: CliRun | undefined;
  try {
    run = startCli([...meshArgs(4, '60s', out.file), '--json', '--progress', 'off']);
    await waitFor('every call\'s objects in the cluster', () => emulator.stored().length >= 4 * 12, 30_000);
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    const results = readResults(out.file);
    assert.equal(results.summary.interrupted, true);
    assert.deepEqual(emulator.stored(undefined, `${LABEL_RUN}=${results.runId}`), []);
  } finally {
    run?.child.kill('SIGKILL');
    out.cleanup();
  }
});
