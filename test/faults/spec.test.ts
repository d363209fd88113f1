import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultSpecError, parseFaults, type FaultContext } from '../../src/faults/spec.js';

const TWO: FaultContext = { workers: 2, runMs: 60_000, site: 'embedded' };
const LOCAL_MESH: FaultContext = { workers: 2, runMs: 60_000, site: 'mesh-local' };

/** Every bad input with its whole message, so a vaguer wording fails the test. */
function rejects(context: FaultContext, cases: ReadonlyArray<readonly [string, string]>): void {
  for (const [input, message] of cases) {
    assert.throws(
      () => parseFaults(input, context),
      (err: unknown) => {
        assert.ok(err instanceof FaultSpecError, `${input} threw ${String(err)}`);
        assert.equal(err.message, message, `message for ${input}`);
        return true;
      },
    );
  }
}

test('worker faults, loss and their times are read; several come sorted by time', () => {
  assert.deepEqual(parseFaults('kill-worker=1@30s', TWO), [{ kind: 'kill-worker', worker: 1, atMs: 30_000, durationMs: null, text: 'kill-worker=1@30s' }]);
  assert.deepEqual(parseFaults('restart-worker=2@1m30s', { ...TWO, runMs: 120_000 }), [
    { kind: 'restart-worker', worker: 2, atMs: 90_000, durationMs: null, text: 'restart-worker=2@1m30s' },
  ]);
  assert.deepEqual(parseFaults('pause-worker=2@3s:1s,kill-worker=1@2500ms', TWO), [
    { kind: 'kill-worker', worker: 1, atMs: 2500, durationMs: null, text: 'kill-worker=1@2500ms' },
    { kind: 'pause-worker', worker: 2, atMs: 3000, durationMs: 1000, text: 'pause-worker=2@3s:1s' },
  ]);
  assert.deepEqual(parseFaults('loss=5%@30s:10s', LOCAL_MESH), [{ kind: 'loss', percent: 5, atMs: 30_000, durationMs: 10_000, text: 'loss=5%@30s:10s' }]);
  assert.deepEqual(parseFaults('LOSS=0.5@1s:2s', LOCAL_MESH)[0], { kind: 'loss', percent: 0.5, atMs: 1000, durationMs: 2000, text: 'LOSS=0.5@1s:2s' });
  // A restart leaves the worker alive: it can be paused later.
  assert.equal(parseFaults('restart-worker=1@2s,pause-worker=1@5s:1s', TWO).length, 2);
});

test('unknown kinds and malformed items are refused with the format', () => {
  const format = 'KIND=TARGET@TIME[:DURATION], e.g. kill-worker=1@30s, pause-worker=1@30s:2s or loss=5%@30s:10s';
  rejects(TWO, [
    ['kill-wrker=1@3s', 'kill-wrker=1@3s names an unknown fault kill-wrker (did you mean kill-worker?): expected one of kill-worker, restart-worker, pause-worker, loss, kill-proxy'],
    ['explode=1@3s', 'explode=1@3s names an unknown fault explode: expected one of kill-worker, restart-worker, pause-worker, loss, kill-proxy'],
    ['kill-worker=1', `kill-worker=1 is not a fault: expected ${format}`],
    ['kill-worker@3s', `kill-worker@3s is not a fault: expected ${format}`],
    ['kill-worker=1@3s,', `kill-worker=1@3s, has an empty item: expected ${format}`],
    ['pause-worker=1@3s:1s:2s', `pause-worker=1@3s:1s:2s has more than one duration: expected ${format}`],
    ['kill-worker=1@3', 'kill-worker=1@3 has time 3, which has no unit: expected a time after the start like 30s or 1m30s'],
    ['kill-worker=1@soon', 'kill-worker=1@soon has time soon, which is not a duration: expected a time after the start like 30s or 1m30s'],
  ]);
});

test('a worker index outside --workers is refused', () => {
  rejects(TWO, [
    ['kill-worker=3@3s', 'kill-worker=3@3s names worker 3, but the run has 2 worker(s): expected a worker number from 1 to 2 (--workers 2)'],
    ['kill-worker=0@3s', 'kill-worker=0@3s names worker 0, but the run has 2 worker(s): expected a worker number from 1 to 2 (--workers 2)'],
    ['restart-worker=first@3s', 'restart-worker=first@3s names worker first, which is not a whole number: expected a worker number from 1 to 2 (--workers 2)'],
    ['pause-worker=1.5@3s:1s', 'pause-worker=1.5@3s:1s names worker 1.5, which is not a whole number: expected a worker number from 1 to 2 (--workers 2)'],
  ]);
});

test('a fault that starts or ends after the run is refused', () => {
  const expected = "after the run's end (60 s after its start: the ramp plus --hold, or churn's --duration): expected a fault inside the run: an earlier time, or a longer --hold";
  rejects(TWO, [
    ['kill-worker=1@60s', `kill-worker=1@60s starts at 60 s, ${expected}`],
    ['kill-worker=1@2m', `kill-worker=1@2m starts at 120 s, ${expected}`],
    ['pause-worker=1@59s:2s', `pause-worker=1@59s:2s ends at 61 s, ${expected}`],
  ]);
  rejects(LOCAL_MESH, [['loss=5%@55s:10s', `loss=5%@55s:10s ends at 65 s, ${expected}`]]);
});

