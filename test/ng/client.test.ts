import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import {
  NgClient,
  NgClientClosedError,
  NgError,
  NgTimeoutError,
  NgUnreachableError,
  type DeleteReply,
} from '../../src/ng/client.js';
import { buildAudioSdp, parseAudioSdp } from '../../src/sdp.js';
import { freeUdpPort, freeUdpPortRange, startRtpengine, type LocalRtpengine } from '../../src/stack/rtpengine.js';

const HOST = '127.0.0.1';
let rtpengine: LocalRtpengine;
const clients: NgClient[] = [];
const sockets: Socket[] = [];

async function client(port = rtpengine.ngPort, options: { timeoutMs?: number; retransmitMs?: number; maxInFlight?: number } = {}): Promise<NgClient> {
  const c = await NgClient.open({ host: HOST, port, ...options });
  clients.push(c);
  return c;
}

async function udp(port = 0): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  s.bind(port, HOST);
  await once(s, 'listening');
  return s;
}

before(async () => {
  const range = await freeUdpPortRange(HOST, 40);
  rtpengine = await startRtpengine({ address: HOST, portMin: range.min, portMax: range.max });
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const s of sockets) s.close();
  await rtpengine?.stop();
});

test('ping measures a round trip', async () => {
  const c = await client();
  const rtt = await c.ping();
  assert.ok(rtt > 0 && rtt < 1000, `rtt ${rtt} ms`);
  assert.equal(c.endpoint, `${HOST}:${rtpengine.ngPort}`);
});

test('200 pings with 64 in flight: the rest queue, all are answered, cookies never collide', async () => {
  const c = await client(rtpengine.ngPort, { maxInFlight: 64 });
  const pings = Array.from({ length: 200 }, () => c.request('ping'));
  assert.equal(c.inFlight, 64);
  assert.equal(c.queued, 136);
  const replies = await Promise.all(pings);
  assert.equal(replies.length, 200);
  for (const r of replies) assert.equal(r.result, 'pong');
  assert.equal(c.inFlight, 0);
  assert.equal(c.queued, 0);
  assert.equal(c.strayReplies, 0);
});

test('an error reply rejects with NgError naming endpoint, command and reason', async () => {
  const c = await client();
  const sdp = buildAudioSdp({ sessionId: '1', address: HOST, port: 20000, codecs: [{ payloadType: 0, encoding: 'PCMU', clockRate: 8000 }] });
  await assert.rejects(c.answer({ callId: 'no-such-call', fromTag: 'a', toTag: 'b', sdp }), (err: unknown) => {
    assert.ok(err instanceof NgError);
    assert.equal(err.command, 'answer');
    assert.equal(err.reason, 'Unknown call-id');
    assert.equal(err.endpoint, c.endpoint);
    assert.match(err.message, new RegExp(`^rtpengine ${c.endpoint} refused answer: Unknown call-id`));
    return true;
  });
  await assert.rejects(c.offer({ callId: 'bad-sdp', fromTag: 'a', sdp: 'garbage' }), { name: 'NgError', reason: 'Failed to parse SDP' });
  await assert.rejects(c.query('no-such-call'), { name: 'NgError', reason: 'Unknown call-id' });
  await assert.rejects(c.request('frobnicate'), { name: 'NgError', reason: 'Unrecognized command' });
});

test('a delete for an unknown call is ok with a warning and no stats', async () => {
  const c = await client();
  const reply = await c.delete({ callId: 'no-such-call', fromTag: 'a' });
  assert.equal(reply.warning, "Call-ID not found or tags didn't match");
  assert.equal(reply.stats, null);
  assert.equal(reply.raw.result, 'ok');
});

test('nothing listening: the port-unreachable error comes well within 2 s and names the address', async () => {
  const port = await freeUdpPort(HOST);
  const c = await client(port, { timeoutMs: 10_000 });
  const t0 = performance.now();
  await assert.rejects(c.ping(), (err: unknown) => {
    assert.ok(err instanceof NgUnreachableError, String(err));
    assert.equal(err.code, 'ECONNREFUSED');
    assert.match(err.message, new RegExp(`nothing is listening for ng on ${HOST}:${port}`));
    return true;
  });
  assert.ok(performance.now() - t0 < 2000);
  // Queued requests fail the same way instead of waiting for their turn.
  const many = await Promise.allSettled(Array.from({ length: 5 }, () => c.request('ping')));
  for (const r of many) assert.ok(r.status === 'rejected' && r.reason instanceof NgUnreachableError);
  assert.equal(c.inFlight + c.queued, 0);
});

