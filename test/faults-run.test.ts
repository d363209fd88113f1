/**
 * --fault end to end, as a user runs it: the CLI in a child process, real rtpengine workers, a real redis-server
 * (started here, so that its keys can be read after the run), worker 1 of 2 killed, restarted or paused mid-run, and
 * each call's media gap measured. Small loads: 8 calls held a few seconds. Nothing waits on a fixed sleep: the
 * tests wait for the run's own processes and its exit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startCli, tempResults, readResults, jsonSummary, waitFor, why, type CliRun } from './helpers/run-cli.js';
import { childProcesses, gone } from './helpers/process.js';
import { freeUdpPorts } from './helpers/ports.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { isCallIdOf } from '../src/call-id.js';
import type { Results } from '../src/report/results.js';
import type { Summary } from '../src/stats/summary.js';
import type { CallRecord } from '../src/call.js';

const QUICK = ['--ramp', '20/s', '--json', '--progress', 'on'];
let server: TestRedis;
before(async () => {
  server = await startTestRedis();
});
after(() => server?.stop());
/** Each test its own pair of DBs on the one server: 1-2, 3-4, ... */
let nextDb = 1;

/** Client ports of the run's own (a shared machine's other runs start at 20000). */
async function localPorts(calls: number): Promise<string[]> {
  const ports = await freeUdpPorts(calls * 4);
  return ['--local-ports', `${ports[0]}-${ports[ports.length - 1]}`];
}

/** --redis on the test's server, two fresh DBs; returns the flags and the DBs. */
function redisFlags(): { flags: string[]; dbs: number[] } {
  const db = nextDb;
  nextDb += 2;
  return { flags: ['--redis', `${server.redis.address}:${server.redis.port}/${db}`], dbs: [db, db + 1] };
}

interface Outcome {
  code: number | null;
  stderr: string;
  summary: Summary;
  results: Results;
  /** Every rtpengine PID the run had at some point (the first two, and a restarted one from the fault's note). */
  pids: number[];
}

/** Runs the CLI, noting its rtpengine workers once both are up, and waits for the end. */
async function runWithFault(args: string[]): Promise<Outcome> {
  const out = tempResults();
  let run: CliRun | undefined;
  try {
    run = startCli([...args, '--output', out.file, ...(await localPorts(8)), ...QUICK]);
    const workers = await waitFor('two rtpengine workers', () => {
      const pids = childProcesses(run!.child.pid!).filter((c) => c.comm === 'rtpengine').map((c) => c.pid);
      return pids.length === 2 ? pids : null;
    });
    const r = await run.done;
    const results = readResults(out.file);
    const restarted = results.summary.faults.flatMap((f) => [...f.note.matchAll(/as pid (\d+)/g)].map((m) => Number(m[1])));
    return { code: r.code, stderr: r.stderr, summary: jsonSummary(r.stdout), results, pids: [...workers, ...restarted] };
  } finally {
    run?.child.kill('SIGKILL');
    out.cleanup();
  }
}

/** Nothing of the run is left: no rtpengine it started, no key of its calls in its DBs, no network namespace of it. */
async function assertNothingLeft(o: Outcome, dbs: number[] = []): Promise<void> {
  for (const pid of o.pids) assert.ok(await gone(pid), `rtpengine ${pid} of the run still runs`);
  for (const db of dbs) assert.deepEqual((await server.client.keys(db, '*')).filter((k) => isCallIdOf(o.results.runId, k)), [], `keys of the run in Redis DB ${db}`);
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!namespaces.includes(o.results.runId.slice(-4)), 'no namespace of the run');
  assert.doesNotMatch(o.stderr, /warning: removed/, 'no key of a call left for the end of the run to sweep');
}

function hit(o: Outcome): CallRecord[] {
  return o.results.calls.filter((c) => c.failover !== null);
}

const ms = (v: number | null | undefined): string => (v == null ? 'null' : v.toFixed(1));
function figures(o: Outcome): string {
  const f = o.summary.failover;
  if (f === null) return 'no failover';
  return (
    `gap a->b p50/p99/max ${ms(f.gapMs.a?.p50)}/${ms(f.gapMs.a?.p99)}/${ms(f.gapMs.a?.max)}, b->a ${ms(f.gapMs.b?.p50)}/${ms(f.gapMs.b?.p99)}/${ms(f.gapMs.b?.max)} ms; ` +
    `audio lost p99 ${ms(f.lostAudioMs.a?.p99)}/${ms(f.lostAudioMs.b?.p99)} ms; survived ${f.survived}/${f.affected}`
  );
}

