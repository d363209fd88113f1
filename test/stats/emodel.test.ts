import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultEmodelParameters,
  effectiveEquipmentImpairment,
  emodelTerms,
  mosForStream,
  mosFromR,
  rFactor,
  type StreamQuality,
} from '../../src/stats/emodel.js';

const G711_PLC = { ie: 0, bpl: 25.1 };

function stream(overrides: Partial<StreamQuality>): StreamQuality {
  return { oneWayLatencyMs: 1, jitterMs: 0, lossPct: 0, ptimeMs: 20, ...G711_PLC, ...overrides };
}

test('G.107 Table 3 defaults', () => {
  assert.deepEqual(defaultEmodelParameters(), {
    SLR: 8, RLR: 2, STMR: 15, LSTR: 18, Ds: 3, Dr: 3, TELR: 65, WEPL: 110, T: 0, Ta: 0, Tr: 0, Ppl: 0, BurstR: 1,
    Nc: -70, Nfor: -64, Ps: 35, Pr: 35, Ie: 0, Bpl: 1, A: 0, qdu: 1, sT: 1, mT: 100,
  });
});

test('all defaults: R = 93.2 (the classic known answer), from its published terms', () => {
  const t = emodelTerms({});
  assert.equal(Math.round(t.r * 10) / 10, 93.2);
  assert.equal(rFactor({}), t.r);
  // Ro 94.77, Is 1.41, Id 0.15 (listener echo only), Ie,eff 0.
  assert.equal(Math.round(t.ro * 100) / 100, 94.77);
  assert.equal(Math.round(t.is * 100) / 100, 1.41);
  assert.equal(Math.round(t.id * 100) / 100, 0.15);
  assert.equal(t.idte, 0);
  assert.equal(t.idd, 0);
  assert.equal(t.ieEff, 0);
  assert.ok(Math.abs(t.ro - t.is - t.id - t.ieEff + t.a - t.r) < 1e-12);
});

test('mosFromR: Annex B known answers', () => {
  assert.equal(Math.round(mosFromR(93.2) * 100) / 100, 4.41);
  assert.ok(Math.abs(mosFromR(50) - 2.575) < 1e-12); // 2.58 to two decimals
  assert.equal(mosFromR(0), 1);
  assert.equal(mosFromR(-10), 1);
  // The polynomial alone would give 0.989 at R = 3: below the scale.
  for (let r = 0; r <= 10; r += 0.5) assert.ok(mosFromR(r) >= 1, `MOS at R ${r} is ${mosFromR(r)}`);
  assert.equal(mosFromR(100), 4.5);
  assert.equal(mosFromR(120), 4.5);
  for (let r = 10; r < 100; r += 5) assert.ok(mosFromR(r + 5) > mosFromR(r), `MOS must rise with R at ${r}`);
});

test('Ie,eff: G.711 with PLC at 1% random loss is 95 / 26.1', () => {
  const ieEff = effectiveEquipmentImpairment(0, 25.1, 1, 1);
  assert.ok(Math.abs(ieEff - 95 / 26.1) < 1e-12);
  assert.equal(Math.round(ieEff * 100) / 100, 3.64);
  assert.equal(effectiveEquipmentImpairment(11, 19, 0, 1), 11);
  // Bursty loss hurts more than the same amount of random loss.
  assert.ok(effectiveEquipmentImpairment(0, 25.1, 2, 2) > effectiveEquipmentImpairment(0, 25.1, 2, 1));
  // And it is what rFactor subtracts.
  assert.ok(Math.abs(rFactor({}) - rFactor({ Ppl: 1, Bpl: 25.1 }) - ieEff) < 1e-9);
});

test('Idd at Ta = 300 ms matches the G.107 formula and is what R loses', () => {
  const x = Math.log2(300 / 100);
  const byHand = 25 * ((1 + x ** 6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2);
  const t = emodelTerms({ Ta: 300 });
  assert.ok(Math.abs(t.idd - byHand) < 1e-12, `Idd ${t.idd} vs ${byHand}`);
  assert.equal(Math.round(t.idd * 100) / 100, 14.76);
  // Ta enters only through Idd.
  assert.ok(Math.abs(rFactor({}) - rFactor({ Ta: 300 }) - byHand) < 1e-9);
  assert.equal(emodelTerms({ Ta: 100 }).idd, 0);
  assert.ok(emodelTerms({ Ta: 101 }).idd > 0);
});

test('mosForStream: a perfect G.711 stream scores about 4.4', () => {
  const q = mosForStream(stream({}));
  // 1 ms network + 20 ms packetisation + 20 ms jitter buffer (one frame: no jitter).
  assert.equal(q.mouthToEarMs, 41);
  assert.ok(Math.abs(q.mos - 4.4) < 0.05, `MOS ${q.mos}`);
  assert.ok(q.r > 91 && q.r < 93.2, `R ${q.r}`);
});

test('mosForStream: the documented mouth-to-ear assumption', () => {
  assert.equal(mosForStream(stream({ oneWayLatencyMs: 30, jitterMs: 15 })).mouthToEarMs, 30 + 20 + 30);
  assert.equal(mosForStream(stream({ oneWayLatencyMs: 30, jitterMs: 5 })).mouthToEarMs, 30 + 20 + 20);
  // T = Ta and Tr = 2 Ta, everything else default.
  const q = mosForStream(stream({ oneWayLatencyMs: 259 }));
  assert.equal(q.mouthToEarMs, 299);
  assert.ok(Math.abs(q.r - rFactor({ Ta: 299, T: 299, Tr: 598, Ie: 0, Bpl: 25.1 })) < 1e-12);
});

test('mosForStream: 300 ms mouth to ear costs at least Idd', () => {
  const near = mosForStream(stream({}));
  const far = mosForStream(stream({ oneWayLatencyMs: 260 }));
  assert.equal(far.mouthToEarMs, 300);
  const idd = emodelTerms({ Ta: 300 }).idd;
  assert.ok(near.r - far.r >= idd, `R fell by ${near.r - far.r}, Idd alone is ${idd}`);
  assert.ok(far.mos < 4.0, `MOS ${far.mos}`);
});

test('mosForStream: more loss ranks lower (monotonic)', () => {
  const losses = [0, 0.5, 1, 2, 5, 10, 20];
  const mos = losses.map((lossPct) => mosForStream(stream({ lossPct })).mos);
  for (let i = 1; i < mos.length; i++) {
    assert.ok((mos[i] ?? 0) < (mos[i - 1] ?? 0), `loss ${losses[i]}% should rank below ${losses[i - 1]}%`);
  }
  const one = mosForStream(stream({ lossPct: 1 }));
  const five = mosForStream(stream({ lossPct: 5 }));
  assert.ok(five.mos < one.mos);
  assert.ok(Math.abs(mosForStream(stream({})).r - one.r - 95 / 26.1) < 1e-9);
  // Negative loss (duplicates in the RFC 3550 count) is no better than none.
  assert.equal(mosForStream(stream({ lossPct: -0.5 })).mos, mosForStream(stream({})).mos);
});

test('mosForStream rejects inputs it cannot mean anything with', () => {
  assert.throws(() => mosForStream(stream({ jitterMs: Number.NaN })), /jitterMs/);
  assert.throws(() => mosForStream(stream({ oneWayLatencyMs: -1 })), /oneWayLatencyMs/);
  assert.throws(() => mosForStream(stream({ ptimeMs: 0 })), /ptimeMs/);
  assert.throws(() => rFactor({ Ta: Number.POSITIVE_INFINITY }), /Ta/);
});
