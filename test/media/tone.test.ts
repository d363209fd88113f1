import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MARKER_OFFSET_HZ,
  TONE_AMPLITUDE_MINUS_10_DBFS,
  TONE_EXCLUDE_FRACTION,
  ToneDetector,
  fillTone,
  markerFrequencyHz,
  toneFrequencyHz,
} from '../../src/media/tone.js';
import { prng } from '../helpers/prng.js';


function tone(freq: number, rate: number, n: number, amplitude = 10000, start = 0): Int16Array {
  const out = new Int16Array(n);
  fillTone(out, freq, rate, amplitude, start);
  return out;
}

test('toneFrequencyHz: literal values for the first calls', () => {
  const table: [number, number, number][] = [
    [0, 1000, 2550],
    [1, 1350, 2900],
    [2, 1700, 3250],
    [3, 500, 2050],
    [31, 1000, 2550],
  ];
  for (const [call, a, b] of table) {
    assert.equal(toneFrequencyHz(call, 'a'), a, `call ${call} leg a`);
    assert.equal(toneFrequencyHz(call, 'b'), b, `call ${call} leg b`);
  }
});

test('toneFrequencyHz: 50 Hz grid, 300..3400 Hz, legs apart, nearby calls distinct', () => {
  const legA = new Set<number>();
  const legB = new Set<number>();
  for (let call = 0; call < 2000; call++) {
    const a = toneFrequencyHz(call, 'a');
    const b = toneFrequencyHz(call, 'b');
    for (const f of [a, b]) {
      assert.equal(f % 50, 0);
      assert.ok(f >= 300 && f <= 3400, `${f}`);
    }
    assert.ok(Math.abs(a - b) >= 200);
    legA.add(a);
    legB.add(b);
    for (let other = Math.max(0, call - 30); other < call; other++) {
      assert.notEqual(toneFrequencyHz(other, 'a'), a, `calls ${other} and ${call}, leg a`);
      assert.notEqual(toneFrequencyHz(other, 'b'), b, `calls ${other} and ${call}, leg b`);
    }
  }
  for (const f of legA) assert.ok(!legB.has(f), `${f} Hz used by both legs`);
  assert.equal(legA.size, 31);
  assert.equal(toneFrequencyHz(-1, 'a'), toneFrequencyHz(30, 'a'));
});

test('fillTone: literal samples and seamless continuation', () => {
  // 1 kHz at 8 kHz: 8 samples per period, amplitude 10000, sin(pi/4) * 10000 = 7071.07.
  assert.deepEqual([...tone(1000, 8000, 8)], [0, 7071, 10000, 7071, 0, -7071, -10000, -7071]);
  const whole = tone(1350, 48000, 960, 10362, 0);
  const first = tone(1350, 48000, 480, 10362, 0);
  const second = tone(1350, 48000, 480, 10362, 480);
  assert.deepEqual([...whole], [...first, ...second]);
  // Phase is reduced exactly: a day into the stream the samples are the same as at the start.
  assert.deepEqual([...tone(1000, 8000, 160, 10000, 8000 * 86400)], [...tone(1000, 8000, 160)]);
  // A whole number of periods per 20 ms frame: frame k equals frame 0 (a pre-encoded loop joins cleanly).
  assert.deepEqual([...tone(2550, 8000, 160, 10000, 160 * 7)], [...tone(2550, 8000, 160)]);
  assert.equal(Math.max(...tone(1000, 8000, 8, 1e6)), 32767);
  assert.equal(TONE_AMPLITUDE_MINUS_10_DBFS, Math.round(32767 * 10 ** (-10 / 20)));
});

