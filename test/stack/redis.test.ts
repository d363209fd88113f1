/**
 * Embedded workers with replicated call state (--redis), at the stack level: real redis-server, real rtpengine.
 * Each worker writes its own DB and follows the others', so a call placed on one shows on the other as foreign;
 * a worker restarted with its exact command line restores its own calls; the end of the run leaves no process and
 * no key of the run behind, and says when it had to remove keys.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { buildPlan, currentHost, type CliOptions } from '../../src/plan.js';
import { Stack, type Worker } from '../../src/stack/stack.js';
import { RedisClient, RedisUnreachableError } from '../../src/stack/redis-client.js';
import { RedisSetupError, startRedis, type LocalRedis } from '../../src/stack/redis.js';
import { scrapeRtpengine } from '../../src/stack/worker-usage.js';
import { buildAudioSdp, type SdpCodec } from '../../src/sdp.js';
import { callIdOf } from '../../src/call-id.js';
import type { RunPlan } from '../../src/run-plan.js';
import { alive, childProcesses, gone } from '../helpers/process.js';
import { removeTempDirs, tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/run-cli.js';

const servers: LocalRedis[] = [];

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await removeTempDirs();
});

/** A run id of the usual form, new for each test (call-ids and so Redis keys carry it). */
function runId(): string {
  return `20261207-000000-${randomBytes(2).toString('hex')}`;
}

async function plan(options: CliOptions): Promise<RunPlan> {
  const dir = await tempDir('rtp-bench-redis-');
  return buildPlan('run', { calls: '4', progress: 'off', output: `${dir}/run.json`, ...options }, currentHost());
}

const PCMU: SdpCodec = { payloadType: 0, encoding: 'PCMU', clockRate: 8000 };

/** Offer and answer only (no media): enough for rtpengine to write the call to its DB. */
async function placeCall(worker: Worker, callId: string, port: number): Promise<void> {
  const sdp = (p: number): string => buildAudioSdp({ sessionId: String(p), address: '127.0.0.1', port: p, rtcpPort: p + 1, codecs: [PCMU], ptimeMs: 20 });
  await worker.ng.offer({ callId, fromTag: `a-${callId}`, sdp: sdp(port), ice: 'remove', replace: ['origin', 'session connection'] });
  await worker.ng.answer({ callId, fromTag: `a-${callId}`, toTag: `b-${callId}`, sdp: sdp(port + 2), ice: 'remove' });
}

/** Own and foreign sessions by the worker's own /metrics. */
async function sessions(worker: Worker): Promise<{ own: number; foreign: number } | null> {
  const m = await scrapeRtpengine(worker.local!.metricsUrl!);
  return m === null ? null : { own: m.sessionsOwn, foreign: m.sessionsForeign };
}

