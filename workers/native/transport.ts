/**
 * Typed wrapper of the native media transport (workers/native/src/transport.cc): one Transport per thread, each leg
 * its own connected non-blocking UDP socket, sends batched into one call per tick, receives drained in C++ into a
 * fixed ring and handed to JS with one callback per drain. Two engines with the same API: 'io_uring' (one
 * io_uring_enter per sendBatch, multishot recvmsg into the receive arena: no syscall per received datagram) where
 * the kernel allows it, else 'epoll' (send(2) per datagram, epoll_wait + recvmmsg per ready socket).
 *
 * Hot paths use the typed arrays directly; nothing here allocates per packet:
 *   send:    write packets into `sendArena` once, patch header fields in place, then per tick
 *            batch[3k] = handle, batch[3k+1] = offset, batch[3k+2] = length for k < count, and `sendBatch(count)`.
 *   receive: onReceive((count) => { for i < count: handle = recvMeta[3i], payload offset in recvArena =
 *            recvMeta[3i+1], length = recvMeta[3i+2], kernel receive time recvTime[i] (performance.now() ms) }).
 *            Entries and their bytes are valid only during the callback; a full ring is handed over and reused.
 *   errors:  never thrown per packet; counted in `stats` (see STAT), read with stat() or statsSnapshot(), and per
 *            socket (socketStats: sends that never left and the RTP sequence number of the last, kernel receive
 *            drops, truncations). With io_uring a send failure is counted when a drain reaps it (asynchronously,
 *            within the tick) or at once by settle().
 *   call end: settle() reaps every completion and delivers every datagram already queued (through onReceive),
 *            then socketStats(handle, out) for each of the call's sockets, then close(handle).
 *   ticker:  startTicker(periodUs, cb) paces a thread below libuv's 1 ms timer granularity: a periodic
 *            CLOCK_MONOTONIC timerfd on the thread's loop, one callback per wakeup (with the number of periods
 *            that passed), stopTicker() to end it. Either engine.
 *
 * The addon is optional: build it with `npx node-gyp rebuild -C workers/native` (add `--nodedir=/usr` where
 * node-gyp cannot download headers). loadNativeTransport() throws, and nativeTransportError() says why, when it is
 * missing. RTP_BENCH_NATIVE_TRANSPORT=/path/to/rtp_transport.node overrides where it is looked for.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

/** Indices into `stats` (must match kStatNames in the addon; checked at load). */
export const STAT = {
  sent: 0,
  sendEagain: 1,
  sendConnRefused: 2,
  sendOtherError: 3,
  /** Batch entries with a closed/unknown handle or a range outside sendArena. */
  sendBadEntry: 4,
  received: 5,
  recvConnRefused: 6,
  recvOtherError: 7,
  /** Datagrams longer than slotBytes (delivered cut to slotBytes). */
  truncated: 8,
  /**
   * Datagrams the kernel dropped at a socket (receive queue full): the sum of the sockets' receiveDrops, live from
   * SO_RXQ_OVFL on later datagrams, exact (SO_MEMINFO) at socketStats() and at close().
   */
  kernelDrops: 9,
  callbacks: 10,
  polls: 11,
  /** Datagrams drained while no onReceive callback was set. */
  droppedNoCallback: 12,
  lastSendErrno: 13,
  lastRecvErrno: 14,
  openSockets: 15,
  /** io_uring: multishot receives re-armed after they ended (buffer exhaustion, socket error). */
  rearms: 16,
  /** io_uring: a receive found no free buffer (the ring was full); the datagrams waited in the socket. */
  bufferExhausted: 17,
  /** Ticker callbacks (one per timerfd readiness). */
  ticks: 18,
  /** Ticker periods that passed without a callback of their own (the thread was busy longer than a period). */
  ticksMissed: 19,
  /** io_uring: drains that found completions waiting in the kernel's overflow list (the CQ had filled) and moved them in. */
  cqOverflows: 20,
  /** io_uring: completions the kernel could not keep at all (out of memory for its overflow list). Should stay 0. */
  cqeLost: 21,
  /** settle() calls that ran (not the refused, re-entrant ones). */
  settles: 22,
} as const;
export type StatName = keyof typeof STAT;
export type TransportStats = Record<StatName, number>;

/** Int32 entries per received datagram in recvMeta: handle, payload offset in recvArena, length. */
export const RECV_META_STRIDE = 3;

