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
