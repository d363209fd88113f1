/**
 * Client ports: the kernel's socket table read as it prints it, busy blocks skipped, the default range moved
 * when another run holds it, an explicit range refused with what to do; and a real second run on a taken range.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseClientPorts, freeBlocks, PortPool } from '../src/ports.js';
import { boundUdpPorts, parseProcNetUdp } from '../src/udp-table.js';

const TABLE = [
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            ',
  ' 3047: 0109007F:7226 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 31917 2 00000000c45d6550 0         ',
  '  100: 0100007F:4E20 0100007F:2710 01 00000000:00000000 00:00000000 00000000     0        0 40001 2 00000000c45d6551 17        ',
  '  101: 00000000:4E25 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 40002 2 00000000c45d6552 0         ',
  'garbage line',
].join('\n');

test('/proc/net/udp: address, port and drops of each socket, odd lines skipped', () => {
  assert.deepEqual(parseProcNetUdp(TABLE), [
    { localAddress: '127.0.9.1', localPort: 0x7226, drops: 0 },
    { localAddress: '127.0.0.1', localPort: 20000, drops: 17 },
    { localAddress: '0.0.0.0', localPort: 20005, drops: 0 },
  ]);
});

test('ports bound on the address or on the wildcard (IPv4, and the dual-stack IPv6 one) collide; others do not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-udp-'));
  try {
    const udp = join(dir, 'udp');
    const udp6 = join(dir, 'udp6');
    writeFileSync(udp, TABLE);
    writeFileSync(
      udp6,
      [
        '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
        '   5: 00000000000000000000000000000000:4E30 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0',
        '   6: 00000000000000000000000001000000:4E31 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2 2 0000000000000000 0',
      ].join('\n'),
    );
    assert.deepEqual([...boundUdpPorts('127.0.0.1', { udp, udp6 })].sort(), [20000, 20005, 20016]);
    assert.deepEqual([...boundUdpPorts('127.0.0.2', { udp, udp6 })].sort(), [20005, 20016]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a block with any busy port is skipped, the rest are handed out', () => {
  assert.deepEqual(freeBlocks({ min: 20000, max: 20015 }, new Set([20005])), [20000, 20008, 20012]);
  const pool = new PortPool({ min: 20000, max: 20015 }, new Set([20002]), 0);
  assert.equal(pool.available, 3);
  assert.deepEqual(pool.take(), { aRtp: 20004, bRtp: 20006 });
});

test('a pool starts where it is told (a random block by default), so two runs started together do not walk the range in step', () => {
  const range = { min: 20000, max: 20015 };
  assert.deepEqual(new PortPool(range, new Set(), 0.5).take(), { aRtp: 20008, bRtp: 20010 });
  const order = (p: PortPool): number[] => Array.from({ length: 4 }, () => p.take()!.aRtp);
  assert.deepEqual(order(new PortPool(range, new Set(), 0.75)), [20012, 20000, 20004, 20008], 'every block, from the start, round the range');
  const starts = new Set(Array.from({ length: 40 }, () => new PortPool({ min: 20000, max: 29999 }).take()!.aRtp));
  assert.ok(starts.size > 30, `default starts spread over the range: ${starts.size} distinct of 40`);
});

test('a retired block (another program bound it mid-run) is never handed out again; a released one is, last', () => {
  const pool = new PortPool({ min: 20000, max: 20011 }, new Set(), 0);
  const a = pool.take()!;
  const b = pool.take()!;
  pool.retire(a);
  pool.release(b);
  assert.equal(pool.retired, 1);
  assert.deepEqual([pool.take()!.aRtp, pool.take()!.aRtp, pool.take()], [20008, 20004, null]);
});

test('the asked range is kept when it has room; busy blocks are said', () => {
  const range = { min: 20000, max: 29999 };
  assert.deepEqual(chooseClientPorts(range, 100, new Set(), false), { range, note: null });
  const some = chooseClientPorts(range, 100, new Set([20001, 20100]), true);
  assert.deepEqual(some, { range, note: '8 ports of --local-ports 20000-29999 are in use by something else: skipping them' });
});

test('the default range moves to the first free window of its size when another run holds it', () => {
  const taken = new Set(Array.from({ length: 400 }, (_, i) => 20000 + i)); // 100 calls of another run
  const choice = chooseClientPorts({ min: 20000, max: 29999 }, 2450, taken, false);
  assert.deepEqual(choice, {
    range: { min: 30000, max: 39999 },
    note: 'client ports 20000-29999 are in use (another rtp-bench run?): using 30000-39999 instead (--local-ports to choose)',
  });
  const full = new Set(Array.from({ length: 45536 }, (_, i) => 20000 + i));
  assert.match((chooseClientPorts({ min: 20000, max: 29999 }, 10, full, false) as { error: string }).error, /^no free client port range for 10 calls from 20000 to 65535/);
});

test('an explicit --local-ports that is taken is refused before the run, with what to do', () => {
  const taken = new Set([20000, 20004, 20008]);
  assert.deepEqual(chooseClientPorts({ min: 20000, max: 20015 }, 4, taken, true), {
    error:
      '--local-ports 20000-20015: 12 of its ports are in use by another program (or run), so only 1 of the 4 calls fit: ' +
      'give a range that is free, or leave --local-ports out and rtp-bench picks one',
  });
});

test('the live table sees a socket this process bound', async () => {
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind({ address: '127.0.0.1', port: 0 }, resolve));
  try {
    assert.ok(boundUdpPorts('127.0.0.1').has(socket.address().port));
  } finally {
    socket.close();
  }
});
