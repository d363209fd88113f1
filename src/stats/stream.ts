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

/** Packets of one stream that the generator itself lost: never counted as the system's loss, always reported. */
export interface GeneratorDrops {
  /** The sender's kernel refused the send. */
  sendFailed: number;
  /** The sender's thread was too late to send the frame at all (starved of CPU). */
  skipped: number;
  /** The receiver's kernel dropped them at its socket (receive queue full); null: could not be read. */
  receiveQueue: number | null;
  /** Delivered cut short at the receiver (also counted as received). */
  truncated: number;
}

export interface StreamRecord extends Pick<ReceivedStream, Carried> {
  /** "a->b" or "b->a". */
  direction: string;
  codecSent: string;
  codecReceived: string;
  /** Packets the sender's kernel took. */
  sent: number;
  /** Unique packets received. */
  received: number;
  /** Audio received, ms of audio time (each payload's own duration: src/media/audio-duration.ts). */
  audioMs: number;
  /** 1 when the sender's last packet did not arrive on a transcoded stream (rtpengine holds the last frame back). */
  tail: number;
  /** Sent, not the tail, and not received, for whatever reason: lost + the receiver's own receive-queue drops. */
  missing: number;
  /** Lost by the system under test (and the network): missing minus what the generator itself dropped. */
  lost: number;
  lossPct: number;
  generatorDrops: GeneratorDrops;
  r: number | null;
  /** E-model MOS; a stream that received nothing gets the scale's floor, 1. */
  mos: number | null;
  /** False when no packet could be matched for latency (MOS then assumes no delay). */
  mosLatencyKnown: boolean;
  /**
   * Decoded audio: the tone check, and the audio delay measured from the markers in the audio itself (no sequence
   * numbers): markers found, mean and worst delay, ms; null where no marker was found.
   */
  audio: { checked: boolean; ratio: number | null; passed: boolean | null; delays: number; delayMeanMs: number | null; delayMaxMs: number | null };
}

/** The bottom of the MOS scale: what a listener who hears nothing gives. */
export const MOS_FLOOR = 1;

/**
 * sender's packets as received by receiver. `transcoded`: rtpengine transcodes this direction, and then holds each
 * frame until the next arrives, so the sender's LAST frame is never sent on (docs/rtpengine-behaviour.md): only
 * that packet, and only when it is the one missing, is excused as the tail. `impairments`: every codec the audio
 * passed through, whose equipment impairments add up (ITU-T G.107 for tandem codecs).
 */
export function streamRecord(sender: LegResult, receiver: LegResult, transcoded: boolean, sentCodec: CodecProfile, receivedCodec: CodecProfile): StreamRecord {
  const rx = receiver.received;
  const sent = sender.sent.packets;
  const tail = transcoded && sent > 0 && !sender.sent.lastFailed && !rx.farLastSeqReceived ? 1 : 0;
  const deliverable = sent - tail;
  // Loss counts the sender's frames. A packet may carry several (a transcoding survivor packs 60 ms of opus into
  // one, docs/rtpengine-redis.md): it counts for the frames of audio it carries, never for fewer than one.
  const framesReceived = Math.max(rx.packets, Math.round(rx.audioMs / sentCodec.ptimeMs));
  const missing = Math.max(0, deliverable - framesReceived);
  const receiveQueue = rx.receiveQueueDrops;
  const lost = Math.max(0, missing - (receiveQueue ?? 0));
  const lossPct = deliverable > 0 ? (lost * 100) / deliverable : 0;
  const ie = transcoded ? sentCodec.emodel.ie + receivedCodec.emodel.ie : receivedCodec.emodel.ie;
  let r: number | null = null;
  let mos: number | null = null;
  if (rx.packets > 0) {
    const q = mosForStream({
      // Never below 0 by construction (send times are taken no later than departure); the clamp only keeps a
      // clock step from failing the whole run.
      oneWayLatencyMs: Math.max(0, rx.latencyMeanMs ?? 0),
      jitterMs: rx.meanJitterMs,
      lossPct,
      ptimeMs: receivedCodec.ptimeMs,
      ie,
      bpl: receivedCodec.emodel.bpl,
    });
    r = q.r;
    mos = q.mos;
  } else if (sent > 0) {
    // Silence: not a quality the E-model rates (its 100%-loss value is still above 1), but the worst a call can be.
    r = 0;
    mos = MOS_FLOOR;
  }
  return {
    direction: `${sender.leg}->${receiver.leg}`,
    codecSent: sentCodec.name,
    codecReceived: receivedCodec.name,
    sent,
    received: rx.packets,
    audioMs: rx.audioMs,
    tail,
    missing,
    lost,
    lossPct,
    generatorDrops: { sendFailed: sender.sent.failed, skipped: sender.sent.skipped, receiveQueue, truncated: rx.truncated },
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
    mosLatencyKnown: rx.latencyMeanMs !== null,
    audio: {
      checked: rx.audio.checked && rx.audio.ratio !== null,
      ratio: rx.audio.ratio,
      passed: rx.audio.ratio === null ? null : rx.audio.ratio >= AUDIO_PASS_RATIO,
      delays: rx.audio.delays,
      delayMeanMs: rx.audio.delayMeanMs,
      delayMaxMs: rx.audio.delayMaxMs,
    },
  };
}
