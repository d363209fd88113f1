import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { codecByName, type CodecProfile } from '../../src/profile.js';
import {
  markToneFrame,
  DECODED_SAMPLE_RATE,
  MARKER_FRAME,
  createDecoder,
  createEncoder,
  encodeToneLoop,
  fillToneLoopFrame,
  frameSamples,
} from '../../src/media/codec.js';
import { ToneDetector, TONE_AMPLITUDE_MINUS_10_DBFS, fillTone, markerFrequencyHz } from '../../src/media/tone.js';
import { ulawEncode } from '../../src/media/g711.js';

function profile(name: string): CodecProfile {
  const p = codecByName(name);
  assert.ok(p, `codec ${name} in profiles/codecs.json`);
  return p;
}

/**
 * Decodes a loop and feeds the detector, skipping the first `skip` frames. The marker frames of `markedHz`'s loop
 * (default: freqHz's) are left out; markedHz null: every block counts.
 */
function toneRatio(p: CodecProfile, payloads: Uint8Array[], freqHz: number, skip: number, markedHz: number | null = freqHz): number {
  const dec = createDecoder(p);
  const det = new ToneDetector(freqHz, DECODED_SAMPLE_RATE, markedHz === null ? {} : { excludeHz: markerFrequencyHz(markedHz) });
  try {
    payloads.forEach((payload, i) => {
      const pcm = dec.decode(payload);
      assert.equal(pcm.length, 160, `frame ${i}: 20 ms at 8 kHz`);
      if (i >= skip) det.add(pcm);
    });
    assert.equal(dec.errors, 0);
  } finally {
    dec.close();
  }
  return det.ratio;
}

/** Frame duration in ms from an opus TOC byte (RFC 6716 3.1). */
function opusTocDurationMs(toc: number): number {
  const config = toc >> 3;
  if (config < 12) return [10, 20, 40, 60][config & 3]!;
  if (config < 16) return [10, 20][config & 1]!;
  return [2.5, 5, 10, 20][config & 3]!;
}

test('frameSamples per profile', () => {
  assert.equal(frameSamples(profile('pcmu')), 160);
  assert.equal(frameSamples(profile('opus')), 960);
});

test('PCMU loop of a 1 kHz tone is G.711 of the tone, frame 0 of the inverted 2 kHz marker, and decodes to ratio > 0.99', () => {
  const p = profile('pcmu');
  const loop = encodeToneLoop(p, 1000, 10);
  const plain = encodeToneLoop(p, 1000, 10, { marker: false });
  assert.equal(loop.length, 10);
  const pcm = new Int16Array(160);
  for (let k = 0; k < 10; k++) {
    fillTone(pcm, 1000, 8000, TONE_AMPLITUDE_MINUS_10_DBFS, k * 160);
    const clean = [...pcm].map(ulawEncode);
    markToneFrame(pcm, k);
    const marked = [...pcm].map(ulawEncode);
    assert.deepEqual([...plain[k]!], marked, `frame ${k} without the marker`);
    // The frame is the tone's G.711 but for the one marked sample.
    assert.deepEqual(marked.flatMap((b, i) => (b === clean[i] ? [] : [i])), [k], `frame ${k} differs at its mark only`);
    if (k !== MARKER_FRAME) assert.deepEqual([...loop[k]!], marked, `frame ${k}: the tone, as without the marker`);
  }
  // Frame 0: -sin at 2000 Hz (4 samples a period: 0, -A, 0, A), its first sample marked like any frame 0.
  assert.equal(markerFrequencyHz(1000), 2000);
  fillTone(pcm, 2000, 8000, -TONE_AMPLITUDE_MINUS_10_DBFS, 0);
  assert.deepEqual([...pcm.subarray(0, 4)], [0, -TONE_AMPLITUDE_MINUS_10_DBFS, 0, TONE_AMPLITUDE_MINUS_10_DBFS]);
  markToneFrame(pcm, 0);
  assert.deepEqual([...loop[0]!], [...pcm].map(ulawEncode), 'frame 0: the marker');
  const frame = new Int16Array(160);
  fillToneLoopFrame(frame, 8000, 1000, 0, true);
  assert.deepEqual(frame, pcm, 'fillToneLoopFrame renders the same');
  // 1 kHz fits 20 periods in a frame, so the loop joins cleanly; the marks make every frame distinct, so a payload
  // delivered under the wrong sequence number shows.
  assert.equal(new Set(loop.map((f) => Buffer.from(f).toString('hex'))).size, 10);
  // Independent copies: writing one frame leaves the others.
  loop[1]![0] = 0x12;
  assert.notEqual(loop[0]![0], 0x12);
  assert.notEqual(loop[0]!.buffer, loop[2]!.buffer);
  assert.ok(toneRatio(p, loop, 1000, 0) > 0.99);
  assert.ok(toneRatio(p, plain, 1000, 0, null) > 0.99);
  // Counting the marker frame, 1 block in 10 is not the tone.
  const unexcluded = toneRatio(p, loop, 1000, 0, null);
  assert.ok(unexcluded > 0.89 && unexcluded < 0.91, `${unexcluded}`);
});

