/**
 * `--mesh local` end to end, as a user runs it: the CLI builds network namespaces, starts a real l7mp ingress and a
 * real worker (l7mp sidecar + rtpengine), runs the calls from the client namespace through them, and removes it all.
 * Needs root (CI runs as root).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCli, tempResults, readResults, jsonSummary, why, type CliRun } from './helpers/run-cli.js';
import { assertGone, runAndSampleMesh } from './helpers/local-mesh-run.js';
import { readFileSync } from 'node:fs';
import type { CapacityResults } from '../src/commands/capacity.js';

const QUICK = ['--json', '--progress', 'off'];

test('local mesh, singleton listeners: 10 pcmu:pcmu and 5 opus:pcmu calls, every stream received, no start-of-call loss, nothing left', async () => {
  for (const [calls, pair] of [['10', 'pcmu:pcmu'], ['5', 'opus:pcmu']] as const) {
    const out = tempResults();
    try {
      const { run, mesh } = await runAndSampleMesh(['--mesh', 'local', '--calls', calls, '--ramp', '10/s', '--hold', '3s', '--codec-pair', pair, '--output', out.file, '--json']);
      const r = await run.done;
      assert.equal(r.code, 0, why(r));
      assertGone(mesh);
      const s = jsonSummary(r.stdout);
      assert.equal(s.calls.ok, Number(calls), JSON.stringify(s.calls.failedByCause));
      // Pass-through loses nothing. A transcoded stream through the mesh lost one packet in one of about ten runs
      // (not reproduced since; the suspect, unproven: two proxies reordering a packet, which rtpengine's transcoder
      // then drops as late, docs/rtpengine-behaviour.md). Only the transcoding tail is excused as such, so that loss
      // shows; two packets are allowed here rather than a flaky test, and the loss is still reported.
      const allowed = pair === 'pcmu:pcmu' ? 0 : 2;
      assert.ok(s.packets.lost <= allowed, `${pair}: lost ${s.packets.lost} (late ${s.packets.late})`);
      assert.equal(s.packets.startOfCallLost, 0);
      assert.equal(s.packets.payloadMismatches, 0);
      assert.ok(s.mesh !== null, 'mesh figures reported');
      assert.equal(s.mesh.objectsPerCall, 8, 'compact objects by default');
      assert.ok(s.mesh.readyMs !== null && s.mesh.readyMs.count === Number(calls), 'readiness observed for every call');
      assert.equal(s.mesh.firstMediaMs?.count, Number(calls), 'provisioning until media both ways, for every call');
      const results = readResults(out.file);
      for (const call of results.calls) {
        const m = call.mesh!;
        assert.ok(m.firstMediaMs !== null && m.readyMs !== null && m.firstMediaMs >= m.readyMs, `${call.callId}: media both ways ${m.firstMediaMs} ms after provisioning began, ready at ${m.readyMs}`);
        for (const stream of call.streams) assert.ok(stream.received > 0, `${call.callId} ${stream.direction} received nothing`);
      }
      assert.equal(results.environment.rtpengine.kind, 'mesh');
    } finally {
      out.cleanup();
    }
  }
});

test('local mesh, server listeners with leg b starting 300 ms early: the start-of-call loss is measured', async () => {
  const out = tempResults();
  try {
    const r = await startCli(['--mesh', 'local', '--listener-mode', 'server', '--head-start', 'b=300ms', '--calls', '4', '--ramp', '10/s', '--hold', '2s', '--output', out.file, ...QUICK]).done;
    assert.equal(r.code, 0, why(r));
    const s = jsonSummary(r.stdout);
    // docs/l7mp-behaviour.md#listener-modes-and-start-of-call-loss: every packet a leg sends before the other leg's
    // first is lost; 300 ms is 15 packets of 20 ms.
    assert.ok(s.packets.startOfCallLost >= 4 * 10 && s.packets.startOfCallLost <= 4 * 20, `start-of-call loss ${s.packets.startOfCallLost}`);
    assert.equal(s.packets.lost, s.packets.startOfCallLost, 'all the loss is at the start');
    const toA = readResults(out.file).calls.map((c) => c.streams.find((x) => x.direction === 'b->a')!.startLost);
    assert.ok(toA.every((n) => n > 0), `b->a start loss per call: ${toA.join(', ')}`);
  } finally {
    out.cleanup();
  }
});

test('local mesh: SIGINT mid-run ends the calls, removes namespaces and processes, writes partial results', async () => {
  const out = tempResults();
  let run: CliRun | undefined;
  try {
    const sampled = await runAndSampleMesh(['--mesh', 'local', '--calls', '6', '--ramp', '20/s', '--hold', '60s', '--output', out.file, '--json'], 6);
    run = sampled.run;
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    const results = readResults(out.file);
    assert.equal(results.summary.interrupted, true);
    assert.ok(results.summary.packets.received > 0);
    assertGone(sampled.mesh);
  } finally {
    run?.child.kill('SIGKILL');
    out.cleanup();
  }
});

test('capacity through the local mesh: the search runs its steps through ingress and worker proxies, then removes the mesh', async () => {
  const out = tempResults();
  try {
    const { run, mesh } = await runAndSampleMesh(
      ['capacity', '--mesh', 'local', '--codec-pair', 'pcmu:pcmu', '--start', '3', '--max', '3', '--step-hold', '3s', '--ramp', '20/s', '--output', out.file],
      undefined,
      /rtp-bench capacity \S+:/,
    );
    const r = await run.done;
    // One step of three calls; a generator starved by the proxies on this machine may say so (exit 4) instead of
    // giving a figure, but the step must have been measured through the mesh either way.
    assert.ok(r.code === 0 || r.code === 4, why(r));
    assertGone(mesh);
    const results = JSON.parse(readFileSync(out.file, 'utf8')) as CapacityResults;
    const step = results.profiles[0]!.capacity.steps[0]!;
    assert.equal(step.calls, 3);
    const packets = step.packets;
    assert.ok(packets !== null, 'the step counted packets');
    // Three calls, two directions, 50 packets a second each, over the step's window of whole seconds.
    assert.ok(packets.sent >= 0.95 * 3 * 2 * 50 * packets.seconds, `packets sent in the window: ${JSON.stringify(packets)}`);
    assert.equal(packets.lostA3, 0, 'nothing lost through ingress and worker');
    // A window's edges cut packets in flight: at most one per stream at each edge.
    assert.ok(Math.abs(packets.received - packets.sent) <= 2 * 6, `received ${packets.received} of ${packets.sent}`);
    assert.equal(results.plan.mesh?.kind, 'rest', 'the search ran over the local proxies as a rest mesh');
  } finally {
    out.cleanup();
  }
});
