/**
 * A tiny symmetric RTP/RTCP relay for tests, shaped like rtpengine: each leg sends to one relay port (RTP, and
 * RTCP on its own port) and receives from that same port. What arrives on leg A's relay socket goes out of leg B's
 * relay socket to B's port, and the other way round. A misbehaviour hook decides, per datagram, what is sent
 * instead (nothing, the datagram twice, a changed copy, extra junk...), so tests can break the stream in
 * controlled ways and check what the receiving leg measured.
 */
import { createSocket, type Socket } from 'node:dgram';

export type LegSide = 'a' | 'b';
/** 'ab': sent by leg a, delivered to leg b. */
export type Direction = 'ab' | 'ba';
export type Kind = 'rtp' | 'rtcp';
export type Flow = `${Direction}/${Kind}`;

export const FLOWS: readonly Flow[] = ['ab/rtp', 'ab/rtcp', 'ba/rtp', 'ba/rtcp'];

/** Datagrams to send on, in this order, after a delay (a timer: at least delayMs, later on a busy loop). */
export interface Delayed {
  delayMs: number;
  packets: Buffer[];
}

/**
 * Called for every datagram the relay receives from a leg, in arrival order; index counts datagrams of this flow
 * from 0. Returns the datagrams to send on (in this order) to the other leg, from the other leg's relay socket,
 * now or after a delay.
 */
export type Misbehaviour = (packet: Buffer, index: number, flow: Flow) => Buffer[] | Delayed;

export const passThrough: Misbehaviour = (packet) => [packet];

interface Sockets {
  rtp: Socket;
  rtcp: Socket;
}

function bind(host: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, host, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

export class Relay {
  /** Datagrams received from the legs, per flow. */
  readonly received: Record<Flow, number> = { 'ab/rtp': 0, 'ab/rtcp': 0, 'ba/rtp': 0, 'ba/rtcp': 0 };
  /** Datagrams whose send completed (the kernel took them), per flow; injected ones included. */
  readonly sent: Record<Flow, number> = { 'ab/rtp': 0, 'ab/rtcp': 0, 'ba/rtp': 0, 'ba/rtcp': 0 };
  /** Datagrams from an address other than the leg that owns the relay port (rtpengine would not learn them). */
  stray = 0;
  /** Sends that failed; a test that expects delivery should assert this stays 0. */
  sendErrors = 0;
  private pending = 0;
  private legPorts: Record<LegSide, number> | null = null;
  private closed = false;

  private constructor(
    readonly host: string,
    private readonly sockets: Record<LegSide, Sockets>,
    private readonly misbehave: Misbehaviour,
  ) {
    for (const side of ['a', 'b'] as const) {
      for (const kind of ['rtp', 'rtcp'] as const) {
        sockets[side][kind].on('message', (msg, from) => this.onMessage(side, kind, msg, from.address, from.port));
      }
    }
  }

  static async open(host: string, misbehave: Misbehaviour = passThrough): Promise<Relay> {
    const all: Socket[] = [];
    try {
      const next = async (): Promise<Socket> => {
        const s = await bind(host);
        all.push(s);
        return s;
      };
      const sockets = { a: { rtp: await next(), rtcp: await next() }, b: { rtp: await next(), rtcp: await next() } };
      return new Relay(host, sockets, misbehave);
    } catch (err) {
      for (const s of all) s.close();
      throw err;
    }
  }

  /** The relay port that `side` sends its RTP or RTCP to (and receives from). */
  port(side: LegSide, kind: Kind): number {
    return this.sockets[side][kind].address().port;
  }

  /** Where the legs listen: RTP on these ports, RTCP on port + 1. Until set, nothing is forwarded. */
  connect(aRtpPort: number, bRtpPort: number): void {
    this.legPorts = { a: aRtpPort, b: bRtpPort };
  }

  /** No send is in flight: every datagram handed to the kernel so far is counted in `sent`. */
  get idle(): boolean {
    return this.pending === 0;
  }

  /** Sends `packet` to leg `to` from the relay socket that faces it, as if the relay had forwarded it. */
  inject(to: LegSide, kind: Kind, packet: Buffer): void {
    this.send(to === 'b' ? 'ab' : 'ba', kind, packet);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const side of ['a', 'b'] as const) {
      this.sockets[side].rtp.close();
      this.sockets[side].rtcp.close();
    }
  }

  private onMessage(side: LegSide, kind: Kind, msg: Buffer, address: string, port: number): void {
    const legs = this.legPorts;
    if (legs === null || address !== this.host || port !== legs[side] + (kind === 'rtcp' ? 1 : 0)) {
      this.stray++;
      return;
    }
    const dir: Direction = side === 'a' ? 'ab' : 'ba';
    const flow: Flow = `${dir}/${kind}`;
    const index = this.received[flow]++;
    const out = this.misbehave(msg, index, flow);
    if (Array.isArray(out)) {
      for (const packet of out) this.send(dir, kind, packet);
      return;
    }
    // A held datagram counts as in flight, so `idle` stays false until it has gone out.
    this.pending++;
    setTimeout(() => {
      this.pending--;
      if (this.closed) return;
      for (const packet of out.packets) this.send(dir, kind, packet);
    }, out.delayMs);
  }

  private send(dir: Direction, kind: Kind, packet: Buffer): void {
    const legs = this.legPorts;
    if (legs === null || this.closed) throw new Error('relay: connect() the legs before sending to them');
    const to: LegSide = dir === 'ab' ? 'b' : 'a';
    const flow: Flow = `${dir}/${kind}`;
    this.pending++;
    this.sockets[to][kind].send(packet, legs[to] + (kind === 'rtcp' ? 1 : 0), this.host, (err) => {
      this.pending--;
      if (err) this.sendErrors++;
      else this.sent[flow]++;
    });
  }
}