/** Forwards client datagrams to rtpengine and back; drops the first datagram of each cookie. */
async function lossyRelay(upstreamPort: number): Promise<{ port: number; seen: Map<string, Buffer[]> }> {
  const front = await udp();
  const back = await udp();
  back.connect(upstreamPort, HOST);
  await once(back, 'connect');
  const seen = new Map<string, Buffer[]>();
  let clientAddr: RemoteInfo | null = null;
  front.on('message', (msg, rinfo) => {
    clientAddr = rinfo;
    const cookie = msg.subarray(0, msg.indexOf(0x20)).toString();
    const copies = seen.get(cookie) ?? [];
    copies.push(msg);
    seen.set(cookie, copies);
    if (copies.length > 1) back.send(msg);
  });
  back.on('message', (msg) => {
    if (clientAddr) front.send(msg, clientAddr.port, clientAddr.address);
  });
  return { port: front.address().port, seen };
}

test('a lost request is retransmitted with the same bytes and answered', async () => {
  const relay = await lossyRelay(rtpengine.ngPort);
  const c = await client(relay.port, { retransmitMs: 50, timeoutMs: 3000 });
  const rtt = await c.ping();
  assert.ok(rtt >= 40, `answered after ${rtt} ms, before any retransmission?`);
  assert.ok((await c.statistics()).currentstatistics !== undefined);
  assert.equal(relay.seen.size, 2);
  for (const [cookie, copies] of relay.seen) {
    assert.equal(copies.length, 2, `cookie ${cookie}`);
    assert.deepEqual(copies[1], copies[0]);
  }
  assert.equal(c.retransmissions, 2, 'each lost request counted once');
});

test('no reply at all: NgTimeoutError after the overall timeout, retransmitting with backoff', async () => {
  const blackHole = await udp();
  const got: { at: number; msg: Buffer }[] = [];
  blackHole.on('message', (msg) => got.push({ at: performance.now(), msg }));
  const port = blackHole.address().port;
  const c = await client(port, { retransmitMs: 50, timeoutMs: 400 });
  const t0 = performance.now();
  let sends = 0;
  await assert.rejects(c.request('offer', { 'call-id': 'x' }), (err: unknown) => {
    assert.ok(err instanceof NgTimeoutError);
    assert.equal(err.command, 'offer');
    assert.match(err.message, new RegExp(`rtpengine ${HOST}:${port} did not answer offer within \\d+ ms \\(sent \\d+ times\\)`));
    assert.match(err.message, /check that rtpengine runs and listens for ng/);
    sends = err.sends;
    return true;
  });
  const waited = performance.now() - t0;
  assert.ok(waited >= 395 && waited < 1500, `waited ${waited} ms`);
  // Planned at 0, 50, 150 and 350 ms; a busy machine's late timers may squeeze out the last one.
  assert.ok(sends === 4 || sends === 3, `sent ${sends} times`);
  assert.equal(got.length, sends);
  for (const g of got) assert.deepEqual(g.msg, got[0]!.msg);
  const gaps = got.slice(1).map((g, i) => g.at - got[i]!.at);
  assert.ok(gaps[1]! > gaps[0]! * 1.5, `gaps ${gaps.map((g) => g.toFixed(0)).join(', ')} ms: the backoff doubles`);
});

test('garbage and unknown cookies are counted as stray and ignored', async () => {
  const fake = await udp();
  fake.on('message', (msg, rinfo) => {
    const cookie = msg.subarray(0, msg.indexOf(0x20)).toString();
    for (const reply of ['garbage', 'nocookie_1 d6:result2:oke', `${cookie} d6:result`, `${cookie} d6:result2:oke`]) {
      fake.send(reply, rinfo.port, rinfo.address);
    }
  });
  const c = await client(fake.address().port);
  assert.deepEqual(await c.request('ping'), { result: 'ok' });
  // The fourth datagram answered the request; wait for nothing else: the three before it were processed first.
  assert.equal(c.strayReplies, 3);
});

test('list keeps the call-ids of a reply and skips entries that are no call-id (found by test/fuzz/ng-client.test.ts)', async () => {
  const fake = await udp();
  fake.on('message', (msg, rinfo) => {
    const cookie = msg.subarray(0, msg.indexOf(0x20)).toString();
    // calls: "c1", 42, a dictionary whose toString is text (String() of it threw a TypeError), an empty list.
    fake.send(`${cookie} d5:callsl2:c1i42ed8:toString1:xelee6:result2:oke`, rinfo.port, rinfo.address);
  });
  const c = await client(fake.address().port);
  assert.deepEqual(await c.list(), ['c1', '42']);
});