test('a one-frame loop has no marker (no edge to mark)', () => {
  const p = profile('pcmu');
  assert.deepEqual(encodeToneLoop(p, 1000, 1), encodeToneLoop(p, 1000, 1, { marker: false }));
  assert.notDeepEqual(encodeToneLoop(p, 1000, 2)[0], encodeToneLoop(p, 1000, 2, { marker: false })[0]);
  assert.throws(() => encodeToneLoop(p, 1010, 25), RangeError, 'a marker needs a tone on the 50 Hz grid');
  assert.equal(encodeToneLoop(p, 1010, 25, { marker: false }).length, 25);
});

test('PCMA loop decodes to its tone and not the other leg', () => {
  const p = profile('pcma');
  const loop = encodeToneLoop(p, 2550, 10);
  assert.ok(toneRatio(p, loop, 2550, 0) > 0.99);
  assert.ok(toneRatio(p, loop, 1000, 0, 2550) < 0.01);
  assert.ok(toneRatio(p, loop, 1000, 0) < 0.01);
});

test('opus loop: 20 ms mono frames that decode to the tone at 8 kHz', () => {
  const p = profile('opus');
  const loop = encodeToneLoop(p, 1000, 25);
  assert.equal(loop.length, 25);
  for (const [i, frame] of loop.entries()) {
    assert.ok(frame.length > 10 && frame.length < 400, `frame ${i}: ${frame.length} bytes`);
    const toc = frame[0]!;
    assert.equal(opusTocDurationMs(toc), 20, `frame ${i} TOC 0x${toc.toString(16)}`);
    assert.equal((toc >> 2) & 1, 0, 'mono');
    assert.equal(toc & 3, 0, 'one frame per packet');
    assert.equal(frame.byteOffset, 0);
    assert.equal(frame.buffer.byteLength, frame.length, 'each payload owns its buffer');
  }
  // Hybrid (SILK + CELT) fullband 20 ms: config 15 (RFC 6716 3.1), forced so the marker cannot switch modes.
  assert.deepEqual(new Set(loop.map((f) => f[0]! >> 3)), new Set([15]));
  const ratio = toneRatio(p, loop, 1000, 3);
  assert.ok(ratio > 0.99, `at 1000 Hz: ${ratio}`);
  const off = toneRatio(p, loop, 1300, 3, 1000);
  assert.ok(off < 0.05, `at 1300 Hz: ${off}`);
  const bytes = loop.reduce((n, f) => n + f.length, 0);
  console.log(`opus 20 ms at ${p.bitrate} bit/s: ${(bytes / loop.length).toFixed(1)} bytes/frame on average, sizes ${loop.map((f) => f.length).join(',')}`);
});

test('opus tone from the top of the band survives', () => {
  const p = profile('opus');
  const loop = encodeToneLoop(p, 3250, 25);
  assert.ok(toneRatio(p, loop, 3250, 3) > 0.99);
  assert.ok(toneRatio(p, loop, 1700, 3, 3250) < 0.05);
});

test('opus loop replays seamlessly: no gap at the seam, the marker frame decodes to the marker', () => {
  // The encoder runs over the loop once before the kept frames, so packet 0 carries the end of frame 24 (opus
  // looks 6.5 ms ahead) instead of a fresh encoder's start-up silence.
  const p = profile('opus');
  for (const [tone, marker] of [[1000, true], [1150, false], [2850, true]] as const) {
    const loop = encodeToneLoop(p, tone, 25, { marker });
    const dec = createDecoder(p);
    const blocks: Int16Array[] = [];
    for (let k = 0; k < 75; k++) blocks.push(Int16Array.from(dec.decode(loop[k % 25]!)));
    dec.close();
    // Around the second seam: the 6.5 ms before the edge (end of packet 24's audio shifted into packet 0) must be
    // the tone at full level, not the old 52 samples of near silence.
    const seam = blocks[50]!.subarray(0, 52);
    let energy = 0;
    for (const x of seam) energy += x * x;
    const rms = Math.sqrt(energy / seam.length);
    assert.ok(rms > 0.6 * (TONE_AMPLITUDE_MINUS_10_DBFS / Math.SQRT2), `${tone} Hz: rms ${rms.toFixed(0)} before the seam`);
    const det = new ToneDetector(tone, DECODED_SAMPLE_RATE);
    det.add(seam);
    assert.ok(det.ratio > 0.9, `${tone} Hz: the seam is the tone (${det.ratio})`);
    if (marker) {
      // The marker sits in samples 52..159 of packet 0 and 0..51 of packet 1.
      const m = new ToneDetector(markerFrequencyHz(tone), DECODED_SAMPLE_RATE);
      m.add(blocks[50]!.subarray(60, 160));
      assert.ok(m.ratio > 0.9, `${tone} Hz: marker ratio ${m.ratio}`);
    }
  }
});

