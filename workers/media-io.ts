/**
 * A media thread's UDP I/O, behind one small interface so a leg does not care how its packets travel:
 *
 * - `dgram`: Node's dgram, one connected socket per leg and RTP/RTCP. Per packet: one syscall each way, plus
 *   Node's own Buffer, rinfo and callback per received datagram. About 7-10 us of CPU per packet operation here.
 * - `native`: the addon in workers/native (io_uring where the kernel allows it, else epoll): the packets of a tick go
 *   out in one call, received datagrams land in a preallocated arena with kernel timestamps and reach JS in one
 *   callback per drain. About 2.5 us per packet operation here (bench/native-loop.ts). It also drives the
 *   scheduler's tick from a timerfd (startTicker), below libuv's 1 ms timer granularity. Optional: built by
 *   `npm run build:native`; `auto` falls back to dgram when it is missing.
 *
 * Both: packets a leg sends are buffers it got from allocPackets(), written once and patched in place; a received
 * packet is handed over as (buffer, length, arrival time) and is valid only during the call.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { Transport, nativeTransportError, SOCKET_STAT, SOCKET_STATS_LENGTH } from './native/transport.js';
import { udpReceiveDrops } from '../src/udp-table.js';
import { MAX_CALLS_PER_THREAD } from '../src/media/task.js';
import type { IoChoice } from '../src/run-plan.js';

/** Called per received datagram: `packet` starts at the datagram, `length` bytes of it are valid; only during the call. */
export type PacketHandler = (packet: Buffer, length: number, arrivalMs: number) => void;

/**
 * Told when a packet given to send() actually left. The time is when the kernel took it, not when it was queued:
 * native I/O sends a tick's packets in one syscall at flush(), so a packet queued early in a tick leaves later.
 */
export interface SendListener {
  /** `token` as given to send(); `atMs` on the performance.now() clock. Not called for a packet never handed over. */
  sent(token: number, atMs: number): void;
}

/** What one socket's sends and receives cost the generator itself (read before close()). */
export interface SocketCounters {
  /** Datagrams the kernel refused (full socket buffer, ICMP error, ...): generator drops, never the system's loss. */
  sendFailed: number;
  /** The token of the most recent refused datagram (an RTP leg passes its sequence number), -1 if none. */
  lastFailedToken: number;
  /** Datagrams the kernel dropped at this socket because its receive queue was full; null if it cannot be known. */
  receiveDrops: number | null;
  /** Datagrams delivered cut short (longer than a receive slot). */
  truncated: number;
}

export interface MediaSocket {
  /**
   * Sends `length` bytes of a buffer from allocPackets(). With native I/O it leaves at the next flush(); the buffer
   * must not be rewritten before then. `listener.sent(token, at)` follows once it has left (listener may be null).
   */
  send(packet: Buffer, length: number, listener: SendListener | null, token: number): void;
  /**
   * Sends handed to the kernel's socket whose completion has not been seen yet. A buffer whose earlier send is
   * still among these must not be rewritten: dgram may queue a datagram (and its bytes) when the socket is full.
   */
  readonly pendingSends: number;
  counters(): SocketCounters;
  /** SocketCounters.sendFailed alone, cheaply (no /proc read): read once when a fault is watched. */
  sendFailures(): number;
  /**
   * Sends to another address from now on, and takes packets only from there (a connected socket): a failover's
   * re-point. Throws when the address cannot be connected to.
   */
  connect(remoteIp: string, remotePort: number): void;
  close(): void;
}

export interface MediaIo {
  /** What actually carries the packets: 'dgram', 'native io_uring' or 'native epoll'. */
  readonly name: string;
  /** Binds localIp:localPort (exclusive) and connects to the remote; rejects with the address in the message. */
  open(localIp: string, localPort: number, remoteIp: string, remotePort: number, onPacket: PacketHandler): Promise<MediaSocket>;
  /**
   * Buffers to build packets in, one per size; give them back with freePackets() when the leg ends. Throws when the
   * thread has no room left (native: its send arena), with a message that says what to do.
   */
  allocPackets(sizes: readonly number[]): Buffer[];
  freePackets(buffers: readonly Buffer[]): void;
  /** End of a scheduler tick: sends what send() queued, and tells each packet's listener when it left. */
  flush(): void;
  /**
   * Before a call's sockets close: every send's fate is known (completions reaped, counted per socket) and
   * whatever already arrived has been handed to its PacketHandler.
   */
  settle(): void;
  /**
   * Optional: calls `onTick` every `periodMs` (fractions allowed) from this thread's loop, finer than libuv's 1 ms
   * timers. False when it cannot (the scheduler then uses setInterval). Running, it keeps the thread alive like
   * setInterval; stopTicker() ends it, and no call follows.
   */
  startTicker?(periodMs: number, onTick: () => void): boolean;
  stopTicker?(): void;
}

