/**
 * `rtp-bench scale --mesh kubernetes` through the CLI, as far as it can run here (see mesh-kubernetes-run.test.ts): the
 * Kubernetes API is the emulator, whose worker StatefulSet's pods the test moves to Ready as they appear; every worker
 * pod's address is one real rtpengine (an ng port 22222 per address, and one address clients send media to: without
 * the l7mp proxies of a cluster, media cannot be routed to several rtpengines, so two "pods" share one daemon). What is
 * real: the scaling requests, the wait, discovery of exactly the scaled workers by each search, the calls' objects,
 * the restore at the end and on SIGINT. What is not: the CPU of separate workers, so no capacity or scaling figure is
 * asserted (the tiny searches' answers also move by a call from run to run).
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { K8sEmulator, PodEvent } from './helpers/k8s-emulator.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/emulated-cluster.js';
import { startCli, tempResults, why, type CliRun } from './helpers/run-cli.js';
import type { ScalePoint } from '../src/commands/scale.js';
import type { PairCapacity } from '../src/commands/capacity.js';

const STS = 'l7mp-worker';
let cluster: EmulatedCluster;
let emulator: K8sEmulator;

before(async () => {
  cluster = await startEmulatedCluster();
  emulator = cluster.emulator;
});

after(async () => {
  await cluster?.close();
});

beforeEach(() => emulator.reset());

/** The worker StatefulSet with `replicas` ready pods; `readyOnCreate`: later pods are made Ready as they appear. */
function workers(replicas: number, readyOnCreate: boolean): void {
  emulator.addStatefulSet({ name: STS, replicas, labels: { app: 'l7mp-worker' }, podIP: () => cluster.podIP });
  for (const name of emulator.podNames(STS)) emulator.setPodState(name, { state: 'ready' });
  if (readyOnCreate) emulator.events.on('pod', (e: PodEvent) => e.change === 'created' && emulator.setPodState(e.name, { state: 'ready' }));
}

function scaleArgs(counts: string, output: string): string[] {
  return ['scale', '--mesh', 'kubernetes', '--kubeconfig', cluster.kubeconfig, '--context', 'emulator', '--workers', counts, '--local-ip', '127.0.0.1', '--mesh-media-address', cluster.podIP, '--output', output];
}

function replicasPatched(): number[] {
  return emulator.requests.filter((r) => r.verb === 'patch' && r.resource === 'statefulsets/scale').map((r) => (r.patch as { spec: { replicas: number } }).spec.replicas);
}

test('scale --workers 1,2 --mesh kubernetes: the StatefulSet is scaled to each count, each search runs on exactly those workers, and 3 replicas are restored', async (t) => {
  workers(3, true);
  const out = tempResults();
  try {
    // Tiny searches: 1 call, then 2 (--max), 3 s steps.
    const r = await startCli([...scaleArgs('2,1', out.file), '--codec-pair', 'pcmu:pcmu', '--start', '1', '--max', '2', '--step-hold', '3s', '--resolution', '1', '--ramp', '20/s', '--progress', 'on']).done;
    assert.equal(r.code, 0, why(r));
    assert.deepEqual(replicasPatched(), [1, 2, 3], 'each count in order, then the replicas found');
    assert.equal(emulator.replicasOf(STS), 3);
    for (const r2 of emulator.requests.filter((q) => q.verb === 'patch')) assert.equal(r2.contentType, 'application/merge-patch+json');
    // Each search discovered the workers after its scale: 1 pod, then 2.
    const found = [...r.stderr.matchAll(/mesh: (\d+) worker pod\(s\) in default/g)].map((m) => Number(m[1]));
    assert.deepEqual(found, [1, 2], r.stderr);
    assert.match(r.stderr, /workers: StatefulSet default\/l7mp-worker set back to 3 replica\(s\)/);
    const results = JSON.parse(readFileSync(out.file, 'utf8')) as { kind: string; scale: { points: ScalePoint[] }; searches: { workers: number; profile: PairCapacity | null }[] };
    assert.equal(results.kind, 'scale');
    t.diagnostic(results.searches.map((s) => `${s.workers} worker(s): ${s.profile?.capacity.steps.map((st) => `${st.calls}${st.pass ? '+' : `- (${st.broke.map((b) => b.term).join(', ')})`}`).join(', ')}`).join('; '));
    assert.deepEqual(results.scale.points.map((p) => p.workers), [1, 2]);
    // Every step of each search measured exactly the scaled workers (the stack's workers are the pods listWorkers found).
    for (const { workers, profile } of results.searches) {
      assert.ok(profile !== null && profile.capacity.steps.length > 0, `${workers} worker(s): a search ran`);
      for (const step of profile.capacity.steps) {
        assert.deepEqual(step.workers.map((w) => w.name.split(' ')[0]), Array.from({ length: workers }, (_, i) => `${STS}-${i}`), `${workers} worker(s), step of ${step.calls}`);
      }
    }
    assert.deepEqual(emulator.stored(), [], "every call's l7mp objects removed");
  } finally {
    out.cleanup();
  }
});

test('scale --mesh kubernetes: SIGINT while a worker is not ready yet ends the run (130) with the replicas restored', async () => {
  workers(1, false);
  const out = tempResults();
  let run: CliRun | undefined;
  try {
    const created = once(emulator.events, 'pod');
    run = startCli([...scaleArgs('2', out.file), '--progress', 'on']);
    const [event] = (await created) as [PodEvent];
    assert.equal(event.name, `${STS}-1`, 'the new worker, Pending: nothing makes it ready');
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, why(r));
    assert.deepEqual(replicasPatched(), [2, 1]);
    assert.equal(emulator.replicasOf(STS), 1);
    assert.deepEqual(emulator.podNames(STS), [`${STS}-0`]);
    assert.match(r.stderr, /set back to 1 replica\(s\)/);
  } finally {
    run?.child.kill('SIGKILL');
    out.cleanup();
  }
});
