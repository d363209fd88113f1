/**
 * Accounting of the native media transport (workers/native) under failure and backlog, once per engine: per-socket
 * counters (socketStats: sendFailed, lastFailedSeq, receiveDrops, truncated), settle(), and the receive path's
 * exactness when the thread falls behind (buffer ring exhausted, completion queue overflowed, full ring handed to JS
 * mid-drain): every datagram the sender's kernel accepted is either reported once or counted as a kernel drop.
 * Real UDP on 127.0.0.1 only. Skipped, with the reason, where the addon is not built or the engine is unavailable.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import {
  Transport as BaseTransport,
  SOCKET_STAT,
  SOCKET_STATS_LENGTH,
  STAT,
  loadNativeTransport,
  nativeTransportError,
  type TransportEngine,
  type TransportOptions,
} from '../../workers/native/transport.js';
import { engineSkip, queue } from '../helpers/native.js';

const HOST = '127.0.0.1';
const unavailable = nativeTransportError();
/** Longer than any UDP datagram can be (65535 with headers): send(2) refuses it with EMSGSIZE, every time. */
const OVERSIZE = 70_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Keeps this thread busy without a syscall (performance.now() is a vDSO read): nothing drains meanwhile. */
function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

function writeSeq(t: BaseTransport, offset: number, seq: number): void {
  t.sendArena[offset + 2] = (seq >> 8) & 0xff;
  t.sendArena[offset + 3] = seq & 0xff;
}

interface SocketStats {
  sendFailed: number;
  lastFailedSeq: number;
  receiveDrops: number;
  truncated: number;
}

const statsOut = new Float64Array(SOCKET_STATS_LENGTH);
function socketStats(t: BaseTransport, handle: number): SocketStats {
  assert.equal(t.socketStats(handle, statsOut), true, `handle ${handle} is open`);
  return {
    sendFailed: statsOut[SOCKET_STAT.sendFailed]!,
    lastFailedSeq: statsOut[SOCKET_STAT.lastFailedSeq]!,
    receiveDrops: statsOut[SOCKET_STAT.receiveDrops]!,
    truncated: statsOut[SOCKET_STAT.truncated]!,
  };
}

/** A loopback port nothing listens on (bound by node:dgram, then released). */
async function deadPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, HOST);
  await once(s, 'listening');
  const port = s.address().port;
  s.close();
  await once(s, 'close');
  return port;
}

test('the socket stat layout matches the wrapper', { skip: unavailable ? `native transport not built: ${unavailable.message}` : false }, () => {
  assert.deepEqual([...loadNativeTransport().socketStatNames], Object.keys(SOCKET_STAT));
  assert.equal(SOCKET_STATS_LENGTH, Object.keys(SOCKET_STAT).length);
});