test('random bytes are not the tone (what rtpengine would make of a random-payload generator)', () => {
  const p = profile('opus');
  let seed = 7;
  const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24);
  const junk = Array.from({ length: 25 }, () => Uint8Array.from({ length: 80 }, rand));
  const dec = createDecoder(p);
  const det = new ToneDetector(1000, DECODED_SAMPLE_RATE);
  for (const j of junk) det.add(dec.decode(j));
  dec.close();
  assert.ok(det.ratio < 0.2, `random payload ratio ${det.ratio}`);
});

test('opus decoder rejects bad payloads without throwing and counts them', () => {
  const dec = createDecoder(profile('opus'));
  // TOC code 3 (arbitrary frame count) with a count of 0 frames is invalid (RFC 6716 3.2.5).
  assert.equal(dec.decode(Uint8Array.from([0x03, 0x00])).length, 0);
  assert.equal(dec.errors, 1);
  assert.equal(dec.decode(new Uint8Array(4000)).length, 0, 'larger than any opus packet');
  assert.equal(dec.errors, 2);
  assert.equal(dec.decode(new Uint8Array(0)).length, 0, 'empty payload: nothing to decode');
  assert.equal(dec.errors, 2);
  const good = encodeToneLoop(profile('opus'), 1000, 1)[0]!;
  assert.equal(dec.decode(good).length, 160);
  dec.close();
  dec.close();
  assert.throws(() => dec.decode(good), /closed/);
});

test('decoder output is reused between calls (no allocation per packet)', () => {
  for (const name of ['pcmu', 'opus']) {
    const p = profile(name);
    const loop = encodeToneLoop(p, 1000, 4);
    const dec = createDecoder(p);
    const first = dec.decode(loop[0]!);
    const second = dec.decode(loop[1]!);
    assert.equal(first, second, name);
    dec.close();
  }
});

test('many live opus decoders in one thread keep working (opusscript wrapper breaks at ~80)', () => {
  const p = profile('opus');
  const loop = encodeToneLoop(p, 1000, 25);
  const decoders = Array.from({ length: 300 }, () => createDecoder(p));
  try {
    // The first decoder's heap region predates the WASM memory growth the others caused.
    const det = new ToneDetector(1000, DECODED_SAMPLE_RATE, { excludeHz: markerFrequencyHz(1000) });
    loop.forEach((f, i) => {
      const pcm = decoders[0]!.decode(f);
      if (i >= 3) det.add(pcm);
    });
    assert.ok(det.ratio > 0.99);
    assert.equal(decoders[299]!.decode(loop[0]!).length, 160);
  } finally {
    for (const d of decoders) d.close();
  }
  // Encoding after the growth gives the same bytes as before it.
  assert.deepEqual(encodeToneLoop(p, 1000, 25), loop);
});

test('the binding produces the same packets as opusscript\'s own wrapper', () => {
  const require = createRequire(import.meta.url);
  type Stock = {
    setBitrate(b: number): void;
    encode(pcm: Buffer, frameSize: number): Buffer;
    encoderCTL(ctl: number, arg: number): void;
    delete(): void;
  };
  const OpusScript = require('opusscript') as { new (rate: number, channels: number, app: number): Stock };
  const stock = new OpusScript(48000, 1, 2048);
  stock.setBitrate(32000);
  // OPUS_SET_FORCE_MODE(MODE_HYBRID), as encodeToneLoop does.
  stock.encoderCTL(11002, 1001);
  const ours = encodeToneLoop(profile('opus'), 1350, 10);
  const pcm = new Int16Array(960);
  // Pre-roll: one pass over the loop, discarded.
  for (let pass = 0; pass < 2; pass++) {
    for (let k = 0; k < 10; k++) {
      fillToneLoopFrame(pcm, 48000, 1350, k, true);
      const theirs = stock.encode(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), 960);
      if (pass === 1) assert.deepEqual([...ours[k]!], [...theirs], `frame ${k}`);
    }
  }
  stock.delete();
});

test('encoder validation', () => {
  const enc = createEncoder(profile('opus'));
  assert.throws(() => enc.encode(new Int16Array(100)), RangeError);
  assert.ok(enc.encode(new Int16Array(480)).length > 0, '10 ms is a valid opus frame');
  enc.close();
  assert.throws(() => enc.encode(new Int16Array(960)), /closed/);
  assert.throws(() => createEncoder({ ...profile('pcmu'), sampleRate: 16000 }), RangeError);
  assert.throws(() => createEncoder({ ...profile('opus'), sampleRate: 44100 }), RangeError);
});
