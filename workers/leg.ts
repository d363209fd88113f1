/**
 * One leg of one call inside a media thread: its RTP and RTCP sockets, the stream it sends (paced by the thread's
 * scheduler) and the stream it receives (tracked per packet). The thread's MediaIo (workers/media-io.ts) carries the
 * packets. Nothing on the per-packet paths allocates beyond what the I/O layer does: every frame of the pre-encoded
 * loop is a complete packet built once, whose header fields are patched in place before it is sent; readers use
 * int32 forms that V8 does not box.
 */
import { performance } from 'node:perf_hooks';
import {
  RTP_HEADER_BYTES,
  writeRtpHeader,
  setRtpSequence,
  setRtpTimestamp,
  setRtpMarker,
  rtpPayloadOffset,
  rtpPayloadEnd,
  rtpPayloadType,
  rtpSequence,
  rtpTimestampInt32,
  rtpSsrcInt32,
} from '../src/media/rtp.js';
import {
  writeCompound,
  parseCompound,
  ntpFromUnixMs,
  ntpMiddle32,
  rttMs,
  type ReportBlock,
  type SenderInfo,
} from '../src/media/rtcp.js';
import { ReceiveTracker, SendHistory, ARRIVAL_DUPLICATE, ARRIVAL_INVALID, ARRIVAL_LATE } from '../src/media/sequence.js';
import { AudioProbe } from '../src/media/audio-probe.js';
import { MarkerSendLog } from '../src/media/marker.js';
import { MARKER_FRAME } from '../src/media/codec.js';
import { audioDurationMs } from '../src/media/audio-duration.js';
import type { MediaKind } from '../src/profile.js';
import type { MetricSet } from '../src/stats/histogram.js';
import { FAULT_WATCH_ARRIVALS, type FaultSilence, type FaultWatch, type LegMedia, type LegResult, type RtcpLegStats, type TimelineMetric } from '../src/media/task.js';
import type { MediaIo, MediaSocket, SendListener, SocketCounters } from './media-io.js';

const RTCP_BUFFER_BYTES = 256;
/**
 * A frame due longer ago than this is not sent at all: the thread was starved (a stalled loop, a CPU cap), and
 * seconds of stale audio in one burst would be a load no endpoint makes. It is counted as skipped (a generator
 * drop) and uses no sequence number, so the receiver sees no gap: what was never sent is never the system's loss.
 * A shorter stall still sends its backlog at once, as an endpoint's audio clock would. Under the loop length (25
 * frames, 500 ms) with room to spare: a packet buffer is rewritten only a loop after it was queued, so it is never
 * queued twice before a flush.
 */
const MAX_SEND_BACKLOG_MS = 400;
/** Sends still pending in the socket (dgram) beyond which the next frame is skipped rather than its buffer reused. */
const MAX_PENDING_SENDS = 16;
/** Due times kept by sequence number until the send is confirmed (far more than a tick ever queues per leg). */
const DUE_RING = 64;
/** RFC 3550 jitter starts at 0 and converges with gain 1/16: values before this many packets are biased low. */
export const JITTER_SETTLE_PACKETS = 16;

/** Per-thread running totals that the scheduler publishes as live progress. */
export interface LegCounters {
  sent: number;
  received: number;
  rtcpSent: number;
  rtcpReceived: number;
  malformed: number;
  /** Worst send lateness since the scheduler last published (it resets this). */
  latenessMaxMs: number;
}

export class Leg implements SendListener {
  readonly name: LegMedia['leg'];
  /** Send times by sequence number; the far leg reads it to compute one-way latency. */
  readonly history = new SendHistory();
  /** When this leg's marker frames (frame 0 of the loop) left: the far leg's audio probe measures delay against them. */
  readonly markerSends = new MarkerSendLog();
  /** Sequence number of the marker frame awaiting its send confirmation (-1: none). */
  private markerSeq = -1;
  far: Leg | null = null;

  private rtp: MediaSocket | null = null;
  private rtcp: MediaSocket | null = null;

