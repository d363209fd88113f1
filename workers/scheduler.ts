/**
 * The one pacing loop of a media thread. Every call in the thread is serviced from a single 1 ms interval timer,
 * never from a timer per stream: with hundreds of streams, per-stream timers cost more than the sends themselves
 * and their callbacks drift independently. libuv timers have 1 ms granularity, so a frame goes out 0-2 ms after
 * its due time; each leg records that lateness, so the report can separate the generator's jitter from
 * rtpengine's.
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

const TICK_MS = 1;
const PUBLISH_EVERY_MS = 250;

export class Scheduler {
  /** Per-packet histograms of every call in this thread (plain typed arrays: packed ones cost 3x per record). */
  readonly metrics = new MetricSet();
  readonly counters: LegCounters = { sent: 0, received: 0, rtcpSent: 0, rtcpReceived: 0, malformed: 0, latenessMaxMs: 0 };
  private readonly calls: CallMedia[] = [];
  private timer: NodeJS.Timeout | null = null;
  private nextPublishMs = 0;
  /** RFC 3550 loss of calls that have finished, so the live figure does not drop when a call ends. */
  private lostOfFinishedCalls = 0;

  constructor(private readonly control: ControlView, private readonly slot: number, readonly io: MediaIo) {}

  add(call: CallMedia): void {
    call.start(performance.now());
    this.calls.push(call);
    if (this.timer === null) this.timer = setInterval(this.tick, TICK_MS);
  }

  private readonly tick = (): void => {
    const now = performance.now();
    const stop = this.control.stopRequested;
    const calls = this.calls;
    for (let i = 0; i < calls.length; ) {
      const call = calls[i]!;
      if (call.service(now, stop)) {
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
    if (calls.length === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
      this.publish(now);
    }
  };

  private publish(now: number): void {
    this.nextPublishMs = now + PUBLISH_EVERY_MS;
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
