/**
 * Properties of what reads RTP from the network: the header parsers (src/media/rtp.ts) and the receive tracker
 * (src/media/sequence.ts). They replace the hand-rolled corpus test/media/fuzz.test.ts had (its reference model of
 * the tracker is the first tracker property here), with arbitraries that shrink a failure to a small packet.
 *
 * Bounded work, by structure and by count: rtpPayloadOffset reads at most 4 bytes whatever the packet says (the
 * counting view proves it per case), parseRtp a constant plus one word per CSRC; ReceiveTracker.onPacket loops at
 * most MAX_DROPOUT (clearing skipped slots) or MAX_MISORDER (lowering the base) times per packet, never in
 * proportion to the stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  RTP_HEADER_BYTES,
  parseRtp,
  rtpMarker,
  rtpPayloadEnd,
  rtpPayloadOffset,
  rtpPayloadType,
  rtpSequence,
  rtpSsrc,
  rtpSsrcInt32,
  rtpTimestamp,
  rtpTimestampInt32,
  setRtpMarker,
  setRtpPayloadType,
  setRtpSequence,
  setRtpSsrc,
  setRtpTimestamp,
} from '../../src/media/rtp.js';
import { ARRIVAL_DUPLICATE, ARRIVAL_INVALID, ARRIVAL_LATE, ARRIVAL_NEW, MAX_DROPOUT, ReceiveTracker } from '../../src/media/sequence.js';
import type { ReportBlock } from '../../src/media/rtcp.js';
import { checkProperty, countingView } from '../helpers/fuzz.js';
import { buildRtp, rtpDatagram, rtpSpec, u32 } from '../helpers/packet-fuzz.js';

test('RTP: every valid packet parses back to the fields it was built from', (t) => {
  checkProperty(
    t,
    'RTP round trip',
    fc.property(rtpSpec, (s) => {
      const b = buildRtp(s);
      const headerBytes = b.length - s.payload.length - s.padding;
      assert.equal(rtpPayloadOffset(b), headerBytes);
      assert.equal(rtpPayloadEnd(b), b.length - s.padding);
      const p = parseRtp(b);
      assert.ok(p !== null);
      assert.deepEqual(
        { ...p, payload: [...p.payload], extension: p.extension && { ...p.extension, data: [...p.extension.data] } },
        {
          version: 2,
          padding: s.padding > 0,
          marker: s.marker,
          payloadType: s.payloadType,
          sequenceNumber: s.sequenceNumber,
          timestamp: s.timestamp,
          ssrc: s.ssrc,
          csrcs: s.csrcs,
          extension: s.extension && { profile: s.extension.profile, lengthWords: s.extension.data.length / 4, data: [...s.extension.data] },
          payload: [...s.payload],
          paddingBytes: s.padding,
        },
      );
      // The hot-path readers agree with the full decode, the int32 forms carry the same bits.
      assert.equal(rtpSequence(b), s.sequenceNumber);
      assert.equal(rtpTimestamp(b), s.timestamp);
      assert.equal(rtpTimestampInt32(b), s.timestamp | 0);
      assert.equal(rtpSsrc(b), s.ssrc);
      assert.equal(rtpSsrcInt32(b), s.ssrc | 0);
      assert.equal(rtpPayloadType(b), s.payloadType);
      assert.equal(rtpMarker(b), s.marker);
    }),
    3000,
  );
});

test('RTP: the in-place setters change their field only, modulo its width', (t) => {
  checkProperty(
    t,
    'RTP setters',
    fc.property(rtpSpec, fc.integer(), fc.maxSafeNat(), u32, fc.integer({ min: -1000, max: 1000 }), fc.boolean(), (s, seq, ts, ssrc, pt, marker) => {
      const b = buildRtp(s);
      const before = b.slice();
      setRtpSequence(b, seq);
      setRtpTimestamp(b, ts);
      setRtpSsrc(b, ssrc);
      setRtpPayloadType(b, pt);
      setRtpMarker(b, marker);
      assert.equal(rtpSequence(b), seq & 0xffff);
      // A free-running sample counter past 2^32 is written modulo 2^32 (exact for every safe integer).
      assert.equal(rtpTimestamp(b), ts % 2 ** 32);
      assert.equal(rtpSsrc(b), ssrc);
      assert.equal(rtpPayloadType(b), pt & 0x7f);
      assert.equal(rtpMarker(b), marker);
      assert.deepEqual(b.subarray(RTP_HEADER_BYTES), before.subarray(RTP_HEADER_BYTES));
      assert.equal(b[0], before[0]);
      assert.equal(rtpPayloadOffset(b), rtpPayloadOffset(before));
    }),
    3000,
  );
});

test('RTP: any datagram is judged without throwing, within its bounds, the three parsers agreeing', (t) => {
  let valid = 0;
  checkProperty(
    t,
    'RTP arbitrary and mutated datagrams',
    fc.property(rtpDatagram, (b) => {
      const counted = countingView(b);
      const off = rtpPayloadOffset(counted.view);
      // At most byte 0, the extension's length word and the padding count: 4 reads, none past the end.
      assert.ok(counted.log.reads <= 4, `${counted.log.reads} reads`);
      assert.ok(counted.log.maxIndex < b.length);
      const end = rtpPayloadEnd(b);
      const p = parseRtp(b);
      assert.ok(Number.isInteger(off) && off >= -1 && off <= b.length);
      if (off < 0) {
        assert.equal(end, -1);
        assert.equal(p, null);
        return;
      }
      valid++;
      assert.ok(off >= RTP_HEADER_BYTES);
      assert.ok(end >= off && end <= b.length, `end ${end} offset ${off} length ${b.length}`);
      assert.ok(p !== null);
      assert.equal(p.payload.length, end - off);
      assert.equal(p.payload.byteOffset - b.byteOffset, off);
      assert.equal(p.paddingBytes, b.length - end);
      assert.equal(p.csrcs.length, b[0]! & 0x0f);
      if (p.extension !== null) assert.ok(p.extension.data.byteOffset + p.extension.data.length <= b.byteOffset + off);
    }),
    15000,
  );
  // Without this the arbitraries could drift to rejecting everything at byte 0 and prove little.
  assert.ok(valid > 1500, `only ${valid} datagrams parsed as RTP: the arbitraries do not reach the deep paths`);
});

test('RTP: a datagram in a longer receive slot is judged on its own length, never on the bytes after it', (t) => {
  checkProperty(
    t,
    'RTP length inside a receive slot',
    fc.property(rtpDatagram, fc.uint8Array({ minLength: 1, maxLength: 64 }), (b, stale) => {
      // Native receive: the handler gets the slot (datagram + a previous datagram's bytes) and the length.
      const slot = new Uint8Array(b.length + stale.length);
      slot.set(b);
      slot.set(stale, b.length);
      const counted = countingView(slot);
      assert.equal(rtpPayloadOffset(counted.view, b.length), rtpPayloadOffset(b));
      assert.equal(rtpPayloadEnd(counted.view, b.length), rtpPayloadEnd(b));
      assert.ok(counted.log.maxIndex < b.length, `read index ${counted.log.maxIndex} of a ${b.length}-byte datagram`);
    }),
    5000,
  );
});

// ---- ReceiveTracker --------------------------------------------------------------------------------------------------

const CODES = new Set([ARRIVAL_NEW, ARRIVAL_DUPLICATE, ARRIVAL_LATE, ARRIVAL_INVALID]);

/** A stream as sent (extended numbers 0..n-1), then lost, duplicated and locally reordered on the way. */
const impairedStream = fc
  .record({
    start: fc.integer({ min: 0, max: 0xffff }),
    fate: fc.array(fc.constantFrom('arrive', 'arrive', 'arrive', 'arrive', 'arrive', 'arrive', 'arrive', 'arrive', 'lose', 'twice'), { minLength: 1, maxLength: 3000, size: 'max' }),
    swaps: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 60 })), { maxLength: 300, size: 'max' }),
  })
  .map(({ start, fate, swaps }) => {
    const arrivals: number[] = [];
    fate.forEach((f, i) => {
      if (f === 'lose') return;
      arrivals.push(i);
      if (f === 'twice') arrivals.push(i);
    });
    for (const [at, by] of swaps) {
      if (arrivals.length === 0) break;
      const i = at % arrivals.length;
      const j = Math.min(arrivals.length - 1, i + by);
      [arrivals[i], arrivals[j]] = [arrivals[j]!, arrivals[i]!];
    }
    return { start, arrivals };
  });

