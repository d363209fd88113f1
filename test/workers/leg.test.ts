/**
 * The receive path of a Leg over real UDP sockets on 127.0.0.1. Two legs talk through a small in-test relay that
 * behaves like rtpengine (symmetric ports, RTP and RTCP forwarded) and misbehaves on purpose: it drops, duplicates,
 * swaps, delays, corrupts, retypes and injects datagrams, and each test checks that the leg measured exactly that.
 *
 * Pacing is real (20 ms frames from a 1 ms interval, as the scheduler does), so a call takes frames x 20 ms; the
 * calls run concurrently to keep the file short. Nothing waits on a fixed sleep: a call ends when every datagram a
 * leg sent has reached the relay and every datagram the relay sent has been seen by the far leg.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { JITTER_SETTLE_PACKETS, Leg, type LegCounters } from '../../workers/leg.js';
import { MetricSet } from '../../src/stats/histogram.js';
import { encodeToneLoop } from '../../src/media/codec.js';
import { codecByName } from '../../src/profile.js';
import {
  RTP_HEADER_BYTES,
  rtpSequence,
  rtpTimestamp,
  setRtpPayloadType,
  setRtpSequence,
  setRtpSsrc,
  setRtpTimestamp,
  writeRtpHeader,
} from '../../src/media/rtp.js';
import type { LegMedia, LegName, LegResult, ReceivedStream } from '../../src/media/task.js';
import { createMediaIo, type MediaIo } from '../../workers/media-io.js';
import { nativeTransportError } from '../../workers/native/transport.js';
import { Relay, type Flow, type Misbehaviour } from '../helpers/relay.js';

const HOST = '127.0.0.1';
const PCMU = codecByName('pcmu')!;
const FRAME_BYTES = (PCMU.clockRate * PCMU.ptimeMs) / 1000;
const TONE: Record<LegName, number> = { a: 1000, b: 1600 };

/**
 * G.711 frames of a tone at a multiple of 50 Hz are byte-identical (whole periods in every frame), so a payload
 * compared with the wrong frame of the loop would still match. Flipping the low bit of sample k in frame k makes
 * every frame unique while leaving the tone intact, so the payload check also proves the seq-to-frame mapping.
 */
function uniqueFrames(toneHz: number): Uint8Array[] {
  return encodeToneLoop(PCMU, toneHz, 25).map((frame, k) => {
    const copy = Uint8Array.from(frame);
    copy[k] = copy[k]! ^ 0x01;
    return copy;
  });
}

const FRAMES: Record<LegName, Uint8Array[]> = { a: uniqueFrames(TONE.a), b: uniqueFrames(TONE.b) };
const SSRC: Record<LegName, number> = { a: 0x11223344, b: 0xa5a5a5a5 };
const FIRST_SEQ: Record<LegName, number> = { a: 1000, b: 30000 };
/** Frames the tone check reads (workers/leg.ts AUDIO_CHECK_FRAMES), after skipping 5. */
const AUDIO_CHECK_FRAMES = 50;
/** Bound on settling after the last send. */
const SETTLE_MS = 3000;

interface CallOptions {
  /** Frames each leg sends. */
  frames: number;
  misbehave?: Misbehaviour;
  /** RTCP on with this interval; off when absent. */
  rtcpIntervalMs?: number;
  firstSeq?: Partial<Record<LegName, number>>;
  firstTimestamp?: Partial<Record<LegName, number>>;
  /** Runs once both legs are open and the relay knows their ports, before the first frame. */
  beforeStart?: (legs: Record<LegName, Leg>, relay: Relay) => Promise<void>;
}

interface CallOutcome {
  a: LegResult;
  b: LegResult;
  metrics: Record<LegName, MetricSet>;
  counters: Record<LegName, LegCounters>;
  relay: Relay;
}

function media(leg: LegName, relay: Relay, o: CallOptions): LegMedia {
  const far: LegName = leg === 'a' ? 'b' : 'a';
  return {
    leg,
    rtpPort: 0,
    startDelayMs: 0,
    remoteAddress: HOST,
    remoteRtpPort: relay.port(leg, 'rtp'),
    remoteRtcpPort: relay.port(leg, 'rtcp'),
    send: {
      codec: PCMU,
      payloadType: PCMU.payloadType,
      toneHz: TONE[leg],
      ssrc: SSRC[leg],
      firstSeq: o.firstSeq?.[leg] ?? FIRST_SEQ[leg],
      firstTimestamp: o.firstTimestamp?.[leg] ?? 123456,
    },
    receive: { codec: PCMU, payloadType: PCMU.payloadType, toneHz: TONE[far], checkAudio: true, transcoded: false },
  };
}

