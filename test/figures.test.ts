/**
 * Figures a user relies on, proved against truths planted here: every codec pair of {pcmu, pcma, opus} carries
 * audio; packet loss caused by the test between the generator and a real rtpengine, counted independently by the
 * kernel's firewall, is what rtp-bench reports; a results location that breaks at the end loses nothing; results go
 * where the user runs the bin; a client port taken mid-run fails that call alone, in words.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startRtpengine, freeUdpPortRange } from '../src/stack/rtpengine.js';
import { NgClient } from '../src/ng/client.js';
import { packageRoot } from '../src/paths.js';
import { jsonSummary, readResults, startCli, tempResults, waitFor, why, type CliRun } from './helpers/run-cli.js';

const QUICK = ['--ramp', '20/s', '--json', '--progress', 'off'];
const CODECS = ['pcmu', 'pcma', 'opus'] as const;

test('every codec pair of pcmu, pcma and opus: calls ok, no loss, the far tone heard in every stream', async (t) => {
  const range = await freeUdpPortRange('127.0.0.1', 200);
  const engine = await startRtpengine({ address: '127.0.0.1', portMin: range.min, portMax: range.max });
  const out = tempResults();
  const matrix: string[] = [];
  try {
    for (const a of CODECS) {
      for (const b of CODECS) {
        const pair = `${a}:${b}`;
        const r = await startCli(['--calls', '2', '--hold', '2s', '--codec-pair', pair, '--audio-check-share', '1', '--rtpengine', `127.0.0.1:${engine.ngPort}`, '--output', out.file, ...QUICK]).done;
        assert.equal(r.code, 0, `${pair}: ${why(r)}`);
        const s = jsonSummary(r.stdout);
        matrix.push(`${pair.padEnd(10)} ok ${s.calls.ok}/2  sent ${s.packets.sent}  received ${s.packets.received}  tail ${s.packets.transcodingTail}  lost ${s.packets.lost}  audio ${s.audioCheck.passed}/${s.audioCheck.checked}  latency p50 ${s.latencyMs?.p50.toFixed(2)} ms`);
        assert.deepEqual(s.calls, { attempted: 2, ok: 2, failed: 0, interrupted: 0, failedByCause: {}, firstFailure: {} }, pair);
        assert.equal(s.packets.lost, 0, pair);
        assert.equal(s.packets.wrongPayloadType, 0, `${pair}: every packet carried the payload type its SDP agreed`);
        assert.deepEqual(s.audioCheck, { checked: 4, passed: 4, failed: 0 }, pair);
        // rtpengine holds one frame only when it decodes and re-encodes through opus; G.711 to G.711 is sample by sample.
        const holdsFrame = a !== b && (a === 'opus' || b === 'opus');
        assert.equal(s.packets.transcodingTail, holdsFrame ? 4 : 0, `${pair}: transcoding tail`);
        assert.equal(s.packets.received + s.packets.transcodingTail, s.packets.sent, pair);
      }
    }
    for (const row of matrix) t.diagnostic(row);
  } finally {
    out.cleanup();
    await engine.stop();
  }
});

/** The kernel firewall of a namespace of the test's own: it drops what the test says and counts what it dropped. */
function iptables(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, 'iptables', ...args], { encoding: 'utf8' });
}