test('close rejects queued and in-flight requests with a clear error', async () => {
  const blackHole = await udp();
  const c = await NgClient.open({ host: HOST, port: blackHole.address().port, maxInFlight: 1 });
  const first = c.request('offer');
  const second = c.request('delete');
  assert.equal(c.inFlight, 1);
  assert.equal(c.queued, 1);
  await c.close();
  await assert.rejects(first, (err: unknown) => err instanceof NgClientClosedError && /closed before rtpengine answered offer/.test(err.message));
  await assert.rejects(second, NgClientClosedError);
  await assert.rejects(c.ping(), NgClientClosedError);
  await c.close();
});

test('open refuses nonsense options', async () => {
  await assert.rejects(NgClient.open({ host: HOST, port: 0 }), RangeError);
  await assert.rejects(NgClient.open({ host: HOST, port: 2000, maxInFlight: 0 }), RangeError);
  await assert.rejects(NgClient.open({ host: HOST, port: 2000, timeoutMs: 0 }), RangeError);
});

// --- A call that carries media and RTCP: what query and delete report -----------------------------------------

const SSRC_A = 0x11111111;
const SSRC_B = 0x22222222;

function rtpPacket(seq: number, ssrc: number): Buffer {
  const p = Buffer.alloc(12 + 160, 0xff);
  p[0] = 0x80;
  p[1] = 0; // PCMU
  p.writeUInt16BE(seq, 2);
  p.writeUInt32BE(seq * 160, 4);
  p.writeUInt32BE(ssrc, 8);
  return p;
}

/** RFC 3550 SR with one report block; lsr/dlsr let rtpengine compute round-trip times and hence MOS. */
function senderReport(sender: number, source: number, packets: number, lossFraction: number, lsr: number, dlsr: number): { packet: Buffer; ntpMiddle: number } {
  const p = Buffer.alloc(52);
  p[0] = 0x81;
  p[1] = 200;
  p.writeUInt16BE(12, 2);
  p.writeUInt32BE(sender, 4);
  const ms = Date.now() + 2_208_988_800_000;
  const sec = Math.floor(ms / 1000) >>> 0;
  const frac = Math.floor(((ms % 1000) / 1000) * 2 ** 32) >>> 0;
  p.writeUInt32BE(sec, 8);
  p.writeUInt32BE(frac, 12);
  p.writeUInt32BE(packets * 160, 16);
  p.writeUInt32BE(packets, 20);
  p.writeUInt32BE(packets * 160, 24);
  p.writeUInt32BE(source, 28);
  p.writeUInt32BE(((lossFraction << 24) | 1) >>> 0, 32);
  p.writeUInt32BE(packets, 36);
  p.writeUInt32BE(40, 40);
  p.writeUInt32BE(lsr, 44);
  p.writeUInt32BE(dlsr, 48);
  return { packet: p, ntpMiddle: (((sec & 0xffff) << 16) | (frac >>> 16)) >>> 0 };
}