  // Sending. packets[k] is frame k with its RTP header; a packet is rewritten only a whole loop (25 frames,
  // 500 ms) after it was sent, long after the kernel has let go of it.
  private readonly packets: Buffer[];
  /** Everything allocPackets() gave this leg (packets and RTCP buffer), returned when it closes. */
  private readonly buffers: Buffer[];
  readonly frames: readonly Uint8Array[];
  private frameIndex = 0;
  private seq: number;
  private timestamp: number;
  private readonly timestampStep: number;
  private readonly ptimeMs: number;
  /** performance.now() at which the next frame is due; NaN until started. */
  private nextDueMs = Number.NaN;
  private firstPacket = true;
  /** Packets handed to the socket (the kernel may still refuse some: SocketCounters.sendFailed). */
  private sentPackets = 0;
  private sentBytes = 0;
  private sentPayloadBytes = 0;
  /** Frames not sent because the thread was too late for them (MAX_SEND_BACKLOG_MS). */
  private skippedFrames = 0;
  /** Due time of each frame awaiting its send confirmation, by sequence number. */
  private readonly dueBySeq = new Float64Array(DUE_RING);
  /** The RTP socket's counters, kept when it closes. */
  private rtpCounters: SocketCounters | null = null;
  private rtcpCounters: SocketCounters | null = null;
  /** allocPackets() buffers not yet given back. */
  private holdingBuffers = true;

  // Receiving.
  private readonly tracker: ReceiveTracker;
  private readonly expectedPayloadType: number;
  private receivedBytes = 0;
  private malformed = 0;
  private wrongPayloadType = 0;
  private payloadType: number | null = null;
  /** int32 form (see rtpSsrcInt32); unsigned in result(). */
  private ssrc: number | null = null;
  private ssrcChanges = 0;
  private firstPacketEpochMs: number | null = null;
  private latencySumMs = 0;
  private latencyCount = 0;
  private latencyMaxMs = 0;
  /** Tone check and audio delay, on the streams chosen for it (media.receive.checkAudio). */
  private readonly audio: AudioProbe | null;
  /** Pass-through only: every payload is compared with the frame the far leg sent under that sequence number. */
  private readonly verifyPayload: boolean;
  private payloadMismatches = 0;
  /** Extended sequence number (in this tracker's numbering) of the far leg's first packet; NaN until known. */
  private farFirstExtended = Number.NaN;

  // A watched fault (src/faults): a few numbers per packet into arrays made with the leg. See FaultWatch.
  private readonly receiveMedia: MediaKind;
  /** Audio received, ms of audio time. */
  private audioMs = 0;
  private firstArrivalMs = Number.NaN;
  private lastArrivalMs = Number.NaN;
  /** (arrival - first arrival) - audio received, at the last packet: rises by what goes missing. */
  private lastDeficitMs = 0;
  /** performance.now() from which arrivals are kept; NaN: no fault watched. */
  private readonly watchFromMs: number;
  private readonly watchArrivals: Float64Array | null;
  private readonly watchDeficits: Float64Array | null;
  private watched = 0;
  private laterMinDeficitMs = Number.POSITIVE_INFINITY;
  // The longest silence since the watch started (FaultWatch.longestSilence): six numbers, kept in place.
  private silenceMs = Number.NEGATIVE_INFINITY;
  private silenceFromMs = Number.NaN;
  private silenceToMs = Number.NaN;
  private silenceFromDeficitMs = Number.NaN;
  private silenceToDeficitMs = Number.NaN;
  private silenceLaterMinDeficitMs = Number.POSITIVE_INFINITY;
  /** The RTP socket's refused sends when the watch started (-1 until then): later ones are the dead worker's. */
  private sendFailedAtWatch = -1;

