/**
 * --fault through a real local l7mp mesh, as a user runs it: the CLI builds the mesh (ingress, two workers each with
 * rtpengine and its l7mp sidecar, and with --redis a redis-server in a namespace of its own), the benchmark child
 * asks its parent to make the faults, and each call's media is followed through them. Small loads: 8 calls held a
 * few seconds. Nothing waits on a fixed sleep: the tests wait for the run's own output and its exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempResults, readResults, jsonSummary, why } from './helpers/run-cli.js';
import { assertGone, runAndSampleMesh } from './helpers/local-mesh-run.js';
import { alive } from './helpers/process.js';
import type { Results } from '../src/report/results.js';
import type { Summary } from '../src/stats/summary.js';
import type { CallRecord } from '../src/call.js';

interface Outcome {
  code: number | null;
  stderr: string;
  summary: Summary;
  results: Results;
}

/** Runs the CLI through a local mesh of two workers, then checks that nothing of the mesh is left, restarted daemons too. */
async function runMeshWithFault(args: string[]): Promise<Outcome> {
  const out = tempResults();
  try {
    const { run, mesh } = await runAndSampleMesh(['--mesh', 'local', '--workers', '2', '--codec-pair', 'pcmu:pcmu', '--ramp', '20/s', '--output', out.file, '--json', ...args]);
    const r = await run.done;
    const results = readResults(out.file);
    assertGone(mesh);
    const restarted = results.summary.faults.flatMap((f) => [...f.note.matchAll(/as pid (\d+)/g)].map((m) => Number(m[1])));
    assert.deepEqual(restarted.filter(alive), [], 'no restarted daemon of the run left');
    return { code: r.code, stderr: why(r), summary: jsonSummary(r.stdout), results };
  } finally {
    out.cleanup();
  }
}

function hit(o: Outcome): CallRecord[] {
  return o.results.calls.filter((c) => c.failover !== null);
}