/** Picks the I/O for a thread; `auto` prefers native and says why it could not have it. */
export function createMediaIo(choice: IoChoice): { io: MediaIo; note: string } {
  if (choice === 'dgram') return { io: new DgramIo(), note: 'dgram (--io dgram)' };
  const missing = nativeTransportError();
  if (missing !== null) {
    if (choice === 'native') throw missing;
    return { io: new DgramIo(), note: `dgram (native I/O unavailable: ${missing.message})` };
  }
  const io = new NativeIo();
  return { io, note: io.name + (io.engineNote ? ` (${io.engineNote})` : '') };
}

class DgramIo implements MediaIo {
  readonly name = 'dgram';

  open(localIp: string, localPort: number, remoteIp: string, remotePort: number, onPacket: PacketHandler): Promise<MediaSocket> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type: 'udp4', reuseAddr: false });
      const fail = (err: Error): void => {
        socket.close();
        reject(new SocketOpenError(localIp, localPort, err));
      };
      socket.once('error', fail);
      socket.bind({ address: localIp, port: localPort, exclusive: true }, () => {
        socket.connect(remotePort, remoteIp, () => {
          socket.off('error', fail);
          resolve(new DgramSocket(socket, localIp, localPort, onPacket));
        });
      });
    });
  }

  allocPackets(sizes: readonly number[]): Buffer[] {
    return sizes.map((size) => Buffer.alloc(size));
  }

  freePackets(): void {}

  flush(): void {}

  /** dgram reports completions on the event loop by itself; a closing call's drain period has let them run. */
  settle(): void {}
}

/** Sends whose completion is awaited, per socket; more than this many at once means the socket is badly stuck. */
const DGRAM_TOKEN_RING = 64;

class DgramSocket implements MediaSocket {
  private sendFailed = 0;
  private lastFailedToken = -1;
  /** Tokens of sends awaiting their completion, in send order (dgram completes a socket's sends in order). */
  private readonly tokens = new Int32Array(DGRAM_TOKEN_RING);
  private issued = 0;
  private completed = 0;
  private closedCounters: SocketCounters | null = null;
  /** While a re-point's connect completes: where to send, explicitly (an unconnected dgram socket needs it). */
  private reconnecting: { ip: string; port: number } | null = null;

  constructor(
    private readonly socket: dgram.Socket,
    private readonly localIp: string,
    private readonly localPort: number,
    onPacket: PacketHandler,
  ) {
    // Connected UDP sockets report ICMP errors (ECONNREFUSED while nobody listens yet) as socket errors too; the
    // sends they belong to are counted by onSendDone.
    socket.on('error', () => undefined);
    socket.on('message', (msg: Buffer) => onPacket(msg, msg.length, performance.now()));
  }

  /** One callback for every send of this socket: no closure per packet. */
  private readonly onSendDone = (err: Error | null): void => {
    const token = this.tokens[this.completed % DGRAM_TOKEN_RING]!;
    this.completed++;
    if (err) {
      this.sendFailed++;
      this.lastFailedToken = token;
    }
  };

  get pendingSends(): number {
    return this.issued - this.completed;
  }

  send(packet: Buffer, length: number, listener: SendListener | null, token: number): void {
    if (this.issued - this.completed >= DGRAM_TOKEN_RING) {
      // Never happens while the caller respects pendingSends; if it does, the send is refused, and counted as such.
      this.sendFailed++;
      this.lastFailedToken = token;
      return;
    }
    this.tokens[this.issued % DGRAM_TOKEN_RING] = token;
    this.issued++;
    // The whole buffer when possible: dgram slices (allocates) a view for an offset/length send. libuv tries the
    // send at once and queues it only when the socket is full, so "now" is when it left in all but that case.
    if (this.reconnecting !== null) this.socket.send(packet, 0, length, this.reconnecting.port, this.reconnecting.ip, this.onSendDone);
    else if (length === packet.length) this.socket.send(packet, this.onSendDone);
    else this.socket.send(packet, 0, length, this.onSendDone);
    listener?.sent(token, performance.now());
  }

