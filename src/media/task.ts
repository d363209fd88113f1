/**
 * The contract between the coordinator and a media worker thread: what one call's media task carries in, and
 * what comes back. Everything here crosses a worker boundary by structured clone, so: plain data only.
 */
import type { CodecProfile } from '../profile.js';
import type { RtcpMode } from '../run-plan.js';
import type { MetricName, OutlierCounts } from '../stats/histogram.js';

export type LegName = 'a' | 'b';

/**
 * The most calls one media thread holds: with native I/O each leg takes one block of the thread's send arena
 * (workers/media-io.ts sizes the arena from this). The plan refuses more per thread, naming the --threads to use.
 */
export const MAX_CALLS_PER_THREAD = 4096;

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
    /** The payload type the far side's SDP gave this codec (rtpengine may map opus to 96 rather than our 111). */
    payloadType: number;
    toneHz: number;
    ssrc: number;
    firstSeq: number;
    firstTimestamp: number;
  };
  receive: {
    codec: CodecProfile;
    /** The payload type this leg's packets must carry (the one this leg's SDP or rtpengine's reply agreed on). */
    payloadType: number;
    /** The far leg's tone, which the decoded audio must carry. */
    toneHz: number;
    /** Decode received audio and check the far tone (costly for opus, so only on a share of calls). */
    checkAudio: boolean;
    /** rtpengine transcodes into this leg: it may hold the far leg's last frame back (docs/rtpengine-behaviour.md). */
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
  /**
   * A fault planned for this call's rtpengine worker (src/faults): from this time (epoch ms) each leg tracks the
   * longest silence in what it receives (ReceivedStream.faultGap), and sends its kernel refuses from then on are the
   * dead worker's (LegResult.sent.refused), not the generator's. Null: no fault watched.
   */
  faultWatchFromEpochMs: number | null;
}

/** What one leg received: one direction of the call, measured at its receiving end. */
export interface ReceivedStream {
  /** Unique RTP packets (by extended sequence number). */
  packets: number;
  bytes: number;
  /** Datagrams the kernel dropped at this leg's RTP socket (its receive queue was full): the generator's own drops,
   * not the system's loss; null when they cannot be counted. */
  receiveQueueDrops: number | null;
  /** Datagrams longer than a receive slot, delivered cut short (counted in packets too). */
  truncated: number;
  /** Whether the far leg's last packet (its final sequence number) arrived: a transcoder may hold it back. */
  farLastSeqReceived: boolean;
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
  /** Epoch ms of the last unique RTP packet; null if none came. */
  lastPacketEpochMs: number | null;
  /**
   * Audio received, in ms of audio time, each unique packet counted by its payload (src/media/audio-duration.ts:
   * G.711 bytes / 8, opus from its TOC byte), whatever the packet size or SSRC.
   */
  audioMs: number;
  /** With a watched fault (CallMediaTask.faultWatchFromEpochMs): the arrivals around it; null without a watch. */
  faultWatch: FaultWatch | null;
  /** RFC 3550 A.8 interarrival jitter at the end, and over the stream. */
  jitterMs: number;
  meanJitterMs: number;
  maxJitterMs: number;
  /** The same estimator on actual send times: what the system under test added. */
  transitJitterMs: number;
  /** One-way latency by matching sequence numbers with the far leg's actual send times. */
  latencyMeanMs: number | null;
  latencyMaxMs: number | null;
  /**
   * Tone check (frames checked, share of energy at the far tone) and audio delay (markers found in the decoded
   * audio, their mean and worst delay against the far leg's marker send times, ms: src/media/audio-probe.ts).
   */
  audio: { checked: boolean; frames: number; ratio: number | null; delays: number; delayMeanMs: number | null; delayMaxMs: number | null };
}

/**
 * What a leg heard around a watched fault, for src/faults/failover.ts to find the gap once the fault's exact time is
 * known: the arrival just before the watch started and the first FAULT_WATCH_ARRIVALS - 1 after it, each with the
 * receiver's audio clock, deficit = (arrival - first arrival) - audio received (ms): it rises by whatever audio goes
 * missing, and falls back when late audio arrives in a burst.
 */
export interface FaultWatch {
  arrivalsEpochMs: number[];
  deficitsMs: number[];
  /** The lowest deficit over the packets after those; null: none came. */
  laterMinDeficitMs: number | null;
  /**
   * The longest silence since the watch started, wherever it lies: the kept arrivals cover 2.5 s, and a worker that
   * keeps forwarding for longer (a deleted pod whose containers outlive its API object) puts its gap beyond them.
   * Null: no silence was seen (no arrival after the watch started, or none before its first one).
   */
  longestSilence: FaultSilence | null;
}