  // RTCP.
  private readonly rtcpBuffer: Buffer;
  private readonly rtcpEnabled: boolean;
  private readonly rtcpIntervalMs: number;
  private nextRtcpMs = Number.NaN;
  private readonly cname: string;
  private lastSrMiddle32 = 0;
  private lastSrArrivalMs = Number.NaN;
  private readonly rtcpStats: RtcpLegStats = { sent: 0, received: 0, malformed: 0, lastReport: null };
  private readonly senderInfo: SenderInfo = { ntpSeconds: 0, ntpFraction: 0, rtpTimestamp: 0, packetCount: 0, octetCount: 0 };
  private readonly reportBlock: ReportBlock = {
    ssrc: 0, fractionLost: 0, cumulativeLost: 0, extendedHighestSeq: 0, jitter: 0, lastSr: 0, delaySinceLastSr: 0,
  };
  private readonly reportList: ReportBlock[] = [this.reportBlock];
  private readonly noReports: ReportBlock[] = [];

  // Per-packet metrics, resolved once (MetricSet.recorder).
  private readonly recordLateness: (value: number) => void;
  private readonly recordLatency: (value: number) => void;
  private readonly recordJitter: (value: number) => void;
  private readonly recordTransitJitter: (value: number) => void;

  constructor(
    readonly media: LegMedia,
    private readonly localIp: string,
    frames: readonly Uint8Array[],
    metrics: MetricSet,
    private readonly counters: LegCounters,
    rtcp: { enabled: boolean; intervalMs: number; cname: string },
    private readonly io: MediaIo,
    /** The thread's per-second histograms for the run's timeline (latency and send lateness), if it keeps one. */
    timeline: MetricSet | null = null,
    /** CallMediaTask.faultWatchFromEpochMs. */
    watchFromEpochMs: number | null = null,
  ) {
    this.name = media.leg;
    const send = media.send;
    this.frames = frames;
    this.seq = send.firstSeq & 0xffff;
    this.timestamp = send.firstTimestamp >>> 0;
    this.ptimeMs = send.codec.ptimeMs;
    this.timestampStep = (send.codec.clockRate * send.codec.ptimeMs) / 1000;
    // One allocation for the leg: its packets and its RTCP buffer (with native I/O, a block of the send arena).
    this.buffers = io.allocPackets([...frames.map((frame) => RTP_HEADER_BYTES + frame.length), RTCP_BUFFER_BYTES]);
    this.packets = this.buffers.slice(0, frames.length);
    this.packets.forEach((packet, k) => {
      writeRtpHeader(packet, { marker: false, payloadType: send.payloadType, sequenceNumber: 0, timestamp: 0, ssrc: send.ssrc });
      packet.set(frames[k]!, RTP_HEADER_BYTES);
    });
    this.rtcpBuffer = this.buffers[frames.length]!;
    this.recordLateness = tee(metrics, timeline, 'sendLatenessMs');
    this.recordLatency = tee(metrics, timeline, 'latencyMs');
    this.recordJitter = tee(metrics, timeline, 'jitterMs');
    this.recordTransitJitter = tee(metrics, timeline, 'transitJitterMs');
    this.tracker = new ReceiveTracker(media.receive.codec.clockRate);
    this.expectedPayloadType = media.receive.payloadType;
    const recordAudioDelay = tee(metrics, timeline, 'audioDelayMs');
    this.audio = media.receive.checkAudio ? new AudioProbe(media.receive.codec, media.receive.toneHz, recordAudioDelay) : null;
    this.verifyPayload = !media.receive.transcoded;
    this.rtcpEnabled = rtcp.enabled;
    this.rtcpIntervalMs = rtcp.intervalMs;
    this.cname = rtcp.cname;
    this.receiveMedia = media.receive.codec.media;
    this.watchFromMs = watchFromEpochMs === null ? Number.NaN : watchFromEpochMs - performance.timeOrigin;
    this.watchArrivals = watchFromEpochMs === null ? null : new Float64Array(FAULT_WATCH_ARRIVALS);
    this.watchDeficits = watchFromEpochMs === null ? null : new Float64Array(FAULT_WATCH_ARRIVALS);
  }

