import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ARRIVAL_DUPLICATE,
  ARRIVAL_INVALID,
  ARRIVAL_LATE,
  ARRIVAL_NEW,
  ReceiveTracker,
  SendHistory,
} from '../../src/media/sequence.js';
import type { ReportBlock } from '../../src/media/rtcp.js';

/** Feeds seqs with timestamps 160 apart and arrivals 20 ms apart; returns the arrival codes. */
function feed(t: ReceiveTracker, seqs: number[]): number[] {
  return seqs.map((s) => t.onPacket(s, (s * 160) >>> 0, s * 20, Number.NaN));
}

function emptyBlock(): ReportBlock {
  return { ssrc: 0, fractionLost: 0, cumulativeLost: 0, extendedHighestSeq: 0, jitter: 0, lastSr: 0, delaySinceLastSr: 0 };
}

test('arrival codes are plain numbers', () => {
  assert.deepEqual([ARRIVAL_NEW, ARRIVAL_DUPLICATE, ARRIVAL_LATE, ARRIVAL_INVALID], [0, 1, 2, 3]);
});

test('empty tracker', () => {
  const t = new ReceiveTracker(8000);
  assert.equal(t.received, 0);
  assert.equal(t.expected, 0);
  assert.equal(t.lostA3, 0);
  assert.equal(t.firstSeq, -1);
  assert.equal(t.extendedHighestSeq, -1);
  assert.equal(t.jitterMs, 0);
  assert.equal(t.meanJitterMs, 0);
  assert.deepEqual(t.reportBlock(5, 0, 0, emptyBlock()), { ...emptyBlock(), ssrc: 5 });
  assert.throws(() => new ReceiveTracker(0), RangeError);
});

test('sequence wrap 65535 -> 0 -> 1 extends with a cycle', () => {
  const t = new ReceiveTracker(8000);
  assert.deepEqual(feed(t, [65534, 65535, 0, 1]), [ARRIVAL_NEW, ARRIVAL_NEW, ARRIVAL_NEW, ARRIVAL_NEW]);
  assert.equal(t.firstSeq, 65534);
  assert.equal(t.extendedHighestSeq, 65536 + 1);
  assert.equal(t.expected, 4);
  assert.equal(t.received, 4);
  assert.equal(t.lostA3, 0);
  const t2 = new ReceiveTracker(8000);
  // Three full cycles, every packet.
  for (let i = 0; i < 3 * 65536 + 10; i++) assert.equal(t2.onPacket((100 + i) & 0xffff, i * 160, i * 20, Number.NaN), ARRIVAL_NEW);
  assert.equal(t2.extendedHighestSeq, 3 * 65536 + 109);
  assert.equal(t2.expected, 3 * 65536 + 10);
  assert.equal(t2.lostA3, 0);
  assert.equal(t2.duplicates, 0);
});

test('loss gap, also across the wrap', () => {
  const t = new ReceiveTracker(8000);
  feed(t, [10, 11, 14, 15]);
  assert.equal(t.expected, 6);
  assert.equal(t.received, 4);
  assert.equal(t.lostA3, 2);
  const w = new ReceiveTracker(8000);
  feed(w, [65533, 2]);
  assert.equal(w.expected, 6);
  assert.equal(w.lostA3, 4);
  assert.equal(w.extendedHighestSeq, 65538);
});

test('duplicates are counted apart and not as received', () => {
  const t = new ReceiveTracker(8000);
  assert.deepEqual(feed(t, [1, 2, 2, 3, 1, 3]), [
    ARRIVAL_NEW, ARRIVAL_NEW, ARRIVAL_DUPLICATE, ARRIVAL_NEW, ARRIVAL_DUPLICATE, ARRIVAL_DUPLICATE,
  ]);
  assert.equal(t.received, 3);
  assert.equal(t.duplicates, 3);
  assert.equal(t.late, 0);
  assert.equal(t.lostA3, 0);
});

test('reordering: a unique packet behind the highest is late, its repeat a duplicate', () => {
  const t = new ReceiveTracker(8000);
  assert.deepEqual(feed(t, [1, 3, 2, 2, 4]), [ARRIVAL_NEW, ARRIVAL_NEW, ARRIVAL_LATE, ARRIVAL_DUPLICATE, ARRIVAL_NEW]);
  assert.equal(t.received, 4);
  assert.equal(t.late, 1);
  assert.equal(t.duplicates, 1);
  assert.equal(t.lostA3, 0);
  // Reordered across the wrap.
  const w = new ReceiveTracker(8000);
  assert.deepEqual(feed(w, [65534, 0, 65535, 1]), [ARRIVAL_NEW, ARRIVAL_NEW, ARRIVAL_LATE, ARRIVAL_NEW]);
  assert.equal(w.lostA3, 0);
  assert.equal(w.extendedHighestSeq, 65537);
});

