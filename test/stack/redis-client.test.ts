/**
 * The RESP client: its bytes against literal vectors (pure), then every command rtp-bench sends against a real
 * redis-server started here; and the checks that decide whether a Redis can carry a run (src/stack/redis.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisClient, RedisCommandError, RedisUnreachableError, RespError, RespParser, RespProtocolError, encodeCommand, infoField, parseKeyspaceInfo, type RespValue } from '../../src/stack/redis-client.js';
import { RedisNotInstalledError, RedisSetupError, notifiesSetAndDel, prepareRedis, removeRunKeys, startRedis, withSetAndDel, type LocalRedis } from '../../src/stack/redis.js';
import { callIdOf, isCallIdOf } from '../../src/call-id.js';
import { alive, gone } from '../helpers/process.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'binary');

test('commands are RESP arrays of bulk strings, lengths in bytes', () => {
  assert.equal(encodeCommand(['PING']).toString('binary'), '*1\r\n$4\r\nPING\r\n');
  assert.equal(encodeCommand(['SET', 'k', 'v']).toString('binary'), '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n');
  assert.equal(encodeCommand(['SELECT', 12]).toString('binary'), '*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n');
  // An empty argument (CONFIG SET notify-keyspace-events "") and a multi-byte character (2 bytes in UTF-8).
  assert.equal(encodeCommand(['CONFIG', 'SET', 'x', '']).toString('binary'), '*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$1\r\nx\r\n$0\r\n\r\n');
  assert.deepEqual([...encodeCommand(['é'])], [...bytes('*1\r\n$2\r\n'), 0xc3, 0xa9, 0x0d, 0x0a]);
});

test('replies of every RESP2 type decode, also split at any byte and several to a chunk', () => {
  const vectors: [string, RespValue][] = [
    ['+OK\r\n', 'OK'],
    ['+PONG\r\n', 'PONG'],
    ['-ERR DB index is out of range\r\n', new RespError('ERR DB index is out of range')],
    [':42\r\n', 42],
    [':-3\r\n', -3],
    ['$5\r\nhello\r\n', 'hello'],
    ['$0\r\n\r\n', ''],
    ['$-1\r\n', null],
    // A bulk string may hold CRLF itself: its length, not a line end, says where it stops.
    ['$4\r\na\r\nb\r\n', 'a\r\nb'],
    ['*-1\r\n', null],
    ['*0\r\n', []],
    ['*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\ng$K\r\n', ['notify-keyspace-events', 'g$K']],
    // SCAN: the next cursor and a page of keys; an error inside an array stays a value.
    ['*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n', ['0', ['a', 'b']]],
    ['*3\r\n:1\r\n-WRONGTYPE x\r\n$-1\r\n', [1, new RespError('WRONGTYPE x'), null]],
  ];
  for (const [wire, value] of vectors) {
    assert.deepEqual(new RespParser().push(bytes(wire)), [value], JSON.stringify(wire));
    // Byte by byte: nothing until the last byte, then exactly the value.
    const parser = new RespParser();
    const got: RespValue[] = [];
    for (let i = 0; i < wire.length; i++) {
      const out = parser.push(bytes(wire[i]!));
      if (i < wire.length - 1) assert.deepEqual(out, [], `${JSON.stringify(wire)} complete at byte ${i}`);
      got.push(...out);
    }
    assert.deepEqual(got, [value], JSON.stringify(wire));
  }
  // Pipelined replies in one chunk, the last one cut in two.
  const parser = new RespParser();
  assert.deepEqual(parser.push(bytes('+OK\r\n:7\r\n$3\r\nab')), ['OK', 7]);
  assert.deepEqual(parser.push(bytes('c\r\n')), ['abc']);
  assert.throws(() => new RespParser().push(bytes('!oops\r\n')), RespProtocolError);
  assert.throws(() => new RespParser().push(bytes(':12a\r\n')), RespProtocolError);
});

test('INFO fields and keyspace lines', () => {
  const info = '# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n';
  assert.equal(infoField(info, 'redis_version'), '7.0.15');
  assert.equal(infoField(info, 'nope'), null);
  const keyspace = '# Keyspace\r\ndb1:keys=3,expires=3,avg_ttl=86399000\r\ndb12:keys=1,expires=0,avg_ttl=0\r\n';
  assert.deepEqual([...parseKeyspaceInfo(keyspace)], [
    [1, { keys: 3, expires: 3 }],
    [12, { keys: 1, expires: 0 }],
  ]);
  assert.equal(parseKeyspaceInfo('# Keyspace\r\n').size, 0);
});

test('notify-keyspace-events: K, g and $ are needed (A includes g and $); what is there is kept when they are added', () => {
  const cases: [string, boolean, string][] = [
    ['', false, 'Kg$'],
    ['g$K', true, 'g$K'],
    ['A', false, 'AK'],
    ['AKE', true, 'AKE'],
    ['K$', false, 'K$g'],
    ['Ex', false, 'ExKg$'],
    ['$E', false, '$EKg'],
  ];
  for (const [flags, enough, widened] of cases) {
    assert.equal(notifiesSetAndDel(flags), enough, flags);
    assert.equal(withSetAndDel(flags), widened, flags);
    assert.ok(notifiesSetAndDel(withSetAndDel(flags)), flags);
  }
});

test("a run's call-ids, and only its own", () => {
  const run = '20261207-114019-a258';
  assert.equal(callIdOf(run, 17), '20261207-114019-a258-17');
  assert.ok(isCallIdOf(run, callIdOf(run, 0)));
  assert.ok(isCallIdOf(run, callIdOf(run, 12345)));
  for (const other of ['20261207-114019-a258', '20261207-114019-a258-', '20261207-114019-a258-x', '20261207-114019-a258-p1-3', '20261207-114019-a2589-3', 'x20261207-114019-a258-3', '20261207-114019-a258-3 ']) {
    assert.equal(isCallIdOf(run, other), false, other);
  }
});

let redis: LocalRedis;
let client: RedisClient;

before(async () => {
  redis = await startRedis({ address: '127.0.0.1', databases: 16 });
  client = await RedisClient.connect({ host: redis.address, port: redis.port });
});

after(async () => {
  await client?.close();
  await redis?.stop();
});

test('a started redis-server: loopback only, no persistence, notifications on, its own process', async () => {
  assert.match(redis.version, /^\d+\.\d+/);
  assert.ok(alive(redis.pid));
  for (const pair of [['--bind', '127.0.0.1'], ['--save', ''], ['--appendonly', 'no'], ['--notify-keyspace-events', 'Kg$']]) {
    const at = redis.args.indexOf(pair[0]!);
    assert.ok(at >= 0 && redis.args[at + 1] === pair[1], `${pair.join(' ')} in ${redis.args.join(' ')}`);
  }
  assert.equal(await client.configGet('save'), '');
  assert.equal(await client.configGet('appendonly'), 'no');
  assert.ok(notifiesSetAndDel((await client.configGet('notify-keyspace-events')) ?? ''));
  assert.equal(await client.configGet('no-such-setting'), null);
});

test('the commands rtp-bench sends, against the real server', async () => {
  await client.ping();
  assert.equal(await client.command('SET', 'k1', 'v1'), 'OK');
  assert.equal(await client.command('GET', 'k1'), 'v1');
  assert.equal(await client.command('GET', 'absent'), null);
  assert.equal(await client.dbsize(0), 1);
  // SELECT is per connection: DB 3 is another namespace.
  assert.equal(await client.dbsize(3), 0);
  await client.command('SET', 'k3', 'x');
  assert.deepEqual(await client.keys(3, '*'), ['k3']);
  assert.deepEqual(await client.keys(0, '*'), ['k1']);
  assert.match(await client.info('keyspace'), /^db0:keys=1,/m);
  assert.deepEqual(parseKeyspaceInfo(await client.info('keyspace')).get(3), { keys: 1, expires: 0 });
  // SCAN walks every page (COUNT is a hint: 2500 keys take several).
  await client.select(5);
  await Promise.all(Array.from({ length: 2500 }, (_, i) => client.command('SET', `many-${i}`, 'x')));
  await client.command('SET', 'other', 'x');
  const found = await client.scan(5, 'many-*');
  assert.equal(found.length, 2500);
  assert.equal(new Set(found).size, 2500);
  assert.equal(await client.del(5, found), 2500);
  assert.equal(await client.del(5, ['absent', 'other']), 1);
  assert.equal(await client.del(5, []), 0);
  // Error replies become RedisCommandError with Redis' words; the connection stays usable.
  await assert.rejects(client.select(16), (err: unknown) => err instanceof RedisCommandError && err.reply === 'ERR DB index is out of range' && err.command === 'SELECT');
  await assert.rejects(client.command('NOSUCHCOMMAND'), (err: unknown) => err instanceof RedisCommandError && /unknown command/.test(err.reply));
  await client.ping();
  await client.configSet('notify-keyspace-events', 'KEA');
  assert.equal(await client.configGet('notify-keyspace-events'), 'AKE');
  await client.configSet('notify-keyspace-events', 'Kg$');
  for (const db of [0, 3]) await client.del(db, await client.keys(db, '*'));
});

test('pipelined commands are answered in order; closing rejects what is still waiting', async () => {
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => client.command('ECHO', `m${i}`)));
  assert.deepEqual(replies, Array.from({ length: 200 }, (_, i) => `m${i}`));
  const other = await RedisClient.connect({ host: redis.address, port: redis.port });
  const pending = assert.rejects(other.command('BLPOP', 'never-filled', 0), RedisUnreachableError);
  await other.close();
  await pending;
  await assert.rejects(other.ping(), RedisUnreachableError);
});

test('nothing listening: a clear error that names the address', async () => {
  await assert.rejects(RedisClient.connect({ host: '127.0.0.1', port: 1 }), (err: unknown) => err instanceof RedisUnreachableError && /127\.0\.0\.1:1\b/.test(err.message) && /connection refused/.test(err.message));
});

test('prepareRedis: finds the DBs and sets the notifications rtpengine needs', async () => {
  await client.configSet('notify-keyspace-events', 'E$');
  const ready = await prepareRedis(client, [1, 2, 3], { requireEmpty: true });
  assert.equal(ready.keyspaceEventsBefore, '$E');
  assert.ok(notifiesSetAndDel(ready.keyspaceEvents), ready.keyspaceEvents);
  assert.ok(ready.keyspaceEvents.includes('E'), 'what the server had is kept');
  assert.equal(ready.version, redis.version);
  await assert.rejects(prepareRedis(client, [14, 15, 16], { requireEmpty: true }), (err: unknown) => err instanceof RedisSetupError && /has no DB 16 .*it has 16, 0-15/.test(err.message));
  await client.select(2);
  await client.command('SET', 'someone-elses', 'x');
  await assert.rejects(prepareRedis(client, [1, 2], { requireEmpty: true }), (err: unknown) => err instanceof RedisSetupError && /DB 2 of Redis .* holds 1 key\(s\) \(e\.g\. "someone-elses"\)/.test(err.message));
  // The run's own server is fresh: its DBs are not checked for keys.
  await prepareRedis(client, [1, 2], { requireEmpty: false });
  await client.del(2, ['someone-elses']);
});

test('prepareRedis refuses a server whose CONFIG is disabled, with the reason', async () => {
  const locked = await startRedis({ address: '127.0.0.1', databases: 16, extraArgs: ['--rename-command', 'CONFIG', '""'] });
  const c = await RedisClient.connect({ host: locked.address, port: locked.port });
  try {
    await assert.rejects(prepareRedis(c, [1, 2], { requireEmpty: true }), (err: unknown) => err instanceof RedisSetupError && /cannot read notify-keyspace-events .*unknown command 'CONFIG'/.test(err.message));
  } finally {
    await c.close();
    await locked.stop();
  }
  assert.ok(await gone(locked.pid));
});

test("removeRunKeys: the run's call-ids in the DBs given, nothing else", async () => {
  const run = '20261207-114019-b00c';
  const plant: [number, string][] = [[1, callIdOf(run, 0)], [1, callIdOf(run, 1)], [2, callIdOf(run, 7)], [1, `${run}-p1-0`], [1, 'unrelated'], [3, callIdOf(run, 2)]];
  for (const [db, key] of plant) {
    await client.select(db);
    await client.command('SET', key, '{}');
  }
  assert.equal(await removeRunKeys(client, [1, 2], run), 3);
  assert.deepEqual((await client.keys(1, '*')).sort(), [`${run}-p1-0`, 'unrelated']);
  assert.deepEqual(await client.keys(2, '*'), []);
  assert.deepEqual(await client.keys(3, '*'), [callIdOf(run, 2)], 'a DB the run did not use is not touched');
  assert.equal(await removeRunKeys(client, [1, 2], run), 0);
  for (const db of [1, 3]) await client.del(db, await client.keys(db, '*'));
});

test('stopped by PID; a missing binary says how to install it', async () => {
  const r = await startRedis({ address: '127.0.0.1', databases: 16 });
  await r.stop();
  assert.ok(await gone(r.pid));
  await r.stop();
  await assert.rejects(startRedis({ address: '127.0.0.1', databases: 16, binary: '/nonexistent/redis-server' }), (err: unknown) => err instanceof RedisNotInstalledError && /apt-get install -y --no-install-recommends redis-server/.test(err.message));
});