  /** Binds RTP (even port) and RTCP (port + 1) and connects both to where this leg sends. */
  async open(): Promise<void> {
    const m = this.media;
    const remote = m.remoteAddress;
    this.rtp = await this.io.open(this.localIp, m.rtpPort, remote, m.remoteRtpPort, this.onRtp);
    this.rtcp = await this.io.open(this.localIp, m.rtpPort + 1, remote, m.remoteRtcpPort, this.onRtcp);
    // Re-pointed while the sockets were opening (dgram opens asynchronously).
    if (m.remoteAddress !== remote) this.connectSockets();
  }

  /**
   * A failover: if this leg sends to `from`, it sends to `to` from now on, on the same ports (the survivor binds the
   * dead worker's port numbers on its own address), and takes packets only from there. Returns whether it moved.
   */
  repoint(from: string, to: string): boolean {
    if (this.media.remoteAddress !== from) return false;
    this.media.remoteAddress = to;
    this.connectSockets();
    return true;
  }

  private connectSockets(): void {
    const m = this.media;
    this.rtp?.connect(m.remoteAddress, m.remoteRtpPort);
    this.rtcp?.connect(m.remoteAddress, m.remoteRtcpPort);
  }

  /** First frame goes out now; RTCP starts half an interval in (RFC 3550 6.2 halves the first interval). */
  start(nowMs: number): void {
    this.nextDueMs = nowMs + this.media.startDelayMs;
    this.nextRtcpMs = this.nextDueMs + this.rtcpIntervalMs / 2;
  }

  /**
   * Called by the scheduler on every tick (nowMs: the tick's time, to decide what is due). Sends every frame that
   * is due (a late tick sends the backlog at once, as a real endpoint's audio clock would) and records how late each
   * actually went out against its schedule. `dueBeforeMs`: the call's end, for its last tick: frames due before it
   * are still sent (or, too late, skipped and counted), none after it.
   */
  service(nowMs: number, dueBeforeMs = Number.POSITIVE_INFINITY): void {
    const socket = this.rtp;
    // Once, at the first tick of a watched fault (false while none is: NaN compares false).
    if (this.sendFailedAtWatch < 0 && nowMs >= this.watchFromMs && socket !== null) this.sendFailedAtWatch = socket.sendFailures();
    while (this.nextDueMs <= nowMs && this.nextDueMs < dueBeforeMs) {
      if (socket === null) break;
      if (nowMs - this.nextDueMs > MAX_SEND_BACKLOG_MS || socket.pendingSends >= MAX_PENDING_SENDS) this.skipFrame();
      else this.sendFrame(socket);
      this.nextDueMs += this.ptimeMs;
    }
    if (this.rtcpEnabled && this.nextRtcpMs <= nowMs) {
      this.sendRtcp(nowMs);
      this.nextRtcpMs += this.rtcpIntervalMs;
    }
  }

  private sendFrame(socket: MediaSocket): void {
    if (this.frameIndex === MARKER_FRAME) this.markerSeq = this.seq;
    const packet = this.packets[this.frameIndex]!;
    this.frameIndex = (this.frameIndex + 1) % this.packets.length;
    setRtpSequence(packet, this.seq);
    setRtpTimestamp(packet, this.timestamp);
    setRtpMarker(packet, this.firstPacket);
    this.firstPacket = false;
    const length = packet.length;
    this.dueBySeq[this.seq % DUE_RING] = this.nextDueMs;
    // The send time (for latency) and the lateness are taken when the packet has left: sent() below.
    socket.send(packet, length, this, this.seq);
    this.seq = (this.seq + 1) & 0xffff;
    this.timestamp = (this.timestamp + this.timestampStep) >>> 0;
    this.sentPackets++;
    this.sentBytes += length;
    this.sentPayloadBytes += length - RTP_HEADER_BYTES;
    this.counters.sent++;
  }

  /**
   * A frame the thread was too late for: the media clock (timestamp) moves on, the sequence number does not, as
   * for an endpoint that suppressed a frame, so the receiver sees contiguous sequence numbers and a timestamp jump.
   */
  private skipFrame(): void {
    this.timestamp = (this.timestamp + this.timestampStep) >>> 0;
    this.skippedFrames++;
  }