test('a late packet older than the first lowers the base, also across the wrap', () => {
  const t = new ReceiveTracker(8000);
  assert.deepEqual(feed(t, [5, 4]), [ARRIVAL_NEW, ARRIVAL_LATE]);
  assert.equal(t.firstSeq, 4);
  assert.equal(t.expected, 2);
  assert.equal(t.lostA3, 0);
  const w = new ReceiveTracker(8000);
  assert.deepEqual(feed(w, [1, 65535, 65535]), [ARRIVAL_NEW, ARRIVAL_LATE, ARRIVAL_DUPLICATE]);
  assert.equal(w.firstSeq, 65535);
  assert.equal(w.expected, 3);
  assert.equal(w.received, 2);
  assert.equal(w.lostA3, 1);
  // Cycles count from the base's cycle: 65535 (cycle 0), then 0, 1 (cycle 1).
  assert.equal(w.extendedHighestSeq, 65537);
});

test('duplicates are exact within 4096 behind the highest, across the wrap', () => {
  const t = new ReceiveTracker(8000);
  const start = 60000;
  const n = 10000;
  for (let i = 0; i < n; i++) if (i !== 7000) t.onPacket((start + i) & 0xffff, 0, 0, Number.NaN);
  const highest = start + n - 1;
  assert.equal(t.onPacket((highest - 4096) & 0xffff, 0, 0, Number.NaN), ARRIVAL_DUPLICATE);
  assert.equal(t.onPacket((highest - 1) & 0xffff, 0, 0, Number.NaN), ARRIVAL_DUPLICATE);
  assert.equal(t.onPacket((start + 7000) & 0xffff, 0, 0, Number.NaN), ARRIVAL_LATE, 'the one missing packet, 2999 behind');
  assert.equal(t.onPacket((start + 7000) & 0xffff, 0, 0, Number.NaN), ARRIVAL_DUPLICATE);
  assert.equal(t.onPacket((highest - 4097) & 0xffff, 0, 0, Number.NaN), ARRIVAL_INVALID, 'beyond the window: an A.1 jump');
  assert.equal(t.received, n);
  assert.equal(t.duplicates, 3);
  assert.equal(t.late, 1);
  assert.equal(t.invalid, 1);
  assert.equal(t.lostA3, 0);
  assert.equal(t.onPacket((highest + 1) & 0xffff, 0, 0, Number.NaN), ARRIVAL_NEW);
});

test('A.1 jump: one packet far ahead is invalid; two in a row restart the sequence, counts kept', () => {
  const t = new ReceiveTracker(8000);
  assert.deepEqual(feed(t, [100, 101, 5000, 102]), [ARRIVAL_NEW, ARRIVAL_NEW, ARRIVAL_INVALID, ARRIVAL_NEW]);
  assert.equal(t.received, 3);
  assert.equal(t.expected, 3);
  assert.equal(t.restarts, 0);
  assert.deepEqual(feed(t, [20000, 20001, 20002, 20004]), [ARRIVAL_INVALID, ARRIVAL_NEW, ARRIVAL_NEW, ARRIVAL_NEW]);
  assert.equal(t.restarts, 1);
  assert.equal(t.invalid, 2);
  assert.equal(t.received, 6);
  // Old run 100..102 (3) + new run 20001..20004 (4).
  assert.equal(t.expected, 7);
  assert.equal(t.lostA3, 1);
  assert.equal(t.firstSeq, 20001);
  // A jump of 2999 is still in order (MAX_DROPOUT = 3000): a loss, not a restart.
  const g = new ReceiveTracker(8000);
  assert.deepEqual(feed(g, [0, 2999, 5999]), [ARRIVAL_NEW, ARRIVAL_NEW, ARRIVAL_INVALID]);
  assert.equal(g.lostA3, 2998);
});

// RFC 3550 A.8 by hand: 8 kHz, timestamps 160 apart (20 ms), arrivals 100, 121, 140, 163, 180 ms.
// D_i = (R_i - R_{i-1}) * 8 - 160 = 8, -8, 24, -24; J += (|D| - J) / 16.
const J_EXPECTED = [0, 0.5, 0.96875, 2.408203125, 3.7576904296875];
const ARRIVALS = [100, 121, 140, 163, 180];