/**
 * One silence a watched leg heard: from an arrival (fromEpochMs) to the next one (toEpochMs), with the deficit at
 * each (FaultWatch's meaning), and the lowest deficit from its end on, its end included, which the audio lost with
 * it is read from (late audio arriving in a burst after it lowers the deficit again).
 */
export interface FaultSilence {
  fromEpochMs: number;
  toEpochMs: number;
  fromDeficitMs: number;
  toDeficitMs: number;
  laterMinDeficitMs: number;
}

/** Arrivals a watched leg keeps: 2.5 s of 20 ms packets, more than a fault's timer is ever late by. */
export const FAULT_WATCH_ARRIVALS = 128;

export interface RtcpLegStats {
  sent: number;
  received: number;
  malformed: number;
  /** The last report block that described the stream this leg sends (from the far leg or from rtpengine). */
  lastReport: { fractionLost: number; cumulativeLost: number; jitterMs: number; rttMs: number | null } | null;
}

export interface LegResult {
  leg: LegName;
  sent: {
    /** Packets the kernel took (handed over and not refused). */
    packets: number;
    bytes: number;
    /** Packets the kernel refused: generator drops. */
    failed: number;
    /** Frames the thread was too late to send at all (starved): generator drops, no sequence number used. */
    skipped: number;
    /** The last sequence number used, -1 if none was sent. */
    lastSeq: number;
    /** The kernel refused the packet with lastSeq. */
    lastFailed: boolean;
    /**
     * Sends the kernel refused after the watched fault (CallMediaTask.faultWatchFromEpochMs): a dead worker's closed
     * ports answer with ICMP port unreachable, and the socket refuses the next send. Counted in `packets` (the
     * system lost them, as it would have lost them had they left), not in `failed` (the generator's).
     */
    refused: number;
  };
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

/** What a leg that received nothing reports (and a call whose media never started, for both legs). */
export function emptyReceived(): ReceivedStream {
  return {
    packets: 0,
    bytes: 0,
    receiveQueueDrops: 0,
    truncated: 0,
    farLastSeqReceived: false,
    duplicates: 0,
    late: 0,
    expectedA3: 0,
    lostA3: 0,
    startLost: 0,
    sequenceJumps: 0,
    malformed: 0,
    wrongPayloadType: 0,
    payloadMismatches: null,
    payloadType: null,
    ssrc: null,
    ssrcChanges: 0,
    firstPacketEpochMs: null,
    lastPacketEpochMs: null,
    audioMs: 0,
    faultWatch: null,
    jitterMs: 0,
    meanJitterMs: 0,
    maxJitterMs: 0,
    transitJitterMs: 0,
    latencyMeanMs: null,
    latencyMaxMs: null,
    audio: { checked: false, frames: 0, ratio: null, delays: 0, delayMeanMs: null, delayMaxMs: null },
  };
}

/**
 * What a media thread posts once a wall-clock second is over, for the run's timeline: that second's latency and
 * send-lateness histograms (MetricSet.takeEncoded()), from every call in the thread.
 */
export interface TimelinePart {
  /** Epoch seconds: the second the values were recorded in. */
  epochSecond: number;
  histograms: Partial<Record<MetricName, string>>;
}

/**
 * Fault messages between the coordinator and the media threads (a BroadcastChannel, MediaPool.faultChannel): every
 * leg that sends to `from` sends to `to` from now on, on the same ports (a survivor binds a dead worker's ports on
 * its own address), and each thread answers with how many legs it moved and when.
 */
export interface RepointMessage {
  type: 'repoint';
  id: number;
  from: string;
  to: string;
}

export interface RepointedMessage {
  type: 'repointed';
  id: number;
  legs: number;
  /** When the thread had moved them, epoch ms. */
  atEpochMs: number;
}

/**
 * A media thread's memory, asked for on MediaPool's memory channel (MemoryQuery; the soak bench's: the process's
 * figures do not show the threads' own V8 heaps). `gc`: collect first (a heap figure without a collection says when V8
 * last collected, not what is live).
 */
export interface MemoryQuery {
  type: 'memory';
  id: number;
  gc: boolean;
}

export interface ThreadMemory {
  type: 'memory-report';
  id: number;
  threadId: number;
  /** The thread's v8.getHeapStatistics().used_heap_size and total_heap_size. */
  heapUsed: number;
  heapTotal: number;
  /** Calls whose media the thread runs now. */
  calls: number;
}

/** The per-packet metrics a media thread also keeps per second (a capacity step is judged on a window of seconds). */
export const TIMELINE_METRICS = ['latencyMs', 'sendLatenessMs', 'jitterMs', 'transitJitterMs', 'audioDelayMs'] as const;
export type TimelineMetric = (typeof TIMELINE_METRICS)[number];

/** The failure cause of a call whose client port another program holds (its block of ports is then retired). */
export const LOCAL_PORT_IN_USE = 'local port in use';