  /** HOT (SendListener). An RTP packet of this leg left at `atMs`: its send time and its lateness are now known. */
  sent(seq: number, atMs: number): void {
    this.history.record(seq, atMs);
    if (seq === this.markerSeq) {
      this.markerSends.record(atMs);
      this.markerSeq = -1;
    }
    const lateness = atMs - this.dueBySeq[seq % DUE_RING]!;
    this.recordLateness(lateness);
    if (lateness > this.counters.latenessMaxMs) this.counters.latenessMaxMs = lateness;
  }

  private readonly onRtp = (msg: Buffer, length: number, now: number): void => {
    const offset = rtpPayloadOffset(msg, length);
    if (offset < 0) {
      this.malformed++;
      this.counters.malformed++;
      return;
    }
    const pt = rtpPayloadType(msg);
    const ssrc = rtpSsrcInt32(msg);
    if (this.ssrc !== ssrc) {
      if (this.ssrc !== null) {
        this.ssrcChanges++;
        this.tracker.newSource();
        this.audio?.newSource();
      }
      this.ssrc = ssrc;
    }
    const seq = rtpSequence(msg);
    const sendMs = this.far === null ? Number.NaN : this.far.history.sendTimeOf(seq);
    const arrival = this.tracker.onPacket(seq, rtpTimestampInt32(msg), now, sendMs);
    if (arrival === ARRIVAL_DUPLICATE || arrival === ARRIVAL_INVALID) return;
    // The probe follows the decoded stream in order: a reordered packet is not decoded, the next one follows a gap.
    if (arrival === ARRIVAL_LATE) this.audio?.skip();
    // Counted once per unique packet, like everything below.
    if (pt !== this.expectedPayloadType) this.wrongPayloadType++;
    this.counters.received++;
    this.receivedBytes += length;
    if (this.firstPacketEpochMs === null) {
      this.firstPacketEpochMs = performance.timeOrigin + now;
      this.payloadType = pt;
    }
    this.trackAudioClock(msg, length, offset, now);
    if (sendMs === sendMs) {
      const latency = now - sendMs;
      this.latencySumMs += latency;
      this.latencyCount++;
      if (latency > this.latencyMaxMs) this.latencyMaxMs = latency;
      this.recordLatency(latency);
    }
    if (this.tracker.received > JITTER_SETTLE_PACKETS) {
      this.recordJitter(this.tracker.jitterMs);
      this.recordTransitJitter(this.tracker.transitJitterMs);
    }
    if (this.verifyPayload) this.checkPayload(msg, length, offset, seq);
    if (this.audio !== null && arrival !== ARRIVAL_LATE) {
      if (pt === this.expectedPayloadType) this.listen(msg, length, offset, seq, now);
      else this.audio.skip();
    }
  };

  /**
   * HOT. The receiver's audio clock (audio received against wall time) and, from a watched fault's planned time,
   * the arrivals around it and the longest silence since then (FaultWatch). A few additions, comparisons and stores
   * per packet; no allocation.
   */
  private trackAudioClock(msg: Buffer, length: number, offset: number, now: number): void {
    this.audioMs += audioDurationMs(this.receiveMedia, msg, offset, rtpPayloadEnd(msg, length));
    if (this.firstArrivalMs !== this.firstArrivalMs) this.firstArrivalMs = now;
    const deficit = now - this.firstArrivalMs - this.audioMs;
    // False without a watch (NaN).
    if (now > this.watchFromMs) {
      const arrivals = this.watchArrivals!;
      const deficits = this.watchDeficits!;
      if (this.watched === 0) {
        // The last packet before the watch: where a gap at the very start of it begins.
        arrivals[0] = this.lastArrivalMs;
        deficits[0] = this.lastDeficitMs;
        this.watched = 1;
      }
      if (this.watched < FAULT_WATCH_ARRIVALS) {
        arrivals[this.watched] = now;
        deficits[this.watched] = deficit;
        this.watched++;
      } else if (deficit < this.laterMinDeficitMs) {
        this.laterMinDeficitMs = deficit;
      }
      // The silence this packet ends, from the one before (the last before the watch, for the first): NaN, and so
      // never the longest, when there was none before.
      const silence = now - this.lastArrivalMs;
      if (silence > this.silenceMs) {
        this.silenceMs = silence;
        this.silenceFromMs = this.lastArrivalMs;
        this.silenceToMs = now;
        this.silenceFromDeficitMs = this.lastDeficitMs;
        this.silenceToDeficitMs = deficit;
        this.silenceLaterMinDeficitMs = deficit;
      } else if (deficit < this.silenceLaterMinDeficitMs) {
        this.silenceLaterMinDeficitMs = deficit;
      }
    }
    this.lastArrivalMs = now;
    this.lastDeficitMs = deficit;
  }