test('ReceiveTracker matches a reference model under loss, duplication and reordering', (t) => {
  checkProperty(
    t,
    'ReceiveTracker vs model',
    fc.property(impairedStream, ({ start, arrivals }) => {
      const tr = new ReceiveTracker(8000);
      const seen = new Set<number>();
      let highest = -1;
      let lowest = Infinity;
      let dup = 0;
      let late = 0;
      for (const [k, e] of arrivals.entries()) {
        const code = tr.onPacket((start + e) & 0xffff, ((start + e) * 160) >>> 0, k * 20, k * 20 - 1);
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
        assert.equal(code, want, `arrival ${k} (ext ${e})`);
      }
      assert.equal(tr.received, seen.size);
      assert.equal(tr.duplicates, dup);
      assert.equal(tr.late, late);
      assert.equal(tr.invalid, 0);
      if (seen.size === 0) {
        assert.equal(tr.expected, 0);
        return;
      }
      assert.equal(tr.expected, highest - lowest + 1);
      assert.equal(tr.lostA3, highest - lowest + 1 - seen.size);
      assert.equal(tr.firstSeq, (start + lowest) & 0xffff);
    }),
    300,
  );
});

type SeqStep =
  | { kind: 'next'; gap: number }
  | { kind: 'back'; by: number }
  | { kind: 'any'; seq: number }
  | { kind: 'restart'; seq: number }
  | { kind: 'again' };

