/**
 * The generator's cost over a steady window: CPU microseconds per packet operation (one RTP send or receive)
 * between two snapshots taken while every call is up. Over the whole run the figure would include start-up (thread
 * pool, pre-encoding, rtpengine start) and teardown, which say nothing about what a packet costs.
 */
export interface CostSample {
  cpuUs: number;
  packetOps: number;
  atMs: number;
}

export interface Cost {
  cpuUs: number;
  packetOps: number;
  wallMs: number;
  usPerPacketOp: number | null;
  cpuPct: number;
}

export function costBetween(a: CostSample, b: CostSample): Cost {
  const cpuUs = b.cpuUs - a.cpuUs;
  const packetOps = b.packetOps - a.packetOps;
  const wallMs = b.atMs - a.atMs;
  return {
    cpuUs,
    packetOps,
    wallMs,
    usPerPacketOp: packetOps > 0 ? cpuUs / packetOps : null,
    cpuPct: wallMs > 0 ? (cpuUs / 1000 / wallMs) * 100 : 0,
  };
}

/** Shorter than this, a steady-state CPU figure is mostly noise. */
const MIN_WINDOW_MS = 1000;

/**
 * Samples the generator's cost over the hold: from shortly after the last arrival (calls settle) to shortly before
 * the end (calls start to stop). A hold too short for that falls back to the whole run, and says so.
 */
export class CostWindow<S extends CostSample = CostSample> {
  private readonly runStart: S;
  private holdStart: S | null = null;
  private holdEnd: S | null = null;
  private readonly timers: NodeJS.Timeout[] = [];

  /** All times are performance.now() values. Samples may carry more than CostSample: result() hands them back. */
  constructor(private readonly sample: () => S, rampEndMs: number, holdMs: number) {
    this.runStart = sample();
    const start = rampEndMs + Math.min(1000, holdMs * 0.2);
    const end = rampEndMs + holdMs - Math.min(500, holdMs * 0.1);
    if (end - start < MIN_WINDOW_MS) return;
    const now = this.runStart.atMs;
    this.timers.push(
      setTimeout(() => (this.holdStart = sample()), start - now),
      setTimeout(() => (this.holdEnd = sample()), end - now),
    );
  }

  /** Stops sampling; call once the run is over. */
  result(): { cost: Cost; window: 'hold' | 'run'; from: S; to: S } {
    for (const t of this.timers) clearTimeout(t);
    if (this.holdStart !== null && this.holdEnd !== null) {
      return { cost: costBetween(this.holdStart, this.holdEnd), window: 'hold', from: this.holdStart, to: this.holdEnd };
    }
    const to = this.sample();
    return { cost: costBetween(this.runStart, to), window: 'run', from: this.runStart, to };
  }
}