  counters(): SocketCounters {
    if (this.closedCounters !== null) return this.closedCounters;
    return {
      sendFailed: this.sendFailed,
      lastFailedToken: this.lastFailedToken,
      receiveDrops: udpReceiveDrops(this.localIp, this.localPort, performance.now()),
      truncated: 0,
    };
  }

  sendFailures(): number {
    return this.closedCounters?.sendFailed ?? this.sendFailed;
  }

  /**
   * dgram connects asynchronously (an address lookup first, even for an IP): until its callback the socket is
   * unconnected and sends name the address themselves. A re-point happens once per fault, not per packet.
   */
  connect(remoteIp: string, remotePort: number): void {
    if (this.closedCounters !== null) return;
    this.socket.disconnect();
    const target = { ip: remoteIp, port: remotePort };
    this.reconnecting = target;
    this.socket.connect(remotePort, remoteIp, () => {
      if (this.reconnecting === target) this.reconnecting = null;
    });
  }

  close(): void {
    if (this.closedCounters !== null) return;
    this.closedCounters = this.counters();
    // Sends still queued in libuv when the socket closes fail with their callback: count them as failed.
    this.closedCounters.sendFailed += this.issued - this.completed;
    this.socket.close();
  }
}

/** A socket could not be opened: the address, the port and the system's reason, with its errno name. */
export class SocketOpenError extends Error {
  override readonly name = 'SocketOpenError';
  readonly code: string | undefined;

  constructor(localIp: string, localPort: number, cause: Error) {
    super(`cannot use local port ${localIp}:${localPort}: ${cause.message}`, { cause });
    this.code = (cause as NodeJS.ErrnoException).code;
  }
}

/** Bytes of send arena per block: one leg's packets (25 frames of at most ~250 bytes) or one RTCP buffer. */
const ARENA_BLOCK = 8192;
/** One block per leg (its packets and RTCP buffer): two per call. */
const ARENA_BLOCKS = 2 * MAX_CALLS_PER_THREAD;

/**
 * A sendBatch entry costs 1-5 us here (bench/native-loop.ts); a batch that took more than this per entry was
 * preempted while in the kernel, and its entries' departure times cannot be interpolated.
 */
const PLAUSIBLE_SEND_US = 25;

class NativeIo implements MediaIo {
  readonly name: string;
  readonly engineNote: string;
  private readonly transport: Transport;
  private readonly arena: Buffer;
  private readonly freeBlocks: number[] = [];
  private readonly handlers: (PacketHandler | undefined)[] = [];
  private queued = 0;
  /** Per batch entry: who to tell when it left, and with what token. */
  private readonly listeners: (SendListener | null)[];
  private readonly tokens: Int32Array;
  private readonly statsOut = new Float64Array(SOCKET_STATS_LENGTH);
  /** One view per receive slot, made on first use: a slot's data offset is fixed per engine. */
  private readonly slotViews: (Buffer | undefined)[];
  private readonly slotViewOffsets: Int32Array;

  constructor() {
    this.transport = new Transport({ sendArenaBytes: ARENA_BLOCK * ARENA_BLOCKS, recvSlots: 4096 });
    this.name = `native ${this.transport.engine}`;
    this.engineNote = this.transport.engineNote;
    const a = this.transport.sendArena;
    this.arena = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (let b = ARENA_BLOCKS - 1; b >= 0; b--) this.freeBlocks.push(b);
    this.listeners = new Array<SendListener | null>(this.transport.batchCapacity).fill(null);
    this.tokens = new Int32Array(this.transport.batchCapacity);
    this.slotViews = new Array<Buffer | undefined>(this.transport.recvSlots);
    this.slotViewOffsets = new Int32Array(this.transport.recvSlots).fill(-1);
    this.transport.onReceive(this.onReceive);
  }

  open(localIp: string, localPort: number, remoteIp: string, remotePort: number, onPacket: PacketHandler): Promise<MediaSocket> {
    let handle: number;
    try {
      handle = this.transport.open(localIp, localPort, remoteIp, remotePort);
    } catch (err) {
      return Promise.reject(new SocketOpenError(localIp, localPort, err as Error));
    }
    this.handlers[handle] = onPacket;
    let closed: SocketCounters | null = null;
    const socket: MediaSocket = {
      send: (packet, length, listener, token) => this.enqueue(handle, packet, length, listener, token),
      // Native sends complete inside flush(): nothing is left pending across ticks.
      pendingSends: 0,
      counters: () => closed ?? this.countersOf(handle),
      sendFailures: () => (closed ?? this.countersOf(handle)).sendFailed,
      connect: (remoteIp, remotePort) => {
        // A UDP socket may connect again: the kernel just changes its peer (in-flight sends keep the old one).
        if (closed === null) this.transport.connect(handle, remoteIp, remotePort);
      },
      close: () => {
        if (closed !== null) return;
        closed = this.countersOf(handle);
        this.handlers[handle] = undefined;
        this.transport.close(handle);
      },
    };
    return Promise.resolve(socket);
  }

