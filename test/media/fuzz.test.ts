import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRtp, rtpPayloadEnd, rtpPayloadOffset, writeRtpHeader } from '../../src/media/rtp.js';
import { parseCompound, writeBye, writeCompound, type ReportBlock } from '../../src/media/rtcp.js';
import { ARRIVAL_DUPLICATE, ARRIVAL_INVALID, ARRIVAL_LATE, ARRIVAL_NEW, ReceiveTracker } from '../../src/media/sequence.js';
import { createDecoder } from '../../src/media/codec.js';
import { codecByName } from '../../src/profile.js';
import { prng } from '../helpers/prng.js';


function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

/** Random buffers, valid-looking headers with random tails, every truncation of valid packets, and bit flips. */
function* corpus(rand: () => number, valid: Uint8Array[], header: (b: Uint8Array) => void): Generator<Uint8Array> {
  for (let i = 0; i < 5000; i++) yield randomBytes(rand, (rand() * 80) | 0);
  for (let i = 0; i < 5000; i++) {
    const b = randomBytes(rand, 4 + ((rand() * 120) | 0));
    header(b);
    yield b;
  }
  for (const v of valid) {
    for (let n = 0; n <= v.length; n++) yield v.slice(0, n);
    for (let i = 0; i < 500; i++) {
      const b = v.slice();
      const flips = 1 + ((rand() * 3) | 0);
      for (let f = 0; f < flips; f++) b[(rand() * b.length) | 0]! ^= 1 << ((rand() * 8) | 0);
      yield b;
    }
  }
}

test('RTP parsers never throw and agree with each other on arbitrary bytes', () => {
  const rand = prng(0x5eed1);
  const full = Uint8Array.from([
    0xb2, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0xca, 0xfe, 0xba, 0xbe, 0x11, 0x11, 0x11, 0x11, 0x22, 0x22,
    0x22, 0x22, 0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0x00, 0x00, 0x01, 0x02, 0x03, 0x00, 0x00, 0x03,
  ]);
  const plain = new Uint8Array(172);
  writeRtpHeader(plain, { marker: true, payloadType: 0, sequenceNumber: 9, timestamp: 1440, ssrc: 77 });
  let count = 0;
  let valid = 0;
  for (const b of corpus(rand, [full, plain], (x) => (x[0] = 0x80 | ((rand() * 64) | 0)))) {
    count++;
    const off = rtpPayloadOffset(b);
    const end = rtpPayloadEnd(b);
    const p = parseRtp(b);
    assert.ok(Number.isInteger(off) && off >= -1 && off <= b.length);
    if (off < 0) {
      assert.equal(end, -1);
      assert.equal(p, null);
      continue;
    }
    valid++;
    assert.ok(end >= off && end <= b.length, `end ${end} offset ${off} length ${b.length}`);
    assert.ok(p);
    assert.equal(p.payload.length, end - off);
    assert.equal(p.paddingBytes, b.length - end);
    assert.equal(p.csrcs.length, b[0]! & 0x0f);
  }
  assert.ok(count > 10000, `${count} buffers`);
  assert.ok(valid > 500, `only ${valid} valid buffers: the corpus is not reaching the deep paths`);
});

test('RTCP parser never throws on arbitrary bytes', () => {
  const rand = prng(0x5eed2);
  const block: ReportBlock = {
    ssrc: 1, fractionLost: 3, cumulativeLost: -5, extendedHighestSeq: 70000, jitter: 12, lastSr: 9, delaySinceLastSr: 4,
  };
  const a = new Uint8Array(200);
  let n = writeCompound(a, { kind: 'rr', ssrc: 0x11, reports: [block, block] }, 'fuzz@rtp-bench');
  n += writeBye(a, 0x11, n);
  const rr = a.slice(0, n);
  const b = new Uint8Array(200);
  const m = writeCompound(
    b,
    { kind: 'sr', ssrc: 0x22, sender: { ntpSeconds: 1, ntpFraction: 2, rtpTimestamp: 3, packetCount: 4, octetCount: 5 }, reports: [block] },
    'x',
  );
  const sr = b.slice(0, m);
  let count = 0;
  let valid = 0;
  const header = (x: Uint8Array): void => {
    x[0] = 0x80 | ((rand() * 4) | 0);
    x[1] = rand() < 0.5 ? 200 : 201;
  };
  for (const buf of corpus(rand, [rr, sr], header)) {
    count++;
    const parsed = parseCompound(buf);
    if (parsed === null) continue;
    valid++;
    assert.ok(parsed.length >= 1);
    assert.ok(parsed[0]!.type === 'sr' || parsed[0]!.type === 'rr');
    for (const p of parsed) {
      if (p.type === 'sr' || p.type === 'rr') {
        for (const r of p.reports) {
          assert.ok(r.cumulativeLost >= -0x800000 && r.cumulativeLost <= 0x7fffff);
          assert.ok(r.fractionLost >= 0 && r.fractionLost <= 255);
        }
      }
    }
  }
  assert.ok(count > 10000, `${count} buffers`);
  assert.ok(valid > 50, `only ${valid} valid buffers`);
});