test('A.8 interarrival jitter, worked example', () => {
  for (const tsStart of [1000, 2 ** 32 - 320]) {
    const t = new ReceiveTracker(8000);
    ARRIVALS.forEach((r, i) => {
      t.onPacket(500 + i, (tsStart + 160 * i) >>> 0, r, Number.NaN);
      assert.ok(Math.abs(t.jitterUnits - J_EXPECTED[i]!) < 1e-9, `ts start ${tsStart}, packet ${i}: J = ${t.jitterUnits}`);
      assert.ok(Math.abs(t.jitterMs - J_EXPECTED[i]! / 8) < 1e-9);
    });
    // Mean over the 4 updates and the max, in ms.
    assert.ok(Math.abs(t.meanJitterMs - (0.5 + 0.96875 + 2.408203125 + 3.7576904296875) / 4 / 8) < 1e-9);
    assert.ok(Math.abs(t.maxJitterMs - 3.7576904296875 / 8) < 1e-9);
    // A duplicate, however late, does not touch J.
    t.onPacket(502, (tsStart + 320) >>> 0, 400, Number.NaN);
    assert.ok(Math.abs(t.jitterUnits - J_EXPECTED[4]!) < 1e-9);
    // Report block carries floor(J).
    assert.equal(t.reportBlock(1, 0, 0, emptyBlock()).jitter, 3);
  }
});

test('a new source (SSRC change) is not compared with the old one\'s timing; the estimate so far is kept', () => {
  const t = new ReceiveTracker(8000);
  ARRIVALS.forEach((r, i) => t.onPacket(500 + i, 1000 + 160 * i, r, Number.NaN));
  t.newSource();
  // The new source's timestamps start at an unrelated base: without newSource() D would be about 2^31 units.
  t.onPacket(505, 3_000_000_000, 200, Number.NaN);
  assert.ok(Math.abs(t.jitterUnits - J_EXPECTED[4]!) < 1e-9, `J = ${t.jitterUnits}`);
  // From the next packet on, the new source's own timing counts: D = (220 - 200) * 8 - 160 = 0.
  t.onPacket(506, 3_000_000_160, 220, Number.NaN);
  assert.ok(Math.abs(t.jitterUnits - (J_EXPECTED[4]! * 15) / 16) < 1e-9, `J = ${t.jitterUnits}`);
  assert.equal(t.received, 7);
});

test('A.8 jitter is the same with signed int32 timestamps (rtpTimestampInt32)', () => {
  const t = new ReceiveTracker(8000);
  ARRIVALS.forEach((r, i) => t.onPacket(i, ((2 ** 32 - 320 + 160 * i) >>> 0) | 0, r, Number.NaN));
  assert.ok(Math.abs(t.jitterUnits - J_EXPECTED[4]!) < 1e-9);
});

test('A.8 jitter at 48 kHz counts in the stream clock', () => {
  const t = new ReceiveTracker(48000);
  t.onPacket(1, 0, 0, Number.NaN);
  t.onPacket(2, 960, 21, Number.NaN); // 1 ms late = 48 units
  assert.ok(Math.abs(t.jitterUnits - 3) < 1e-9);
  assert.ok(Math.abs(t.jitterMs - 1 / 16) < 1e-9);
});

test('reordered packets enter jitter in arrival order (RFC 3550 6.4.1)', () => {
  const t = new ReceiveTracker(8000);
  t.onPacket(1, 0, 0, Number.NaN);
  t.onPacket(3, 320, 40, Number.NaN);
  // seq 2 arrives at 41 ms: D = (41 - 40) * 8 - (160 - 320) = 168.
  t.onPacket(2, 160, 41, Number.NaN);
  assert.ok(Math.abs(t.jitterUnits - 168 / 16) < 1e-9);
});

test('transit jitter is zero when arrival - actual send is constant, though the sends were late', () => {
  const t = new ReceiveTracker(8000);
  const sends = [1000, 1021.5, 1040.7, 1062, 1080.2, 1103.9];
  sends.forEach((s, i) => t.onPacket(i, i * 160, s + 0.3, s));
  assert.ok(t.transitJitterMs < 1e-9, `transit ${t.transitJitterMs}`);
  assert.ok(t.maxTransitJitterMs < 1e-9);
  // The timestamp-based A.8 jitter sees the sender's lateness: D1 = 21.5 * 8 - 160 = 12 units.
  assert.ok(t.jitterUnits > 0.5, `A.8 J ${t.jitterUnits}`);
});