  private faultWatch(): FaultWatch | null {
    if (this.watchArrivals === null || this.watchDeficits === null) return null;
    const arrivalsEpochMs: number[] = [];
    const deficitsMs: number[] = [];
    for (let i = 0; i < this.watched; i++) {
      // NaN: no packet came before the watch started.
      if (this.watchArrivals[i] !== this.watchArrivals[i]) continue;
      arrivalsEpochMs.push(performance.timeOrigin + this.watchArrivals[i]!);
      deficitsMs.push(this.watchDeficits[i]!);
    }
    const longestSilence: FaultSilence | null =
      this.silenceMs >= 0
        ? {
            fromEpochMs: performance.timeOrigin + this.silenceFromMs,
            toEpochMs: performance.timeOrigin + this.silenceToMs,
            fromDeficitMs: this.silenceFromDeficitMs,
            toDeficitMs: this.silenceToDeficitMs,
            laterMinDeficitMs: this.silenceLaterMinDeficitMs,
          }
        : null;
    return { arrivalsEpochMs, deficitsMs, laterMinDeficitMs: Number.isFinite(this.laterMinDeficitMs) ? this.laterMinDeficitMs : null, longestSilence };
  }

  /** rtpengine must pass media through untouched: same bytes as sent under the same sequence number. */
  private checkPayload(msg: Buffer, length: number, offset: number, seq: number): void {
    const far = this.far;
    if (far === null) return;
    const highest = this.tracker.highestIndex;
    // Every packet the tracker accepted is at or behind the highest, so its extended number follows from it.
    const extended = highest - ((highest - seq) & 0xffff);
    if (this.farFirstExtended !== this.farFirstExtended) {
      this.farFirstExtended = extended - ((seq - far.media.send.firstSeq) & 0xffff);
    }
    const frames = far.frames;
    // Non-negative even if the tracker renumbered after a sequence restart (the payload then simply mismatches).
    const index = (((extended - this.farFirstExtended) % frames.length) + frames.length) % frames.length;
    const frame = frames[index]!;
    const end = rtpPayloadEnd(msg, length);
    // Buffer.compare with ranges is a native memcmp: no view allocated, no JS loop over the bytes.
    if (end - offset !== frame.length || msg.compare(frame, 0, frame.length, offset, end) !== 0) this.payloadMismatches++;
  }

  private listen(msg: Buffer, length: number, offset: number, seq: number, now: number): void {
    const end = rtpPayloadEnd(msg, length);
    if (end <= offset) {
      this.audio!.skip();
      return;
    }
    this.audio!.onPacket(seq, msg.subarray(offset, end), now, this.far === null ? null : this.far.markerSends);
  }