/** Opens the leg on a random even port pair, retrying when another socket (or another test) holds one. */
async function openOnFreePorts(leg: Leg): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 40; attempt++) {
    leg.media.rtpPort = 40000 + 2 * Math.floor(Math.random() * 9999);
    try {
      await leg.open();
      return;
    } catch (err) {
      last = err;
      // open() leaves the RTP socket bound when only the RTCP bind fails.
      leg.close();
    }
  }
  throw new Error(`no free even port pair for leg ${leg.name} in 40 tries: ${String(last)}`);
}

/** Every RTP datagram the leg has handled, whatever it made of it (sequence jumps aside, which no test sends). */
function datagramsSeen(r: LegResult): number {
  return r.received.packets + r.received.duplicates + r.received.malformed;
}

async function waitFor(what: string, done: () => boolean, state: () => unknown, deadlineMs: number): Promise<void> {
  while (!done()) {
    if (performance.now() > deadlineMs) assert.fail(`timed out waiting until ${what}; state: ${JSON.stringify(state())}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** One call through the relay: both legs send `frames` frames in real time, then everything in flight settles. */
async function runCall(io: MediaIo, o: CallOptions): Promise<CallOutcome> {
  const relay = await Relay.open(HOST, o.misbehave);
  const metrics = { a: new MetricSet({ packed: true }), b: new MetricSet({ packed: true }) };
  const counters: Record<LegName, LegCounters> = {
    a: { sent: 0, received: 0, rtcpSent: 0, rtcpReceived: 0, malformed: 0, latenessMaxMs: 0 },
    b: { sent: 0, received: 0, rtcpSent: 0, rtcpReceived: 0, malformed: 0, latenessMaxMs: 0 },
  };
  const rtcp = (leg: LegName) => ({ enabled: o.rtcpIntervalMs !== undefined, intervalMs: o.rtcpIntervalMs ?? 5000, cname: `${leg}.test@rtp-bench` });
  const a = new Leg(media('a', relay, o), HOST, FRAMES.a, metrics.a, counters.a, rtcp('a'), io);
  const b = new Leg(media('b', relay, o), HOST, FRAMES.b, metrics.b, counters.b, rtcp('b'), io);
  a.far = b;
  b.far = a;
  try {
    await openOnFreePorts(a);
    await openOnFreePorts(b);
    relay.connect(a.media.rtpPort, b.media.rtpPort);
    await o.beforeStart?.({ a, b }, relay);

    const t0 = performance.now();
    a.start(t0);
    b.start(t0);
    // Time stops half a frame after the last frame is due, so a late tick cannot send more than `frames` (the
    // half frame absorbs the rounding of the leg's nextDueMs += ptimeMs against t0 + (frames - 1) * ptimeMs).
    const lastDue = t0 + (o.frames - 0.5) * PCMU.ptimeMs;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = Math.min(performance.now(), lastDue);
        a.service(now);
        b.service(now);
        io.flush();
        if (now >= lastDue) {
          // Extra ticks at the same instant: a stalled loop may have left an RTCP report due (a leg sends at most
          // one per tick); no frame is due any more.
          for (let i = 0; i < 4; i++) {
            a.service(now);
            b.service(now);
            io.flush();
          }
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });

    const state = () => ({ relayReceived: relay.received, relaySent: relay.sent, a: a.result(), b: b.result() });
    await waitFor(
      'the relay has every datagram and each leg has seen every datagram the relay sent it',
      () => {
        const ra = a.result();
        const rb = b.result();
        return (
          relay.received['ab/rtp'] === ra.sent.packets &&
          relay.received['ba/rtp'] === rb.sent.packets &&
          relay.received['ab/rtcp'] === ra.rtcp.sent &&
          relay.received['ba/rtcp'] === rb.rtcp.sent &&
          relay.idle &&
          datagramsSeen(rb) === relay.sent['ab/rtp'] &&
          datagramsSeen(ra) === relay.sent['ba/rtp'] &&
          rb.rtcp.received + rb.rtcp.malformed === relay.sent['ab/rtcp'] &&
          ra.rtcp.received + ra.rtcp.malformed === relay.sent['ba/rtcp']
        );
      },
      state,
      performance.now() + SETTLE_MS,
    );
    assert.equal(relay.stray, 0, 'the relay got datagrams from somewhere other than the legs');
    assert.equal(relay.sendErrors, 0);
    return { a: a.result(), b: b.result(), metrics, counters, relay };
  } finally {
    a.close();
    b.close();
    relay.close();
  }
}

/** Forwards everything, changing only the datagrams of one flow for which `change` returns something. */
function onFlow(flow: Flow, change: (packet: Buffer, index: number) => ReturnType<Misbehaviour> | undefined): Misbehaviour {
  return (packet, index, f) => (f === flow ? change(packet, index) ?? [packet] : [packet]);
}

/** Swaps the datagrams at `index` and `index + 1` of one flow. */
function swapAt(index: number): (packet: Buffer, i: number) => Buffer[] | undefined {
  let held: Buffer | null = null;
  return (packet, i) => {
    if (i === index) {
      held = packet;
      return [];
    }
    if (i === index + 1) return [packet, held!];
    return undefined;
  };
}

/** A stream that arrived exactly as sent: n unique packets in order, nothing else. */
function assertIntact(r: ReceivedStream, n: number, farSsrc: number, label: string): void {
  assert.equal(r.packets, n, `${label}: packets`);
  assert.equal(r.expectedA3, n, `${label}: expectedA3`);
  assert.equal(r.lostA3, 0, `${label}: lostA3`);
  assert.equal(r.duplicates, 0, `${label}: duplicates`);
  assert.equal(r.late, 0, `${label}: late`);
  assert.equal(r.malformed, 0, `${label}: malformed`);
  assert.equal(r.wrongPayloadType, 0, `${label}: wrongPayloadType`);
  assert.equal(r.payloadMismatches, 0, `${label}: payloadMismatches`);
  assert.equal(r.ssrc, farSsrc, `${label}: ssrc`);
  assert.equal(r.ssrcChanges, 0, `${label}: ssrcChanges`);
  assert.equal(r.payloadType, PCMU.payloadType, `${label}: payloadType`);
  assert.equal(r.bytes, n * (RTP_HEADER_BYTES + FRAME_BYTES), `${label}: bytes`);
}

/** Every test runs over each I/O layer a media thread can use here: dgram always, native when it is built. */
const IO_LAYERS: [string, MediaIo][] = [
  ['dgram', createMediaIo('dgram').io],
  ...(nativeTransportError() === null ? [['native', createMediaIo('native').io] as [string, MediaIo]] : []),
];

for (const [ioName, io] of IO_LAYERS) {
describe(`Leg over real UDP through a misbehaving relay (${ioName} I/O)`, { concurrency: true }, () => {
  test('clean pass-through: every frame arrives once, in order, intact, timed, carrying the far tone', async (t) => {
    const n = 100;
    const call = await runCall(io, { frames: n });
    for (const leg of ['a', 'b'] as const) {
      const r = call[leg];
      const far: LegName = leg === 'a' ? 'b' : 'a';
      assert.deepEqual(
        r.sent,
        { packets: n, bytes: n * (RTP_HEADER_BYTES + FRAME_BYTES), failed: 0, skipped: 0, lastSeq: (FIRST_SEQ[leg] + n - 1) & 0xffff, lastFailed: false, refused: 0 },
        `${leg}: sent`,
      );
      assert.equal(r.received.farLastSeqReceived, true, `${leg}: the far leg's last packet arrived`);
      assert.equal(r.received.receiveQueueDrops, 0, `${leg}: no drops at its own socket`);
      assertIntact(r.received, n, SSRC[far], leg);
      const rx = r.received;
      const m = call.metrics[leg];
      const latency = m.summary('latencyMs')!;
      const jitter = m.summary('jitterMs')!;
      t.diagnostic(
        `${leg}: latency min/mean/max ${latency.min}/${rx.latencyMeanMs?.toFixed(3)}/${rx.latencyMaxMs?.toFixed(3)} ms, ` +
          `A.8 jitter p50 ${jitter.p50} ms (end ${rx.jitterMs.toFixed(3)}), transit jitter ${rx.transitJitterMs.toFixed(3)} ms, ` +
          `tone ratio ${rx.audio.ratio?.toFixed(4)}`,
      );
      // Timing: bounds a loaded machine passes (bursty sends, a stalled loop) but a wrong match of seq to send
      // time (one frame off: +-20 ms on every packet, see the delay test for the exact check) or a wrong
      // timestamp step (A.8 jitter at 20 ms for good) does not. Minimum and median are robust to stalls.
      assert.notEqual(rx.latencyMeanMs, null);
      assert.ok(latency.min < 10, `${leg}: latency min ${latency.min} ms`);
      assert.ok(rx.latencyMeanMs! >= latency.min && rx.latencyMeanMs! < 50, `${leg}: latency mean ${rx.latencyMeanMs} ms`);
      assert.ok(rx.latencyMaxMs! >= rx.latencyMeanMs! && rx.latencyMaxMs! < 500, `${leg}: latency max ${rx.latencyMaxMs} ms`);
      assert.ok(jitter.p50 < 10, `${leg}: median A.8 jitter ${jitter.p50} ms`);
      assert.ok(rx.jitterMs >= 0 && rx.jitterMs < 50, `${leg}: jitter ${rx.jitterMs} ms`);
      assert.ok(m.summary('transitJitterMs')!.p50 < 10, `${leg}: median transit jitter`);
      assert.ok(rx.maxJitterMs >= rx.meanJitterMs, `${leg}: max jitter below mean`);
      assert.ok(rx.firstPacketEpochMs !== null && Math.abs(rx.firstPacketEpochMs - Date.now()) < 10_000);
      assert.equal(rx.audioMs, n * PCMU.ptimeMs, `${leg}: audio received, by each payload's duration`);
      assert.equal(rx.faultWatch, null, `${leg}: no fault watched`);
      assert.equal(r.sent.refused, 0);
      assert.equal(rx.audio.checked, true);
      assert.equal(rx.audio.frames, AUDIO_CHECK_FRAMES, `${leg}: audio frames checked`);
      assert.ok(rx.audio.ratio !== null && rx.audio.ratio > 0.9, `${leg}: tone ratio ${rx.audio.ratio} for ${TONE[far]} Hz`);
      assert.deepEqual(r.rtcp, { sent: 0, received: 0, malformed: 0, lastReport: null }, `${leg}: rtcp off`);

      // The leg's histograms: one sample per send, one latency/jitter sample per unique packet, no outliers.
      assert.equal(m.count('sendLatenessMs'), n, `${leg}: sendLatenessMs samples`);
      assert.equal(m.count('latencyMs'), n, `${leg}: latencyMs samples`);
      // Jitter from the 17th packet on: the RFC 3550 estimator starts at 0 and is biased low until it has settled.
      assert.equal(m.count('jitterMs'), n - JITTER_SETTLE_PACKETS, `${leg}: jitterMs samples`);
      assert.equal(m.count('transitJitterMs'), n - JITTER_SETTLE_PACKETS, `${leg}: transitJitterMs samples`);
      assert.deepEqual(m.outliers, { clamped: 0, rejected: 0 }, `${leg}: outliers`);
      assert.ok(Math.abs(latency.mean - rx.latencyMeanMs!) < 0.01 + rx.latencyMeanMs! * 0.01, `${leg}: histogram mean ${latency.mean} vs ${rx.latencyMeanMs}`);
      const counters = call.counters[leg];
      assert.equal(counters.sent, n);
      assert.equal(counters.received, n);
      assert.equal(counters.malformed, 0);
    }
    assert.equal(call.relay.sent['ab/rtp'], n);
    assert.equal(call.relay.sent['ba/rtp'], n);
  });

  test('every 10th packet a->b dropped: b counts exactly that loss, a is unaffected', async () => {
    // 101 frames: the 10th ... 100th are dropped and the 101st arrives, so RFC 3550 A.3 sees the last drop too
    // (a trailing loss is invisible to A.3, which only knows up to the highest seq received).
    const n = 101;
    const dropped = Math.floor(n / 10);
    const call = await runCall(io, { frames: n, misbehave: onFlow('ab/rtp', (p, i) => ((i + 1) % 10 === 0 ? [] : undefined)) });
    const rb = call.b.received;
    assert.equal(call.relay.sent['ab/rtp'], n - dropped);
    assert.equal(call.a.sent.packets, n);
    assert.equal(rb.packets, n - dropped);
    assert.equal(call.a.sent.packets - rb.packets, dropped, 'sent - received');
    assert.equal(rb.lostA3, dropped);
    assert.equal(rb.expectedA3, n);
    assert.equal(rb.duplicates, 0);
    assert.equal(rb.late, 0);
    assert.equal(rb.payloadMismatches, 0, 'the packets after each gap are matched to the right frame');
    assert.equal(rb.bytes, (n - dropped) * (RTP_HEADER_BYTES + FRAME_BYTES));
    assert.equal(call.metrics.b.count('latencyMs'), n - dropped);
    assert.equal(call.counters.b.received, n - dropped);
    assertIntact(call.a.received, n, SSRC.b, 'a');
  });

  test('one duplicate and one adjacent swap: duplicates 1, late 1, nothing lost, payloads still match', async () => {
    const n = 100;
    const sentSeqs: number[] = [];
    const swap = swapAt(40);
    const misbehave = onFlow('ab/rtp', (p, i) => (i === 20 ? [p, Buffer.from(p)] : swap(p, i)));
    const call = await runCall(io, {
      frames: n,
      misbehave: (p, i, f) => {
        const out = misbehave(p, i, f);
        if (f === 'ab/rtp' && Array.isArray(out)) for (const d of out) sentSeqs.push(rtpSequence(d));
        return out;
      },
    });
    // The relay really did what the test claims: seq 20 twice, 41 before 40.
    const s0 = FIRST_SEQ.a;
    assert.deepEqual(sentSeqs.slice(20, 22), [s0 + 20, s0 + 20]);
    assert.deepEqual(sentSeqs.slice(41, 43), [s0 + 41, s0 + 40]);
    const rb = call.b.received;
    assert.equal(rb.packets, n);
    assert.equal(rb.duplicates, 1);
    assert.equal(rb.late, 1);
    assert.equal(rb.lostA3, 0);
    assert.equal(rb.expectedA3, n);
    assert.equal(rb.payloadMismatches, 0);
    assert.equal(rb.bytes, n * (RTP_HEADER_BYTES + FRAME_BYTES), 'a duplicate adds no bytes');
    assert.equal(call.metrics.b.count('latencyMs'), n, 'a duplicate is not a second latency sample');
    assert.equal(call.counters.b.received, n);
    assertIntact(call.a.received, n, SSRC.b, 'a');
  });

  test('one byte corrupted in 3 payloads: 3 mismatches, all still received', async () => {
    const n = 60;
    const corrupt = new Set([5, 17, 42]);
    const call = await runCall(io, {
      frames: n,
      misbehave: onFlow('ab/rtp', (p, i) => {
        if (!corrupt.has(i)) return undefined;
        const copy = Buffer.from(p);
        copy[RTP_HEADER_BYTES + 100] = copy[RTP_HEADER_BYTES + 100]! ^ 0x80;
        return [copy];
      }),
    });
    const rb = call.b.received;
    assert.equal(rb.payloadMismatches, corrupt.size);
    assert.equal(rb.packets, n);
    assert.equal(rb.lostA3, 0);
    assert.equal(rb.duplicates, 0);
    assert.equal(rb.malformed, 0);
    assert.equal(call.metrics.b.count('latencyMs'), n);
    assertIntact(call.a.received, n, SSRC.b, 'a');
  });

  test('malformed datagrams from the relay port are counted, not thrown, and leave the stream alone', async () => {
    const n = 60;
    const tooShort = Buffer.from([0x80, 0x00, 0x01]);
    const version1 = Buffer.alloc(RTP_HEADER_BYTES);
    writeRtpHeader(version1, { marker: false, payloadType: 0, sequenceNumber: FIRST_SEQ.a + 30, timestamp: 0, ssrc: SSRC.a });
    version1[0] = (version1[0]! & 0x3f) | 0x40;
    // CC = 15 says 60 bytes of CSRCs follow the fixed header; only 20 bytes do.
    const csrcs = Buffer.alloc(RTP_HEADER_BYTES + 20);
    writeRtpHeader(csrcs, { marker: false, payloadType: 0, sequenceNumber: FIRST_SEQ.a + 31, timestamp: 0, ssrc: SSRC.a });
    csrcs[0] = (csrcs[0]! & 0xf0) | 0x0f;
    // Valid RTP from an address the leg is not connected to: the kernel must filter it (on loopback the datagram
    // would be queued before the send completes, so it would be counted ahead of the stream).
    const outsider = Buffer.alloc(RTP_HEADER_BYTES + FRAME_BYTES);
    writeRtpHeader(outsider, { marker: false, payloadType: 0, sequenceNumber: FIRST_SEQ.a + 200, timestamp: 0, ssrc: 0xdeadbeef });
    const call = await runCall(io, {
      frames: n,
      misbehave: onFlow('ab/rtp', (p, i) => (i === 20 ? [p, tooShort, version1, csrcs] : undefined)),
      beforeStart: async (legs) => {
        const s = createSocket('udp4');
        try {
          await new Promise<void>((resolve, reject) => {
            s.once('error', reject);
            s.send(outsider, legs.b.media.rtpPort, HOST, (err) => (err ? reject(err) : resolve()));
          });
        } finally {
          s.close();
        }
      },
    });
    assert.equal(call.relay.sent['ab/rtp'], n + 3);
    const rb = call.b.received;
    assert.equal(rb.malformed, 3);
    assert.equal(call.counters.b.malformed, 3);
    assertIntact({ ...rb, malformed: 0 }, n, SSRC.a, 'b');
    assert.equal(call.a.received.malformed, 0);
    assert.equal(call.counters.a.malformed, 0);
  });

  test('a packet with another payload type is counted once as wrongPayloadType', async () => {
    const n = 70;
    const call = await runCall(io, {
      frames: n,
      misbehave: onFlow('ab/rtp', (p, i) => {
        if (i !== 40) return undefined;
        const copy = Buffer.from(p);
        setRtpPayloadType(copy, 8);
        return [copy];
      }),
    });
    const rb = call.b.received;
    assert.equal(rb.wrongPayloadType, 1);
    assert.equal(rb.packets, n);
    assert.equal(rb.lostA3, 0);
    assert.equal(rb.payloadType, PCMU.payloadType, "the stream's payload type is its first packet's");
    assert.equal(rb.payloadMismatches, 0, 'only the header changed');
    assert.equal(rb.audio.frames, AUDIO_CHECK_FRAMES);
    assert.equal(call.a.received.wrongPayloadType, 0);
  });

  test('a->b held 40 ms by the relay: b measures the delay, a does not', async (t) => {
    const n = 50;
    const delayMs = 40;
    const call = await runCall(io, { frames: n, misbehave: onFlow('ab/rtp', (p) => ({ delayMs, packets: [p] })) });
    const delayed = call.metrics.b.summary('latencyMs')!;
    const direct = call.metrics.a.summary('latencyMs')!;
    t.diagnostic(`latency min/mean: delayed ${delayed.min}/${delayed.mean} ms, direct ${direct.min}/${direct.mean} ms`);
    assertIntact(call.b.received, n, SSRC.a, 'b');
    assertIntact(call.a.received, n, SSRC.b, 'a');
    // A timer fires no earlier than its delay (libuv may round the start down by under 1 ms).
    assert.ok(delayed.min >= delayMs - 1, `delayed latency min ${delayed.min} ms`);
    // One frame off in the seq-to-send-time match would add 20 ms to every packet.
    assert.ok(delayed.min < delayMs + 15, `delayed latency min ${delayed.min} ms`);
    assert.ok(direct.min < 10, `direct latency min ${direct.min} ms`);
    assert.ok(call.b.received.latencyMeanMs! >= delayMs - 1);
    // A constant delay is no jitter: the transit jitter stays small while the latency jumped by 40 ms.
    assert.ok(call.metrics.b.summary('transitJitterMs')!.p50 < 10);
    // The second, independent view: the marker found in the decoded audio (frame 25; frame 0 opens the stream and
    // has no tone before it) plays out as late as its packet arrived, with no sequence number involved.
    const audioB = call.b.received.audio;
    const audioA = call.a.received.audio;
    t.diagnostic(`audio delay: delayed ${audioB.delayMeanMs} ms (${audioB.delays} markers), direct ${audioA.delayMeanMs} ms (${audioA.delays})`);
    assert.equal(audioB.delays, 1);
    assert.ok(audioB.delayMeanMs! >= delayMs - 1 && audioB.delayMeanMs! <= delayed.max + 0.25, `delayed audio ${audioB.delayMeanMs} ms`);
    assert.equal(audioA.delays, 1);
    // The undelayed direction must not show the planted 40 ms; one marker's playout may still meet a busy event loop
    // (10.5 ms seen once with dgram on a loaded 2-core machine), so the bound is half the planted delay.
    assert.ok(audioA.delayMeanMs! < delayMs / 2, `direct audio ${audioA.delayMeanMs} ms`);
    assert.equal(call.metrics.b.count('audioDelayMs'), 1, 'one histogram sample per marker found');
  });

  test('RTCP through the relay: SR each way, reports about the own stream with a round trip, malformed RTCP counted', async (t) => {
    // 40 frames = 790 ms of leg time; with a 200 ms interval the reports go out at 100, 300, 500 and 700 ms.
    const n = 40;
    const reports = 4;
    const junk = Buffer.from([0x40, 0xc9, 0x00, 0x01, 0, 0, 0, 0]); // an RR header with version 1
    const call = await runCall(io, {
      frames: n,
      rtcpIntervalMs: 200,
      misbehave: onFlow('ab/rtcp', (p, i) => (i === 0 ? [p, junk] : undefined)),
    });
    for (const leg of ['a', 'b'] as const) {
      const r = call[leg];
      const report = r.rtcp.lastReport;
      t.diagnostic(`${leg}: rtcp ${JSON.stringify(r.rtcp)}`);
      assert.equal(r.rtcp.sent, reports, `${leg}: rtcp sent`);
      assert.equal(r.rtcp.received, reports, `${leg}: rtcp received`);
      assert.equal(call.counters[leg].rtcpSent, reports);
      assert.equal(call.counters[leg].rtcpReceived, reports);
      assert.notEqual(report, null, `${leg}: no report block about its own stream`);
      assert.equal(report!.fractionLost, 0, `${leg}: fraction lost`);
      assert.equal(report!.cumulativeLost, 0, `${leg}: cumulative lost`);
      assert.ok(report!.jitterMs >= 0 && report!.jitterMs < 50, `${leg}: reported jitter ${report!.jitterMs} ms`);
      // Later reports echo the far leg's earlier SR (LSR/DLSR), so the round trip is known: through the relay
      // and two event-loop turns it is never 0 (the resolution is 15 us), and a DLSR in the wrong unit (ms
      // instead of 1/65536 s) would add about 200 ms.
      assert.ok(report!.rttMs !== null && report!.rttMs > 0 && report!.rttMs < 100, `${leg}: rtt ${report!.rttMs} ms`);
      assertIntact(r.received, n, SSRC[leg === 'a' ? 'b' : 'a'], leg);
    }
    assert.equal(call.relay.sent['ab/rtcp'], reports + 1, 'the relay sent the junk datagram too');
    assert.equal(call.b.rtcp.malformed, 1);
    assert.equal(call.counters.b.malformed, 1, 'malformed RTCP also counts in the live malformed counter');
    assert.equal(call.a.rtcp.malformed, 0);
    assert.equal(call.b.received.malformed, 0, 'RTCP junk is not RTP junk');
  });

  test('RTCP reports the loss of a lossy stream to its sender, and none for the clean one', async () => {
    // 30 frames, every 5th a->b dropped: 6 losses, the last (frame 30) invisible to A.3. b reports at 100, 300
    // and 500 ms; by the last report it has seen the drops of frames 5 to 20 at least.
    const n = 30;
    const call = await runCall(io, {
      frames: n,
      rtcpIntervalMs: 200,
      misbehave: onFlow('ab/rtp', (p, i) => ((i + 1) % 5 === 0 ? [] : undefined)),
    });
    const rb = call.b.received;
    assert.equal(rb.packets, n - 6);
    assert.equal(rb.lostA3, 5, 'the trailing drop is invisible to A.3');
    assert.equal(rb.expectedA3, n - 1);
    const aboutA = call.a.rtcp.lastReport!;
    assert.notEqual(aboutA, null);
    assert.ok(aboutA.cumulativeLost >= 3 && aboutA.cumulativeLost <= rb.lostA3, `cumulative lost ${aboutA.cumulativeLost}`);
    // The interval since the 300 ms report holds about 10 packets with 1 or 2 of them dropped.
    assert.ok(aboutA.fractionLost > 0 && aboutA.fractionLost <= 0.5, `fraction lost ${aboutA.fractionLost}`);
    const aboutB = call.b.rtcp.lastReport!;
    assert.notEqual(aboutB, null);
    assert.equal(aboutB.cumulativeLost, 0);
    assert.equal(aboutB.fractionLost, 0);
  });

  test('a stray packet numbered just before the far first seq: counted late, one mismatch, nothing thrown', async () => {
    // A copy of frame 6 relabelled firstSeq - 1: a seq the far leg never sent, older than its first packet.
    const n = 30;
    const call = await runCall(io, {
      frames: n,
      misbehave: onFlow('ab/rtp', (p, i) => {
        if (i !== 5) return undefined;
        const stray = Buffer.from(p);
        setRtpSequence(stray, FIRST_SEQ.a - 1);
        return [p, stray];
      }),
    });
    const rb = call.b.received;
    assert.equal(rb.packets, n + 1);
    assert.equal(rb.late, 1);
    assert.equal(rb.expectedA3, n + 1, 'A.3 moves its base down to the stray');
    assert.equal(rb.lostA3, 0);
    assert.equal(rb.payloadMismatches, 1, 'the stray is not the frame of any seq the far leg sent');
    assert.equal(call.metrics.b.count('latencyMs'), n, 'no send time is known for the stray');
  });

  test('the relay switches source mid-stream (new SSRC and timestamp base): one SSRC change, no jitter spike', async () => {
    const n = 60;
    const newSsrc = 0x0badf00d;
    const call = await runCall(io, {
      frames: n,
      misbehave: onFlow('ab/rtp', (p, i) => {
        if (i < 30) return undefined;
        const copy = Buffer.from(p);
        setRtpSsrc(copy, newSsrc);
        setRtpTimestamp(copy, (rtpTimestamp(p) + 0x40000000) >>> 0);
        return [copy];
      }),
    });
    const rb = call.b.received;
    assert.equal(rb.ssrcChanges, 1);
    assert.equal(rb.ssrc, newSsrc);
    assert.equal(rb.packets, n);
    assert.equal(rb.lostA3, 0);
    assert.equal(rb.payloadMismatches, 0, 'the payloads are untouched');
    // Timing compared across the two sources would see a 2^30-unit timestamp step (~37 hours at 8 kHz).
    assert.ok(rb.maxJitterMs < 100, `max A.8 jitter ${rb.maxJitterMs} ms`);
    assert.ok(call.metrics.b.summary('transitJitterMs')!.max < 100);
  });

  test('sequence number and timestamp wrap: no loss, no mismatch, expectedA3 = frames', async () => {
    const n = 20;
    const call = await runCall(io, { frames: n, firstSeq: { a: 65530 }, firstTimestamp: { a: 0xffffff60 } });
    const rb = call.b.received;
    assertIntact(rb, n, SSRC.a, 'b');
    assert.equal(call.metrics.b.count('latencyMs'), n, 'send times are found across the wrap');
    // A timestamp difference taken unsigned across the wrap would be 2^32 units (~149 hours at 8 kHz).
    assert.ok(rb.maxJitterMs < 100, `jitter across the timestamp wrap: ${rb.maxJitterMs} ms`);
    assertIntact(call.a.received, n, SSRC.b, 'a');
  });
});

