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
import { Transport, nativeTransportError } from './native/transport.js';
import type { IoChoice } from '../src/run-plan.js';

/** Called per received datagram: `packet` starts at the datagram, `length` bytes of it are valid; only during the call. */
export type PacketHandler = (packet: Buffer, length: number, arrivalMs: number) => void;

export interface MediaSocket {
  /** Sends `length` bytes (default all) of a buffer from allocPackets(). With native I/O it leaves at the next flush(). */
  send(packet: Buffer, length?: number): void;
  close(): void;
}

export interface MediaIo {
  /** What actually carries the packets: 'dgram', 'native io_uring' or 'native epoll'. */
  readonly name: string;
  /** Binds localIp:localPort (exclusive) and connects to the remote; rejects with the address in the message. */
  open(localIp: string, localPort: number, remoteIp: string, remotePort: number, onPacket: PacketHandler): Promise<MediaSocket>;
  /** Buffers to build packets in, one per size; give them back with freePackets() when the leg ends. */
  allocPackets(sizes: readonly number[]): Buffer[];
  freePackets(buffers: readonly Buffer[]): void;
  /** End of a scheduler tick: sends what send() queued. */
  flush(): void;
  /**
   * Optional: calls `onTick` every `periodMs` (fractions allowed) from this thread's loop, finer than libuv's 1 ms
   * timers. False when it cannot (the scheduler then uses setInterval). Running, it keeps the thread alive like
   * setInterval; stopTicker() ends it, and no call follows.
   */
  startTicker?(periodMs: number, onTick: () => void): boolean;
  stopTicker?(): void;
  /** Packets the I/O layer itself lost or refused (full kernel queues, send errors), for the report. */
  errors(): number;
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
  private sendErrors = 0;

  open(localIp: string, localPort: number, remoteIp: string, remotePort: number, onPacket: PacketHandler): Promise<MediaSocket> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type: 'udp4', reuseAddr: false });
      const fail = (err: Error): void => {
        socket.close();
        reject(new Error(`cannot use local port ${localIp}:${localPort}: ${err.message}`));
      };
      socket.once('error', fail);
      socket.bind({ address: localIp, port: localPort, exclusive: true }, () => {
        socket.connect(remotePort, remoteIp, () => {
          socket.off('error', fail);
          // Connected UDP sockets report ICMP errors (ECONNREFUSED while nobody listens yet): losses for the
          // measurement, not reasons to stop the thread.
          socket.on('error', () => this.sendErrors++);
          socket.on('message', (msg: Buffer) => onPacket(msg, msg.length, performance.now()));
          resolve({
            // The whole buffer when possible: dgram slices (allocates) a view for an offset/length send.
            send: (packet, length) => (length === undefined || length === packet.length ? socket.send(packet) : socket.send(packet, 0, length)),
            close: () => socket.close(),
          });
        });
      });
    });
  }

  allocPackets(sizes: readonly number[]): Buffer[] {
    return sizes.map((size) => Buffer.alloc(size));
  }

  freePackets(): void {}

  flush(): void {}

  errors(): number {
    return this.sendErrors;
  }
}

/** Bytes of send arena per block: one leg's packets (25 frames of at most ~250 bytes) or one RTCP buffer. */
const ARENA_BLOCK = 8192;
/** Enough for 4,000 legs' packets and RTCP buffers per thread. */
const ARENA_BLOCKS = 8192;

class NativeIo implements MediaIo {
  readonly name: string;
  readonly engineNote: string;
  private readonly transport: Transport;
  private readonly arena: Buffer;
  private readonly freeBlocks: number[] = [];
  private readonly handlers: (PacketHandler | undefined)[] = [];
  private queued = 0;
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
    this.slotViews = new Array<Buffer | undefined>(this.transport.recvSlots);
    this.slotViewOffsets = new Int32Array(this.transport.recvSlots).fill(-1);
    this.transport.onReceive(this.onReceive);
  }

  open(localIp: string, localPort: number, remoteIp: string, remotePort: number, onPacket: PacketHandler): Promise<MediaSocket> {
    let handle: number;
    try {
      handle = this.transport.open(localIp, localPort, remoteIp, remotePort);
    } catch (err) {
      return Promise.reject(new Error(`cannot use local port ${localIp}:${localPort}: ${(err as Error).message}`));
    }
    this.handlers[handle] = onPacket;
    const socket: MediaSocket = {
      send: (packet, length) => this.enqueue(handle, packet, length ?? packet.length),
      close: () => {
        this.handlers[handle] = undefined;
        this.transport.close(handle);
      },
    };
    return Promise.resolve(socket);
  }

  allocPackets(sizes: readonly number[]): Buffer[] {
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total > ARENA_BLOCK) throw new Error(`packets of ${total} bytes do not fit one ${ARENA_BLOCK}-byte arena block`);
    const block = this.freeBlocks.pop();
    if (block === undefined) throw new Error('the native send arena is full: too many legs in one media thread (add --threads)');
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

  private enqueue(handle: number, packet: Buffer, length: number): void {
    const batch = this.transport.batch;
    const i = 3 * this.queued;
    batch[i] = handle;
    batch[i + 1] = packet.byteOffset - this.arena.byteOffset;
    batch[i + 2] = length;
    if (++this.queued === this.transport.batchCapacity) this.flush();
  }

  flush(): void {
    if (this.queued === 0) return;
    this.transport.sendBatch(this.queued);
    this.queued = 0;
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

  errors(): number {
    const s = this.transport;
    return s.stat('sendEagain') + s.stat('sendConnRefused') + s.stat('sendOtherError') + s.stat('sendBadEntry') + s.stat('kernelDrops') + s.stat('truncated');
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
