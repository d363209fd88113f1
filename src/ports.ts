/**
 * The client ports of a run. Each call takes one block of 4 consecutive ports: leg A's RTP (even) and RTCP,
 * then leg B's RTP and RTCP. Released blocks go to the back of the queue so a port is reused as late as possible:
 * a straggler packet for the previous call then finds no socket rather than the next call's.
 */
import type { PortRange } from './addresses.js';

export const PORTS_PER_CALL = 4;

export interface CallPorts {
  aRtp: number;
  bRtp: number;
}

export function callsInRange(range: PortRange): number {
  const firstEven = range.min + (range.min % 2);
  return Math.max(0, Math.floor((range.max - firstEven + 1) / PORTS_PER_CALL));
}

/** The first port of every block of the range none of whose ports is in `inUse`. */
export function freeBlocks(range: PortRange, inUse: ReadonlySet<number> = new Set()): number[] {
  const firstEven = range.min + (range.min % 2);
  const out: number[] = [];
  for (let i = 0; i < callsInRange(range); i++) {
    const base = firstEven + i * PORTS_PER_CALL;
    if (![0, 1, 2, 3].some((k) => inUse.has(base + k))) out.push(base);
  }
  return out;
}

export class PortPool {
  private readonly free: number[] = [];
  private head = 0;

  /**
   * Blocks with a port in `inUse` (taken by another program or run when the run started) are never handed out.
   * The first block handed out is the one at `start` (a share of the range, random by default): two runs that start
   * together on the same range would otherwise walk it in step from its bottom, and each would find every block it
   * takes just bound by the other.
   */
  constructor(
    /** The client ports this pool hands out blocks of. */
    readonly range: PortRange,
    inUse: ReadonlySet<number> = new Set(),
    start: number = Math.random(),
  ) {
    const blocks = freeBlocks(range, inUse);
    const at = Math.min(blocks.length, Math.floor(start * blocks.length));
    this.free.push(...blocks.slice(at), ...blocks.slice(0, at));
  }

  get available(): number {
    return this.free.length - this.head;
  }

  /** A block of ports, or null when every block is in use. */
  take(): CallPorts | null {
    if (this.head >= this.free.length) return null;
    const base = this.free[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.free.length) {
      this.free.splice(0, this.head);
      this.head = 0;
    }
    return { aRtp: base, bRtp: base + 2 };
  }

  release(ports: CallPorts): void {
    this.free.push(ports.aRtp);
  }

  /** Blocks retired so far. */
  retired = 0;

  /** A block another program bound after the run started: never handed out again (the pool shrinks by one). */
  retire(_ports: CallPorts): void {
    this.retired++;
  }
}

/** Where the client ports of a run come from, and what to tell the user about it. */
export interface ClientPortChoice {
  range: PortRange;
  /** Said before the run when the range had to move; null when the asked-for range was free. */
  note: string | null;
}

/** Highest port a moved default range may reach. */
const TOP_PORT = 65535;

/**
 * The client port range for `calls` calls, given the ports already bound on the client address. The asked-for
 * range is kept when enough of its blocks are free (busy blocks are skipped). Otherwise the default range moves
 * up, in steps of its own size, to the first window that has room (two runs at once on one machine), and an
 * explicit --local-ports is refused before the run with what to do. Pure.
 */
export function chooseClientPorts(asked: PortRange, calls: number, inUse: ReadonlySet<number>, askedExplicitly: boolean): ClientPortChoice | { error: string } {
  const fits = (range: PortRange): number => freeBlocks(range, inUse).length;
  const busy = (range: PortRange): number => callsInRange(range) - fits(range);
  if (fits(asked) >= calls) {
    const taken = busy(asked);
    return { range: asked, note: taken === 0 ? null : `${taken * PORTS_PER_CALL} ports of --local-ports ${asked.min}-${asked.max} are in use by something else: skipping them` };
  }
  const size = asked.max - asked.min + 1;
  const need = calls * PORTS_PER_CALL;
  if (!askedExplicitly) {
    const width = Math.max(size, need);
    for (let min = asked.min + size; min + width - 1 <= TOP_PORT; min += size) {
      const range = { min, max: min + width - 1 };
      if (fits(range) >= calls) {
        return { range, note: `client ports ${asked.min}-${asked.max} are in use (another rtp-bench run?): using ${range.min}-${range.max} instead (--local-ports to choose)` };
      }
    }
    return { error: `no free client port range for ${calls} calls from ${asked.min} to ${TOP_PORT} (another run holds them?): give --local-ports LO-HI with free ports, or another --local-ip` };
  }
  return {
    error:
      `--local-ports ${asked.min}-${asked.max}: ${busy(asked) * PORTS_PER_CALL} of its ports are in use by another program (or run), so only ${fits(asked)} of the ${calls} calls fit: ` +
      'give a range that is free, or leave --local-ports out and rtp-bench picks one',
  };
}