/**
 * A late first packet across the wrap once shifted the payload check's numbering by 65536 for the rest of the call.
 * It runs after the concurrent suite so that anything it throws from a socket handler is pinned on it alone.
 */
describe(`Leg payload check across a reordered wrap (${ioName} I/O)`, () => {
  test('first two packets swapped across the seq wrap: payloads still match', async () => {
    const n = 30;
    const call = await runCall(io, { frames: n, firstSeq: { a: 65535 }, misbehave: onFlow('ab/rtp', swapAt(0)) });
    const rb = call.b.received;
    assert.equal(rb.packets, n);
    assert.equal(rb.late, 1);
    assert.equal(rb.lostA3, 0);
    assert.equal(rb.payloadMismatches, 0);
  });
});
}

/**
 * A thread's room: a leg takes its packet buffers when it is made and gives them back when it closes, also when it
 * never opened (a port taken). With native I/O the room is the send arena; a full one refuses the next leg with a
 * message that says what to do, and the block of a leg that failed to open can be used again.
 */
if (nativeTransportError() === null) {
  test('native arena: a leg whose open failed returns its block; a full arena refuses the next leg with the flag to use', async () => {
    const { io } = createMediaIo('native');
    const metrics = new MetricSet({ packed: true });
    const counters: LegCounters = { sent: 0, received: 0, rtcpSent: 0, rtcpReceived: 0, malformed: 0, latenessMaxMs: 0 };
    const relayLike = { port: () => 9 } as unknown as Relay;
    const make = (): Leg => new Leg(media('a', relayLike, { frames: 1 }), HOST, FRAMES.a, metrics, counters, { enabled: false, intervalMs: 5000, cname: 'x' }, io);
    // Fill the arena but for one block.
    const held: Buffer[][] = [];
    for (;;) {
      try {
        held.push(io.allocPackets([64]));
      } catch (err) {
        assert.match((err as Error).message, /send arena is full \(4096 calls per thread at most\): add --threads/);
        break;
      }
    }
    io.freePackets(held.pop()!);
    const squatter = createSocket('udp4');
    await new Promise<void>((resolve) => squatter.bind({ address: HOST, port: 0 }, resolve));
    try {
      for (let round = 0; round < 3; round++) {
        const leg = make();
        leg.media.rtpPort = squatter.address().port;
        await assert.rejects(leg.open(), /EADDRINUSE/);
        leg.close();
      }
      // Still room for exactly one leg: each failed leg gave its block back.
      const last = make();
      assert.throws(() => make(), /send arena is full/);
      last.close();
    } finally {
      squatter.close();
      for (const buffers of held) io.freePackets(buffers);
    }
  });
}