/** Indices into the Float64Array socketStats() fills (must match kSockStatNames in the addon; checked at load). */
export const SOCKET_STAT = {
  /**
   * Batch entries for this socket that never became a datagram on the wire: refused by the kernel (epoll: send(2)
   * failed; io_uring: a failed SEND completion, counted once reaped by a drain or settle()), not queued at all
   * (io_uring: no submission entry), or a range outside sendArena.
   */
  sendFailed: 0,
  /** RTP sequence number (bytes 2-3, big endian) of the latest of them; -1 when none, or it was under 4 bytes. */
  lastFailedSeq: 1,
  /** Datagrams the kernel dropped at this socket because its receive queue was full (SO_MEMINFO: exact, now). */
  receiveDrops: 2,
  /** Datagrams delivered cut to the slot size. */
  truncated: 3,
} as const;
export type SocketStatName = keyof typeof SOCKET_STAT;
export const SOCKET_STAT_SEND_FAILED = SOCKET_STAT.sendFailed;
export const SOCKET_STAT_LAST_FAILED_SEQ = SOCKET_STAT.lastFailedSeq;
export const SOCKET_STAT_RECEIVE_DROPS = SOCKET_STAT.receiveDrops;
export const SOCKET_STAT_TRUNCATED = SOCKET_STAT.truncated;
/** Length of the Float64Array socketStats() fills. */
export const SOCKET_STATS_LENGTH = 4;

export type TransportEngine = 'io_uring' | 'epoll';
/** Int32 entries per batch entry: handle, offset, length. */
export const BATCH_STRIDE = 3;

export interface TransportOptions {
  /** Bytes of the send arena (default 1 MiB). */
  sendArenaBytes?: number;
  /** Entries a sendBatch call can take (default 4096). */
  batchCapacity?: number;
  /** Receive ring slots (default 1024). */
  recvSlots?: number;
  /** Bytes per receive slot (default 2048; io_uring keeps 80 of them for its header and control data). */
  slotBytes?: number;
  /**
   * 'auto' (default: io_uring, else epoll), or one engine ('io_uring' throws where it is unavailable). The
   * RTP_BENCH_NATIVE_ENGINE environment variable sets the default.
   */
  engine?: TransportEngine | 'auto';
  /**
   * SO_RCVBUF asked for every socket this transport opens (default 0: the system's, net.core.rmem_default). The
   * kernel doubles it and caps it at net.core.rmem_max. A larger queue rides out longer stalls of the thread.
   */
  recvBufferBytes?: number;
}

/** The addon's class as JS sees it. */
export interface NativeTransport {
  readonly sendArena: ArrayBuffer;
  readonly batch: Int32Array;
  readonly recvArena: ArrayBuffer;
  readonly recvMeta: Int32Array;
  readonly recvTime: Float64Array;
  readonly stats: Float64Array;
  readonly destroyed: boolean;
  readonly engine: TransportEngine;
  /** Why 'auto' fell back to epoll ('' otherwise). */
  readonly engineNote: string;
  open(localIp: string, localPort: number, remoteIp?: string | null, remotePort?: number): number;
  connect(handle: number, remoteIp: string, remotePort: number): void;
  localPort(handle: number): number;
  close(handle: number): boolean;
  sendBatch(count: number): number;
  settle(): number;
  socketStats(handle: number, out: Float64Array): boolean;
  onReceive(callback: ((count: number) => void) | null): void;
  setTimeOrigin(monotonicMs: number): void;
  startTicker(periodUs: number, callback: (expirations: number) => void): void;
  stopTicker(): void;
  readonly ticking: boolean;
  destroy(): void;
}

export interface NativeBinding {
  Transport: new (options?: TransportOptions) => NativeTransport;
  monotonicNowMs(): number;
  /** '' or the errno name of the refusal; see setThreadPriority() below. */
  setThreadPriority(fifoPriority: number): string;
  statNames: readonly string[];
  socketStatNames: readonly string[];
  recvMetaStride: number;
}

let binding: NativeBinding | null = null;
let loadError: Error | null = null;

function candidates(): string[] {
  const env = process.env.RTP_BENCH_NATIVE_TRANSPORT;
  const rel = ['./build/Release/rtp_transport.node', '../../../workers/native/build/Release/rtp_transport.node'];
  return [...(env ? [env] : []), ...rel.map((r) => fileURLToPath(new URL(r, import.meta.url)))];
}

