/**
 * A leg's fault watch (ReceivedStream.faultWatch) and the gap found in it (faultGapAt) on planted arrivals: packets
 * handed straight to the leg's receive handler with arrival times chosen here, so the gap and the audio lost are
 * known exactly. Also the re-point: a leg moves its sockets to the survivor's address and keeps its ports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Leg, type LegCounters } from '../../workers/leg.js';
import { MetricSet } from '../../src/stats/histogram.js';
import { codecByName, type CodecProfile } from '../../src/profile.js';
import { RTP_HEADER_BYTES, writeRtpHeader } from '../../src/media/rtp.js';
import type { LegMedia, ReceivedStream } from '../../src/media/task.js';
import type { MediaIo, MediaSocket, PacketHandler } from '../../workers/media-io.js';
import { faultGapAt, type FaultGap } from '../../src/faults/failover.js';

const PCMU = codecByName('pcmu')!;
const OPUS = codecByName('opus')!;

/** An I/O that carries nothing: it keeps each socket's handler and where it is connected. */
class PlantedIo implements MediaIo {
  readonly name = 'planted';
  readonly handlers: PacketHandler[] = [];
  readonly connected: string[] = [];

  open(_localIp: string, _localPort: number, remoteIp: string, remotePort: number, onPacket: PacketHandler): Promise<MediaSocket> {
    const slot = this.handlers.length;
    this.handlers.push(onPacket);
    this.connected.push(`${remoteIp}:${remotePort}`);
    const socket: MediaSocket = {
      send: () => undefined,
      pendingSends: 0,
      counters: () => ({ sendFailed: 0, lastFailedToken: -1, receiveDrops: 0, truncated: 0 }),
      sendFailures: () => 0,
      connect: (ip, port) => {
        this.connected[slot] = `${ip}:${port}`;
      },
      close: () => undefined,
    };
    return Promise.resolve(socket);
  }

  allocPackets(sizes: readonly number[]): Buffer[] {
    return sizes.map((size) => Buffer.alloc(size));
  }

  freePackets(): void {}
  flush(): void {}
  settle(): void {}
}

function media(codec: CodecProfile, remote = '127.0.9.1'): LegMedia {
  return {
    leg: 'b',
    rtpPort: 20000,
    startDelayMs: 0,
    remoteAddress: remote,
    remoteRtpPort: 10010,
    remoteRtcpPort: 10011,
    send: { codec: PCMU, payloadType: 0, toneHz: 1000, ssrc: 1, firstSeq: 0, firstTimestamp: 0 },
    receive: { codec, payloadType: codec.payloadType, toneHz: 1600, checkAudio: false, transcoded: codec !== PCMU },
  };
}

/** Arrival times are on the performance clock; the planted ones start here. */
const BASE = performance.now() + 1_000_000;

async function openLeg(codec: CodecProfile, watchAtMs: number | null): Promise<{ leg: Leg; io: PlantedIo }> {
  const io = new PlantedIo();
  const counters: LegCounters = { sent: 0, received: 0, rtcpSent: 0, rtcpReceived: 0, malformed: 0, latenessMaxMs: 0 };
  const watch = watchAtMs === null ? null : performance.timeOrigin + BASE + watchAtMs;
  const leg = new Leg(media(codec), '127.0.0.1', [new Uint8Array(160)], new MetricSet(), counters, { enabled: false, intervalMs: 5000, cname: 'b@test' }, io, null, watch);
  await leg.open();
  return { leg, io };
}

/** Hands the leg RTP packets: [arrival ms after BASE, payload]; sequence numbers follow the order given. */
function deliver(io: PlantedIo, packets: ReadonlyArray<readonly [number, Uint8Array]>, payloadType: number): void {
  let seq = 100;
  for (const [at, payload] of packets) {
    const packet = Buffer.alloc(RTP_HEADER_BYTES + payload.length);
    writeRtpHeader(packet, { marker: false, payloadType, sequenceNumber: seq++, timestamp: seq * 160, ssrc: 0x1234 });
    packet.set(payload, RTP_HEADER_BYTES);
    io.handlers[0]!(packet, packet.length, BASE + at);
  }
}