test('ToneDetector: clean tone, other tone, silence, noise, mixture', () => {
  const d = new ToneDetector(1000, 8000);
  assert.equal(d.ratio, 0);
  d.add(tone(1000, 8000, 160, TONE_AMPLITUDE_MINUS_10_DBFS));
  assert.equal(d.blocks, 1);
  assert.ok(d.ratio > 0.999, `clean tone ${d.ratio}`);
  assert.ok(d.ratio < 1.000001);

  const other = new ToneDetector(1000, 8000);
  other.add(tone(1400, 8000, 160));
  assert.ok(other.ratio < 0.01, `1400 Hz at 1000 Hz: ${other.ratio}`);
  const near = new ToneDetector(1000, 8000);
  near.add(tone(1200, 8000, 160));
  assert.ok(near.ratio < 0.05, `the other leg, 200 Hz away: ${near.ratio}`);

  const silence = new ToneDetector(1000, 8000);
  silence.add(new Int16Array(160));
  silence.add(new Int16Array(0));
  assert.equal(silence.ratio, 0);
  assert.equal(silence.blocks, 1);

  // White noise spreads over 80 bins of a 160-sample block: expected ratio 2/N = 0.0125.
  const rand = prng(42);
  const noise = new ToneDetector(1000, 8000);
  const block = new Int16Array(160);
  for (let b = 0; b < 200; b++) {
    for (let i = 0; i < 160; i++) block[i] = Math.round((rand() * 2 - 1) * 10000);
    noise.add(block);
  }
  assert.ok(noise.ratio > 0.005 && noise.ratio < 0.025, `noise ${noise.ratio}`);

  // Equal-amplitude mix of this tone and another: half the energy is at 1 kHz.
  const mix = new Int16Array(160);
  const a = tone(1000, 8000, 160, 8000);
  const b = tone(2550, 8000, 160, 8000);
  for (let i = 0; i < 160; i++) mix[i] = a[i]! + b[i]!;
  const m = new ToneDetector(1000, 8000);
  m.add(mix);
  assert.ok(Math.abs(m.ratio - 0.5) < 0.001, `mix ${m.ratio}`);
  assert.ok(Math.abs(m.lastBlockRatio - 0.5) < 0.001);
});

test('ToneDetector accumulates energies across blocks, not ratios', () => {
  const d = new ToneDetector(1000, 8000);
  d.add(tone(1000, 8000, 160, 10000));
  d.add(tone(1400, 8000, 160, 10000));
  // Equal energy blocks: one all tone, one none -> 0.5.
  assert.ok(Math.abs(d.ratio - 0.5) < 0.001, `${d.ratio}`);
  d.add(new Int16Array(160));
  assert.ok(Math.abs(d.ratio - 0.5) < 0.001, 'a silent block adds nothing');
  assert.equal(d.blocks, 3);
  // A quiet tone block does not outweigh a loud off-frequency one.
  const w = new ToneDetector(1000, 8000);
  w.add(tone(1000, 8000, 160, 1000));
  w.add(tone(1400, 8000, 160, 10000));
  assert.ok(Math.abs(w.ratio - 1 / 101) < 0.001, `${w.ratio}`);
  w.reset();
  assert.equal(w.blocks, 0);
  assert.equal(w.ratio, 0);
});

test('ToneDetector at 48 kHz over a 20 ms block', () => {
  const d = new ToneDetector(2550, 48000);
  d.add(tone(2550, 48000, 960));
  assert.ok(d.ratio > 0.999);
  const o = new ToneDetector(1000, 48000);
  o.add(tone(2550, 48000, 960));
  assert.ok(o.ratio < 0.001);
});

test('markerFrequencyHz: literal values, then the rule\'s properties for every grid tone', () => {
  assert.deepEqual(
    [300, 1000, 1800, 1850, 2550, 3350, 3400].map(markerFrequencyHz),
    [1300, 2000, 2800, 850, 1550, 2350, 2400],
  );
  for (let tone = 300; tone <= 3400; tone += 50) {
    const m = markerFrequencyHz(tone);
    assert.equal(m % 50, 0, `${tone}: on the grid (whole periods per 20 ms frame)`);
    assert.ok(m >= 300 && m <= 3400, `${tone}: ${m} in band`);
    assert.equal(Math.abs(m - tone), MARKER_OFFSET_HZ, `${tone}: ${m}`);
    // Orthogonal over the detector's 80-sample (100 Hz bin) window: sum and difference on the 100 Hz grid.
    assert.equal((m + tone) % 100, 0);
    // A whole 20 ms frame of the marker: starts and ends at phase 0 (continuous with the tone frames).
    const frame = new Int16Array(161);
    fillTone(frame, m, 8000, TONE_AMPLITUDE_MINUS_10_DBFS, 0);
    assert.equal(frame[0], 0);
    assert.equal(frame[160], 0);
  }
  for (let call = 0; call < 31; call++) {
    const a = toneFrequencyHz(call, 'a');
    const b = toneFrequencyHz(call, 'b');
    for (const m of [markerFrequencyHz(a), markerFrequencyHz(b)]) {
      assert.ok(m !== a && m !== b, `call ${call}: marker ${m} is neither leg's tone`);
      assert.ok(Math.abs(m - a) >= 500 && Math.abs(m - b) >= 500, `call ${call}: marker ${m} near ${a}/${b}`);
    }
  }
  for (const bad of [250, 3450, 1010, 1000.5, Number.NaN]) assert.throws(() => markerFrequencyHz(bad), RangeError, `${bad}`);
});