test('--mesh local --redis, kill worker 1 (its rtpengine and sidecar) at 3 s: its calls\' l7mp objects move to worker 2, where their media resumes and their delete finds them', async (t) => {
  const o = await runMeshWithFault(['--redis', '--calls', '8', '--hold', '8s', '--fault', 'kill-worker=1@3s']);
  assert.equal(o.code, 0, o.stderr);
  const [fault] = o.summary.faults;
  assert.ok(fault?.done && fault.failover !== null, JSON.stringify(fault));
  t.diagnostic(`${fault.note}; gap p99 ${o.summary.failover?.gapMs.a?.p99} / ${o.summary.failover?.gapMs.b?.p99} ms`);
  assert.match(fault.note, /^SIGKILL to rtpengine pid \d+ and its l7mp sidecar pid \d+ \(the worker's pod\) with 4 call\(s\); worker 2 \(w2 [^)]*\)\) took its calls from Redis; its calls' l7mp objects moved to w2 /);
  assert.equal(fault.failover.legs, 8, 'both legs of its 4 calls');
  const f = o.summary.failover!;
  // deleted: worker 2's ng delete found each call, the proof that it held them (it answers "not found" otherwise).
  assert.deepEqual([f.affected, f.survived, f.lost, f.deleted], [4, 4, 0, 4]);
  for (const call of hit(o)) {
    assert.equal(call.status, 'ok');
    assert.match(call.failover!.survivor ?? '', /^w2 /);
    // Media stopped at the kill (a packet every 20 ms before it) and came back only once the objects had moved: no
    // later than the move's end plus two route retries (250 ms each) of a session re-connecting to worker 2.
    for (const gap of [call.failover!.gapMs.a, call.failover!.gapMs.b]) assert.ok(gap !== null && gap > 20, `${call.callId}: gap ${gap} ms`);
    assert.ok(call.failover!.recoverMs !== null && call.failover!.recoverMs <= fault.failover.repointMs + 600, `${call.callId}: media both ways ${call.failover!.recoverMs} ms after the kill, objects moved by ${fault.failover.repointMs.toFixed(0)} ms`);
  }
  assert.deepEqual(o.summary.audioCheck, { checked: 16, passed: 16, failed: 0 }, 'the tone comes through worker 2');
  assert.match(fault.note, /after the run, 4 key\(s\) its calls left in its Redis DB 1 removed$/);
});

test('--mesh local without --redis, kill worker 2: its calls are lost, the other worker\'s carry on, the mesh is released cleanly (exit 1)', async () => {
  const o = await runMeshWithFault(['--calls', '8', '--hold', '6s', '--fault', 'kill-worker=2@3s']);
  assert.equal(o.code, 1, o.stderr);
  const f = o.summary.failover!;
  assert.deepEqual([f.affected, f.survived, f.lost, f.deleted], [4, 0, 4, 0]);
  assert.match(o.summary.faults[0]!.note, /no survivor holds its calls \(no --redis\): they are lost$/);
  assert.deepEqual(o.summary.calls.failedByCause, { 'media lost after kill-worker': 4 });
  assert.equal(o.summary.calls.ok, 4, 'worker 1\'s calls are fine: the ingress outlived the dead worker\'s sessions');
  assert.doesNotMatch(o.stderr, /could not remove every mesh object/, 'nothing was asked of the dead worker\'s proxy');
});

test('--mesh local --redis, restart worker 1 and pause worker 2 for 1 s: every call survives; the pause\'s gap is its length', async () => {
  const o = await runMeshWithFault(['--redis', '--calls', '8', '--hold', '9s', '--fault', 'restart-worker=1@3s,pause-worker=2@5s:1s']);
  assert.equal(o.code, 0, o.stderr);
  const [restart, pause] = o.summary.faults;
  assert.match(restart!.note, /^SIGKILL to rtpengine pid \d+ \(its l7mp sidecar kept running\) with 4 call\(s\); started again with the same command line as pid \d+, answering ng \d+ ms after the kill \(it restores its calls from Redis\)$/);
  assert.ok(pause!.done && pause!.durationMs !== null, JSON.stringify(pause));
  const f = o.summary.failover!;
  assert.deepEqual([f.affected, f.survived, f.lost, f.deleted], [8, 8, 0, 8]);
  for (const call of hit(o)) {
    if (!call.failover!.fault.startsWith('pause-worker')) continue;
    // Planted truth: the pause's own length; the last packet before it came up to one frame (20 ms) earlier.
    for (const gap of [call.failover!.gapMs.a, call.failover!.gapMs.b]) assert.ok(gap !== null && Math.abs(gap - pause!.durationMs!) < 60, `${call.callId}: gap ${gap} ms for a pause of ${pause!.durationMs} ms`);
  }
});

test('--mesh local, kill-proxy=ingress at 3 s: the ingress starts again empty, every call\'s objects are made on it again, media comes back after that and not before', async (t) => {
  const o = await runMeshWithFault(['--calls', '8', '--hold', '10s', '--fault', 'kill-proxy=ingress@3s']);
  assert.equal(o.code, 0, o.stderr);
  const [fault] = o.summary.faults;
  assert.ok(fault?.done && fault.durationMs !== null && fault.failover !== null, JSON.stringify(fault));
  t.diagnostic(fault.note);
  assert.match(fault.note, /^SIGKILL to l7mp ingress pid \d+; started again as pid \d+, answering REST \d+ ms after the kill; the calls' objects on it made again [\d.]+ ms after the kill, 16 leg\(s\)$/);
  const f = o.summary.failover!;
  assert.deepEqual([f.affected, f.survived, f.lost, f.deleted], [8, 8, 0, 8]);
  for (const call of hit(o)) {
    const back = call.failover!.recoverMs;
    // No media can pass before the new ingress answers; each call's comes back within a frame or two of its own
    // listeners being made, all of which were by the failover's time.
    assert.ok(back !== null && back >= fault.durationMs!, `${call.callId}: media back ${back} ms after the kill, the ingress answered after ${fault.durationMs!.toFixed(0)} ms`);
    assert.ok(back <= fault.failover.repointMs + 100, `${call.callId}: media back ${back} ms after the kill, its objects made by ${fault.failover.repointMs.toFixed(0)} ms`);
  }
});