test('a call with media: query and delete report ingress counters, ports, endpoints and RTCP-based MOS', async () => {
  const c = await client();
  const [aRtp, aRtcp, bRtp, bRtcp] = await Promise.all([udp(), udp(), udp(), udp()]);
  const pcmu = [{ payloadType: 0, encoding: 'PCMU', clockRate: 8000 }];
  const callId = `media-${Date.now()}`;
  const sdpOf = (rtp: Socket, rtcp: Socket): string =>
    buildAudioSdp({ sessionId: '1', address: HOST, port: rtp.address().port, rtcpPort: rtcp.address().port, codecs: pcmu, ptimeMs: 20 });
  const offer = await c.offer({ callId, fromTag: 'tag-a', sdp: sdpOf(aRtp, aRtcp), ice: 'remove', replace: ['origin', 'session connection'], label: 'caller' });
  const answer = await c.answer({ callId, fromTag: 'tag-a', toTag: 'tag-b', sdp: sdpOf(bRtp, bRtcp), ice: 'remove', replace: ['origin', 'session connection'] });
  const towardB = parseAudioSdp(offer.sdp); // leg B sends here
  const towardA = parseAudioSdp(answer.sdp); // leg A sends here

  // Each side remembers the last SR it received, to fill LSR/DLSR of its next report as a real endpoint does.
  const lastSr = new Map<Socket, { mid: number; at: number }>();
  for (const s of [aRtcp, bRtcp]) {
    s.on('message', (m) => {
      if (m[1] === 200) lastSr.set(s, { mid: (((m.readUInt32BE(8) & 0xffff) << 16) | m.readUInt16BE(12)) >>> 0, at: Date.now() });
    });
  }
  let receivedRtp = 0;
  aRtp.on('message', () => receivedRtp++);
  bRtp.on('message', () => receivedRtp++);
  const report = (s: Socket, sender: number, source: number, packets: number, loss: number): Buffer => {
    const last = lastSr.get(s);
    const dlsr = last ? Math.round(((Date.now() - last.at) / 1000) * 65536) : 0;
    return senderReport(sender, source, packets, loss, last?.mid ?? 0, dlsr).packet;
  };
  let rounds = 0;
  const reportRound = (packets: number): void => {
    aRtcp.send(report(aRtcp, SSRC_A, SSRC_B, packets, 26), towardA.rtcpPort, towardA.rtcpAddress);
    bRtcp.send(report(bRtcp, SSRC_B, SSRC_A, packets, 0), towardB.rtcpPort, towardB.rtcpAddress);
    rounds++;
  };
  const N = 30;
  for (let i = 0; i < N; i++) {
    aRtp.send(rtpPacket(i, SSRC_A), towardA.port, towardA.address);
    bRtp.send(rtpPacket(i, SSRC_B), towardB.port, towardB.address);
    if (i % 10 === 5) reportRound(i);
    await new Promise((r) => setTimeout(r, 20));
  }
  const deadline = Date.now() + 2000;
  while (receivedRtp < 2 * N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(receivedRtp, 2 * N, 'pass-through delivers every packet on loopback');

  // rtpengine derives MOS only from a report whose LSR/DLSR refer to an SR it forwarded; under load a round can
  // cross. Report on (a bounded number of rounds) until query shows the SSRC entry: the condition, not a sleep.
  while ((await c.query(callId)).ssrc.length === 0 && rounds < 20) {
    reportRound(N);
    await new Promise((r) => setTimeout(r, 100));
  }
  const ROUNDS = rounds;

  const q = await c.query(callId);
  assert.equal(q.totals.RTP.packets, 2 * N);
  assert.equal(Object.keys(q.tags).length, 2);

  const reply: DeleteReply = await c.delete({ callId, fromTag: 'tag-a', deleteDelay: 0 });
  assert.equal(reply.warning, null);
  const stats = reply.stats;
  assert.ok(stats, 'a delete with from-tag carries the call stats');
  assert.ok(Math.abs(stats.created - Date.now()) < 60_000, `created ${stats.created} is Unix ms`);
  assert.ok(stats.lastSignal >= Math.floor(stats.created / 1000) * 1000);
  assert.deepEqual(stats.totals.RTP, { packets: 2 * N, bytes: 2 * N * 172, errors: 0 });
  assert.equal(stats.totals.RTCP.packets, 2 * ROUNDS);

  const tagA = stats.tags['tag-a'];
  const tagB = stats.tags['tag-b'];
  assert.ok(tagA && tagB);
  assert.equal(tagA.label, 'caller');
  assert.deepEqual(tagA.subscribers, ['tag-b']);
  const rtpA = tagA.medias[0]!.streams.find((s) => s.rtp)!;
  assert.equal(tagA.medias[0]!.codec, 'PCMU/8000');
  // Tag A's stream is where A's packets arrive: the port from the answer reply, A's socket as endpoint.
  assert.equal(rtpA.localPort, towardA.port);
  assert.deepEqual(rtpA.endpoint, { family: 'IPv4', address: HOST, port: aRtp.address().port });
  assert.equal(rtpA.ssrc, SSRC_A);
  assert.deepEqual(rtpA.ingress, { packets: N, bytes: N * 172, errors: 0 });
  const rtcpB = tagB.medias[0]!.streams.find((s) => s.rtcp)!;
  assert.equal(rtcpB.localPort, towardB.rtcpPort);
  assert.equal(rtcpB.ingress.packets, ROUNDS);

  // rtpengine keys RTCP quality by the reporting endpoint's SSRC; 10.5 lists only some of them.
  assert.ok(stats.ssrc.length >= 1, 'rtpengine derived MOS from the receiver reports');
  for (const s of stats.ssrc) {
    assert.ok(s.ssrc === SSRC_A || s.ssrc === SSRC_B);
    assert.ok(s.average && s.lowest && s.highest);
    const rawMos = ((reply.raw.SSRC as Record<string, Record<string, Record<string, number>>>)[String(s.ssrc)]!['average MOS']!).MOS!;
    assert.equal(s.average.mos, rawMos / 10, 'MOS x 10 from rtpengine becomes a real MOS');
    assert.ok(s.average.mos >= 1 && s.average.mos <= 4.5, `MOS ${s.average.mos}`);
    assert.ok(s.average.samples >= 1);
    assert.ok(s.average.roundTripUs > 0);
    assert.equal(s.average.jitterMs, 5, '40 timestamp units at 8 kHz');
    assert.ok(s.progression.length >= 1);
    assert.ok(s.lowest.reportedAt !== null && Math.abs(s.lowest.reportedAt - Date.now()) < 60_000);
  }

  assert.deepEqual(await c.list(), []);
});
