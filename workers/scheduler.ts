/**
 * The one pacing loop of a media thread. Every call in the thread is serviced from a single periodic tick, never
 * from a timer per stream: with hundreds of streams, per-stream timers cost more than the sends themselves and
 * their callbacks drift independently. The tick comes from the I/O layer when it has a ticker (native I/O: a
 * timerfd every TICKER_PERIOD_MS), else from a 1 ms setInterval. libuv keeps loop time in whole milliseconds, so
 * its 1 ms interval fires 1-2 ms apart and a frame goes out 0-2 ms (more under load) after its due time; the
 * timerfd's tick is not rounded. Each leg records that lateness, so the report can separate the generator's jitter
 * from rtpengine's.
 */
import { performance } from 'node:perf_hooks';
import {
  ControlView,
  P_LATENESS_MAX_MS,
  P_LIVE_CALLS,
  P_LOST_A3,
  P_MALFORMED,
  P_RECEIVED,
  P_RTCP_RECEIVED,
  P_RTCP_SENT,
  P_SENT,
} from '../src/media/control.js';
import { MetricSet } from '../src/stats/histogram.js';
import type { CallMedia } from './call-media.js';
import type { LegCounters } from './leg.js';
import type { MediaIo } from './media-io.js';
import { TIMELINE_METRICS, type TimelinePart } from '../src/media/task.js';

const TICK_MS = 1;
/**
 * The native ticker's period. Measured with calibrate (500 calls, one thread, native I/O, alternating runs): send
 * lateness p50 0.86-0.89 ms with the 1 ms setInterval, 0.53 ms at 0.5 ms, 0.38-0.49 ms at 0.25 ms for 10-25% more
 * CPU per packet. The p99 (2-4 ms either way) was set by times the thread was runnable but not running (perf sched:
 * up to 4 ms behind a helper thread of the process); real-time priority (workers/thread-priority.ts) brings it to
 * 0.8-1 ms, near what an idle thread on the same ticker sees (bench/stall-probe.ts: 0.5-0.6 ms).
 */
const TICKER_PERIOD_MS = 0.5;
const PUBLISH_EVERY_MS = 250;
const GOLDEN_RATIO_FRACTION = (Math.sqrt(5) - 1) / 2;

export class Scheduler {
  /** Per-packet histograms of every call in this thread (plain typed arrays: packed ones cost 3x per record). */
  readonly metrics = new MetricSet();
  /** The same latency and lateness again, per wall-clock second, for the run's timeline (posted, then emptied). */
  readonly timeline = new MetricSet({ metrics: TIMELINE_METRICS });
  /** The wall-clock second (epoch s) whose values `timeline` holds. */
  private timelineSecond = -1;
  readonly counters: LegCounters = { sent: 0, received: 0, rtcpSent: 0, rtcpReceived: 0, malformed: 0, latenessMaxMs: 0 };
  private readonly calls: CallMedia[] = [];
  private running = false;
  /** Calls added so far: the index into the phase sequence. */
  private added = 0;
  /** The setInterval when the I/O has no ticker (null while stopped or while the I/O's ticker runs). */
  private timer: NodeJS.Timeout | null = null;
  private nextPublishMs = 0;
  /** RFC 3550 loss of calls that have finished, so the live figure does not drop when a call ends. */
  private lostOfFinishedCalls = 0;

  constructor(
    private readonly control: ControlView,
    private readonly slot: number,
    readonly io: MediaIo,
    /** Where the per-second histograms go (the coordinator's timeline); null: none kept. */
    private readonly postTimeline: ((part: TimelinePart) => void) | null = null,
  ) {}

  /**
   * Starts the call's media at a phase of its own within the packet interval. Arrivals come on a regular schedule
   * (10/s = one call every 10 ms, half a 20 ms frame), so calls started on arrival would all send in the same one
   * or two milliseconds of every interval: bursts of hundreds of packets per tick, late sends, and microbursts at
   * rtpengine that no real population of calls makes. The golden-ratio sequence spreads any number of calls
   * evenly, whatever their arrival pattern.
   */
  add(call: CallMedia): void {
    this.added++;
    const phase = (this.added * GOLDEN_RATIO_FRACTION) % 1;
    call.start(performance.now(), phase * call.ptimeMs);
    this.calls.push(call);
    if (!this.running) this.startTicking();
  }

  private startTicking(): void {
    this.running = true;
    if (this.io.startTicker?.(TICKER_PERIOD_MS, this.tick) !== true) this.timer = setInterval(this.tick, TICK_MS);
  }

  private stopTicking(): void {
    this.running = false;
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    } else {
      this.io.stopTicker?.();
    }
  }

  private readonly tick = (): void => {
    const now = performance.now();
    const stop = this.control.stopRequested;
    const calls = this.calls;
    for (let i = 0; i < calls.length; ) {
      const call = calls[i]!;
      if (call.service(now, stop, this.control.callStopped(call.task.callIndex))) {
        i++;
        continue;
      }
      this.lostOfFinishedCalls += call.lostSoFar;
      // Order does not matter: swap-remove keeps the loop O(1) per finished call.
      calls[i] = calls[calls.length - 1]!;
      calls.pop();
    }
    // Native I/O sends the whole tick's packets in one call.
    this.io.flush();
    if (now >= this.nextPublishMs) this.publish(now);
    if (calls.length === 0 && this.running) {
      this.stopTicking();
      this.publish(now);
      // Nothing more will come from this thread until its next call: hand over the second in progress too.
      this.postSecond(now, true);
    }
  };

  /**
   * Once a wall-clock second is over, its values go to the coordinator. Publishing runs every 250 ms, so a value
   * recorded in the first quarter second after a boundary may be counted in the second before: the timeline's
   * resolution, not an error in any total (the run's totals come from the calls' own results).
   */
  private postSecond(now: number, flushAll = false): void {
    if (this.postTimeline === null) return;
    const second = Math.floor((performance.timeOrigin + now) / 1000);
    if (this.timelineSecond < 0) this.timelineSecond = second;
    if (second === this.timelineSecond && !flushAll) return;
    const { histograms } = this.timeline.takeEncoded();
    if (Object.keys(histograms).length > 0) this.postTimeline({ epochSecond: this.timelineSecond, histograms });
    this.timelineSecond = second;
  }

  private publish(now: number): void {
    this.nextPublishMs = now + PUBLISH_EVERY_MS;
    this.postSecond(now);
    const c = this.counters;
    let lost = this.lostOfFinishedCalls;
    for (const call of this.calls) lost += call.lostSoFar;
    const { control, slot } = this;
    control.write(slot, P_SENT, c.sent);
    control.write(slot, P_RECEIVED, c.received);
    control.write(slot, P_LOST_A3, lost);
    control.write(slot, P_RTCP_SENT, c.rtcpSent);
    control.write(slot, P_RTCP_RECEIVED, c.rtcpReceived);
    control.write(slot, P_MALFORMED, c.malformed);
    control.write(slot, P_LIVE_CALLS, this.calls.length);
    control.write(slot, P_LATENESS_MAX_MS, c.latenessMaxMs);
    c.latenessMaxMs = 0;
  }
}