test('transit jitter by hand, and an unknown send time breaks the pair', () => {
  const t = new ReceiveTracker(8000);
  // Transits 5, 6, 5 ms: D = 1, 1 -> J = 1/16, then 1/16 + (1 - 1/16)/16.
  [0, 20, 40].forEach((s, i) => t.onPacket(i, i * 160, s + [5, 6, 5][i]!, s));
  assert.ok(Math.abs(t.transitJitterMs - 0.12109375) < 1e-12);
  assert.ok(Math.abs(t.meanTransitJitterMs - (0.0625 + 0.12109375) / 2) < 1e-12);
  const u = new ReceiveTracker(8000);
  u.onPacket(0, 0, 5, 0);
  u.onPacket(1, 160, 25, Number.NaN);
  u.onPacket(2, 320, 46, 40); // pairs with the unknown one: no update
  assert.equal(u.transitJitterMs, 0);
  u.onPacket(3, 480, 65, 60); // transit 5 after 6: D = 1
  assert.ok(Math.abs(u.transitJitterMs - 0.0625) < 1e-12);
});

test('report block: interval fraction lost, cumulative lost, fields', () => {
  const t = new ReceiveTracker(8000);
  // 0..9 with 3 and 7 lost: 10 expected, 2 lost -> floor(2 * 256 / 10) = 51.
  feed(t, [0, 1, 2, 4, 5, 6, 8, 9]);
  const out = emptyBlock();
  const r = t.reportBlock(0xabcdef01, 0x12345678, 0x00020000, out);
  assert.equal(r, out, 'fills the caller object');
  assert.deepEqual(out, {
    ssrc: 0xabcdef01,
    fractionLost: 51,
    cumulativeLost: 2,
    extendedHighestSeq: 9,
    jitter: 0,
    lastSr: 0x12345678,
    delaySinceLastSr: 0x00020000,
  });
  // Next interval 10..19, one lost of 10 -> 25; cumulative 3.
  feed(t, [10, 11, 12, 13, 14, 15, 16, 17, 19]);
  t.reportBlock(1, 0, 0, out);
  assert.equal(out.fractionLost, 25);
  assert.equal(out.cumulativeLost, 3);
  assert.equal(out.extendedHighestSeq, 19);
  // Interval where only the lost packets arrive late: nothing new expected, loss recovered -> 0, cumulative 0.
  feed(t, [3, 7, 18]);
  t.reportBlock(1, 0, 0, out);
  assert.equal(out.fractionLost, 0);
  assert.equal(out.cumulativeLost, 0);
  // Half of an interval lost -> 128.
  feed(t, [21, 23, 25, 27]);
  t.reportBlock(1, 0, 0, out);
  assert.equal(out.fractionLost, 128);
  assert.equal(out.cumulativeLost, 4);
});

test('report block extended highest seq after a wrap', () => {
  const t = new ReceiveTracker(8000);
  feed(t, [65535, 0, 1, 2]);
  assert.equal(t.reportBlock(1, 0, 0, emptyBlock()).extendedHighestSeq, 0x00010002);
});

test('SendHistory: ring keyed by seq, stale slots give NaN', () => {
  const h = new SendHistory();
  assert.equal(h.size, 4096);
  assert.ok(Number.isNaN(h.sendTimeOf(5)));
  h.record(5, 100.5);
  assert.equal(h.sendTimeOf(5), 100.5);
  h.record(5 + 4096, 200);
  assert.ok(Number.isNaN(h.sendTimeOf(5)), 'slot reused by a newer seq');
  assert.equal(h.sendTimeOf(4101), 200);
  h.record(65535, 1);
  h.record(65536, 2); // seq wraps to 0
  assert.equal(h.sendTimeOf(65535), 1);
  assert.equal(h.sendTimeOf(0), 2);
  // Across the wrap the last `size` seqs are all there, the one before them is gone.
  const small = new SendHistory(1024);
  for (let s = 64000; s < 66000; s++) small.record(s & 0xffff, s);
  for (let s = 66000 - 1024; s < 66000; s++) assert.equal(small.sendTimeOf(s & 0xffff), s);
  assert.ok(Number.isNaN(small.sendTimeOf((66000 - 1025) & 0xffff)));
  assert.throws(() => new SendHistory(1000), RangeError, 'not a power of two');
  assert.throws(() => new SendHistory(0), RangeError);
  assert.throws(() => new SendHistory(65537), RangeError);
});
