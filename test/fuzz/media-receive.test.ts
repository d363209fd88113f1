/**
 * A media thread's receive path (workers/leg.ts over workers/media-io.ts) given hostile datagrams on real UDP
 * sockets on 127.0.0.1, from the address the leg is connected to (where rtpengine would send from): noise, short
 * and wrong-version packets, CSRC lists and extensions running past the end, bad padding, other SSRCs, wild sequence
 * numbers, valid packets mutated, RTCP noise and broken compounds, and datagrams larger than a receive slot.
 *
 * Nothing may throw (a throw in a receive callback would take the media thread down with every call on it), and
 * every datagram must show up in exactly one of the leg's per-stream counters: RTP as malformed, or as a unique
 * packet, a duplicate or a sequence jump; RTCP as received or malformed; the live LegCounters agreeing.
 *
 * No sleeps: a case sends its datagrams and then waits (bounded) until the leg has accounted for all of them.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { Leg, type LegCounters } from '../../workers/leg.js';
import { createMediaIo, type MediaIo } from '../../workers/media-io.js';
import { nativeTransportError } from '../../workers/native/transport.js';
import { MetricSet } from '../../src/stats/histogram.js';
import { encodeToneLoop } from '../../src/media/codec.js';
import { codecByName } from '../../src/profile.js';
import { parseCompound } from '../../src/media/rtcp.js';
import { RTP_HEADER_BYTES, rtpPayloadOffset, rtpSsrc, writeRtpHeader } from '../../src/media/rtp.js';
import { freeUdpPortRange } from '../../src/stack/rtpengine.js';
import type { LegMedia, LegName, LegResult } from '../../src/media/task.js';
import { checkAsyncProperty } from '../helpers/fuzz.js';
import { rtcpDatagram, rtpDatagram } from '../helpers/packet-fuzz.js';

const HOST = '127.0.0.1';
const PCMU = codecByName('pcmu')!;
const TONE: Record<LegName, number> = { a: 1000, b: 2550 };
const FAR_SSRC = 0x11223344;
const FAR_FIRST_SEQ = 5000;
/** How long a case may take to be accounted for; loopback delivery takes microseconds. */
const SETTLE_MS = 5000;

const IO_LAYERS: [string, MediaIo][] = [
  ['dgram', createMediaIo('dgram').io],
  ...(nativeTransportError() === null ? [['native', createMediaIo('native').io] as [string, MediaIo]] : []),
];

function media(leg: LegName, rtpPort: number, peer: { rtp: number; rtcp: number }): LegMedia {
  const far: LegName = leg === 'a' ? 'b' : 'a';
  return {
    leg,
    rtpPort,
    startDelayMs: 0,
    remoteAddress: HOST,
    remoteRtpPort: peer.rtp,
    remoteRtcpPort: peer.rtcp,
    send: { codec: PCMU, payloadType: PCMU.payloadType, toneHz: TONE[leg], ssrc: leg === 'a' ? FAR_SSRC : 0x55667788, firstSeq: FAR_FIRST_SEQ, firstTimestamp: 0 },
    receive: { codec: PCMU, payloadType: PCMU.payloadType, toneHz: TONE[far], checkAudio: true, transcoded: false },
  };
}

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, HOST);
  await once(s, 'listening');
  return s;
}

function send(s: Socket, bytes: Uint8Array, port: number): Promise<void> {
  return new Promise((resolve, reject) => s.send(bytes, port, HOST, (err) => (err ? reject(err) : resolve())));
}

/**
 * Leg b, receiving, with its RTP and RTCP sockets connected to two peer sockets (the "rtpengine" that misbehaves).
 * Leg a is the far leg b checks payloads and send times against; it never opens sockets or sends.
 */
async function receivingLeg(io: MediaIo): Promise<{ b: Leg; counters: LegCounters; peer: { rtp: Socket; rtcp: Socket }; close: () => void }> {
  const peer = { rtp: await bound(), rtcp: await bound() };
  const peerPorts = { rtp: peer.rtp.address().port, rtcp: peer.rtcp.address().port };
  const counters: LegCounters = { sent: 0, received: 0, rtcpSent: 0, rtcpReceived: 0, malformed: 0, latenessMaxMs: 0 };
  const rtcp = { enabled: false, intervalMs: 5000, cname: 'fuzz@rtp-bench' };
  const a = new Leg(media('a', 0, peerPorts), HOST, encodeToneLoop(PCMU, TONE.a, 25), new MetricSet({ packed: true }), counters, rtcp, io);
  const { min } = await freeUdpPortRange(HOST, 2);
  const b = new Leg(media('b', min, peerPorts), HOST, encodeToneLoop(PCMU, TONE.b, 25), new MetricSet({ packed: true }), counters, rtcp, io);
  b.far = a;
  a.far = b;
  await b.open();
  return {
    b,
    counters,
    peer,
    close: () => {
      b.close();
      a.close();
      peer.rtp.close();
      peer.rtcp.close();
    },
  };
}

/** What the leg's counters say it has done with RTP and RTCP datagrams so far. */
function accounted(r: LegResult): { rtp: number; rtcp: number } {
  const x = r.received;
  return { rtp: x.packets + x.duplicates + x.sequenceJumps + x.malformed, rtcp: r.rtcp.received + r.rtcp.malformed };
}