test('ToneDetector with excludeHz: marker blocks left out, bounded, other blocks as before', () => {
  const toneBlock = tone(1000, 8000, 160, TONE_AMPLITUDE_MINUS_10_DBFS);
  const markerBlock = tone(2000, 8000, 160, -TONE_AMPLITUDE_MINUS_10_DBFS);
  // 24 marker samples then the tone: (24/160)^2 = 2% of the energy at 2 kHz, over the 1% threshold.
  const partial = Int16Array.from(toneBlock);
  partial.set(markerBlock.subarray(0, 24), 0);
  const plain = new ToneDetector(1000, 8000);
  const excl = new ToneDetector(1000, 8000, { excludeHz: 2000 });
  assert.equal(excl.excludeHz, 2000);
  assert.ok(Number.isNaN(plain.excludeHz));
  for (let k = 0; k < 50; k++) {
    const block = k % 25 === 0 ? markerBlock : k % 25 === 1 ? partial : toneBlock;
    plain.add(block);
    excl.add(block);
  }
  assert.equal(plain.blocks, 50);
  assert.equal(plain.excludedBlocks, 0);
  assert.ok(plain.ratio < 0.97, `every block counts without the option: ${plain.ratio}`);
  assert.equal(excl.blocks, 46);
  assert.equal(excl.excludedBlocks, 4);
  assert.ok(excl.ratio > 0.9999, `${excl.ratio}`);
  assert.ok(TONE_EXCLUDE_FRACTION === 0.01);
  // 8 samples of the marker, (8/160)^2 = 0.25%, stay below it and count.
  const few = Int16Array.from(toneBlock);
  few.set(markerBlock.subarray(0, 8), 0);
  const f = new ToneDetector(1000, 8000, { excludeHz: 2000 });
  f.add(few);
  assert.equal(f.blocks, 1);

  // A stream that is all at the excluded frequency cannot hide: after 2, one block in 8 is left out at most.
  const hiding = new ToneDetector(1000, 8000, { excludeHz: 2000 });
  for (let k = 0; k < 90; k++) hiding.add(markerBlock);
  assert.equal(hiding.excludedBlocks + hiding.blocks, 90);
  assert.ok(hiding.excludedBlocks <= 2 + hiding.blocks / 8 + 1, `${hiding.excludedBlocks} excluded`);
  assert.ok(hiding.blocks >= 78);
  assert.ok(hiding.ratio < 0.001);
  // Noise is not excluded more than the budget either, and its ratio stays noise.
  const rand = prng(9);
  const noise = new ToneDetector(1000, 8000, { excludeHz: 2000 });
  const block = new Int16Array(160);
  for (let b = 0; b < 200; b++) {
    for (let i = 0; i < 160; i++) block[i] = Math.round((rand() * 2 - 1) * 10000);
    noise.add(block);
  }
  assert.ok(noise.ratio > 0.005 && noise.ratio < 0.025, `noise ${noise.ratio}`);
  noise.reset();
  assert.equal(noise.excludedBlocks, 0);
  assert.throws(() => new ToneDetector(1000, 8000, { excludeHz: 1000 }), RangeError);
  assert.throws(() => new ToneDetector(1000, 8000, { excludeHz: 0 }), RangeError);
});
