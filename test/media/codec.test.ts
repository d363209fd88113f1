import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { codecByName, type CodecProfile } from '../../src/profile.js';
import {
  markToneFrame,
  DECODED_SAMPLE_RATE,
  createDecoder,
  createEncoder,
  encodeToneLoop,
  frameSamples,
} from '../../src/media/codec.js';
import { ToneDetector, TONE_AMPLITUDE_MINUS_10_DBFS, fillTone } from '../../src/media/tone.js';
import { ulawEncode } from '../../src/media/g711.js';

function profile(name: string): CodecProfile {
  const p = codecByName(name);
  assert.ok(p, `codec ${name} in profiles/codecs.json`);
  return p;
}

/** Decodes a loop and feeds the detector, skipping the first `skip` frames. */
function toneRatio(p: CodecProfile, payloads: Uint8Array[], freqHz: number, skip: number): number {
  const dec = createDecoder(p);
  const det = new ToneDetector(freqHz, DECODED_SAMPLE_RATE);
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

test('PCMU loop of a 1 kHz tone is G.711 of the tone and decodes to ratio > 0.99', () => {
  const p = profile('pcmu');
  const loop = encodeToneLoop(p, 1000, 10);
  assert.equal(loop.length, 10);
  const pcm = new Int16Array(160);
  for (let k = 0; k < 10; k++) {
    fillTone(pcm, 1000, 8000, TONE_AMPLITUDE_MINUS_10_DBFS, k * 160);
    const clean = [...pcm].map(ulawEncode);
    markToneFrame(pcm, k);
    const marked = [...pcm].map(ulawEncode);
    assert.deepEqual([...loop[k]!], marked, `frame ${k}`);
    // The frame is the tone's G.711 but for the one marked sample.
    assert.deepEqual(marked.flatMap((b, i) => (b === clean[i] ? [] : [i])), [k], `frame ${k} differs at its mark only`);
  }
  // 1 kHz fits 20 periods in a frame, so the loop joins cleanly; the marks make every frame distinct, so a payload
  // delivered under the wrong sequence number shows.
  assert.equal(new Set(loop.map((f) => Buffer.from(f).toString('hex'))).size, 10);
  // Independent copies: writing one frame leaves the others.
  loop[1]![0] = 0x12;
  assert.notEqual(loop[0]![0], 0x12);
  assert.notEqual(loop[0]!.buffer, loop[2]!.buffer);
  assert.ok(toneRatio(p, loop, 1000, 0) > 0.99);
});

test('PCMA loop decodes to its tone and not the other leg', () => {
  const p = profile('pcma');
  const loop = encodeToneLoop(p, 2550, 10);
  assert.ok(toneRatio(p, loop, 2550, 0) > 0.99);
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
  const ratio = toneRatio(p, loop, 1000, 3);
  assert.ok(ratio > 0.9, `at 1000 Hz: ${ratio}`);
  const off = toneRatio(p, loop, 1300, 3);
  assert.ok(off < 0.05, `at 1300 Hz: ${off}`);
  const bytes = loop.reduce((n, f) => n + f.length, 0);
  console.log(`opus 20 ms at ${p.bitrate} bit/s: ${(bytes / loop.length).toFixed(1)} bytes/frame on average, sizes ${loop.map((f) => f.length).join(',')}`);
});

test('opus tone from the top of the band survives', () => {
  const p = profile('opus');
  const loop = encodeToneLoop(p, 3250, 25);
  assert.ok(toneRatio(p, loop, 3250, 3) > 0.9);
  assert.ok(toneRatio(p, loop, 1700, 3) < 0.05);
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
    const det = new ToneDetector(1000, DECODED_SAMPLE_RATE);
    loop.forEach((f, i) => {
      const pcm = decoders[0]!.decode(f);
      if (i >= 3) det.add(pcm);
    });
    assert.ok(det.ratio > 0.9);
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
    delete(): void;
  };
  const OpusScript = require('opusscript') as { new (rate: number, channels: number, app: number): Stock };
  const stock = new OpusScript(48000, 1, 2048);
  stock.setBitrate(32000);
  const ours = encodeToneLoop(profile('opus'), 1350, 10);
  const pcm = new Int16Array(960);
  for (let k = 0; k < 10; k++) {
    fillTone(pcm, 1350, 48000, TONE_AMPLITUDE_MINUS_10_DBFS, k * 960);
    markToneFrame(pcm, k);
    const theirs = stock.encode(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), 960);
    assert.deepEqual([...ours[k]!], [...theirs], `frame ${k}`);
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

test('encode/decode cost per frame (information only, no assertion)', () => {
  for (const name of ['pcmu', 'opus']) {
    const p = profile(name);
    const enc = createEncoder(p);
    const dec = createDecoder(p);
    const pcm = new Int16Array(frameSamples(p));
    fillTone(pcm, 1000, p.sampleRate, TONE_AMPLITUDE_MINUS_10_DBFS, 0);
    const n = 200;
    let t0 = performance.now();
    let payload = enc.encode(pcm);
    for (let i = 1; i < n; i++) payload = enc.encode(pcm);
    const encUs = ((performance.now() - t0) * 1000) / n;
    t0 = performance.now();
    for (let i = 0; i < n; i++) dec.decode(payload);
    const decUs = ((performance.now() - t0) * 1000) / n;
    console.log(`${name}: encode ${encUs.toFixed(1)} us/frame, decode ${decUs.toFixed(1)} us/frame`);
    enc.close();
    dec.close();
  }
});
