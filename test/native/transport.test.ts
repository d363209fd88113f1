/**
 * The native media transport (workers/native) over real UDP sockets on 127.0.0.1, every test once per engine
 * (io_uring and epoll). Skipped, with the reason, where the addon is not built (`npx node-gyp rebuild -C
 * workers/native`): it is optional and not part of `npm ci`; the io_uring suite is skipped where the kernel or a
 * seccomp profile refuses io_uring.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import {
  Transport as BaseTransport,
  STAT,
  loadNativeTransport,
  nativeTransportError,
  setThreadPriority,
  type TransportEngine,
  type TransportOptions,
} from '../../workers/native/transport.js';
import { mayUseRealtime } from '../helpers/process.js';
import { engineSkip, queue } from '../helpers/native.js';

const HOST = '127.0.0.1';
const unavailable = nativeTransportError();

interface Got {
  handle: number;
  bytes: Buffer;
  timeMs: number;
  /** performance.now() inside the callback. */
  seenMs: number;
}

/** Copies every received datagram out of the ring (entries are valid only during the callback). */
function collect(t: BaseTransport): { got: Got[]; callbacks: number[]; waitFor(n: number, timeoutMs?: number): Promise<void> } {
  const got: Got[] = [];
  const callbacks: number[] = [];
  let wake: (() => void) | null = null;
  t.onReceive((count) => {
    callbacks.push(count);
    const seenMs = performance.now();
    for (let i = 0; i < count; i++) {
      const off = t.recvOffset(i);
      const length = t.recvLength(i);
      got.push({
        handle: t.recvHandle(i),
        bytes: Buffer.from(t.recvArena.subarray(off, off + length)),
        timeMs: t.recvTime[i]!,
        seenMs,
      });
    }
    wake?.();
  });
  return {
    got,
    callbacks,
    async waitFor(n: number, timeoutMs = 2000): Promise<void> {
      const deadline = performance.now() + timeoutMs;
      while (got.length < n) {
        if (performance.now() > deadline) throw new Error(`received ${got.length} of ${n} datagrams`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 20);
        });
        wake = null;
      }
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A ticker callback that counts, and a promise for the n-th call (rejected if it does not come in time). */
class TickCounter {
  n = 0;
  private readonly waiters: { n: number; resolve: () => void }[] = [];
  readonly tick = (): void => {
    this.n++;
    for (const w of this.waiters.filter((x) => x.n <= this.n)) w.resolve();
  };
  reached(n: number, timeoutMs = 2000): Promise<void> {
    if (n <= this.n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.n} ticker callbacks in ${timeoutMs} ms, waited for ${n}`)), timeoutMs);
      this.waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}

/** A pause in which nothing should happen: proving an absence takes time, unlike waiting for something. */
const QUIET_MS = 30;

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Two sockets of `t` connected to each other. */
function pair(t: BaseTransport): [number, number] {
  const a = t.open(HOST, 0);
  const b = t.open(HOST, 0, HOST, t.localPort(a));
  t.connect(a, HOST, t.localPort(b));
  return [a, b];
}

for (const engine of ['io_uring', 'epoll'] as const) describe(`native transport (${engine})`, { skip: engineSkip(engine) }, () => {
  class Transport extends BaseTransport {
    constructor(options: TransportOptions = {}) {
      super({ ...options, engine });
    }
  }

  test('runs the engine asked for', () => {
    const t = new Transport();
    assert.equal(t.engine, engine);
    t.destroy();
  });

  test('its stat layout matches the wrapper', () => {
    assert.deepEqual([...loadNativeTransport().statNames], Object.keys(STAT));
  });

  test('sends and receives exact bytes between two handles, one batch, one callback', async () => {
    const t = new Transport({ recvSlots: 8 });
    try {
      const [a, b] = pair(t);
      const toB = randomBytes(172);
      const toA = randomBytes(100);
      t.sendArena.set(toB, 0);
      t.sendArena.set(toA, 256);
      queue(t, 0, a, 0, 172);
      queue(t, 1, b, 256, 100);
      const rx = collect(t);
      assert.equal(t.sendBatch(2), 2);
      await rx.waitFor(2);
      assert.equal(rx.got.length, 2);
      const atB = rx.got.find((g) => g.handle === b);
      const atA = rx.got.find((g) => g.handle === a);
      assert.deepEqual(atB?.bytes, toB);
      assert.deepEqual(atA?.bytes, toA);
      const s = t.statsSnapshot();
      assert.equal(s.sent, 2);
      assert.equal(s.received, 2);
      assert.equal(s.openSockets, 2);
      assert.equal(s.sendBadEntry + s.sendEagain + s.sendConnRefused + s.sendOtherError, 0);
    } finally {
      t.destroy();
    }
  });

  test('kernel receive timestamps are on the performance.now() clock, within a few ms of the send', async () => {
    const t = new Transport({ recvSlots: 8 });
    try {
      const [a] = pair(t);
      const rx = collect(t);
      queue(t, 0, a, 0, 20);
      for (let i = 0; i < 20; i++) {
        const before = performance.now();
        t.sendBatch(1);
        const after = performance.now();
        await rx.waitFor(i + 1);
        const g = rx.got[i]!;
        // Stamped in the send call (loopback delivers inside it); 0.2 ms allows for the clock calibration.
        assert.ok(g.timeMs >= before - 0.2, `stamp ${g.timeMs} before the send started at ${before}`);
        assert.ok(g.timeMs <= after + 0.2, `stamp ${g.timeMs} after the send returned at ${after}`);
        assert.ok(g.timeMs <= g.seenMs, `stamp ${g.timeMs} after the callback ran at ${g.seenMs}`);
        assert.ok(g.seenMs - g.timeMs < 50, `callback ${g.seenMs - g.timeMs} ms after the stamp`);
        await sleep(2);
      }
    } finally {
      t.destroy();
    }
  });

  test('binding is exclusive: EADDRINUSE names the address, against itself and against node:dgram', async () => {
    const t = new Transport();
    const sock = createSocket('udp4');
    try {
      const h = t.open(HOST, 0);
      const port = t.localPort(h);
      assert.throws(
        () => t.open(HOST, port),
        (err: NodeJS.ErrnoException & { address?: string; port?: number }) => {
          assert.equal(err.code, 'EADDRINUSE');
          assert.equal(err.syscall, 'bind');
          assert.equal(err.address, HOST);
          assert.equal(err.port, port);
          assert.match(err.message, new RegExp(`^bind 127\\.0\\.0\\.1:${port} EADDRINUSE`));
          return true;
        },
      );
      sock.bind(0, HOST);
      await once(sock, 'listening');
      const taken = sock.address().port;
      assert.throws(() => t.open(HOST, taken), { code: 'EADDRINUSE', message: new RegExp(`127\\.0\\.0\\.1:${taken}`) });
      assert.equal(t.stat('openSockets'), 1, 'a failed open leaves nothing behind');
    } finally {
      sock.close();
      t.destroy();
    }
  });

  test('binding an address this host does not have fails with EADDRNOTAVAIL naming it (nothing is sent)', () => {
    const t = new Transport();
    try {
      // TEST-NET-1: never configured here; bind(2) refuses it before any packet could exist.
      assert.throws(() => t.open('192.0.2.1', 0), { code: 'EADDRNOTAVAIL', message: /192\.0\.2\.1:0/ });
      assert.throws(() => t.open('not-an-ip', 0), { code: 'ERR_INVALID_ADDRESS' });
      assert.throws(() => t.open(HOST, 70000), RangeError);
    } finally {
      t.destroy();
    }
  });

  test('close removes the socket: a later datagram to its port is not delivered and the port is free again', async () => {
    const t = new Transport({ recvSlots: 8 });
    try {
      const [a, b] = pair(t);
      const portB = t.localPort(b);
      const rx = collect(t);
      assert.equal(t.close(b), true);
      assert.equal(t.close(b), false, 'closing twice is a no-op');
      assert.equal(t.stat('openSockets'), 1);
      queue(t, 0, a, 0, 50);
      t.sendBatch(1);
      await sleep(30);
      t.sendBatch(1); // the ICMP port unreachable for the first one surfaces here or on a's receive path
      await sleep(50);
      assert.equal(rx.got.length, 0, 'nothing delivered after close');
      const s = t.statsSnapshot();
      assert.ok(s.sendConnRefused + s.recvConnRefused >= 1, `refusal counted: ${JSON.stringify(s)}`);
      // The stale handle is refused per entry, counted, never thrown.
      queue(t, 0, b, 0, 50);
      assert.equal(t.sendBatch(1), 0);
      assert.equal(t.stat('sendBadEntry'), 1);
      // The port can be bound again (exclusively) and the new handle differs from the closed one.
      const b2 = t.open(HOST, portB, HOST, t.localPort(a));
      assert.notEqual(b2, b);
      queue(t, 0, a, 0, 50);
      assert.equal(t.sendBatch(1), 1);
      await rx.waitFor(1);
      assert.equal(rx.got[0]!.handle, b2);
    } finally {
      t.destroy();
    }
  });

  test('datagrams from another thread (another sender task) wake an idle transport', async () => {
    // rtpengine is another process: its datagrams arrive while this thread sleeps in libuv's epoll_wait, so the
    // engine must wake it (io_uring: task work queued to a sleeping task) rather than wait for our next syscall.
    const t = new Transport({ recvSlots: 8 });
    try {
      const h = t.open(HOST, 0);
      const rx = collect(t);
      const code = `
        const { workerData } = require('node:worker_threads');
        const s = require('node:dgram').createSocket('udp4');
        let k = 0;
        const iv = setInterval(() => {
          s.send(Buffer.from([k]), workerData.port, '127.0.0.1');
          if (++k === 10) { clearInterval(iv); setTimeout(() => s.close(), 20); }
        }, 10);
      `;
      const w = new Worker(code, { eval: true, workerData: { port: t.localPort(h) } });
      await rx.waitFor(10, 5000);
      await once(w, 'exit');
      assert.deepEqual(rx.got.map((g) => g.bytes[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const delays = rx.got.map((g) => g.seenMs - g.timeMs).sort((a, b) => a - b);
      assert.ok(delays[5]! < 20, `median stamp-to-callback ${delays[5]} ms`);
    } finally {
      t.destroy();
    }
  });

  test('a batch entry out of the arena is counted, not thrown; a count over capacity throws', () => {
    const t = new Transport({ sendArenaBytes: 1024, batchCapacity: 4 });
    try {
      const [a] = pair(t);
      queue(t, 0, a, 1000, 100);
      queue(t, 1, a, -1, 10);
      queue(t, 2, 12345, 0, 10);
      assert.equal(t.sendBatch(3), 0);
      assert.equal(t.stat('sendBadEntry'), 3);
      assert.throws(() => t.sendBatch(5), RangeError);
    } finally {
      t.destroy();
    }
  });

  test('a ring smaller than the burst is handed over and reused: nothing lost', async () => {
    const t = new Transport({ recvSlots: 4 });
    try {
      const handles: number[] = [];
      for (let i = 0; i < 5; i++) handles.push(...pair(t));
      const rx = collect(t);
      let k = 0;
      for (const h of handles) {
        queue(t, k++, h, 0, 10);
        queue(t, k++, h, 0, 10);
      }
      assert.equal(t.sendBatch(k), 20);
      await rx.waitFor(20);
      assert.ok(rx.callbacks.length >= 5, `20 datagrams through 4 slots took ${rx.callbacks.length} callbacks`);
      assert.ok(rx.callbacks.every((c) => c <= 4));
      assert.equal(t.stat('kernelDrops'), 0);
    } finally {
      t.destroy();
    }
  });

  test('500 sockets open, carry a datagram each and close without leaking a file descriptor', async () => {
    const before = fdCount();
    const t = new Transport({ recvSlots: 64, batchCapacity: 500 });
    const handles: number[] = [];
    for (let i = 0; i < 250; i++) handles.push(...pair(t));
    assert.equal(fdCount(), before + 501, '500 sockets and one epoll or io_uring fd');
    const rx = collect(t);
    handles.forEach((h, k) => queue(t, k, h, 0, 172));
    assert.equal(t.sendBatch(500), 500);
    await rx.waitFor(500);
    assert.equal(new Set(rx.got.map((g) => g.handle)).size, 500, 'one datagram on every socket');
    for (const h of handles) assert.equal(t.close(h), true);
    assert.equal(t.stat('openSockets'), 0);
    assert.equal(fdCount(), before + 1, 'only the epoll or io_uring fd remains');
    t.destroy();
    assert.equal(fdCount(), before);
    assert.equal(t.destroyed, true);
    assert.throws(() => t.open(HOST, 0), { code: 'ERR_TRANSPORT_DESTROYED' });
  });

  test('destroy with sockets open closes them all', () => {
    const before = fdCount();
    const t = new Transport();
    for (let i = 0; i < 20; i++) pair(t);
    assert.equal(fdCount(), before + 41);
    t.destroy();
    t.destroy();
    assert.equal(fdCount(), before);
  });

  test('works in a worker thread, and a worker that exits with sockets open closes every fd', async () => {
    const wrapper = new URL('../../workers/native/transport.js', import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.wrapper).then(({ Transport }) => {
        const t = new Transport({ recvSlots: 8, engine: workerData.engine });
        const a = t.open('127.0.0.1', 0);
        const b = t.open('127.0.0.1', 0, '127.0.0.1', t.localPort(a));
        t.connect(a, '127.0.0.1', t.localPort(b));
        const extra = [];
        for (let i = 0; i < 10; i++) extra.push(t.open('127.0.0.1', 0));
        t.sendArena.set([1, 2, 3, 4, 5], 0);
        t.batch.set([a, 0, 5, b, 0, 3]);
        t.onReceive((count) => {
          const got = [];
          for (let i = 0; i < count; i++) {
            const off = t.recvOffset(i);
            got.push([t.recvHandle(i) === a ? 'a' : 'b', [...t.recvArena.subarray(off, off + t.recvLength(i))]]);
          }
          // Left open on purpose: the worker's teardown must close them.
          parentPort.postMessage({ got, open: t.stat('openSockets'), engine: t.engine });
        });
        t.sendBatch(2);
      });
    `;
    const before = fdCount();
    const w = new Worker(code, { eval: true, workerData: { wrapper, engine } });
    const [msg] = (await once(w, 'message')) as [{ got: [string, number[]][]; open: number; engine: string }];
    assert.ok(fdCount() >= before + 13, 'the worker holds 12 sockets and an epoll or io_uring fd');
    assert.equal(msg.open, 12);
    assert.equal(msg.engine, engine);
    const got = new Map(msg.got);
    assert.deepEqual(got.get('b'), [1, 2, 3, 4, 5]);
    assert.deepEqual(got.get('a'), [1, 2, 3]);
    // The open sockets keep the worker's loop alive, like bound dgram sockets: end it from outside.
    const exited = once(w, 'exit');
    await w.terminate();
    await exited;
    assert.equal(fdCount(), before, 'every fd of the worker closed at its exit');
  });

  test('a worker that closes its sockets exits by itself', async () => {
    const wrapper = new URL('../../workers/native/transport.js', import.meta.url).href;
    const code = `
      const { workerData } = require('node:worker_threads');
      import(workerData.wrapper).then(({ Transport }) => {
        const t = new Transport({ engine: workerData.engine });
        const h = t.open('127.0.0.1', 0);
        setTimeout(() => t.close(h), 20);
      });
    `;
    const before = fdCount();
    const w = new Worker(code, { eval: true, workerData: { wrapper, engine } });
    const [exitCode] = (await once(w, 'exit')) as [number];
    assert.equal(exitCode, 0);
    assert.equal(fdCount(), before);
  });
  test('the ticker fires at about its period, below libuv 1 ms granularity, one call per wakeup', async () => {
    const t = new Transport();
    try {
      const periodUs = 500;
      const periodMs = periodUs / 1000;
      let calls = 0;
      let expirations = 0;
      let lastMs = 0;
      const start = performance.now();
      t.startTicker(periodUs, (n) => {
        calls++;
        expirations += n;
        lastMs = performance.now();
      });
      assert.equal(t.ticking, true);
      await sleep(400);
      t.stopTicker();
      const elapsed = performance.now() - start;
      const expected = elapsed / periodMs;
      // Behaviour, not speed: a loaded machine merges wakeups (one call for several periods), so only the upper
      // bound is firm; the kernel's expiration count below shows the period itself is 0.5 ms.
      assert.ok(calls > 0);
      assert.ok(calls <= 1.2 * expected, `${calls} callbacks in ${elapsed.toFixed(1)} ms, expected about ${expected.toFixed(0)}`);
      // The expiration counts add up to the periods that passed until the last callback: none lost, none invented.
      const periodsToLast = (lastMs - start) / periodMs;
      assert.ok(Math.abs(expirations - periodsToLast) <= 3, `${expirations} expirations, ${periodsToLast.toFixed(1)} periods`);
      assert.equal(t.stat('ticks'), calls);
      assert.equal(t.stat('ticks') + t.stat('ticksMissed'), expirations);
    } finally {
      t.destroy();
    }
  });

  test('stopTicker stops it: no callback after, also from inside the callback; it can start again', async () => {
    const t = new Transport();
    try {
      const c = new TickCounter();
      t.startTicker(200, c.tick);
      await c.reached(3);
      t.stopTicker();
      t.stopTicker();
      assert.equal(t.ticking, false);
      const atStop = c.n;
      await sleep(QUIET_MS);
      assert.equal(c.n, atStop, 'a callback after stopTicker');

      const inside = new TickCounter();
      t.startTicker(200, () => {
        inside.tick();
        if (inside.n === 5) t.stopTicker();
      });
      await inside.reached(5);
      await sleep(QUIET_MS);
      assert.equal(inside.n, 5, 'stopTicker from the callback is the last callback');

      // Starting a running ticker replaces its callback (and period).
      const first = new TickCounter();
      const second = new TickCounter();
      t.startTicker(200, first.tick);
      await first.reached(2);
      t.startTicker(300, second.tick);
      const firstAtSwap = first.n;
      await second.reached(2);
      t.stopTicker();
      assert.equal(first.n, firstAtSwap);
    } finally {
      t.destroy();
    }
  });

  test('destroy stops the ticker and closes its timerfd; a destroyed transport refuses to start one', async () => {
    const before = fdCount();
    const t = new Transport();
    const h = t.open(HOST, 0);
    const c = new TickCounter();
    t.startTicker(200, c.tick);
    await c.reached(1);
    assert.equal(fdCount(), before + 3, 'a socket, the epoll or io_uring fd and the timerfd');
    t.destroy();
    const atDestroy = c.n;
    await sleep(QUIET_MS);
    assert.equal(c.n, atDestroy, 'a callback after destroy');
    assert.equal(t.ticking, false);
    assert.equal(fdCount(), before);
    assert.equal(t.close(h), false);
    t.stopTicker();
    assert.throws(() => t.startTicker(200, () => {}), { code: 'ERR_TRANSPORT_DESTROYED' });
  });

  test('startTicker checks its arguments', () => {
    const t = new Transport();
    try {
      assert.throws(() => t.startTicker(5, () => {}), RangeError);
      assert.throws(() => t.startTicker(Number.NaN, () => {}), RangeError);
      assert.throws(() => t.startTicker(500, null as unknown as () => void), RangeError);
      assert.equal(t.ticking, false);
    } finally {
      t.destroy();
    }
  });

  test('the ticker works in a worker thread: it keeps the loop alive while it runs, and the worker exits once it stops', async () => {
    const wrapper = new URL('../../workers/native/transport.js', import.meta.url).href;
    // No socket: only the running ticker keeps this worker alive until its 50th tick.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.wrapper).then(({ Transport }) => {
        const t = new Transport({ engine: workerData.engine });
        const start = performance.now();
        let calls = 0;
        t.startTicker(500, () => {
          if (++calls < 50) return;
          t.stopTicker();
          parentPort.postMessage({ calls, ms: performance.now() - start, ticks: t.stat('ticks') });
        });
      });
    `;
    const before = fdCount();
    const w = new Worker(code, { eval: true, workerData: { wrapper, engine } });
    const exited = once(w, 'exit');
    const [msg] = (await once(w, 'message')) as [{ calls: number; ms: number; ticks: number }];
    const [exitCode] = (await exited) as [number];
    assert.equal(exitCode, 0);
    assert.equal(msg.calls, 50);
    assert.equal(msg.ticks, 50);
    assert.ok(msg.ms >= 50 * 0.5 - 1, `50 ticks of 0.5 ms in ${msg.ms} ms`);
    assert.equal(fdCount(), before, 'the worker closed its timerfd at exit');
  });

  test('a worker terminated with its ticker running closes everything', async () => {
    const wrapper = new URL('../../workers/native/transport.js', import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.wrapper).then(({ Transport }) => {
        const t = new Transport({ engine: workerData.engine });
        t.open('127.0.0.1', 0);
        let calls = 0;
        t.startTicker(250, () => { if (++calls === 10) parentPort.postMessage(calls); });
      });
    `;
    const before = fdCount();
    const w = new Worker(code, { eval: true, workerData: { wrapper, engine } });
    await once(w, 'message');
    assert.ok(fdCount() >= before + 3, 'the worker holds a socket, the epoll or io_uring fd and the timerfd');
    const exited = once(w, 'exit');
    await w.terminate();
    await exited;
    assert.equal(fdCount(), before);
  });
});

