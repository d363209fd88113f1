/**
 * --redis end to end, as a user runs it: the CLI in a child process, real rtpengine workers, a real redis-server
 * (the run's own, or one started here as "existing"). Small loads: a few calls for a few seconds.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startCli, tempResults, readResults, waitFor, why, type CliRun } from './helpers/run-cli.js';
import { alive, childProcesses, gone } from './helpers/process.js';
import { RedisClient } from '../src/stack/redis-client.js';
import { startRedis, type LocalRedis } from '../src/stack/redis.js';
import { isCallIdOf } from '../src/call-id.js';
import { freeUdpPorts } from './helpers/ports.js';

const QUICK = ['--ramp', '8/s', '--json', '--progress', 'off'];
const servers: LocalRedis[] = [];

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/**
 * Client ports of their own for a run of `calls` calls: other runs on a shared machine start at 20000, and one that
 * takes a port mid-run fails that call ("local port in use"), which these tests are not about.
 */
async function localPorts(calls: number): Promise<string[]> {
  const ports = await freeUdpPorts(calls * 4);
  return ['--local-ports', `${ports[0]}-${ports[ports.length - 1]}`];
}

/** The daemons a run started (its direct children), by program name. */
function daemonsOf(run: CliRun): { rtpengine: number[]; redis: number[] } {
  const children = childProcesses(run.child.pid!);
  return { rtpengine: children.filter((c) => c.comm === 'rtpengine').map((c) => c.pid), redis: children.filter((c) => c.comm === 'redis-server').map((c) => c.pid) };
}

test('--workers 2 --redis: its own Redis; each worker shows the other\'s calls as foreign while they are up; nothing left after', async () => {
  const out = tempResults();
  let run: CliRun | undefined;
  try {
    run = startCli(['--calls', '4', '--hold', '3s', '--workers', '2', '--redis', '--output', out.file, ...(await localPorts(4)), ...QUICK]);
    const started = await waitFor('two rtpengine workers and a redis-server', () => {
      const d = daemonsOf(run!);
      return d.rtpengine.length === 2 && d.redis.length === 1 ? d : null;
    });
    const r = await run.done;
    assert.equal(r.code, 0, why(r));
    for (const pid of [...started.rtpengine, ...started.redis]) assert.ok(await gone(pid), `process ${pid} of the run still runs`);

    const results = readResults(out.file);
    assert.deepEqual(results.plan.target.kind === 'embedded' && results.plan.target.redis, { kind: 'own' });
    const redis = results.environment.rtpengine.redis;
    assert.ok(redis, 'the environment records the Redis');
    assert.equal(redis.kind, 'own');
    assert.deepEqual(redis.dbs, [1, 2]);
    assert.match(redis.address, /^127\.\d+\.\d+\.254:\d+$/);
    assert.ok(redis.keyspaceEvents.includes('K') && redis.keyspaceEvents.includes('g') && redis.keyspaceEvents.includes('$'), redis.keyspaceEvents);
    assert.equal(results.summary.calls.ok, 4);
    // Two calls on each worker (fewest calls first); each follows the other's two. Gauges read once a second: the
    // largest reading counts (a follower re-reads a call, briefly dropping it, when its owner rewrites it).
    for (const k of [0, 1]) {
      const own = Math.max(...results.timeline.map((p) => p.workers[k]?.sessions ?? 0));
      const foreign = Math.max(...results.timeline.map((p) => p.workers[k]?.foreignSessions ?? 0));
      assert.deepEqual({ worker: k + 1, own, foreign }, { worker: k + 1, own: 2, foreign: 2 });
    }
    assert.ok(!r.stderr.includes('warning: removed'), 'a correct run leaves no key to remove');
  } finally {
    run?.child.kill('SIGKILL');
    out.cleanup();
  }
});

test('SIGINT with --redis HOST:PORT/DB: calls deleted, no key of the run left in its DBs, the workers gone, the Redis not', async () => {
  const server = await startRedis({ address: '127.0.0.1', databases: 16 });
  servers.push(server);
  const client = await RedisClient.connect({ host: server.address, port: server.port });
  const out = tempResults();
  let run: CliRun | undefined;
  try {
    run = startCli(['--calls', '4', '--hold', '60s', '--workers', '2', '--redis', `${server.address}:${server.port}/3`, '--output', out.file, ...(await localPorts(4)), ...QUICK]);
    await waitFor('4 calls in Redis DBs 3 and 4', async () => (await client.keys(3, '*')).length + (await client.keys(4, '*')).length === 4);
    const workers = daemonsOf(run).rtpengine;
    assert.equal(workers.length, 2);
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    for (const pid of workers) assert.ok(await gone(pid), `rtpengine ${pid} still runs`);
    const results = readResults(out.file);
    assert.equal(results.calls.filter((c) => c.rtpengine !== null).length, 4, 'every call was deleted before the workers stopped');
    for (const db of [3, 4]) {
      const left = (await client.keys(db, '*')).filter((k) => isCallIdOf(results.runId, k));
      assert.deepEqual(left, [], `DB ${db}`);
    }
    assert.deepEqual(results.environment.rtpengine.redis?.dbs, [3, 4]);
    assert.ok(alive(server.pid));
  } finally {
    run?.child.kill('SIGKILL');
    await client.close();
    out.cleanup();
  }
});

test('--redis 127.0.0.1:1 (nothing listening): a clear error before any rtpengine or call', async () => {
  const out = tempResults();
  try {
    const r = await startCli(['--calls', '2', '--hold', '1s', '--workers', '2', '--redis', '127.0.0.1:1', '--output', out.file, '--progress', 'on']).done;
    assert.equal(r.code, 3, why(r));
    assert.match(r.stderr, /rtp-bench: cannot reach Redis at 127\.0\.0\.1:1: nothing listens there \(connection refused\)/);
    assert.doesNotMatch(r.stderr, /starting rtpengine/);
    assert.equal(existsSync(out.file), false, 'no run, no results');
  } finally {
    out.cleanup();
  }
});

test('--redis with --rtpengine is refused: rtp-bench does not start those workers', async () => {
  const r = await startCli(['--calls', '2', '--redis', '--rtpengine', '127.0.0.1:2223']).done;
  assert.equal(r.code, 2, why(r));
  assert.match(r.stderr, /--redis does not apply to --rtpengine 127\.0\.0\.1:2223: rtp-bench does not start those workers/);
});