async function settled(b: Leg, want: { rtp: number; rtcp: number }): Promise<LegResult> {
  const deadline = performance.now() + SETTLE_MS;
  for (;;) {
    const r = b.result();
    const got = accounted(r);
    if (got.rtp === want.rtp && got.rtcp === want.rtcp) return r;
    if (got.rtp > want.rtp || got.rtcp > want.rtcp || performance.now() > deadline) {
      assert.fail(`the leg accounted for ${JSON.stringify(got)} datagrams, ${JSON.stringify(want)} were sent: ${JSON.stringify(r.received)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Valid PCMU packets of the far stream (right SSRC, sequence numbers near its first), with the right or a random payload. */
const streamPacket = fc
  .tuple(fc.nat({ max: 60 }), fc.boolean(), fc.uint8Array({ minLength: 160, maxLength: 160 }), fc.constantFrom(0, 0, 0, 8, 96))
  .map(([k, realPayload, noise, pt]) => {
    const b = new Uint8Array(RTP_HEADER_BYTES + 160);
    writeRtpHeader(b, { marker: false, payloadType: pt, sequenceNumber: (FAR_FIRST_SEQ + k) & 0xffff, timestamp: 160 * k, ssrc: FAR_SSRC });
    b.set(realPayload ? encodeToneLoop(PCMU, TONE.a, 25)[k % 25]! : noise, RTP_HEADER_BYTES);
    return b;
  });

for (const [ioName, io] of IO_LAYERS) {
  describe(`media receive path under hostile datagrams (${ioName} I/O)`, () => {
    const legs: { close: () => void }[] = [];
    after(() => legs.forEach((l) => l.close()));

    test('every RTP and RTCP datagram is counted once, as what it is, and nothing throws', async (t) => {
      const { b, counters, peer, close } = await receivingLeg(io);
      legs.push({ close });
      const port = b.media.rtpPort;
      // The model's view across cases (the leg lives through all of them, shrinking runs included).
      let lastSsrc: number | null = null;
      await checkAsyncProperty(
        t,
        `${ioName} leg: hostile RTP and RTCP`,
        fc.asyncProperty(
          fc.array(fc.oneof({ arbitrary: rtpDatagram, weight: 3 }, { arbitrary: streamPacket, weight: 2 }), { maxLength: 24 }),
          fc.array(rtcpDatagram, { maxLength: 6 }),
          async (rtp, rtcp) => {
            const before = b.result();
            const c0 = { ...counters };
            const start = accounted(before);
            for (const d of rtp) await send(peer.rtp, d, port);
            for (const d of rtcp) await send(peer.rtcp, d, port + 1);
            const r = await settled(b, { rtp: start.rtp + rtp.length, rtcp: start.rtcp + rtcp.length });

            let malformed = 0;
            let ssrcChanges = 0;
            for (const d of rtp) {
              if (rtpPayloadOffset(d) < 0) {
                malformed++;
                continue;
              }
              if (lastSsrc !== null && rtpSsrc(d) !== lastSsrc) ssrcChanges++;
              lastSsrc = rtpSsrc(d);
            }
            const rtcpMalformed = rtcp.filter((d) => parseCompound(d) === null).length;
            assert.equal(r.received.malformed - before.received.malformed, malformed, 'RTP malformed');
            assert.equal(r.received.ssrcChanges - before.received.ssrcChanges, ssrcChanges, 'SSRC changes');
            assert.equal(r.rtcp.malformed - before.rtcp.malformed, rtcpMalformed, 'RTCP malformed');
            assert.equal(r.rtcp.received - before.rtcp.received, rtcp.length - rtcpMalformed, 'RTCP received');
            // The live counters the progress line shows say the same.
            assert.equal(counters.malformed - c0.malformed, malformed + rtcpMalformed, 'live malformed');
            assert.equal(counters.received - c0.received, r.received.packets - before.received.packets, 'live received');
            assert.equal(counters.rtcpReceived - c0.rtcpReceived, rtcp.length - rtcpMalformed, 'live RTCP received');
            assert.ok(r.received.wrongPayloadType - before.received.wrongPayloadType <= r.received.packets - before.received.packets);
            assert.ok(r.received.lostA3 >= 0 && Number.isFinite(r.received.jitterMs));
          },
        ),
        250,
      );
    });

    test('datagrams larger than a receive slot are counted (truncated with native I/O), valid or not', async () => {
      const { b, peer, close } = await receivingLeg(io);
      legs.push({ close });
      const big = new Uint8Array(3000);
      writeRtpHeader(big, { marker: false, payloadType: 0, sequenceNumber: FAR_FIRST_SEQ, timestamp: 0, ssrc: FAR_SSRC });
      // Version 0 in the first byte (0xa5 would be valid RTP: V=2 with padding): junk whatever its length.
      const noise = new Uint8Array(65_000).fill(0x25);
      await send(peer.rtp, big, b.media.rtpPort);
      await send(peer.rtp, noise, b.media.rtpPort);
      await send(peer.rtcp, noise, b.media.rtpPort + 1);
      const r = await settled(b, { rtp: 2, rtcp: 1 });
      // The valid one is still RTP when cut to a slot (no padding to lose); the noise is junk either way.
      assert.equal(r.received.packets, 1);
      assert.equal(r.received.malformed, 1);
      assert.equal(r.rtcp.malformed, 1);
      assert.equal(r.received.truncated, ioName === 'native' ? 2 : 0);
    });
  });
}