test('loss injected between the generator and rtpengine (every 25th RTP packet to rtpengine, dropped and counted by the kernel) is reported exactly', async (t) => {
  const ns = `rtpb-loss-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const out = tempResults();
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // Only RTP to the embedded rtpengine's media ports (10000-19999): PCMU packets are 200 bytes on the wire (20 IP
    // + 8 UDP + 12 RTP + 160), RTCP and ng are not; the way back (to the clients' ports) is untouched.
    iptables(ns, '-A', 'INPUT', '-i', 'lo', '-p', 'udp', '--dport', '10000:19999', '-m', 'length', '--length', '200', '-m', 'statistic', '--mode', 'nth', '--every', '25', '--packet', '0', '-j', 'DROP');
    const r = await startCli(['--calls', '10', '--hold', '3s', '--codec-pair', 'pcmu:pcmu', '--output', out.file, ...QUICK], { prefix: ['ip', 'netns', 'exec', ns] }).done;
    const counters = iptables(ns, '-L', 'INPUT', '-v', '-x', '-n');
    const dropped = Number(/^\s*(\d+)\s+\d+\s+DROP/m.exec(counters)?.[1]);
    assert.ok(dropped > 100, `the firewall dropped ${dropped}:\n${counters}`);
    const s = jsonSummary(r.stdout);
    t.diagnostic(`dropped by the kernel: ${dropped}; rtp-bench: sent ${s.packets.sent}, received ${s.packets.received}, lost ${s.packets.lost} (${s.packets.lossPct.toFixed(3)}%)`);
    assert.equal(s.packets.lost, dropped, 'lost is exactly what the firewall dropped');
    assert.equal(s.packets.missing, dropped);
    assert.equal(s.packets.sent - s.packets.received, dropped);
    assert.equal(s.packets.lossPct, (dropped * 100) / s.packets.sent);
    // rtpengine's own ingress count is the second, independent view: what it got is what we sent less the drops.
    const results = readResults(out.file);
    let ingress = 0;
    for (const call of results.calls) for (const leg of Object.values(call.rtpengine?.ingress ?? {})) ingress += leg.packets;
    assert.equal(ingress, s.packets.sent - dropped, "rtpengine's ingress counters");
    // A call with loss is still a working call: loss is a figure, not a failure (--max-loss makes it one).
    assert.equal(r.code, 0, why(r));
  } finally {
    out.cleanup();
    execFileSync('ip', ['netns', 'del', ns]);
  }
});

test('a results folder that turns read-only mid-run: the table is printed, the results go to a temporary folder, and the run says where', async () => {
  const out = tempResults();
  const folder = join(out.dir, 'ro');
  mkdirSync(folder);
  const range = await freeUdpPortRange('127.0.0.1', 100);
  const engine = await startRtpengine({ address: '127.0.0.1', portMin: range.min, portMax: range.max });
  const ng = await NgClient.open({ host: '127.0.0.1', port: engine.ngPort });
  let mounted = false;
  let run: CliRun | undefined;
  try {
    execFileSync('mount', ['--bind', folder, folder]);
    mounted = true;
    const file = join(folder, 'run.json');
    run = startCli(['--calls', '3', '--hold', '2s', '--rtpengine', `127.0.0.1:${engine.ngPort}`, '--output', file, '--progress', 'off']);
    await waitFor('3 calls up in rtpengine', async () => (await ng.list(100)).length >= 3);
    execFileSync('mount', ['-o', 'remount,bind,ro', folder]);
    const r = await run.done;
    assert.equal(r.code, 0, why(r));
    assert.match(r.stdout, /calls {4}attempted 3, ok 3, failed 0/, 'the table is printed');
    const where = new RegExp(`could not write ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} and \\S+: EROFS \\(read-only file system\\); the results were written to (\\S+rtp-bench-results-\\w+/run\\.json) instead`).exec(r.stderr);
    assert.ok(where, r.stderr);
    const fallback = where[1]!;
    const results = readResults(fallback);
    assert.equal(results.summary.calls.ok, 3);
    assert.ok(existsSync(fallback.replace(/\.json$/, '.html')), 'the charts went with it');
    assert.deepEqual(readdirSync(folder), [], 'nothing half-written in the read-only folder');
    rmSync(join(fallback, '..'), { recursive: true, force: true });
  } finally {
    run?.child.kill('SIGKILL');
    if (mounted) execFileSync('umount', [folder]);
    await ng.close();
    await engine.stop();
    out.cleanup();
  }
});

test('without --output, results go to ./results where the user runs the bin (through a symlink, as npx does), not into the package', async () => {
  const out = tempResults();
  try {
    const bin = join(out.dir, 'rtp-bench');
    symlinkSync(join(packageRoot(), 'dist', 'src', 'cli.js'), bin);
    const before = new Set(existsSync(join(packageRoot(), 'results')) ? readdirSync(join(packageRoot(), 'results')) : []);
    const r = await startCli(['calibrate', '--calls', '2', '--hold', '1s', '--json', '--progress', 'off'], { cwd: out.dir, program: bin }).done;
    assert.equal(r.code, 0, why(r));
    const runId = (JSON.parse(r.stdout) as { runId: string }).runId;
    assert.deepEqual(readdirSync(join(out.dir, 'results')).sort(), [`${runId}.html`, `${runId}.json`]);
    const after = existsSync(join(packageRoot(), 'results')) ? readdirSync(join(packageRoot(), 'results')) : [];
    assert.deepEqual(after.filter((f) => !before.has(f)), [], 'nothing written into the package');
  } finally {
    out.cleanup();
  }
});

test('a client port taken by another program mid-run: that call fails alone, saying which port and what to do; the run goes on and exits 1', async () => {
  const out = tempResults();
  const range = await freeUdpPortRange('127.0.0.1', 100);
  const engine = await startRtpengine({ address: '127.0.0.1', portMin: range.min, portMax: range.max });
  const ng = await NgClient.open({ host: '127.0.0.1', port: engine.ngPort });
  // Away from rtpengine's media range (30000-32767 by default), which it binds only as calls come.
  const clients = await freeUdpPortRange('127.0.0.1', 16, 40000, 42000);
  let squatter: Socket | null = null;
  try {
    // Four calls, one block of four ports each, handed out in order: the fourth call's leg B RTCP is the last port.
    const run = startCli(['--calls', '4', '--ramp', '2/s', '--hold', '1s', '--local-ports', `${clients.min}-${clients.min + 15}`, '--rtpengine', `127.0.0.1:${engine.ngPort}`, '--output', out.file, '--json', '--progress', 'off']);
    await waitFor('the first call up', async () => (await ng.list(100)).length >= 1);
    squatter = createSocket('udp4');
    await new Promise<void>((resolve) => squatter!.bind({ address: '127.0.0.1', port: clients.min + 15 }, resolve));
    const r = await run.done;
    assert.equal(r.code, 1, r.stderr);
    const s = jsonSummary(r.stdout);
    const failures = readResults(out.file).calls.filter((c) => c.status === 'failed').map((c) => `${c.index}: ${c.failure?.message}`);
    assert.deepEqual(s.calls, { attempted: 4, ok: 3, failed: 1, interrupted: 0, failedByCause: { 'local port in use': 1 }, firstFailure: { 'local port in use': failures[0]!.replace(/^3: /, '') } }, failures.join('; '));
    const failed = readResults(out.file).calls.find((c) => c.status === 'failed')!;
    assert.equal(failed.index, 3);
    assert.match(failed.failure!.message, new RegExp(`cannot use local port 127\\.0\\.0\\.1:${clients.min + 15}: .*EADDRINUSE.*another program \\(or another run\\) holds it; give this run other client ports with --local-ports`));
    assert.deepEqual(await ng.list(100), [], 'the failed call was deleted in rtpengine too');
  } finally {
    squatter?.close();
    await ng.close();
    await engine.stop();
    out.cleanup();
  }
});