/** Sequence numbers as a hostile or broken sender makes them: gaps, steps back, wild values, restarts, repeats. */
const seqStep: fc.Arbitrary<SeqStep> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('next' as const), gap: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: MAX_DROPOUT + 100 })) }), weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant('back' as const), by: fc.integer({ min: 1, max: 9000 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('any' as const), seq: fc.integer({ min: 0, max: 0xffff }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('restart' as const), seq: fc.integer({ min: 0, max: 0xffff }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('again' as const) }), weight: 2 },
);

test('ReceiveTracker keeps its invariants on any sequence of sequence numbers', (t) => {
  const block: ReportBlock = { ssrc: 0, fractionLost: 0, cumulativeLost: 0, extendedHighestSeq: 0, jitter: 0, lastSr: 0, delaySinceLastSr: 0 };
  checkProperty(
    t,
    'ReceiveTracker invariants',
    fc.property(
      fc.integer({ min: 0, max: 0xffff }),
      fc.array(fc.tuple(seqStep, fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), fc.double({ min: 0, max: 100, noNaN: true }), fc.boolean()), { maxLength: 400, size: 'large' }),
      fc.constantFrom(8000, 16000, 48000),
      (first, steps, clockRate) => {
        const tr = new ReceiveTracker(clockRate);
        const counts = [0, 0, 0, 0];
        let seq = first;
        let last: { seq: number; code: number } | null = null;
        let now = 0;
        for (const [step, ts, dt, knownSend] of steps) {
          now += dt;
          const retry = step.kind === 'again' && last !== null;
          if (step.kind === 'next') seq = (seq + step.gap) & 0xffff;
          else if (step.kind === 'back') seq = (seq - step.by) & 0xffff;
          else if (step.kind === 'any') seq = step.seq;
          else if (step.kind === 'again' && last !== null) seq = last.seq;
          const sends = step.kind === 'restart' ? [step.seq, (step.seq + 1) & 0xffff] : [seq];
          for (const s of sends) {
            const code = tr.onPacket(s, ts, now, knownSend ? now - dt / 2 : Number.NaN);
            assert.ok(CODES.has(code), `code ${code}`);
            counts[code]!++;
            // The same packet again, right after it was counted, is a duplicate: never counted twice.
            if (retry && (last!.code === ARRIVAL_NEW || last!.code === ARRIVAL_LATE)) assert.equal(code, ARRIVAL_DUPLICATE);
            if (code === ARRIVAL_NEW || code === ARRIVAL_LATE) assert.ok(tr.hasSeq(s), `seq ${s} counted but not held`);
            last = { seq: s, code };
            seq = s;
          }
        }
        assert.equal(counts[ARRIVAL_NEW]! + counts[ARRIVAL_LATE]!, tr.received);
        assert.equal(counts[ARRIVAL_DUPLICATE], tr.duplicates);
        assert.equal(counts[ARRIVAL_LATE], tr.late);
        assert.equal(counts[ARRIVAL_INVALID], tr.invalid);
        assert.ok(tr.lostA3 >= 0, `lostA3 ${tr.lostA3}: more received than expected`);
        if (tr.received > 0 && tr.restarts === 0) assert.equal(tr.expected, tr.extendedHighestSeq - tr.firstSeq + 1);
        for (const v of [tr.jitterMs, tr.meanJitterMs, tr.maxJitterMs, tr.transitJitterMs, tr.meanTransitJitterMs, tr.maxTransitJitterMs]) {
          assert.ok(Number.isFinite(v) && v >= 0, `jitter figure ${v}`);
        }
        tr.reportBlock(0x1234, 0, 0, block);
        assert.ok(block.fractionLost >= 0 && block.fractionLost <= 255 && Number.isInteger(block.fractionLost));
        assert.ok(block.cumulativeLost >= -0x800000 && block.cumulativeLost <= 0x7fffff);
        assert.ok(block.extendedHighestSeq >= 0 && block.extendedHighestSeq <= 0xffffffff);
        assert.ok(block.jitter >= 0 && block.jitter <= 0xffffffff);
      },
    ),
    2000,
  );
});