/** One packet every `stepMs` from `fromMs` while below `toMs`. */
function every(fromMs: number, toMs: number, stepMs: number, payload: Uint8Array): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  for (let t = fromMs; t < toMs; t += stepMs) out.push([t, payload]);
  return out;
}

function received(leg: Leg): ReceivedStream {
  return leg.result().received;
}

/** Planted ms after BASE -> epoch ms, and back (rounded to the us the float arithmetic keeps). */
const epoch = (ms: number): number => performance.timeOrigin + BASE + ms;
const planted = (epochMs: number): number => Math.round((epochMs - performance.timeOrigin - BASE) * 1000) / 1000;

/** The gap across a worker known down at `downAtMs` (planted time), its times planted. */
function gapAt(leg: Leg, downAtMs: number): FaultGap | null {
  const watch = received(leg).faultWatch;
  assert.ok(watch !== null, 'the leg kept its arrivals');
  const gap = faultGapAt(watch, epoch(downAtMs));
  return gap === null ? null : { ...gap, fromEpochMs: planted(gap.fromEpochMs), toEpochMs: planted(gap.toEpochMs), ms: Math.round(gap.ms * 1000) / 1000, lostAudioMs: Math.round(gap.lostAudioMs * 1000) / 1000 };
}

const G711_20MS = new Uint8Array(160).fill(0xff);
/** opus TOC: config 31 (CELT FB 20 ms), code 0: one 20 ms frame. */
const OPUS_20MS = Uint8Array.from([0xf8, 1, 2, 3]);
/** config 31, code 3 with 3 frames: 60 ms, as a transcoding survivor packs them. */
const OPUS_60MS = Uint8Array.from([0xfb, 0x03, 1, 2, 3]);

test('a dead worker: 300 ms without packets, 14 frames never sent on: the gap is 300 ms, 280 ms of audio lost', async () => {
  // Watched from the planned time 990; the worker was seen dead at 1005 (a packet it forwarded at 1000 came first).
  const { leg, io } = await openLeg(PCMU, 990);
  deliver(io, [...every(0, 1001, 20, G711_20MS), ...every(1300, 2000, 20, G711_20MS)], 0);
  assert.deepEqual(gapAt(leg, 1005), { fromEpochMs: 1000, toEpochMs: 1300, ms: 300, lostAudioMs: 280 });
  const rx = received(leg);
  assert.equal(rx.audioMs, (51 + 35) * 20);
  assert.equal(planted(rx.lastPacketEpochMs!), 1980);
  // Nothing after the boundary: media never came back.
  assert.equal(gapAt(leg, 1990), null);
});

test('a paused worker: a second of silence, then the backlog in a burst: gap 1 s, no audio lost', async () => {
  const { leg, io } = await openLeg(PCMU, 1010);
  // The 50 frames sent while it was stopped (1040-2020), queued in its socket and forwarded at once.
  const backlog: [number, Uint8Array][] = Array.from({ length: 50 }, (_, k) => [2020 + k * 0.01, G711_20MS]);
  deliver(io, [...every(0, 1021, 20, G711_20MS), ...backlog, ...every(2040, 3000, 20, G711_20MS)], 0);
  assert.deepEqual(gapAt(leg, 1020.5), { fromEpochMs: 1020, toEpochMs: 2020, ms: 1000, lostAudioMs: 0 });
});

test('a transcoding survivor: 60 ms opus packets after 20 ms ones, one frame lost: 20 ms, not two thirds of the packets', async () => {
  const { leg, io } = await openLeg(OPUS, 1010);
  // Before: 20 ms frames arriving as they end. After: 60 ms packets, each arriving as its last frame ends; the
  // survivor never had the frame ending at 1020, so the first one carries 1020-1080.
  deliver(io, [...every(0, 1001, 20, OPUS_20MS), ...every(1080, 2500, 60, OPUS_60MS)], OPUS.payloadType);
  assert.deepEqual(gapAt(leg, 1010), { fromEpochMs: 1000, toEpochMs: 1080, ms: 80, lostAudioMs: 20 });
});