test('kill worker 1 of 2 with --redis at 3 s: its calls resume on the survivor, the gap well under a second, all deleted, nothing left', async (t) => {
  const { flags, dbs } = redisFlags();
  const o = await runWithFault(['--calls', '8', '--hold', '7s', '--workers', '2', ...flags, '--fault', 'kill-worker=1@3s']);
  t.diagnostic(figures(o));
  assert.equal(o.code, 0, o.stderr);
  const [fault] = o.summary.faults;
  assert.ok(fault?.done, JSON.stringify(fault));
  assert.ok(Math.abs(fault.atT! - 3) < 0.1, `made at t=${fault.atT}`);
  assert.match(fault.note, /^SIGKILL to pid \d+ with 4 call\(s\); worker 2 \(\S+\) took its calls from Redis; media re-pointed to \S+ \(same ports\) [\d.]+ ms after the kill, 8 leg\(s\); after the run, 4 key\(s\)/);
  assert.ok(fault.failover !== null && fault.failover.repointMs < 500, `re-pointed ${fault.failover?.repointMs} ms after the kill`);
  const f = o.summary.failover!;
  assert.deepEqual([f.affected, f.survived, f.lost, f.deleted], [4, 4, 0, 4]);
  for (const p of [f.gapMs.a, f.gapMs.b]) assert.ok(p !== null && p.count === 4 && p.p99 < 250, `gap ${JSON.stringify(p)}`);
  const worker2 = o.results.environment.rtpengine.workers[1]!.name;
  for (const call of hit(o)) {
    assert.equal(call.status, 'ok');
    assert.equal(call.failover!.survivor, worker2);
    // At most the frames sent during the re-point are lost: audio time, a few frames.
    assert.ok(call.failover!.lostAudioMs.a! < 100 && call.failover!.lostAudioMs.b! < 100, JSON.stringify(call.failover));
  }
  assert.equal(o.summary.calls.ok, 8);
  assert.deepEqual(o.summary.generator.drops, { sendFailed: 0, skipped: 0, receiveQueue: 0, truncated: 0 }, 'sends the dead worker refused are not the generator\'s');
  assert.deepEqual(o.results.timeline.filter((p) => p.faults !== undefined).map((p) => p.faults), [['kill-worker=1@3s']]);
  await assertNothingLeft(o, dbs);
});

test('kill worker 1 of 2 without --redis: its calls are lost, their delete fails and is recorded, the run goes on and exits 1', async (t) => {
  const o = await runWithFault(['--calls', '8', '--hold', '5s', '--workers', '2', '--fault', 'kill-worker=1@2s']);
  t.diagnostic(figures(o));
  assert.equal(o.code, 1, o.stderr);
  const f = o.summary.failover!;
  assert.deepEqual([f.affected, f.survived, f.lost, f.deleted], [4, 0, 4, 0]);
  assert.equal(f.gapMs.a, null);
  assert.match(o.summary.faults[0]!.note, /no survivor holds its calls \(no --redis\): they are lost$/);
  assert.deepEqual(o.summary.calls.failedByCause, { 'media lost after kill-worker': 4 });
  for (const call of hit(o)) {
    assert.equal(call.failover!.resumed, false);
    assert.match(call.deleteWarning ?? '', /^delete failed: /);
    assert.equal(call.rtpengine, null);
  }
  assert.equal(o.summary.calls.ok, 4, 'the other worker\'s calls are fine');
  assert.deepEqual(o.summary.generator.drops, { sendFailed: 0, skipped: 0, receiveQueue: 0, truncated: 0 }, 'refused sends to the dead worker are not the generator\'s');
  assert.equal(o.summary.generator.limited, null);
  await assertNothingLeft(o);
});

test('restart worker 1 with --redis: it restores its calls from Redis, their media comes back on its address, all survive', async (t) => {
  const { flags, dbs } = redisFlags();
  const o = await runWithFault(['--calls', '8', '--hold', '6s', '--workers', '2', ...flags, '--fault', 'restart-worker=1@3s']);
  t.diagnostic(figures(o));
  assert.equal(o.code, 0, o.stderr);
  assert.match(o.summary.faults[0]!.note, /^SIGKILL to pid \d+ with 4 call\(s\); started again with the same command line as pid \d+, answering ng \d+ ms after the kill \(it restores its calls from Redis\)$/);
  assert.equal(o.pids.length, 3, 'the restarted worker is a new process');
  const f = o.summary.failover!;
  assert.deepEqual([f.affected, f.survived, f.lost, f.deleted], [4, 4, 0, 4]);
  // The restart (about 0.1 s here) is the gap: well under a second.
  for (const p of [f.gapMs.a, f.gapMs.b]) assert.ok(p !== null && p.p99 < 1000, `gap ${JSON.stringify(p)}`);
  const worker1 = o.results.environment.rtpengine.workers[0]!.name;
  for (const call of hit(o)) assert.equal(call.failover!.survivor, worker1, 'the same worker carries them');
  await assertNothingLeft(o, dbs);
});

