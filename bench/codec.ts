/**
 * What the media thread's audio work costs per 20 ms frame: encoding (done once per loop before a run), decoding
 * and the marker search (done in the audio probe's windows, on the thread that paces the sends, where a slow decode
 * would delay sends and rtpengine turns late input into lasting delay). Medians of repeated batches.
 *
 *   node dist/bench/codec.js [--repeat 5]
 */
import { performance } from 'node:perf_hooks';
import { createDecoder, createEncoder, encodeToneLoop, frameSamples } from '../src/media/codec.js';
import { MarkerOnsetDetector } from '../src/media/marker.js';
import { TONE_AMPLITUDE_MINUS_10_DBFS, fillTone } from '../src/media/tone.js';
import { codecByName } from '../src/profile.js';
import { median, repeats } from './lib.js';

const FRAMES = 500;
const n = repeats(5);
console.log(`codec cost per 20 ms frame, us (median of ${n} batches of ${FRAMES} frames)`);
console.log('codec | encode | decode | marker search (decoded frame)');
for (const name of ['pcmu', 'pcma', 'opus']) {
  const profile = codecByName(name)!;
  const pcm = new Int16Array(frameSamples(profile));
  fillTone(pcm, 1000, profile.sampleRate, TONE_AMPLITUDE_MINUS_10_DBFS, 0);
  const loop = encodeToneLoop(profile, 1000, 25);
  const enc: number[] = [];
  const dec: number[] = [];
  const marker: number[] = [];
  for (let r = 0; r < n; r++) {
    const encoder = createEncoder(profile);
    let t0 = performance.now();
    for (let i = 0; i < FRAMES; i++) encoder.encode(pcm);
    enc.push(((performance.now() - t0) * 1000) / FRAMES);
    encoder.close();
    const decoder = createDecoder(profile);
    const decoded: Int16Array[] = [];
    t0 = performance.now();
    for (let i = 0; i < FRAMES; i++) decoded.push(Int16Array.from(decoder.decode(loop[i % loop.length]!)));
    dec.push(((performance.now() - t0) * 1000) / FRAMES);
    decoder.close();
    const detector = new MarkerOnsetDetector(1000);
    t0 = performance.now();
    for (let i = 0; i < FRAMES; i++) detector.push(decoded[i]!, i * 20, false);
    marker.push(((performance.now() - t0) * 1000) / FRAMES);
  }
  console.log(`${name.padEnd(5)} | ${median(enc).toFixed(1).padStart(6)} | ${median(dec).toFixed(1).padStart(6)} | ${median(marker).toFixed(1).padStart(6)}`);
}