/** The scheduling policy of the calling thread (field 41 of /proc/thread-self/stat: 0 normal, 1 SCHED_FIFO). */
function threadPolicy(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]);
}

describe('thread priority', { skip: unavailable ? `native transport not built: ${unavailable.message}` : false }, () => {
  test('setThreadPriority changes the calling thread only: SCHED_FIFO in a worker, back to normal with 0', async () => {
    const wrapper = new URL('../../workers/native/transport.js', import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { readFileSync } = require('node:fs');
      ${threadPolicy.toString()}
      import(workerData.wrapper).then(({ setThreadPriority }) => {
        const before = threadPolicy();
        const refused = setThreadPriority(10);
        const during = threadPolicy();
        const reset = setThreadPriority(0);
        parentPort.postMessage({ before, refused, during, reset, after: threadPolicy() });
      });
    `;
    const w = new Worker(code, { eval: true, workerData: { wrapper } });
    const [msg] = (await once(w, 'message')) as [{ before: number; refused: string; during: number; reset: string; after: number }];
    await once(w, 'exit');
    assert.equal(msg.before, 0);
    if (mayUseRealtime()) {
      assert.equal(msg.refused, '');
      assert.equal(msg.during, 1, 'SCHED_FIFO');
    } else {
      assert.equal(msg.refused, 'EPERM', 'without CAP_SYS_NICE the refusal comes back as its errno name');
      assert.equal(msg.during, 0);
    }
    assert.equal(msg.reset, '');
    assert.equal(msg.after, 0);
    assert.equal(threadPolicy(), 0, 'the main thread kept its normal scheduling');
  });

  test('setThreadPriority refuses a priority outside 0-99', () => {
    for (const bad of [-1, 100, 1.5, Number.NaN]) assert.throws(() => setThreadPriority(bad), RangeError, String(bad));
  });
});

describe('native transport engine choice', { skip: unavailable ? `native transport not built: ${unavailable.message}` : false }, () => {
  test("'auto' runs io_uring where it can and says why when it cannot", () => {
    const t = new BaseTransport({ engine: 'auto' });
    try {
      if (t.engine === 'epoll') assert.match(t.engineNote, /io_uring unavailable/);
      else assert.equal(t.engineNote, '');
    } finally {
      t.destroy();
    }
  });

  test('an unknown engine is refused', () => {
    assert.throws(() => new BaseTransport({ engine: 'kqueue' as TransportEngine }), RangeError);
  });
});