test('ReceiveTracker matches a reference model under random loss, reordering and duplication', () => {
  const rand = prng(0x5eed3);
  for (let run = 0; run < 20; run++) {
    const start = (rand() * 65536) | 0;
    const n = 5000;
    // Extended seqs in send order, then locally shuffled (displacement up to 60), with losses and duplicates.
    const arrivals: number[] = [];
    for (let i = 0; i < n; i++) {
      if (rand() < 0.05) continue;
      arrivals.push(i);
      if (rand() < 0.02) arrivals.push(i);
    }
    for (let i = 0; i < arrivals.length; i++) {
      const j = Math.min(arrivals.length - 1, i + ((rand() * 60) | 0));
      if (rand() < 0.1) [arrivals[i], arrivals[j]] = [arrivals[j]!, arrivals[i]!];
    }
    const t = new ReceiveTracker(8000);
    const seen = new Set<number>();
    let highest = -1;
    let lowest = Infinity;
    let dup = 0;
    let late = 0;
    for (const [k, e] of arrivals.entries()) {
      const code = t.onPacket((start + e) & 0xffff, ((start + e) * 160) >>> 0, k * 20 + rand() * 5, k * 20);
      let want: number;
      if (seen.has(e)) {
        want = ARRIVAL_DUPLICATE;
        dup++;
      } else {
        want = highest >= 0 && e < highest ? ARRIVAL_LATE : ARRIVAL_NEW;
        if (want === ARRIVAL_LATE) late++;
        seen.add(e);
        highest = Math.max(highest, e);
        lowest = Math.min(lowest, e);
      }
      assert.equal(code, want, `run ${run}, arrival ${k} (ext ${e})`);
    }
    assert.equal(t.received, seen.size);
    assert.equal(t.duplicates, dup);
    assert.equal(t.late, late);
    assert.equal(t.expected, highest - lowest + 1);
    assert.equal(t.lostA3, highest - lowest + 1 - seen.size);
    assert.ok(t.jitterMs >= 0 && Number.isFinite(t.jitterMs));
  }
});

test('ReceiveTracker never throws and keeps its invariants on random sequence numbers', () => {
  const rand = prng(0x5eed4);
  const t = new ReceiveTracker(48000);
  const codes = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) {
    const seq = rand() < 0.7 ? (i * 3) & 0xffff : (rand() * 65536) | 0;
    const code = t.onPacket(seq, (rand() * 2 ** 32) >>> 0, i, rand() < 0.5 ? Number.NaN : i - rand());
    assert.ok(code === ARRIVAL_NEW || code === ARRIVAL_DUPLICATE || code === ARRIVAL_LATE || code === ARRIVAL_INVALID);
    codes[code]!++;
  }
  assert.equal(codes[0]! + codes[2]!, t.received);
  assert.equal(codes[1], t.duplicates);
  assert.equal(codes[3], t.invalid);
  assert.ok(t.lostA3 >= 0);
  assert.ok(Number.isFinite(t.jitterMs) && Number.isFinite(t.transitJitterMs));
});

test('opus decoder never throws on arbitrary payloads', () => {
  const p = codecByName('opus');
  assert.ok(p);
  const dec = createDecoder(p);
  const rand = prng(0x5eed5);
  let decoded = 0;
  for (let i = 0; i < 3000; i++) {
    const out = dec.decode(randomBytes(rand, (rand() * 300) | 0));
    assert.ok(out.length === 0 || (out.length % 20 === 0 && out.length <= 960), `${out.length} samples`);
    if (out.length > 0) decoded++;
  }
  assert.ok(decoded > 0);
  assert.ok(dec.errors > 0);
  dec.close();
});
