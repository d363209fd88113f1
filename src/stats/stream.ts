/**
 * One direction of one call, as the report sees it: loss by exact accounting (we know what was sent), the
 * transcoding tail taken out, and an E-model MOS. Pure arithmetic over what the two legs measured.
 */
import { mosForStream } from './emodel.js';
import type { CodecProfile } from '../profile.js';
import type { LegResult, ReceivedStream } from '../media/task.js';

/** Decoded audio must put at least this share of its energy on the far tone (a wrong tone or noise gives < 0.05). */
export const AUDIO_PASS_RATIO = 0.5;

/** Fields carried over unchanged from what the receiving leg measured (src/media/task.ts). */
type Carried = 'duplicates' | 'late' | 'expectedA3' | 'lostA3' | 'startLost' | 'sequenceJumps' | 'malformed' | 'wrongPayloadType' | 'payloadMismatches' | 'payloadType'
  | 'jitterMs' | 'meanJitterMs' | 'maxJitterMs' | 'transitJitterMs' | 'latencyMeanMs' | 'latencyMaxMs';

export interface StreamRecord extends Pick<ReceivedStream, Carried> {
  /** "a->b" or "b->a". */
  direction: string;
  codecSent: string;
  codecReceived: string;
  sent: number;
  /** Unique packets received. */
  received: number;
  /** Packets that could not arrive: the transcoding tail (rtpengine holds the last frame back). */
  tail: number;
  lost: number;
  lossPct: number;
  r: number | null;
  mos: number | null;
  audio: { checked: boolean; ratio: number | null; passed: boolean | null };
}

/**
 * sender's packets as received by receiver. `transcoded`: rtpengine transcodes this direction, so one frame (the
 * last) is never sent on (facts/rtpengine.md): expected, not loss. `impairments`: every codec the audio passed
 * through, whose equipment impairments add up (ITU-T G.107 for tandem codecs).
 */
export function streamRecord(sender: LegResult, receiver: LegResult, transcoded: boolean, sentCodec: CodecProfile, receivedCodec: CodecProfile): StreamRecord {
  const rx = receiver.received;
  const sent = sender.sent.packets;
  const tail = transcoded && sent > 0 ? 1 : 0;
  const deliverable = sent - tail;
  const lost = Math.max(0, deliverable - rx.packets);
  const lossPct = deliverable > 0 ? (lost * 100) / deliverable : 0;
  const ie = transcoded ? sentCodec.emodel.ie + receivedCodec.emodel.ie : receivedCodec.emodel.ie;
  let r: number | null = null;
  let mos: number | null = null;
  if (rx.packets > 0 && rx.latencyMeanMs !== null) {
    const q = mosForStream({
      oneWayLatencyMs: rx.latencyMeanMs,
      jitterMs: rx.meanJitterMs,
      lossPct,
      ptimeMs: receivedCodec.ptimeMs,
      ie,
      bpl: receivedCodec.emodel.bpl,
    });
    r = q.r;
    mos = q.mos;
  }
  return {
    direction: `${sender.leg}->${receiver.leg}`,
    codecSent: sentCodec.name,
    codecReceived: receivedCodec.name,
    sent,
    received: rx.packets,
    tail,
    lost,
    lossPct,
    duplicates: rx.duplicates,
    late: rx.late,
    expectedA3: rx.expectedA3,
    lostA3: rx.lostA3,
    sequenceJumps: rx.sequenceJumps,
    startLost: rx.startLost,
    malformed: rx.malformed,
    wrongPayloadType: rx.wrongPayloadType,
    payloadMismatches: rx.payloadMismatches,
    payloadType: rx.payloadType,
    jitterMs: rx.jitterMs,
    meanJitterMs: rx.meanJitterMs,
    maxJitterMs: rx.maxJitterMs,
    transitJitterMs: rx.transitJitterMs,
    latencyMeanMs: rx.latencyMeanMs,
    latencyMaxMs: rx.latencyMaxMs,
    r,
    mos,
    audio: {
      checked: rx.audio.checked && rx.audio.ratio !== null,
      ratio: rx.audio.ratio,
      passed: rx.audio.ratio === null ? null : rx.audio.ratio >= AUDIO_PASS_RATIO,
    },
  };
}
