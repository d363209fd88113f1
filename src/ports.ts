/**
 * The client ports of a run. Each call takes one block of 4 consecutive ports: leg A's RTP (even) and RTCP,
 * then leg B's RTP and RTCP. Released blocks go to the back of the queue so a port is reused as late as possible:
 * a straggler packet for the previous call then finds no socket rather than the next call's.
 */
import type { PortRange } from './run-plan.js';

export const PORTS_PER_CALL = 4;

export interface CallPorts {
  aRtp: number;
  bRtp: number;
}

export function callsInRange(range: PortRange): number {
  const firstEven = range.min + (range.min % 2);
  return Math.max(0, Math.floor((range.max - firstEven + 1) / PORTS_PER_CALL));
}

export class PortPool {
  private readonly free: number[] = [];
  private head = 0;

  constructor(range: PortRange) {
    const firstEven = range.min + (range.min % 2);
    const blocks = callsInRange(range);
    for (let i = 0; i < blocks; i++) this.free.push(firstEven + i * PORTS_PER_CALL);
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
}