async function waitSessions(worker: Worker, own: number, foreign: number): Promise<void> {
  let last: { own: number; foreign: number } | null = null;
  try {
    await waitFor(`${worker.name}: ${own} own and ${foreign} foreign sessions`, async () => {
      last = await sessions(worker);
      return last !== null && last.own === own && last.foreign === foreign;
    }, 5000, 20);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen ${JSON.stringify(last)}`);
  }
}

/** A redis-server standing in for one the user runs, and a client of it. */
async function existingRedis(databases: number): Promise<{ server: LocalRedis; client: RedisClient }> {
  const server = await startRedis({ address: '127.0.0.1', databases });
  servers.push(server);
  return { server, client: await RedisClient.connect({ host: server.address, port: server.port }) };
}

function rtpengineChildren(): number[] {
  return childProcesses(process.pid).filter((c) => c.comm === 'rtpengine').map((c) => c.pid);
}

test('--workers 2 --redis: an own Redis; each worker writes its DB and follows the other; restart(i) reuses the exact argv; stop leaves nothing', async () => {
  const id = runId();
  const stack = await Stack.start(await plan({ workers: '2', redis: '' }), () => undefined, [], id);
  const pids: number[] = [];
  try {
    const redis = stack.redis!;
    assert.equal(redis.kind, 'own');
    assert.deepEqual(redis.dbs, [1, 2]);
    const [w1, w2] = stack.workers as [Worker, Worker];
    // The run's own loopback /24: the workers' .1 and .2, Redis' .254.
    const subnet = w1.local!.address.replace(/\.\d+$/, '');
    assert.equal(redis.host, `${subnet}.254`);
    assert.ok(alive(redis.local!.pid));
    pids.push(redis.local!.pid, w1.local!.pid, w2.local!.pid);
    assert.deepEqual([w1.redisDb, w2.redisDb], [1, 2]);
    for (const [w, own, other] of [[w1, 1, 2], [w2, 2, 1]] as const) {
      assert.ok(w.local!.args.includes(`--redis=${redis.host}:${redis.port}/${own}`), w.local!.args.join(' '));
      assert.ok(w.local!.args.includes(`--subscribe-keyspace=${other}`));
      assert.ok(w.local!.args.includes('--active-switchover'));
    }

    const client = await RedisClient.connect({ host: redis.host, port: redis.port });
    try {
      const [a, b] = [callIdOf(id, 0), callIdOf(id, 1)];
      await placeCall(w1, a, 20400);
      await placeCall(w2, b, 20404);
      // rtpengine keys a call by its bare call-id, in its owner's DB.
      assert.deepEqual(await client.keys(1, '*'), [a]);
      assert.deepEqual(await client.keys(2, '*'), [b]);
      await waitSessions(w1, 1, 1);
      await waitSessions(w2, 1, 1);
      // The follower knows the foreign call well enough to answer a query for it.
      assert.deepEqual(Object.keys((await w1.ng.query(b)).tags).sort(), [`a-${b}`, `b-${b}`]);

      // A crash and a restart with the same flags: it restores its own call from DB 1, follows DB 2 again.
      const before = w1.local!;
      process.kill(before.pid, 'SIGKILL');
      assert.ok(await gone(before.pid));
      const restarted = await stack.restart(0);
      assert.equal(restarted, w1);
      assert.notEqual(w1.local!.pid, before.pid);
      assert.deepEqual(w1.local!.args, before.args);
      assert.equal(w1.local!.binary, before.binary);
      pids.push(w1.local!.pid);
      assert.ok((await w1.ng.ping()) < 1000, 'the same ng client reaches the new process');
      await waitSessions(w1, 1, 1);

      // A delete on the owner removes its key, and the follower drops its copy.
      await w2.ng.delete({ callId: b, fromTag: `a-${b}` });
      assert.deepEqual(await client.keys(2, '*'), []);
      await waitSessions(w1, 1, 0);
    } finally {
      await client.close();
    }
    // Call a is never deleted (as after a worker that died with it): the end of the run removes its key and says so.
    const warnings = await stack.stop();
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /^removed 1 key\(s\) of this run's calls from Redis 127\.\d+\.\d+\.254:\d+ \(DBs 1, 2\)/);
    for (const pid of pids) assert.ok(await gone(pid), `process ${pid} still runs`);
    assert.equal(stack.redis, null);
    assert.deepEqual(await stack.stop(), [], 'a second stop does nothing');
  } finally {
    await stack.stop();
  }
});

test('--redis HOST:PORT/DB: an existing Redis, DBs from the one given; notifications set there; only the run\'s keys removed at the end', async () => {
  const { server, client } = await existingRedis(16);
  try {
    // As a Redis someone else runs: no notifications, and data of its own in a DB the run does not use.
    await client.configSet('notify-keyspace-events', '');
    await client.select(7);
    await client.command('SET', 'someone-elses', 'x');
    const id = runId();
    const statuses: string[] = [];
    const stack = await Stack.start(await plan({ workers: '2', redis: `${server.address}:${server.port}/5` }), (l) => statuses.push(l), [], id);
    try {
      assert.equal(stack.redis!.kind, 'external');
      assert.equal(stack.redis!.local, null);
      assert.deepEqual(stack.redis!.dbs, [5, 6]);
      assert.equal(stack.redis!.keyspaceEventsBefore, '');
      assert.ok(statuses.some((l) => l.includes(`using Redis ${server.version} on 127.0.0.1:${server.port}: worker DBs 5, 6`) && l.includes('was ""')), statuses.join('\n'));
      const [w1, w2] = stack.workers as [Worker, Worker];
      await placeCall(w1, callIdOf(id, 0), 20410);
      await placeCall(w2, callIdOf(id, 1), 20414);
      await waitSessions(w1, 1, 1);
      await waitSessions(w2, 1, 1);
      assert.deepEqual(await client.keys(5, '*'), [callIdOf(id, 0)]);
      // Worker 1 dies with its call: its key stays until the end of the run.
      process.kill(w1.local!.pid, 'SIGKILL');
      await w2.ng.delete({ callId: callIdOf(id, 1), fromTag: `a-${callIdOf(id, 1)}` });
      const warnings = await stack.stop();
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /^removed 1 key\(s\) .*127\.0\.0\.1:\d+ \(DBs 5, 6\)/);
    } finally {
      await stack.stop();
    }
    assert.deepEqual(await client.keys(5, '*'), []);
    assert.deepEqual(await client.keys(6, '*'), []);
    assert.deepEqual(await client.keys(7, '*'), ['someone-elses']);
    assert.equal(await client.configGet('notify-keyspace-events'), 'g$K', 'left as set: another run may be using the server');
    assert.ok(alive(server.pid), "someone else's Redis is not stopped");
  } finally {
    await client.close();
  }
});

test('a Redis that cannot serve the run is refused before any rtpengine starts', async () => {
  const { server, client } = await existingRedis(4);
  try {
    await client.select(2);
    await client.command('SET', 'in-the-way', 'x');
    const before = rtpengineChildren();
    await assert.rejects(Stack.start(await plan({ workers: '2', redis: `${server.address}:${server.port}/1` }), () => undefined, [], runId()), (err: unknown) => err instanceof RedisSetupError && /DB 2 of Redis 127\.0\.0\.1:\d+ holds 1 key\(s\) \(e\.g\. "in-the-way"\)/.test(err.message));
    await assert.rejects(Stack.start(await plan({ workers: '2', redis: `${server.address}:${server.port}/3` }), () => undefined, [], runId()), (err: unknown) => err instanceof RedisSetupError && /has no DB 4 .*it has 4, 0-3/.test(err.message));
    await assert.rejects(Stack.start(await plan({ workers: '2', redis: '127.0.0.1:1' }), () => undefined, [], runId()), (err: unknown) => err instanceof RedisUnreachableError && /Redis at 127\.0\.0\.1:1: nothing listens there/.test(err.message));
    assert.deepEqual(rtpengineChildren(), before);
  } finally {
    await client.close();
  }
});