for (const engine of ['io_uring', 'epoll'] as const) describe(`native transport accounting (${engine})`, { skip: engineSkip(engine) }, () => {
  class Transport extends BaseTransport {
    constructor(options: TransportOptions = {}) {
      super({ ...options, engine });
    }
  }

  test('socketStats: zeros and -1 for a fresh socket, false (out untouched) for a handle that is not open, TypeError for a bad array', () => {
    const t = new Transport();
    try {
      const h = t.open(HOST, 0);
      assert.deepEqual(socketStats(t, h), { sendFailed: 0, lastFailedSeq: -1, receiveDrops: 0, truncated: 0 });
      const out = new Float64Array(SOCKET_STATS_LENGTH).fill(7);
      assert.equal(t.socketStats(12345, out), false);
      assert.equal(t.close(h), true);
      assert.equal(t.socketStats(h, out), false, 'the counters go with the socket');
      assert.deepEqual([...out], [7, 7, 7, 7]);
      assert.throws(() => t.socketStats(h, new Float64Array(3)), TypeError);
      assert.throws(() => t.socketStats(h, new Float32Array(4) as unknown as Float64Array), TypeError);
    } finally {
      t.destroy();
    }
    assert.equal(t.settle(), 0, 'settle() on a destroyed transport is a no-op');
  });

  test('sendFailed / lastFailedSeq count every refused send exactly, per socket, also when the failures overflow the completion queue', () => {
    // 2048-entry batches: io_uring's CQ then has 4096 entries, and three batches of refusals (6144) overflow it.
    const t = new Transport({ batchCapacity: 2048, recvSlots: 64, sendArenaBytes: 1 << 18 });
    try {
      const port = t.localPort(t.open(HOST, 0));
      const a = t.open(HOST, 0, HOST, port);
      const b = t.open(HOST, 0, HOST, port);
      const rounds = 3;
      let queued = 0;
      let k = 0;
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < 2048; i++, k++) {
          // Entry k starts 4 bytes after entry k-1: overlapping oversize ranges, each with its own bytes 2-3.
          writeSeq(t, 4 * k, k & 0xffff);
          queue(t, i, k % 2 === 0 ? a : b, 4 * k, OVERSIZE);
        }
        queued += t.sendBatch(2048);
      }
      const total = rounds * 2048;
      // epoll refuses at once; io_uring queues them all and the refusals are completions, reaped by settle().
      assert.equal(queued, engine === 'io_uring' ? total : 0);
      assert.ok(t.settle() >= 0);
      const sa = socketStats(t, a);
      const sb = socketStats(t, b);
      assert.equal(sa.sendFailed, total / 2);
      assert.equal(sb.sendFailed, total / 2);
      assert.equal(sa.lastFailedSeq, (total - 2) & 0xffff, 'a: the latest refused entry');
      assert.equal(sb.lastFailedSeq, (total - 1) & 0xffff, 'b: the latest refused entry');
      const s = t.statsSnapshot();
      assert.equal(s.sendOtherError, total);
      assert.equal(s.lastSendErrno, 90 /* EMSGSIZE */);
      assert.equal(s.sent, 0);
      assert.equal(s.cqeLost, 0);
      if (engine === 'io_uring') assert.ok(s.cqOverflows >= 1, `the CQ overflowed: ${JSON.stringify(s)}`);

      // A range outside the arena on a live handle never left either: counted, with no sequence number to read.
      queue(t, 0, a, (1 << 18) - 2, 100);
      assert.equal(t.sendBatch(1), 0);
      t.settle();
      assert.deepEqual(socketStats(t, a), { sendFailed: total / 2 + 1, lastFailedSeq: -1, receiveDrops: 0, truncated: 0 });
      assert.equal(t.stat('sendBadEntry'), 1);
    } finally {
      t.destroy();
    }
  });

  test('a send on a socket that is not connected yet (EDESTADDRREQ) is counted with its sequence number; one under 4 bytes with -1', () => {
    const t = new Transport({ recvSlots: 8 });
    try {
      const loose = t.open(HOST, 0);
      const other = t.open(HOST, 0, HOST, t.localPort(loose));
      writeSeq(t, 0, 1);
      writeSeq(t, 16, 2);
      queue(t, 0, loose, 0, 12);
      queue(t, 1, other, 0, 12); // accepted: connected
      queue(t, 2, loose, 16, 12);
      t.sendBatch(3);
      t.settle();
      assert.deepEqual(socketStats(t, loose), { sendFailed: 2, lastFailedSeq: 2, receiveDrops: 0, truncated: 0 });
      assert.equal(socketStats(t, other).sendFailed, 0);
      queue(t, 0, loose, 16, 3);
      t.sendBatch(1);
      t.settle();
      assert.deepEqual(socketStats(t, loose), { sendFailed: 3, lastFailedSeq: -1, receiveDrops: 0, truncated: 0 });
      assert.equal(t.stat('sendOtherError'), 3);
      assert.equal(t.stat('lastSendErrno'), 89 /* EDESTADDRREQ */);
      assert.equal(t.stat('sent'), 1);
    } finally {
      t.destroy();
    }
  });

  test('a send refused with ECONNREFUSED (nothing listens on the port) is counted with its sequence number', async () => {
    const t = new Transport({ recvSlots: 8 });
    try {
      const h = t.open(HOST, 0, HOST, await deadPort());
      writeSeq(t, 0, 0xbeef);
      writeSeq(t, 16, 0xcafe);
      // Loopback brings the ICMP port unreachable for the first datagram back inside its send, and the error it
      // leaves on the socket refuses the next send: the second entry of the same batch (nothing can receive, and so
      // consume the error, between the two). Retried in case the ICMP was late (rate limit, deferred softirq): a
      // pending error is left to the receive path (the settle and the sleep) before each attempt.
      let refusedAt = -1;
      for (let attempt = 0; attempt < 20 && refusedAt < 0; attempt++) {
        t.settle();
        await sleep(5);
        t.settle();
        const before = socketStats(t, h).sendFailed;
        queue(t, 0, h, 0, 12);
        queue(t, 1, h, 16, 12);
        t.sendBatch(2);
        t.settle();
        const after = socketStats(t, h);
        if (after.sendFailed > before) {
          assert.equal(after.sendFailed, before + 1);
          assert.equal(after.lastFailedSeq, 0xcafe, 'the second datagram of the batch was refused');
          refusedAt = attempt;
        }
      }
      assert.ok(refusedAt >= 0, 'no send was refused in 20 attempts');
      assert.ok(t.stat('sendConnRefused') >= 1);
    } finally {
      t.destroy();
    }
  });

  test('receiveDrops is exactly what the kernel dropped at a socket with a small receive buffer (also after its last delivered datagram)', () => {
    const rx = new Transport({ recvSlots: 64, recvBufferBytes: 4096 });
    const tx = new Transport({ batchCapacity: 512 });
    try {
      const small = rx.open(HOST, 0);
      const h = tx.open(HOST, 0, HOST, rx.localPort(small));
      const got = new Map<number, number>();
      rx.onReceive((count) => {
        for (let i = 0; i < count; i++) got.set(rx.recvHandle(i), (got.get(rx.recvHandle(i)) ?? 0) + 1);
      });
      for (let k = 0; k < 500; k++) queue(tx, k, h, 0, 100);
      // No yield between the send and the settle: nothing drains but what the kernel moves on its own.
      tx.sendBatch(500);
      tx.settle();
      const accepted = 500 - socketStats(tx, h).sendFailed;
      const delivered = rx.settle();
      const drops = socketStats(rx, small).receiveDrops;
      assert.ok(drops > 0, 'the small queue overflowed');
      assert.equal(delivered, got.get(small) ?? 0);
      assert.equal(delivered + drops, accepted, `${delivered} delivered + ${drops} dropped of ${accepted} accepted`);
      assert.equal(rx.stat('kernelDrops'), drops, 'the global stat is the sum of the sockets');
      // Dropped after the last datagram that was delivered: SO_RXQ_OVFL alone would never have shown these.
      for (let k = 0; k < 100; k++) queue(tx, k, h, 0, 100);
      tx.sendBatch(100);
      assert.equal(rx.settle() + socketStats(rx, small).receiveDrops - drops, 100);
      const dropsNow = socketStats(rx, small).receiveDrops;
      // Drops nobody read with socketStats are sampled at close, so kernelDrops keeps them.
      for (let k = 0; k < 300; k++) queue(tx, k, h, 0, 100);
      tx.sendBatch(300);
      const delivered3 = rx.settle();
      assert.equal(rx.close(small), true);
      assert.equal(rx.stat('kernelDrops'), dropsNow + (300 - delivered3));
      tx.settle();
      assert.equal(socketStats(tx, h).sendFailed, 0, 'the sender had every datagram accepted');
    } finally {
      rx.destroy();
      tx.destroy();
    }
  });

  test('truncated counts datagrams cut to the slot size, per socket', () => {
    const t = new Transport({ recvSlots: 8, slotBytes: 256 });
    try {
      const a = t.open(HOST, 0);
      const b = t.open(HOST, 0, HOST, t.localPort(a));
      const room = engine === 'io_uring' ? 256 - 80 : 256;
      queue(t, 0, b, 0, room + 10);
      queue(t, 1, b, 0, room);
      queue(t, 2, b, 0, room + 100);
      const lengths: number[] = [];
      t.onReceive((count) => {
        for (let i = 0; i < count; i++) lengths.push(t.recvLength(i));
      });
      assert.equal(t.sendBatch(3), 3);
      assert.equal(t.settle(), 3);
      assert.deepEqual(lengths, [room, room, room]);
      assert.equal(socketStats(t, a).truncated, 2);
      assert.equal(socketStats(t, b).truncated, 0);
      assert.equal(t.stat('truncated'), 2);
    } finally {
      t.destroy();
    }
  });

  test('settle() delivers what already arrived before it returns, refuses (-1) from inside a drain, and rethrows a throwing callback', async () => {
    const t = new Transport({ recvSlots: 4 });
    try {
      const a = t.open(HOST, 0);
      const b = t.open(HOST, 0, HOST, t.localPort(a));
      const seen: number[] = [];
      const inside: number[] = [];
      const inMicrotask: number[] = [];
      t.onReceive((count) => {
        for (let i = 0; i < count; i++) seen.push(t.recvArena[t.recvOffset(i)]!);
        inside.push(t.settle());
        queueMicrotask(() => inMicrotask.push(t.settle()));
      });
      for (let k = 0; k < 10; k++) {
        t.sendArena[k] = k;
        queue(t, k, b, k, 1);
      }
      assert.equal(t.sendBatch(10), 10);
      // Synchronously: 10 datagrams through a 4-entry ring (3 callbacks), in the order sent.
      assert.equal(t.settle(), 10);
      assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.deepEqual(inside, [-1, -1, -1]);
      assert.equal(t.settle(), 0, 'nothing left');
      await turn();
      // Microtasks queued by a callback that settle() ran run after settle() returned: then it may run.
      assert.deepEqual(inMicrotask, [0, 0, 0]);

      // From a poll-driven drain, the callback's microtasks run inside the drain: refused too.
      inside.length = 0;
      inMicrotask.length = 0;
      queue(t, 0, b, 0, 1);
      t.sendBatch(1);
      for (let i = 0; i < 200 && inside.length === 0; i++) await sleep(5);
      await turn();
      assert.deepEqual(inside, [-1]);
      assert.deepEqual(inMicrotask, [-1]);
      assert.deepEqual(seen.slice(10), [0], 'the refused calls did not disturb the drain: one datagram, once');

      // A callback that throws stops settle(), which throws it; the rest is delivered by the next settle.
      const boom = new Error('boom');
      let calls = 0;
      t.onReceive(() => {
        calls++;
        throw boom;
      });
      for (let k = 0; k < 6; k++) queue(t, k, b, k, 1);
      t.sendBatch(6);
      assert.throws(() => t.settle(), boom);
      assert.equal(calls, 1);
      t.onReceive((count) => {
        for (let i = 0; i < count; i++) seen.push(t.recvArena[t.recvOffset(i)]!);
      });
      t.settle();
      await turn();
      t.settle();
      assert.equal(seen.length, 11 + 6 - 4, 'the 4 handed to the throwing callback are gone; the other 2 came once');
      assert.deepEqual(seen.slice(11), [4, 5]);
    } finally {
      t.destroy();
    }
  });

  test('settle() from a timer and from the ticker callback', async () => {
    const t = new Transport({ recvSlots: 16 });
    try {
      const a = t.open(HOST, 0);
      const b = t.open(HOST, 0, HOST, t.localPort(a));
      let got = 0;
      t.onReceive((count) => {
        got += count;
      });
      queue(t, 0, b, 0, 20);
      const fromTimer = await new Promise<number>((resolve) =>
        setTimeout(() => {
          t.sendBatch(1);
          resolve(t.settle());
        }, 1),
      );
      assert.equal(fromTimer, 1);
      const fromTicker = await new Promise<number>((resolve) => {
        t.startTicker(500, () => {
          t.stopTicker();
          t.sendBatch(1);
          resolve(t.settle());
        });
      });
      assert.equal(fromTicker, 1);
      assert.equal(got, 2);
      assert.equal(t.stat('settles'), 2);
    } finally {
      t.destroy();
    }
  });

  test('sendBatch has copied the payload when it returns: the arena is overwritten at once and the receiver gets the original bytes', async () => {
    const rx = new Transport({ recvSlots: 256, recvBufferBytes: 1 << 20 });
    const tx = new Transport({ batchCapacity: 512 });
    try {
      const sinks: number[] = [];
      const sources: number[] = [];
      for (let i = 0; i < 8; i++) sinks.push(rx.open(HOST, 0));
      for (const sink of sinks) sources.push(tx.open(HOST, 0, HOST, rx.localPort(sink)));
      const rounds = 4;
      const perRound = 400;
      const size = 200;
      const originals = new Map<number, Buffer>();
      const got = new Map<number, Buffer>();
      const dup: number[] = [];
      rx.onReceive((count) => {
        for (let i = 0; i < count; i++) {
          const off = rx.recvOffset(i);
          const bytes = Buffer.from(rx.recvArena.subarray(off, off + rx.recvLength(i)));
          const id = bytes.readUInt32BE(4);
          if (got.has(id)) dup.push(id);
          got.set(id, bytes);
        }
      });
      let accepted = 0;
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < perRound; k++) {
          // The same arena bytes every round: a send that read them late would carry a later round's bytes.
          const bytes = randomBytes(size);
          const id = round * perRound + k;
          bytes.writeUInt32BE(id, 4);
          originals.set(id, bytes);
          tx.sendArena.set(bytes, k * size);
          queue(tx, k, sources[k % sources.length]!, k * size, size);
        }
        tx.sendBatch(perRound);
        tx.sendArena.fill(0xee, 0, perRound * size);
        accepted += perRound;
      }
      tx.settle();
      accepted -= sources.reduce((sum, h) => sum + socketStats(tx, h).sendFailed, 0);
      const deadline = performance.now() + 5000;
      const drops = (): number => sinks.reduce((sum, h) => sum + socketStats(rx, h).receiveDrops, 0);
      while (got.size + drops() < accepted && performance.now() < deadline) await sleep(5);
      assert.equal(got.size + drops(), accepted);
      assert.ok(got.size > accepted / 2, `${got.size} of ${accepted} delivered`);
      assert.deepEqual(dup, []);
      for (const [id, bytes] of got) assert.deepEqual(bytes, originals.get(id), `datagram ${id} carries its own bytes`);
    } finally {
      rx.destroy();
      tx.destroy();
    }
  });

  test('backlog: a busy receiver with a small ring reports each accepted datagram once or counts it as a kernel drop, per socket', async () => {
    const SOCKETS = 8;
    const PER_SOCKET = 500;
    const BURST = 100; // per socket: 800 datagrams a burst, under the loopback backlog (netdev_max_backlog 1000)
    // 64 buffers; a 32 KiB receive queue (~40 datagrams) so that some overflow; 4096 CQ entries (batchCapacity 256).
    const rx = new Transport({ recvSlots: 64, batchCapacity: 256, recvBufferBytes: 16384 });
    const tx = new Transport({ batchCapacity: SOCKETS * BURST });
    try {
      const sinks: number[] = [];
      const sources: number[] = [];
      for (let i = 0; i < SOCKETS; i++) sinks.push(rx.open(HOST, 0));
      for (const sink of sinks) sources.push(tx.open(HOST, 0, HOST, rx.localPort(sink)));
      // The receiver also queues sends the kernel refuses (EMSGSIZE) while it is busy: 5120 failure completions a
      // burst fill its CQ, so the receives complete into the kernel's overflow list behind them.
      const junk = rx.open(HOST, 0, HOST, rx.localPort(sinks[0]!));
      let junkQueued = 0;

      const reported = sinks.map(() => new Set<number>());
      const problems: string[] = [];
      const ringSizes: number[] = [];
      const view = new DataView(rx.recvArena.buffer, rx.recvArena.byteOffset, rx.recvArena.byteLength);
      rx.onReceive((count) => {
        ringSizes.push(count);
        for (let i = 0; i < count; i++) {
          const counter = view.getUint32(rx.recvOffset(i) + 4);
          const socket = Math.floor(counter / PER_SOCKET);
          if (rx.recvLength(i) !== 16 || socket >= SOCKETS) problems.push(`never sent: ${counter}`);
          else if (rx.recvHandle(i) !== sinks[socket]) problems.push(`${counter} on the wrong socket`);
          else if (reported[socket]!.has(counter)) problems.push(`reported twice: ${counter}`);
          else reported[socket]!.add(counter);
        }
      });
      const txView = new DataView(tx.sendArena.buffer, tx.sendArena.byteOffset, tx.sendArena.byteLength);
      for (let first = 0; first < PER_SOCKET; first += BURST) {
        let n = 0;
        for (let k = first; k < first + BURST; k++) {
          for (let socket = 0; socket < SOCKETS; socket++, n++) {
            txView.setUint32(16 * n + 4, socket * PER_SOCKET + k); // a unique 32-bit counter
            queue(tx, n, sources[socket]!, 16 * n, 16);
          }
        }
        tx.sendBatch(n);
        for (let j = 0; j < 256; j++) queue(rx, j, junk, 0, OVERSIZE);
        for (let r = 0; r < 20; r++) junkQueued += rx.sendBatch(256);
        busyWait(250);
        await turn(); // one loop iteration: a partial drain, then busy again
      }
      tx.settle();
      const accepted = sources.map((h) => PER_SOCKET - socketStats(tx, h).sendFailed);
      const accounted = (): number[] => sinks.map((h, i) => reported[i]!.size + socketStats(rx, h).receiveDrops);
      const deadline = performance.now() + 10_000;
      while (accounted().some((n, i) => n < accepted[i]!) && performance.now() < deadline) await sleep(5);

      assert.deepEqual(problems, []);
      assert.deepEqual(accounted(), accepted, 'per socket: reported + receiveDrops == accepted by the sender');
      assert.equal(rx.settle(), 0, 'the polls left nothing behind');
      const drops = sinks.reduce((sum, h) => sum + socketStats(rx, h).receiveDrops, 0);
      assert.ok(drops > 0, 'some queues overflowed');
      assert.ok(reported.every((r) => r.size > 0), 'every socket delivered');
      assert.ok(ringSizes.includes(64), 'a full ring was handed to JS mid-drain');
      const s = rx.statsSnapshot();
      assert.equal(s.kernelDrops, drops);
      assert.equal(s.received, sinks.reduce((sum, _h, i) => sum + reported[i]!.size, 0));
      assert.equal(s.cqeLost, 0);
      const junkStats = socketStats(rx, junk);
      assert.equal(junkStats.sendFailed, (PER_SOCKET / BURST) * 20 * 256, 'every refused send counted');
      if (engine === 'io_uring') {
        assert.equal(junkQueued, junkStats.sendFailed);
        assert.ok(s.bufferExhausted > 0 && s.rearms > 0, `the buffer ring ran dry: ${JSON.stringify(s)}`);
        assert.ok(s.cqOverflows > 0, `the CQ overflowed: ${JSON.stringify(s)}`);
      }
    } finally {
      rx.destroy();
      tx.destroy();
    }
  });
});

describe('native transport accounting options', { skip: unavailable ? `native transport not built: ${unavailable.message}` : false }, () => {
  test('recvBufferBytes is checked', () => {
    assert.throws(() => new BaseTransport({ recvBufferBytes: -1 }), RangeError);
    assert.throws(() => new BaseTransport({ recvBufferBytes: 1.5 }), RangeError);
  });

  test('the new stats are in the snapshot', () => {
    const t = new BaseTransport();
    try {
      const s = t.statsSnapshot();
      for (const name of ['cqOverflows', 'cqeLost', 'settles'] as const) assert.equal(s[name], 0);
      assert.equal(STAT.settles, Object.keys(STAT).length - 1);
    } finally {
      t.destroy();
    }
  });
});