  private sendRtcp(nowMs: number): void {
    const socket = this.rtcp;
    if (socket === null) return;
    const epochMs = performance.timeOrigin + nowMs;
    const ntp = ntpFromUnixMs(epochMs);
    const info = this.senderInfo;
    info.ntpSeconds = ntp.seconds;
    info.ntpFraction = ntp.fraction;
    // The RTP timestamp that corresponds to "now" on this stream's media clock.
    const sinceDue = nowMs - (this.nextDueMs - this.ptimeMs);
    info.rtpTimestamp = (this.timestamp - this.timestampStep + Math.round((sinceDue * this.timestampStep) / this.ptimeMs)) >>> 0;
    info.packetCount = this.sentPackets >>> 0;
    info.octetCount = this.sentPayloadBytes >>> 0;
    let reports = this.noReports;
    if (this.tracker.received > 0 && this.ssrc !== null) {
      const dlsr = this.lastSrArrivalMs === this.lastSrArrivalMs ? Math.round(((nowMs - this.lastSrArrivalMs) * 65536) / 1000) : 0;
      this.tracker.reportBlock(this.ssrc >>> 0, this.lastSrMiddle32, dlsr >>> 0, this.reportBlock);
      reports = this.reportList;
    }
    const length = writeCompound(this.rtcpBuffer, { kind: 'sr', ssrc: this.media.send.ssrc, sender: info, reports }, this.cname);
    socket.send(this.rtcpBuffer, length, null, -1);
    this.rtcpStats.sent++;
    this.counters.rtcpSent++;
  }

  private readonly onRtcp = (msg: Buffer, length: number, now: number): void => {
    // RTCP is rare (every few seconds): a view per packet is fine here.
    const packets = parseCompound(msg.subarray(0, length));
    if (packets === null) {
      this.rtcpStats.malformed++;
      this.counters.malformed++;
      return;
    }
    this.rtcpStats.received++;
    this.counters.rtcpReceived++;
    const arrivalMiddle = ntpMiddle32FromPerf(now);
    for (const p of packets) {
      if (p.type === 'sr') {
        this.lastSrMiddle32 = ntpMiddle32(p.sender.ntpSeconds, p.sender.ntpFraction);
        this.lastSrArrivalMs = now;
      }
      if (p.type !== 'sr' && p.type !== 'rr') continue;
      for (const block of p.reports) {
        if (block.ssrc !== this.media.send.ssrc) continue;
        this.rtcpStats.lastReport = {
          fractionLost: block.fractionLost / 256,
          cumulativeLost: block.cumulativeLost,
          jitterMs: (block.jitter * 1000) / this.media.send.codec.clockRate,
          rttMs: block.lastSr === 0 ? null : rttMs(arrivalMiddle, block.lastSr, block.delaySinceLastSr),
        };
      }
    }
  };

  /** How many of the far leg's first packets were lost before the first that arrived (sequence numbers count from
   * its first packet; a result near 2^16 would mean a late packet older than the first: none lost then). */
  private startLost(): number {
    if (this.far === null || this.tracker.received === 0) return 0;
    const gap = (this.tracker.firstSeq - this.far.media.send.firstSeq) & 0xffff;
    return gap < 0x8000 ? gap : 0;
  }

  /** Live RFC 3550 loss of the stream this leg receives, for the progress line. */
  get lostSoFar(): number {
    return Math.max(0, this.tracker.lostA3);
  }

  /** Closes the sockets (keeping their counters for result()) and gives the packet buffers back; idempotent. */
  close(): void {
    if (this.rtp !== null) {
      this.rtpCounters = this.rtp.counters();
      this.rtp.close();
      this.rtp = null;
    }
    if (this.rtcp !== null) {
      this.rtcpCounters = this.rtcp.counters();
      this.rtcp.close();
      this.rtcp = null;
    }
    // Also when open() failed half-way: the buffers were taken in the constructor.
    if (this.holdingBuffers) {
      this.holdingBuffers = false;
      this.io.freePackets(this.buffers);
    }
    this.audio?.close();
  }

  private audioResult(): LegResult['received']['audio'] {
    if (this.audio === null) return { checked: false, frames: 0, ratio: null, delays: 0, delayMeanMs: null, delayMaxMs: null };
    const a = this.audio.result();
    return { checked: true, frames: a.toneFrames, ratio: a.toneRatio, delays: a.delays, delayMeanMs: a.delayMeanMs, delayMaxMs: a.delayMaxMs };
  }

