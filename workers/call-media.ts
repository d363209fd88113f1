/**
 * One call's media in a media thread: two legs that send to rtpengine (or to each other in direct mode) and
 * receive from it, from the moment the task arrives until the run's end time (or a stop), plus a short drain.
 */
import { performance } from 'node:perf_hooks';
import type { MetricSet } from '../src/stats/histogram.js';
import type { CallMediaResult, CallMediaTask, LegMedia } from '../src/media/task.js';
import { Leg, type LegCounters } from './leg.js';
import type { MediaIo } from './media-io.js';

export type FramesFor = (media: LegMedia) => readonly Uint8Array[];

export class CallMedia {
  readonly legs: [Leg, Leg];
  /** performance.now() at which sending stops. */
  readonly endAtMs: number;
  private startEpochMs = 0;
  private phaseMs = 0;
  private endEpochMs = 0;
  private stoppedEarly = false;
  private draining = false;
  private finish!: () => void;
  readonly finished: Promise<void>;

  /** `metrics` is the thread's set, shared by all its calls (see CallMediaResult.histograms). */
  constructor(
    readonly task: CallMediaTask,
    framesFor: FramesFor,
    counters: LegCounters,
    private readonly metrics: MetricSet,
    private readonly io: MediaIo,
    timeline: MetricSet | null = null,
  ) {
    const rtcp = {
      enabled: task.rtcp !== 'off',
      intervalMs: task.rtcpIntervalMs,
    };
    const [a, b] = task.legs;
    this.legs = [
      new Leg(a, task.localIp, framesFor(a), this.metrics, counters, { ...rtcp, cname: `${a.leg}.${task.callId}@rtp-bench` }, io, timeline, task.faultWatchFromEpochMs),
      new Leg(b, task.localIp, framesFor(b), this.metrics, counters, { ...rtcp, cname: `${b.leg}.${task.callId}@rtp-bench` }, io, timeline, task.faultWatchFromEpochMs),
    ];
    this.legs[0].far = this.legs[1];
    this.legs[1].far = this.legs[0];
    this.endAtMs = task.endAtEpochMs - performance.timeOrigin;
    this.finished = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  async open(): Promise<void> {
    try {
      await this.legs[0].open();
      await this.legs[1].open();
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Both legs' first frames are due `phaseMs` from now: a head start between them stays exact. */
  start(nowMs: number, phaseMs: number): void {
    this.phaseMs = phaseMs;
    this.startEpochMs = performance.timeOrigin + nowMs + phaseMs;
    this.legs[0].start(nowMs + phaseMs);
    this.legs[1].start(nowMs + phaseMs);
  }

  /** The shorter packet interval of the two legs (they differ only in unusual profiles). */
  get ptimeMs(): number {
    const [a, b] = this.task.legs;
    return Math.min(a.send.codec.ptimeMs, b.send.codec.ptimeMs);
  }

  /**
   * Returns false once the call has stopped sending (the scheduler then drops it). `stop`: the run is being
   * interrupted; `ended`: this call was told to end now (a capacity step shrinking the population), which is an end
   * like its end time, not an interruption.
   */
  service(nowMs: number, stop: boolean, ended = false): boolean {
    if (this.draining) return false;
    const endAt = ended ? Math.min(nowMs, this.endAtMs) : this.endAtMs;
    if (stop || nowMs >= endAt) {
      this.stoppedEarly = stop && nowMs < endAt;
      if (!this.stoppedEarly) {
        // The frames due between the previous tick and the end belong to the call: sent now, or counted as skipped
        // when the thread came too late for them, never silently left out.
        this.legs[0].service(nowMs, endAt);
        this.legs[1].service(nowMs, endAt);
      }
      this.draining = true;
      this.endEpochMs = performance.timeOrigin + nowMs;
      // Packets still in flight (rtpengine buffers one frame when transcoding) arrive during the drain. Then every
      // send's fate is collected and what already arrived is handed over, before the sockets (and their counters) go.
      setTimeout(() => {
        this.io.settle();
        this.close();
        this.finish();
      }, this.task.drainMs);
      return false;
    }
    this.legs[0].service(nowMs);
    this.legs[1].service(nowMs);
    return true;
  }

  /** A failover's re-point (Leg.repoint): how many of the two legs moved from `from` to `to`. */
  repoint(from: string, to: string): number {
    return (this.legs[0].repoint(from, to) ? 1 : 0) + (this.legs[1].repoint(from, to) ? 1 : 0);
  }

  get lostSoFar(): number {
    return this.legs[0].lostSoFar + this.legs[1].lostSoFar;
  }

  close(): void {
    this.legs[0].close();
    this.legs[1].close();
  }

  /** Everything but the thread's scheduling, which the worker adds (it is the thread's, not the call's). */
  result(): Omit<CallMediaResult, 'priority'> {
    const { histograms, outliers } = this.metrics.takeEncoded();
    return {
      callId: this.task.callId,
      error: null,
      mediaStartEpochMs: this.startEpochMs,
      mediaEndEpochMs: this.endEpochMs,
      phaseMs: this.phaseMs,
      stoppedEarly: this.stoppedEarly,
      legs: [this.legs[0].result(), this.legs[1].result()],
      histograms,
      outliers,
      io: this.io.name,
    };
  }
}
