/**
 * What rtpengine itself said about a call in its delete reply, trimmed to what a results file needs: its ingress
 * counters (what each leg delivered to it) and its RTCP-derived quality per SSRC. Kept next to our own
 * measurements so the two views can be compared; rtpengine has no per-stream loss or jitter of its own.
 */
import type { DeleteReply, PacketCounters } from '../ng/client.js';

export interface RtpengineCallStats {
  totals: { RTP: PacketCounters; RTCP: PacketCounters };
  /** Per tag (label "caller"/"callee" when given): RTP packets rtpengine received from that leg. */
  ingress: Record<string, PacketCounters>;
  /** Average MOS per reporting SSRC (real MOS, 1-4.5); empty without client RTCP. */
  mos: number[];
  ssrc: { ssrc: number; mos: number | null; jitterMs: number | null; packetLossPct: number | null; roundTripUs: number | null; samples: number; cumulativeLoss: number }[];
}

export function summarizeDeleteStats(reply: DeleteReply): RtpengineCallStats | null {
  const stats = reply.stats;
  if (stats === null) return null;
  const ingress: Record<string, PacketCounters> = {};
  for (const tag of Object.values(stats.tags)) {
    const sum: PacketCounters = { packets: 0, bytes: 0, errors: 0 };
    for (const media of tag.medias) {
      for (const stream of media.streams) {
        if (!stream.rtp) continue;
        sum.packets += stream.ingress.packets;
        sum.bytes += stream.ingress.bytes;
        sum.errors += stream.ingress.errors;
      }
    }
    // Tags and labels are whatever the reply says: one named __proto__ would replace ingress's prototype (and its
    // counters vanish) through a plain assignment, so every name becomes a field of its own.
    Object.defineProperty(ingress, tag.label ?? tag.tag, { value: sum, enumerable: true, writable: true, configurable: true });
  }
  const ssrc = stats.ssrc.map((s) => ({
    ssrc: s.ssrc,
    mos: s.average?.mos ?? null,
    jitterMs: s.average?.jitterMs ?? null,
    packetLossPct: s.average?.packetLossPct ?? null,
    roundTripUs: s.average?.roundTripUs ?? null,
    samples: s.average?.samples ?? 0,
    cumulativeLoss: s.cumulativeLoss,
  }));
  return {
    totals: stats.totals,
    ingress,
    mos: ssrc.flatMap((s) => (s.mos === null || s.mos <= 0 ? [] : [s.mos])),
    ssrc,
  };
}