  /** The last sequence number this leg used, or -1 before its first packet. */
  get lastSeq(): number {
    return this.sentPackets === 0 ? -1 : (this.seq - 1) & 0xffff;
  }

  result(): LegResult {
    const t = this.tracker;
    const rtp = this.rtp?.counters() ?? this.rtpCounters ?? NO_COUNTERS;
    const rtcp = this.rtcp?.counters() ?? this.rtcpCounters ?? NO_COUNTERS;
    const refusedTotal = Math.min(rtp.sendFailed, this.sentPackets);
    // After a watched fault, refusals are the dead worker's ICMP answers (see LegResult.sent.refused).
    const failed = this.sendFailedAtWatch < 0 ? refusedTotal : Math.min(this.sendFailedAtWatch, refusedTotal);
    const farLast = this.far === null ? -1 : this.far.lastSeq;
    return {
      leg: this.name,
      sent: {
        packets: this.sentPackets - failed,
        // Packet sizes differ only for opus, whose frames are within a few bytes of each other.
        bytes: this.sentPackets === 0 ? 0 : Math.round((this.sentBytes * (this.sentPackets - failed)) / this.sentPackets),
        failed,
        skipped: this.skippedFrames,
        lastSeq: this.lastSeq,
        lastFailed: this.sentPackets > 0 && rtp.lastFailedToken === this.lastSeq,
        refused: refusedTotal - failed,
      },
      received: {
        packets: t.received,
        bytes: this.receivedBytes,
        receiveQueueDrops: rtp.receiveDrops,
        truncated: rtp.truncated,
        farLastSeqReceived: farLast < 0 || t.received === 0 ? false : t.hasSeq(farLast),
        duplicates: t.duplicates,
        late: t.late,
        expectedA3: t.expected,
        lostA3: t.lostA3,
        sequenceJumps: t.invalid,
        startLost: this.startLost(),
        malformed: this.malformed,
        wrongPayloadType: this.wrongPayloadType,
        payloadMismatches: this.verifyPayload ? this.payloadMismatches : null,
        payloadType: this.payloadType,
        ssrc: this.ssrc === null ? null : this.ssrc >>> 0,
        ssrcChanges: this.ssrcChanges,
        firstPacketEpochMs: this.firstPacketEpochMs,
        lastPacketEpochMs: this.lastArrivalMs === this.lastArrivalMs ? performance.timeOrigin + this.lastArrivalMs : null,
        audioMs: this.audioMs,
        faultWatch: this.faultWatch(),
        jitterMs: t.jitterMs,
        meanJitterMs: t.meanJitterMs,
        maxJitterMs: t.maxJitterMs,
        transitJitterMs: t.transitJitterMs,
        latencyMeanMs: this.latencyCount > 0 ? this.latencySumMs / this.latencyCount : null,
        latencyMaxMs: this.latencyCount > 0 ? this.latencyMaxMs : null,
        audio: this.audioResult(),
      },
      rtcp: { ...this.rtcpStats, sent: this.rtcpStats.sent - Math.min(rtcp.sendFailed, this.rtcpStats.sent) },
    };
  }
}

/** A recorder into the call's set and, when there is one, the timeline's set too. */
function tee(metrics: MetricSet, timeline: MetricSet | null, name: TimelineMetric): (value: number) => void {
  const one = metrics.recorder(name);
  if (timeline === null) return one;
  const two = timeline.recorder(name);
  return (value) => {
    one(value);
    two(value);
  };
}

const NO_COUNTERS: SocketCounters = { sendFailed: 0, lastFailedToken: -1, receiveDrops: 0, truncated: 0 };

function ntpMiddle32FromPerf(nowMs: number): number {
  const ntp = ntpFromUnixMs(performance.timeOrigin + nowMs);
  return ntpMiddle32(ntp.seconds, ntp.fraction);
}