test('pause and loss need a duration; kill and restart take none; none may be 0', () => {
  rejects(TWO, [
    ['pause-worker=1@3s', 'pause-worker=1@3s has no duration: how long the worker stays paused: expected pause-worker=1@TIME:DURATION, e.g. pause-worker=1@30s:2s'],
    ['kill-worker=1@3s:1s', 'kill-worker=1@3s:1s has a duration, but kill-worker is an instant: expected kill-worker=1@TIME, e.g. kill-worker=1@30s'],
    ['restart-worker=1@3s:1s', 'restart-worker=1@3s:1s has a duration, but restart-worker is an instant: expected restart-worker=1@TIME, e.g. restart-worker=1@30s'],
    ['pause-worker=1@3s:0', 'pause-worker=1@3s:0 lasts 0 ms: expected a duration above 0, a duration like 2s or 500ms'],
    ['pause-worker=1@3s:1', 'pause-worker=1@3s:1 has duration 1, which has no unit: expected a duration like 2s or 500ms'],
  ]);
  rejects(LOCAL_MESH, [['loss=5%@3s', 'loss=5%@3s has no duration: how long the loss lasts: expected loss=5%@TIME:DURATION, e.g. loss=5%@30s:10s']]);
});

test('a loss percentage outside (0, 100] is refused', () => {
  const expected = 'expected a share of packets above 0% and at most 100%, e.g. loss=5%@30s:10s';
  rejects(LOCAL_MESH, [
    ['loss=0%@3s:1s', `loss=0%@3s:1s has loss 0%, which is out of range: ${expected}`],
    ['loss=101%@3s:1s', `loss=101%@3s:1s has loss 101%, which is out of range: ${expected}`],
    ['loss=-5%@3s:1s', `loss=-5%@3s:1s has loss -5%, which is out of range: ${expected}`],
    ['loss=lots@3s:1s', `loss=lots@3s:1s has loss lots, which is not a percentage: ${expected}`],
  ]);
});

test('faults on what rtp-bench did not start, or cannot reach yet, are refused before the run', () => {
  rejects({ ...TWO, site: 'remote' }, [
    ['kill-worker=1@3s', "kill-worker=1@3s needs a worker rtp-bench started: --rtpengine names instances that are not rtp-bench's to kill or pause; drop --rtpengine to use embedded workers"],
  ]);
  rejects({ ...TWO, site: 'mesh-rest' }, [['pause-worker=1@3s:1s', "pause-worker=1@3s:1s needs a worker rtp-bench started, but the workers of --mesh rest are not rtp-bench's"]]);
  // --mesh kubernetes: a kill deletes the pod through the API, for any worker number (the pods are known at the run's start).
  const k8s: FaultContext = { workers: null, runMs: 60_000, site: 'mesh-kubernetes' };
  assert.equal(parseFaults('kill-worker=7@3s', k8s)[0]!.kind, 'kill-worker');
  rejects(k8s, [
    ['pause-worker=1@3s:1s', 'pause-worker=1@3s:1s is not supported with --mesh kubernetes: a worker pod can only be deleted through the API (kill-worker=N@TIME); the StatefulSet makes it again'],
    ['kill-worker=0@3s', 'kill-worker=0@3s names worker 0, but the run has 0 worker(s): expected a worker number from 1 (the worker pods in name order)'],
  ]);
  // --mesh local: worker faults on the mesh's workers (rtp-bench started them), kill-proxy on its ingress.
  assert.deepEqual(
    parseFaults('kill-worker=1@3s,restart-worker=2@4s,pause-worker=2@6s:1s,kill-proxy=ingress@8s', LOCAL_MESH).map((f) => f.kind),
    ['kill-worker', 'restart-worker', 'pause-worker', 'kill-proxy'],
  );
  rejects(TWO, [['kill-proxy=ingress@3s', 'kill-proxy=ingress@3s needs --mesh local: rtp-bench kills only an ingress proxy it started (that of its own local mesh)']]);
  rejects(LOCAL_MESH, [
    ['kill-proxy=sidecar@3s', 'kill-proxy=sidecar@3s names proxy sidecar: expected kill-proxy=ingress@TIME (the local mesh has one ingress proxy)'],
  ]);
  rejects(TWO, [
    [
      'loss=5%@3s:1s',
      "loss=5%@3s:1s needs --mesh local: rtp-bench drops packets only on a media path it owns (the firewall of its own client network namespace); on the embedded rtpengine the path is this machine's loopback, and elsewhere it is not rtp-bench's",
    ],
  ]);
  rejects({ ...TWO, site: 'direct' }, [['kill-worker=1@3s', 'kill-worker=1@3s cannot apply to calibrate: it has no rtpengine and no media path but its own sockets']]);
});

test('nothing happens to a killed worker, and one worker holds one fault at a time', () => {
  rejects(TWO, [
    ['kill-worker=1@3s,pause-worker=1@5s:1s', 'pause-worker=1@5s:1s comes after kill-worker=1@3s, which leaves worker 1 dead: expected faults on a live worker (restart-worker kills and starts it again)'],
    ['pause-worker=1@3s:2s,restart-worker=1@4s', 'restart-worker=1@4s starts while pause-worker=1@3s:2s still holds worker 1: expected one fault on a worker at a time'],
  ]);
  rejects(LOCAL_MESH, [['kill-proxy=ingress@3s,kill-proxy=ingress@8s', 'kill-proxy=ingress@8s comes while kill-proxy=ingress@3s may still be starting the ingress again: expected kill-proxy faults 10 s or more apart']]);
  assert.equal(parseFaults('kill-proxy=ingress@3s,kill-proxy=ingress@13s', LOCAL_MESH).length, 2);
});