/** The addon, loaded once per thread; throws with the places looked in when it is not built. */
export function loadNativeTransport(): NativeBinding {
  if (binding) return binding;
  if (loadError) throw loadError;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const file of candidates()) {
    tried.push(file);
    if (!existsSync(file)) continue;
    try {
      const b = require(file) as NativeBinding;
      const names = Object.keys(STAT);
      if (b.statNames.length !== names.length || b.statNames.some((n, i) => n !== names[i])) {
        throw new Error(`stat layout mismatch: addon has [${b.statNames.join(', ')}]; rebuild it`);
      }
      const socketNames = Object.keys(SOCKET_STAT);
      if (
        !Array.isArray(b.socketStatNames) ||
        b.socketStatNames.length !== SOCKET_STATS_LENGTH ||
        b.socketStatNames.some((n, i) => n !== socketNames[i])
      ) {
        throw new Error(`socket stat layout mismatch: addon has [${String(b.socketStatNames)}]; rebuild it`);
      }
      if (b.recvMetaStride !== RECV_META_STRIDE) throw new Error('recvMeta stride mismatch; rebuild the addon');
      binding = b;
      return b;
    } catch (err) {
      loadError = new Error(`native transport ${file} failed to load: ${(err as Error).message}`, { cause: err });
      throw loadError;
    }
  }
  loadError = new Error(
    `native transport not built (looked in ${tried.join(', ')}); run: npx node-gyp rebuild -C workers/native`,
  );
  throw loadError;
}

/**
 * Scheduling of the calling thread: `fifoPriority` 1-99 makes it SCHED_FIFO (it then preempts every normal thread
 * the moment it wakes), 0 puts it back to normal. Returns '' on success or the errno name (EPERM without root or
 * CAP_SYS_NICE). Linux threads are scheduled one by one, so this changes only the thread that calls it.
 */
export function setThreadPriority(fifoPriority: number, b: NativeBinding = loadNativeTransport()): string {
  return b.setThreadPriority(fifoPriority);
}

/** Why the addon cannot be used here, or null when it can. */
export function nativeTransportError(): Error | null {
  try {
    loadNativeTransport();
    return null;
  } catch (err) {
    return err as Error;
  }
}

/**
 * CLOCK_MONOTONIC milliseconds at performance.now() == 0, from the tightest of a few bracketed samples (error
 * below 1 us on this machine). Kernel receive stamps are shifted by this so they compare with performance.now().
 */
export function performanceOriginMonotonicMs(b: NativeBinding = loadNativeTransport()): number {
  let best = 0;
  let bestSpan = Infinity;
  for (let i = 0; i < 25; i++) {
    const p1 = performance.now();
    const m = b.monotonicNowMs();
    const p2 = performance.now();
    if (p2 - p1 < bestSpan) {
      bestSpan = p2 - p1;
      best = m - (p1 + p2) / 2;
    }
  }
  return best;
}

export class Transport {
  /** Packets to send live here; batch entries point into it. */
  readonly sendArena: Uint8Array;
  /** (handle, offset, length) triples for sendBatch. */
  readonly batch: Int32Array;
  readonly batchCapacity: number;
  /** Received datagrams: slot i starts at i * slotBytes. */
  readonly recvArena: Uint8Array;
  /** Per entry: handle, payload offset in recvArena, length (RECV_META_STRIDE entries). */
  readonly recvMeta: Int32Array;
  /** Per entry: kernel receive time on the performance.now() clock (ms). */
  readonly recvTime: Float64Array;
  readonly engine: TransportEngine;
  /** Why 'auto' fell back to epoll ('' otherwise). */
  readonly engineNote: string;
  readonly slotBytes: number;
  readonly recvSlots: number;
  /** Live counters, indexed by STAT. */
  readonly stats: Float64Array;
  private readonly native: NativeTransport;

  constructor(options: TransportOptions = {}) {
    const b = loadNativeTransport();
    const envEngine = process.env.RTP_BENCH_NATIVE_ENGINE;
    const engine = options.engine ?? (envEngine === 'epoll' || envEngine === 'io_uring' ? envEngine : 'auto');
    this.native = new b.Transport({ ...options, engine });
    this.engine = this.native.engine;
    this.engineNote = this.native.engineNote;
    this.native.setTimeOrigin(performanceOriginMonotonicMs(b));
    this.sendArena = new Uint8Array(this.native.sendArena);
    this.batch = this.native.batch;
    this.batchCapacity = this.batch.length / BATCH_STRIDE;
    this.recvArena = new Uint8Array(this.native.recvArena);
    this.recvMeta = this.native.recvMeta;
    this.recvTime = this.native.recvTime;
    this.recvSlots = this.recvTime.length;
    this.slotBytes = this.recvArena.length / this.recvSlots;
    this.stats = this.native.stats;
  }

  /**
   * A non-blocking UDP socket bound exclusively to localIp:localPort (0: any free port), connected to the remote
   * when one is given, with kernel receive timestamps on. Throws an Error whose message names the address and whose
   * code is the errno name (EADDRINUSE, EADDRNOTAVAIL, ...).
   */
  open(localIp: string, localPort: number, remoteIp?: string, remotePort?: number): number {
    return remoteIp === undefined
      ? this.native.open(localIp, localPort)
      : this.native.open(localIp, localPort, remoteIp, remotePort ?? 0);
  }