  private countersOf(handle: number): SocketCounters {
    const out = this.statsOut;
    // Only ever asked for open sockets (close() keeps the last reading); a closed one has nothing to say.
    if (!this.transport.socketStats(handle, out)) return { sendFailed: 0, lastFailedToken: -1, receiveDrops: null, truncated: 0 };
    return {
      sendFailed: out[SOCKET_STAT.sendFailed]!,
      lastFailedToken: out[SOCKET_STAT.lastFailedSeq]!,
      receiveDrops: out[SOCKET_STAT.receiveDrops]!,
      truncated: out[SOCKET_STAT.truncated]!,
    };
  }

  allocPackets(sizes: readonly number[]): Buffer[] {
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total > ARENA_BLOCK) throw new Error(`packets of ${total} bytes do not fit one ${ARENA_BLOCK}-byte arena block`);
    const block = this.freeBlocks.pop();
    if (block === undefined) {
      throw new Error(`this media thread's send arena is full (${MAX_CALLS_PER_THREAD} calls per thread at most): add --threads`);
    }
    let offset = block * ARENA_BLOCK;
    return sizes.map((size) => {
      const view = this.arena.subarray(offset, offset + size);
      offset += size;
      return view;
    });
  }

  freePackets(buffers: readonly Buffer[]): void {
    const first = buffers[0];
    if (first !== undefined) this.freeBlocks.push(Math.floor((first.byteOffset - this.arena.byteOffset) / ARENA_BLOCK));
  }

  private enqueue(handle: number, packet: Buffer, length: number, listener: SendListener | null, token: number): void {
    const batch = this.transport.batch;
    const q = this.queued;
    const i = 3 * q;
    batch[i] = handle;
    batch[i + 1] = packet.byteOffset - this.arena.byteOffset;
    batch[i + 2] = length;
    this.listeners[q] = listener;
    this.tokens[q] = token;
    if (++this.queued === this.transport.batchCapacity) this.flush();
  }

  flush(): void {
    const n = this.queued;
    if (n === 0) return;
    const t0 = performance.now();
    this.transport.sendBatch(n);
    const t1 = performance.now();
    this.queued = 0;
    // The kernel takes the entries one after another within the call: entry i left about (i + 1) / n of the way
    // through it. Interpolating keeps the error under one entry's share instead of the whole batch's. But a call
    // that took far longer than sending costs was preempted somewhere inside: when each entry left is then
    // unknown, and t0, before any of them, is the one time that is never after a packet's arrival.
    const step = t1 - t0 <= n * PLAUSIBLE_SEND_US / 1000 ? (t1 - t0) / n : 0;
    const listeners = this.listeners;
    for (let i = 0; i < n; i++) {
      const listener = listeners[i];
      if (listener !== null && listener !== undefined) {
        listeners[i] = null;
        listener.sent(this.tokens[i]!, step === 0 ? t0 : t0 + step * (i + 1));
      }
    }
  }

  /** Called from timers (a call's end), never from inside a receive callback, where the addon refuses (-1). */
  settle(): void {
    this.flush();
    this.transport.settle();
  }

  startTicker(periodMs: number, onTick: () => void): boolean {
    try {
      this.transport.startTicker(periodMs * 1000, onTick);
      return true;
    } catch {
      return false; // no timerfd (cannot happen on Linux short of fd exhaustion): the scheduler uses setInterval
    }
  }

  stopTicker(): void {
    this.transport.stopTicker();
  }

  private readonly onReceive = (count: number): void => {
    const t = this.transport;
    const arena = t.recvArena;
    for (let i = 0; i < count; i++) {
      const handler = this.handlers[t.recvHandle(i)];
      if (handler === undefined) continue;
      const offset = t.recvOffset(i);
      const slot = Math.floor(offset / t.slotBytes);
      let view = this.slotViews[slot];
      if (view === undefined || this.slotViewOffsets[slot] !== offset) {
        view = Buffer.from(arena.buffer, arena.byteOffset + offset, (slot + 1) * t.slotBytes - offset);
        this.slotViews[slot] = view;
        this.slotViewOffsets[slot] = offset;
      }
      handler(view, t.recvLength(i), t.recvTime[i]!);
    }
  };
}
