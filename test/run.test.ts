/**
 * The main job end to end, as a user runs it: the CLI in a child process, a real rtpengine (embedded, or started
 * here and given with --rtpengine), real sockets and real encoded audio. Loads are small (2-core machines).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { startRtpengine, freeUdpPort, freeUdpPortRange } from '../src/stack/rtpengine.js';
import { NgClient } from '../src/ng/client.js';
import { startCli, tempResults, readResults, jsonSummary, waitFor, why, type CliRun } from './helpers/run-cli.js';
import { nativeTransportError } from '../workers/native/transport.js';
import { mayUseRealtime } from './helpers/process.js';

const QUICK = ['--ramp', '20/s', '--json', '--progress', 'off'];

test('20 pcmu:pcmu calls through the embedded rtpengine: no loss, payloads byte-identical, tone heard both ways', async () => {
  const out = tempResults();
  try {
    const { done } = startCli(['--calls', '20', '--hold', '3s', '--codec-pair', 'pcmu:pcmu', '--output', out.file, ...QUICK]);
    const r = await done;
    assert.equal(r.code, 0, why(r));
    const s = jsonSummary(r.stdout);
    assert.deepEqual(s.calls, { attempted: 20, ok: 20, failed: 0, interrupted: 0, failedByCause: {}, firstFailure: {} });
    assert.ok(s.packets.sent > 20 * 2 * 150, `sent ${s.packets.sent}`);
    assert.equal(s.packets.received, s.packets.sent);
    assert.equal(s.packets.lost, 0);
    assert.equal(s.packets.payloadMismatches, 0);
    assert.equal(s.packets.transcodingTail, 0);
    assert.deepEqual(s.audioCheck, { checked: 40, passed: 40, failed: 0 });
    assert.equal(s.generator.priority, 'normal', 'the media threads do not outrank the embedded rtpengine they measure');

    const results = readResults(out.file);
    assert.equal(results.format, 3);
    assert.equal(results.calls.length, 20);
    for (const call of results.calls) {
      assert.equal(call.status, 'ok');
      assert.equal(call.streams.length, 2);
      for (const stream of call.streams) {
        assert.equal(stream.payloadMismatches, 0);
        assert.equal(stream.payloadType, 0);
      }
      // rtpengine's own ingress count of each leg equals what that leg sent.
      const sentByA = call.streams.find((x) => x.direction === 'a->b')!.sent;
      assert.equal(call.rtpengine?.ingress['caller']?.packets, sentByA);
    }
    assert.ok(results.histograms['latencyMs'], 'latency histogram written');
  } finally {
    out.cleanup();
  }
});

test('10 opus:pcmu calls: rtpengine transcodes, each leg hears the other leg\'s tone in its own codec', async () => {
  const out = tempResults();
  try {
    const { done } = startCli(['--calls', '10', '--hold', '3s', '--codec-pair', 'opus:pcmu', '--audio-check-share', '1', '--output', out.file, ...QUICK]);
    const r = await done;
    assert.equal(r.code, 0, why(r));
    const s = jsonSummary(r.stdout);
    assert.equal(s.calls.ok, 10, JSON.stringify(s.calls.failedByCause));
    assert.equal(s.packets.lost, 0);
    // Each transcoded stream ends one frame short: counted as the tail, not as loss.
    assert.equal(s.packets.transcodingTail, 20);
    assert.equal(s.packets.received, s.packets.sent - 20);
    assert.deepEqual(s.audioCheck, { checked: 20, passed: 20, failed: 0 });
    // One frame of transcoding delay: about 20-30 ms one way (docs/rtpengine-behaviour.md#one-frame-held-the-last-frame-never-sent).
    assert.ok(s.latencyMs !== null && s.latencyMs.p50 > 15 && s.latencyMs.p50 < 60, `latency p50 ${s.latencyMs?.p50}`);

    // rtpengine's own view, scraped from its /metrics during the hold: every call transcoded both ways, in userspace.
    assert.equal(s.workers.length, 1);
    const [worker] = s.workers;
    // A gauge read once a second: its last reading in the window may be of a moment a call's media was being
    // renegotiated; every call counted shows in the largest.
    const readings = readResults(out.file).timeline.map((p) => p.workers[0]?.transcoded ?? 0);
    assert.equal(Math.max(...readings), 20, "two transcoded media per call, by rtpengine's own count");
    assert.ok(worker!.streamsUserspace !== null && worker!.streamsUserspace > 0);
    assert.equal(worker!.streamsKernel, 0, 'no kernel forwarding here (--table=-1)');
    assert.ok(worker!.cpuMsPerCallSecond !== null && worker!.cpuMsPerCallSecond > 1, `rtpengine CPU per call-second ${worker!.cpuMsPerCallSecond}`);

    const results = readResults(out.file);
    // One point a second, the calls up in it, and the latency of that second.
    assert.ok(results.timeline.length >= 3, `timeline points ${results.timeline.length}`);
    assert.ok(results.timeline.some((p) => p.callsUp === 10 && p.latencyMs !== null && p.latencyMs.p50 > 15 && p.workers[0]!.cpuPct !== null));
    for (const call of results.calls) {
      const toB = call.streams.find((x) => x.direction === 'a->b')!;
      const toA = call.streams.find((x) => x.direction === 'b->a')!;
      assert.equal(toB.payloadType, 0, 'leg B receives PCMU');
      assert.equal(toA.payloadType, 111, 'leg A receives opus');
      assert.equal(toB.audio.passed, true);
      assert.equal(toA.audio.passed, true);
      assert.ok((toB.audio.ratio ?? 0) > 0.9, `a->b tone ratio ${toB.audio.ratio}`);
      assert.equal(toB.payloadMismatches, null, 'transcoded payloads are not compared byte for byte');
      assert.ok((call.rtpengine?.totals.RTP.packets ?? 0) >= toB.sent + toA.sent - 2, 'rtpengine delete stats recorded');
    }
  } finally {
    out.cleanup();
  }
});

test('a port range too small for the calls: the extra calls fail with "Ran out of ports", are counted, the run completes and exits 1', async () => {
  const out = tempResults();
  try {
    // 20 ports hold 5 calls (4 ports each).
    const { done } = startCli(['--calls', '8', '--hold', '1s', '--rtpengine-ports', '10000-10019', '--output', out.file, ...QUICK]);
    const r = await done;
    // Failed calls fail the run by default (--max-failed allows some), as SIPp does.
    assert.equal(r.code, 1, r.stderr);
    const s = jsonSummary(r.stdout);
    assert.equal(s.calls.attempted, 8);
    assert.ok(s.calls.ok >= 1 && s.calls.ok <= 5, `ok ${s.calls.ok}`);
    assert.deepEqual(s.calls.failedByCause, { 'Ran out of ports': 8 - s.calls.ok });
    const failed = readResults(out.file).calls.filter((c) => c.status === 'failed');
    for (const call of failed) {
      assert.equal(call.failure?.stage, 'offer');
      assert.match(call.failure?.message ?? '', /Ran out of ports/);
    }
  } finally {
    out.cleanup();
  }
});

test('an unreachable rtpengine is reported within seconds, with its address, and nothing is written', async () => {
  const out = tempResults();
  try {
    const port = await freeUdpPort('127.0.0.1');
    const started = Date.now();
    const { done } = startCli(['--calls', '5', '--rtpengine', `127.0.0.1:${port}`, '--output', out.file, ...QUICK]);
    const r = await done;
    assert.equal(r.code, 3);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.equal(r.stdout, '');
    assert.equal(existsSync(out.file), false);
  } finally {
    out.cleanup();
  }
});

test('SIGINT mid-run: every call is deleted in rtpengine and the partial results are written', async () => {
  const out = tempResults();
  const range = await freeUdpPortRange('127.0.0.1', 200);
  const engine = await startRtpengine({ address: '127.0.0.1', portMin: range.min, portMax: range.max });
  const ng = await NgClient.open({ host: '127.0.0.1', port: engine.ngPort });
  let run: CliRun | undefined;
  try {
    run = startCli(['--calls', '10', '--hold', '60s', '--rtpengine', `127.0.0.1:${engine.ngPort}`, '--output', out.file, ...QUICK]);
    await waitFor('10 calls up in rtpengine', async () => (await ng.list(100)).length >= 10);
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.deepEqual(await ng.list(100), [], 'no call left in rtpengine');
    const results = readResults(out.file);
    assert.equal(results.summary.interrupted, true);
    assert.equal(results.calls.length, 10);
    assert.ok(results.calls.every((c) => c.status === 'interrupted' && c.failure?.cause === 'interrupted'));
    assert.deepEqual(results.summary.calls, { attempted: 10, ok: 0, failed: 0, interrupted: 10, failedByCause: {}, firstFailure: {} }, 'interrupted calls are not failures');
    assert.ok(results.summary.packets.received > 0, 'media measured before the interrupt is kept');
  } finally {
    run?.child.kill('SIGKILL');
    await ng.close();
    await engine.stop();
    out.cleanup();
  }
});

test('SIGINT with the embedded rtpengine: the daemon rtp-bench started is gone afterwards', async () => {
  const out = tempResults();
  let run: CliRun | undefined;
  try {
    run = startCli(['--calls', '4', '--hold', '60s', '--output', out.file, ...QUICK]);
    const pid = run.child.pid!;
    const daemon = await waitFor('the embedded rtpengine to start', () => childPid(pid, 'rtpengine'));
    const ng = await NgClient.open(ngAddressOf(daemon));
    try {
      await waitFor('4 calls up in the embedded rtpengine', async () => (await ng.list(100).catch(() => [])).length >= 4);
    } finally {
      await ng.close();
    }
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.equal(existsSync(`/proc/${daemon}`), false, `rtpengine ${daemon} still running`);
    const results = readResults(out.file);
    assert.equal(results.summary.interrupted, true);
    assert.equal(results.calls.filter((c) => c.rtpengine !== null).length, 4, 'every call was deleted (its delete reply kept) before the daemon stopped');
  } finally {
    // A failed wait must not leave the run (and its ports) to disturb the next test; a no-op once it has exited.
    run?.child.kill('SIGKILL');
    out.cleanup();
  }
});

test('calibration (no rtpengine): legs send straight to each other, nothing lost, nothing altered', async () => {
  const out = tempResults();
  try {
    const { done } = startCli(['calibrate', '--calls', '10', '--hold', '2s', '--output', out.file, ...QUICK]);
    const r = await done;
    assert.equal(r.code, 0, why(r));
    const s = jsonSummary(r.stdout);
    assert.equal(s.calls.ok, 10, JSON.stringify(s.calls.failedByCause));
    assert.equal(s.packets.lost, 0);
    assert.equal(s.packets.payloadMismatches, 0);
    assert.ok(s.generator.sendLatenessMs !== null);
    // Calibrate competes with no rtpengine, so its media threads ask for real-time scheduling (as root, with the addon).
    if (nativeTransportError() === null && mayUseRealtime()) assert.equal(s.generator.priority, 'realtime');
    else assert.match(s.generator.priority ?? '', /^normal \(realtime (refused: EPERM|needs the native addon)/);
    assert.equal(readResults(out.file).environment.rtpengine.kind, 'none');
  } finally {
    out.cleanup();
  }
});

/** The child of `parent` running `name` as a daemon (with --listen-ng), not a short-lived `name --version` probe. */
function childPid(parent: number, name: string): number | null {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-P', String(parent), '-x', name], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
  for (const pid of out.split('\n').filter(Boolean).map(Number)) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--listen-ng=')) return pid;
    } catch {
      // Exited between pgrep and the read.
    }
  }
  return null;
}

/** The embedded daemon's ng address, from its command line (rtp-bench picks the address and a free port). */
function ngAddressOf(pid: number): { host: string; port: number } {
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const listen = args.find((a) => a.startsWith('--listen-ng='));
  assert.ok(listen, `no --listen-ng in ${args.join(' ')}`);
  const hostPort = listen.slice('--listen-ng='.length);
  return { host: hostPort.slice(0, hostPort.lastIndexOf(':')), port: Number(hostPort.slice(hostPort.lastIndexOf(':') + 1)) };
}