  /** Connects (or re-connects) an open socket: rtpengine's port is known only after the offer/answer. */
  connect(handle: number, remoteIp: string, remotePort: number): void {
    this.native.connect(handle, remoteIp, remotePort);
  }

  localPort(handle: number): number {
    return this.native.localPort(handle);
  }

  /** Closes the socket; false when the handle is not open (already closed, or never this transport's). */
  close(handle: number): boolean {
    return this.native.close(handle);
  }

  /**
   * Sends batch entries [0, count) and returns how many were handed to the kernel; the rest are counted in stats
   * and in their socket's sendFailed. epoll: that is what send(2) accepted. io_uring: what was queued; the kernel's
   * refusals come back as completions, counted by the next drain or by settle(). Either way the payload bytes have
   * been copied into the kernel when this returns: the arena may be rewritten at once.
   */
  sendBatch(count: number): number {
    return this.native.sendBatch(count);
  }

  /**
   * Synchronously reaps what is already there, exactly as the polls would: every io_uring completion (send
   * failures, counted for their sockets) and every datagram already queued on the sockets, delivered through the
   * onReceive callback before this returns. Returns how many datagrams it delivered. Call it right before closing
   * a call's sockets (from a timer, the ticker or any code outside the receive callback) so that socketStats() then
   * knows the fate of every send and nothing that arrived is left unreported.
   *
   * Returns -1 and does nothing when called from inside the receive callback (or, when a poll runs the drain, from a
   * microtask the callback queued: Node runs those before the poll's callback returns): the drain owns the
   * completion queue and ring entries until it returns; call it again from outside. A receive
   * callback that throws stops it, and settle() rethrows that error. Returns 0 once destroyed.
   */
  settle(): number {
    return this.native.settle();
  }

  /**
   * Fills `out` (a Float64Array of at least SOCKET_STATS_LENGTH entries, indexed by SOCKET_STAT) with the socket's
   * counters: sendFailed, lastFailedSeq, receiveDrops (read from the kernel now: exact), truncated. Returns false,
   * leaving `out` untouched, when the handle is not open: the counters go with the socket, so read them before
   * close(). One getsockopt(2) per call, no allocation.
   */
  socketStats(handle: number, out: Float64Array): boolean {
    return this.native.socketStats(handle, out);
  }

  /** The receive callback (null: drained datagrams are counted as droppedNoCallback). */
  onReceive(callback: ((count: number) => void) | null): void {
    this.native.onReceive(callback);
  }

  /** Handle of the socket that received ring entry i. */
  recvHandle(i: number): number {
    return this.recvMeta[RECV_META_STRIDE * i]!;
  }

  /** Byte offset in recvArena of ring entry i's payload. */
  recvOffset(i: number): number {
    return this.recvMeta[RECV_META_STRIDE * i + 1]!;
  }

  /** Payload length of ring entry i. */
  recvLength(i: number): number {
    return this.recvMeta[RECV_META_STRIDE * i + 2]!;
  }

  stat(name: StatName): number {
    return this.stats[STAT[name]]!;
  }

  statsSnapshot(): TransportStats {
    const out = {} as TransportStats;
    for (const [name, i] of Object.entries(STAT) as [StatName, number][]) out[name] = this.stats[i]!;
    return out;
  }

  /**
   * Calls `callback` every `periodUs` microseconds (10 us to 10 s) from this thread's event loop: a periodic
   * CLOCK_MONOTONIC timerfd watched by libuv, so the period is not rounded to libuv's whole milliseconds. One call
   * per wakeup: `expirations` > 1 says periods passed while the thread was busy (counted in `ticksMissed`); nothing
   * is queued to catch up. Calling it again re-arms with the new period and callback. While running it keeps the
   * thread's loop alive, like setInterval; after stopTicker() or destroy() it does not, and no callback follows.
   * Throws once destroyed.
   */
  startTicker(periodUs: number, callback: (expirations: number) => void): void {
    this.native.startTicker(periodUs, callback);
  }

  /** Stops the ticker: no callback after this returns (also when called from the callback). Idempotent. */
  stopTicker(): void {
    this.native.stopTicker();
  }

  get ticking(): boolean {
    return this.native.ticking;
  }

  get destroyed(): boolean {
    return this.native.destroyed;
  }

  /** Closes every socket, the ticker and the epoll fd; idempotent. A worker thread's exit does the same by itself. */
  destroy(): void {
    this.native.destroy();
  }
}
