/**
 * The contract between the coordinator and a media worker thread: what one call's media task carries in, and
 * what comes back. Everything here crosses a worker boundary by structured clone, so: plain data only.
 */
import type { CodecProfile } from '../profile.js';
import type { RtcpMode } from '../run-plan.js';
import type { MetricName, OutlierCounts } from '../stats/histogram.js';

export type LegName = 'a' | 'b';

/** One leg's media: the stream it sends and the stream it receives. */
export interface LegMedia {
  leg: LegName;
  /** Client RTP port on plan.localIp; RTCP uses rtpPort + 1. */
  rtpPort: number;
  /** This leg starts sending this long after the task starts (the other leg's head start), ms. */
  startDelayMs: number;
  /** Where this leg sends RTP and RTCP (rtpengine's ports for this leg, or the other leg in direct mode). */
  remoteAddress: string;
  remoteRtpPort: number;
  remoteRtcpPort: number;
  send: {
    codec: CodecProfile;
    toneHz: number;
    ssrc: number;
    firstSeq: number;
    firstTimestamp: number;
  };
  receive: {
    codec: CodecProfile;
    /** The far leg's tone, which the decoded audio must carry. */
    toneHz: number;
    /** Decode received audio and check the far tone (costly for opus, so only on a share of calls). */
    checkAudio: boolean;
    /** rtpengine transcodes into this leg: the far leg's last frame never arrives (facts/rtpengine.md). */
    transcoded: boolean;
  };
}

export interface CallMediaTask {
  callId: string;
  callIndex: number;
  localIp: string;
  legs: [LegMedia, LegMedia];
  /** Media stops at this time (ms since the Unix epoch, fractional); all threads share the wall clock. */
  endAtEpochMs: number;
  rtcp: RtcpMode;
  rtcpIntervalMs: number;
  /** After the last send, keep receiving this long for packets still in flight. */
  drainMs: number;
}

/** What one leg received: one direction of the call, measured at its receiving end. */
export interface ReceivedStream {
  /** Unique RTP packets (by extended sequence number). */
  packets: number;
  bytes: number;
  duplicates: number;
  /** Unique packets that arrived after a higher sequence number. */
  late: number;
  /** RFC 3550 A.3: extended highest - first + 1. */
  expectedA3: number;
  lostA3: number;
  /** The far leg's first packets that never arrived before the first one that did: start-of-call loss (the l7mp
   * server-mode caveat), already included in lostA3 and in exact loss. */
  startLost: number;
  /** Packets dropped as a sequence-number jump (RFC 3550 A.1: 3000 or more ahead, or far behind). */
  sequenceJumps: number;
  /** Datagrams that were not valid RTP. */
  malformed: number;
  /** Valid RTP with a payload type other than the one negotiated for this leg. */
  wrongPayloadType: number;
  /** Pass-through streams: payloads that differ from what the far leg sent with that sequence number;
   * null for transcoded streams, whose payloads are rtpengine's own encoding. */
  payloadMismatches: number | null;
  payloadType: number | null;
  ssrc: number | null;
  ssrcChanges: number;
  /** Epoch ms of the first RTP packet; null if none came. */
  firstPacketEpochMs: number | null;
  /** RFC 3550 A.8 interarrival jitter at the end, and over the stream. */
  jitterMs: number;
  meanJitterMs: number;
  maxJitterMs: number;
  /** The same estimator on actual send times: what the system under test added. */
  transitJitterMs: number;
  /** One-way latency by matching sequence numbers with the far leg's actual send times. */
  latencyMeanMs: number | null;
  latencyMaxMs: number | null;
  audio: { checked: boolean; frames: number; ratio: number | null };
}

export interface RtcpLegStats {
  sent: number;
  received: number;
  malformed: number;
  /** The last report block that described the stream this leg sends (from the far leg or from rtpengine). */
  lastReport: { fractionLost: number; cumulativeLost: number; jitterMs: number; rttMs: number | null } | null;
}

export interface LegResult {
  leg: LegName;
  sent: { packets: number; bytes: number };
  received: ReceivedStream;
  rtcp: RtcpLegStats;
}

export interface CallMediaResult {
  callId: string;
  /** null when the media ran; otherwise why it could not (e.g. a port already in use). */
  error: { cause: string; message: string } | null;
  /** When the call's first frame was due (the task's arrival plus phaseMs). */
  mediaStartEpochMs: number;
  mediaEndEpochMs: number;
  /**
   * How long after the task arrived the call's first frame was due: the thread spreads its calls' frame phases
   * over the packet interval (Scheduler.add), so time to first media is measured from here, not from the arrival.
   */
  phaseMs: number;
  stoppedEarly: boolean;
  legs: [LegResult, LegResult];
  /**
   * Per-packet histograms of the media thread since its previous result (MetricSet.takeEncoded()): values of other
   * calls in the same thread may be in here, and some of this call's in a later result. Merged over all results,
   * every value is counted once: a value is recorded by a live call, and every call flushes when it ends.
   */
  histograms: Partial<Record<MetricName, string>>;
  outliers: OutlierCounts;
  /** What carried the packets in that thread: 'dgram', 'native io_uring' or 'native epoll'. */
  io: string;
  /** How that thread was scheduled: 'realtime', 'normal', or 'normal (why realtime was not had)'. */
  priority: string;
}