test('pause worker 1 for 1 s: the gap is the pause, within 60 ms, and the backlog it forwards afterwards is not lost', async (t) => {
  const o = await runWithFault(['--calls', '8', '--hold', '5s', '--workers', '2', '--fault', 'pause-worker=1@2s:1s']);
  t.diagnostic(figures(o));
  assert.equal(o.code, 0, o.stderr);
  const pause = o.summary.faults[0]!;
  // Its length is the timer's (late under load); the gaps are checked against the length it had.
  assert.ok(pause.done && pause.durationMs !== null && pause.durationMs >= 1000 && pause.durationMs < 1300, `paused ${pause.durationMs} ms`);
  const f = o.summary.failover!;
  assert.deepEqual([f.affected, f.survived, f.lost], [4, 4, 0]);
  for (const call of hit(o)) {
    for (const gap of [call.failover!.gapMs.a, call.failover!.gapMs.b]) {
      // Planted truth: the pause's own length; the last packet before it came up to one frame (20 ms) earlier.
      assert.ok(gap !== null && Math.abs(gap - pause.durationMs!) < 60, `${call.callId}: gap ${gap} ms for a pause of ${pause.durationMs} ms`);
    }
    assert.ok(call.failover!.lostAudioMs.a! < 30 && call.failover!.lostAudioMs.b! < 30, `${call.callId}: ${JSON.stringify(call.failover!.lostAudioMs)}`);
  }
  assert.equal(o.summary.packets.lost, 0, 'rtpengine forwarded what queued in its sockets while it was stopped');
  await assertNothingLeft(o);
});

test('a transcoded (opus:pcmu) failover: the survivor\'s 60 ms opus packets lose no audio, loss is not counted in packets', async (t) => {
  const { flags, dbs } = redisFlags();
  const o = await runWithFault(['--calls', '6', '--hold', '6s', '--workers', '2', '--codec-pair', 'opus:pcmu', ...flags, '--fault', 'kill-worker=1@3s']);
  t.diagnostic(figures(o));
  assert.equal(o.code, 0, o.stderr);
  const f = o.summary.failover!;
  assert.deepEqual([f.affected, f.survived], [3, 3]);
  for (const call of hit(o)) {
    for (const lost of [call.failover!.lostAudioMs.a, call.failover!.lostAudioMs.b]) assert.ok(lost !== null && lost < 100, `${call.callId}: ${lost} ms of audio lost`);
    for (const s of call.streams) assert.ok(s.lossPct < 5, `${call.callId} ${s.direction}: ${s.lossPct.toFixed(1)}% loss (${s.received} packets carrying ${s.audioMs} ms)`);
  }
  await assertNothingLeft(o, dbs);
});

test('--mesh local, loss=20% for 2 s: the clients\' firewall drops that share of the media in that window only, then nothing is left', async (t) => {
  const out = tempResults();
  try {
    const r = await startCli(['--mesh', 'local', '--calls', '4', '--ramp', '10/s', '--hold', '6s', '--fault', 'loss=20%@2s:2s', '--output', out.file, '--json', '--progress', 'off']).done;
    assert.equal(r.code, 0, why(r));
    const results = readResults(out.file);
    const loss = results.summary.faults[0]!;
    assert.ok(loss.done && loss.durationMs !== null && Math.abs(loss.durationMs - 2000) < 200, JSON.stringify(loss));
    // 4 calls, both directions, 50 packets a second each: 400 a second reach the clients, 20% of them dropped.
    const expected = 400 * (loss.durationMs! / 1000) * 0.2;
    const lost = results.summary.packets.lost;
    t.diagnostic(`lost ${lost} packets, ${expected.toFixed(0)} expected in ${loss.durationMs!.toFixed(0)} ms at 20%`);
    assert.ok(lost > expected * 0.6 && lost < expected * 1.4, `lost ${lost}, expected about ${expected.toFixed(0)}`);
    assert.equal(results.summary.generator.drops.sendFailed, 0, 'dropped on the way in: no sender was refused');
    // Only inside the window: the seconds that end before it and those that start a second after it lost nothing.
    const outside = results.timeline.filter((p) => p.t <= loss.atT! || p.t - 1 > loss.atT! + loss.durationMs! / 1000 + 0.5);
    assert.ok(outside.length >= 3 && outside.every((p) => (p.lossPct ?? 0) === 0), JSON.stringify(results.timeline.map((p) => [p.t, p.lossPct])));
    assert.deepEqual(results.timeline.filter((p) => p.faults !== undefined).map((p) => p.faults), [['loss=20%@2s:2s']]);
    const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    assert.ok(!namespaces.includes(results.runId.replace(/[^a-z0-9]/gi, '').slice(-6).toLowerCase()), 'the mesh\'s namespaces (and their firewall) are gone');
  } finally {
    out.cleanup();
  }
});

test('a fault on a worker rtp-bench did not start is refused before the run', async () => {
  const r = await startCli(['--calls', '2', '--rtpengine', '127.0.0.1:2223', '--fault', 'kill-worker=1@1s']).done;
  assert.equal(r.code, 2, why(r));
  assert.match(r.stderr, /--fault kill-worker=1@1s needs a worker rtp-bench started: --rtpengine names instances that are not rtp-bench's to kill or pause/);
});