test('a late packet after the gap does not count as lost audio; a gap later in the call is not the fault\'s', async () => {
  const { leg, io } = await openLeg(PCMU, 1010);
  // One frame missing at the fault (a 40 ms gap), then one packet 5 ms late, then a longer gap much later.
  deliver(io, [...every(0, 1001, 20, G711_20MS), [1040, G711_20MS], [1065, G711_20MS], ...every(1080, 1500, 20, G711_20MS), ...every(1600, 1700, 20, G711_20MS)], 0);
  assert.deepEqual(gapAt(leg, 1010), { fromEpochMs: 1000, toEpochMs: 1040, ms: 40, lostAudioMs: 20 });
});

test('no watch: no arrivals kept; past the kept arrivals, the lowest clock still counts and the longest silence is the gap', async () => {
  const unwatched = await openLeg(PCMU, null);
  deliver(unwatched.io, [...every(0, 1001, 20, G711_20MS), ...every(1300, 1500, 20, G711_20MS)], 0);
  assert.equal(received(unwatched.leg).faultWatch, null);
  const { leg, io } = await openLeg(PCMU, 0.5);
  // 127 arrivals are kept after the watch starts (2.54 s): the gap at 3 s lies beyond them, and is the longest
  // silence since the watch started.
  deliver(io, [...every(0, 3001, 20, G711_20MS), ...every(3100, 4000, 20, G711_20MS)], 0);
  const watch = received(leg).faultWatch!;
  assert.equal(watch.arrivalsEpochMs.length, 128);
  assert.equal(planted(watch.arrivalsEpochMs.at(-1)!), 2540);
  assert.deepEqual(gapAt(leg, 3010), { fromEpochMs: 3000, toEpochMs: 3100, ms: 100, lostAudioMs: 80 });
  assert.equal(gapAt(leg, 2990), null, 'beyond the kept arrivals, in ordinary flow: unknown');
  assert.equal(watch.laterMinDeficitMs, -20, 'the clock of the packets after those kept: one frame ahead, as at the start');
});

test('an old pod forwarding for 4 s after the watch, 1.5 s of silence, then its replacement: the gap beyond the kept arrivals', async () => {
  // As a deleted pod whose containers outlive its API object, then the StatefulSet's new pod: a shorter silence
  // (100 ms) inside the kept arrivals first, which is not the fault's; the replacement's second frame comes 5 ms
  // after its first (late, not lost).
  const { leg, io } = await openLeg(PCMU, 0.5);
  deliver(io, [...every(0, 1001, 20, G711_20MS), ...every(1100, 4001, 20, G711_20MS), [5500, G711_20MS], [5505, G711_20MS], ...every(5520, 6000, 20, G711_20MS)], 0);
  const watch = received(leg).faultWatch!;
  const silence = watch.longestSilence!;
  assert.deepEqual(
    [planted(silence.fromEpochMs), planted(silence.toEpochMs), silence.fromDeficitMs, silence.toDeficitMs, silence.laterMinDeficitMs],
    [4000, 5500, 60, 1540, 1520],
  );
  // 73 frames never came: 1460 ms of audio.
  assert.deepEqual(gapAt(leg, 4500), { fromEpochMs: 4000, toEpochMs: 5500, ms: 1500, lostAudioMs: 1460 });
  assert.deepEqual(gapAt(leg, 1050), { fromEpochMs: 1000, toEpochMs: 1100, ms: 100, lostAudioMs: 80 }, 'inside the kept arrivals: from them');
  assert.equal(gapAt(leg, 3500), null);
});

test('re-point: a leg sending to the dead worker moves both sockets to the survivor, same ports; others stay', async () => {
  const { leg, io } = await openLeg(PCMU, null);
  assert.deepEqual(io.connected, ['127.0.9.1:10010', '127.0.9.1:10011']);
  assert.equal(leg.repoint('127.0.9.7', '127.0.9.2'), false);
  assert.deepEqual(io.connected, ['127.0.9.1:10010', '127.0.9.1:10011']);
  assert.equal(leg.repoint('127.0.9.1', '127.0.9.2'), true);
  assert.deepEqual(io.connected, ['127.0.9.2:10010', '127.0.9.2:10011']);
  assert.equal(leg.media.remoteAddress, '127.0.9.2');
});
