/**
 * The marker in the audio and its detector, with known answers: streams built from the real pre-encoded loops
 * (encodeToneLoop), decoded with the real decoders, arriving with planted per-packet delays. The audio delay the
 * detector reports must equal the planted delay (G.711 within 0.25 ms), plus opus's algorithmic delay (measured here
 * independently by cross-correlation: 52 samples at 8 kHz = 312 at 48 kHz = 6.5 ms) through opus, plus one frame
 * (20 ms) through a transcoder that holds one frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codecByName, type CodecProfile } from '../../src/profile.js';
import { DECODED_SAMPLE_RATE, MARKER_FRAME, createDecoder, createEncoder, encodeToneLoop, fillToneLoopFrame } from '../../src/media/codec.js';
import { encodeUlaw } from '../../src/media/g711.js';
import {
  MARKER_ONSET_SLACK_MS,
  MARKER_SAMPLE_RATE,
  MarkerOnsetDetector,
  MarkerSendLog,
  markerAudioDelayMs,
} from '../../src/media/marker.js';
import { TONE_AMPLITUDE_MINUS_10_DBFS, ToneDetector, fillTone, markerFrequencyHz, toneFrequencyHz } from '../../src/media/tone.js';
import { LOOP_FRAMES } from '../../src/media/bank.js';
import { prng } from '../helpers/prng.js';

function profile(name: string): CodecProfile {
  const p = codecByName(name);
  assert.ok(p, `codec ${name}`);
  return p;
}

const PTIME_MS = 20;
const LOOP_MS = LOOP_FRAMES * PTIME_MS;
/** The sender's first frame goes out at this time; frame k at SEND0 + 20 k. */
const SEND0 = 1000;
const G711_TOLERANCE_MS = 0.25;
const OPUS_TOLERANCE_MS = 0.5;
/** Opus's algorithmic delay, verified below by cross-correlation (not assumed). */
const OPUS_DELAY_SAMPLES = 52;
const OPUS_DELAY_MS = (OPUS_DELAY_SAMPLES * 1000) / DECODED_SAMPLE_RATE;
/** Every grid tone the run can give a leg. */
const ALL_TONES = Array.from({ length: 62 }, (_, i) => 300 + 50 * i);

const sendMs = (k: number): number => SEND0 + PTIME_MS * k;

/** One decoded packet as the receiver sees it. */
interface Received {
  pcm: Int16Array;
  arrivalMs: number;
  /** The packet before it in the stream was not decoded (lost): the caller's discontinuity signal. */
  gap: boolean;
}

interface Onset {
  onsetMs: number;
  delayMs: number;
  /** Which loop's marker (from the send it matched). */
  loop: number;
}

/**
 * Decodes frames[k % 25] for k = first .. count-1 with a fresh decoder, leaving out `drop`, each packet arriving at
 * sendMs(k) + delay(k). Copies the PCM (the decoder reuses its buffer).
 */
function receive(p: CodecProfile, frames: Uint8Array[], count: number, delay: (k: number) => number, drop = new Set<number>(), first = 0): Received[] {
  const dec = createDecoder(p);
  try {
    const out: Received[] = [];
    let gap = false;
    for (let k = first; k < count; k++) {
      if (drop.has(k)) {
        gap = true;
        continue;
      }
      out.push({ pcm: Int16Array.from(dec.decode(frames[k % frames.length]!)), arrivalMs: sendMs(k) + delay(k), gap });
      gap = false;
    }
    assert.equal(dec.errors, 0);
    return out;
  } finally {
    dec.close();
  }
}

/**
 * Feeds the detector in arrival order while the sender's log gets every marker send that happened before that
 * arrival (as it would live: sends of frame 0 at sendMs(25 j)); returns the onsets with their audio delays.
 */
function detect(packets: Received[], toneHz: number, options: { signalGaps?: boolean; detector?: MarkerOnsetDetector } = {}): Onset[] {
  const det = options.detector ?? new MarkerOnsetDetector(toneHz);
  const log = new MarkerSendLog();
  const onsets: Onset[] = [];
  let nextLoop = 0;
  for (const pkt of packets) {
    while (sendMs(nextLoop * LOOP_FRAMES) <= pkt.arrivalMs) log.record(sendMs(nextLoop++ * LOOP_FRAMES));
    const onsetMs = det.push(pkt.pcm, pkt.arrivalMs, (options.signalGaps ?? true) && pkt.gap);
    if (onsetMs !== onsetMs) continue;
    const delayMs = markerAudioDelayMs(onsetMs, log);
    assert.ok(Number.isFinite(delayMs), `onset at ${onsetMs} has a marker send`);
    onsets.push({ onsetMs, delayMs, loop: Math.round((onsetMs - delayMs - SEND0) / LOOP_MS) });
  }
  assert.equal(det.onsets, onsets.length);
  return onsets;
}

/** Every onset's delay equals expected(loop) within tolerance; returns the worst error. */
function checkDelays(onsets: Onset[], expected: (loop: number) => number, toleranceMs: number, what: string): number {
  let worst = 0;
  for (const o of onsets) {
    const error = o.delayMs - expected(o.loop);
    worst = Math.max(worst, Math.abs(error));
    assert.ok(Math.abs(error) <= toleranceMs, `${what}: loop ${o.loop} audio delay ${o.delayMs.toFixed(4)} ms, expected ${expected(o.loop).toFixed(4)}`);
  }
  return worst;
}

const LOOPS = 12;
const PACKETS = LOOPS * LOOP_FRAMES;

test('MARKER_SAMPLE_RATE is what the decoders produce', () => {
  assert.equal(MARKER_SAMPLE_RATE, DECODED_SAMPLE_RATE);
});

test('opus delay, measured without markers: decoded audio matches the input 52 samples (6.5 ms) later', () => {
  // A chirp (300 -> 3300 Hz over 2 s) is not periodic, so the lag that best aligns output with input is unique. It
  // is a function of time, sampled at 48 kHz for the encoder and at 8 kHz to compare with the decoded output.
  const p = profile('opus');
  const seconds = 2;
  const f0 = 300;
  const f1 = 3300;
  const chirp = (t: number): number => 8000 * Math.sin(2 * Math.PI * (f0 * t + ((f1 - f0) * t * t) / (2 * seconds)));
  const enc = createEncoder(p);
  const dec = createDecoder(p);
  const y: number[] = [];
  const frame = new Int16Array(960);
  for (let k = 0; k < (seconds * 1000) / PTIME_MS; k++) {
    for (let i = 0; i < 960; i++) frame[i] = Math.round(chirp((k * 960 + i) / 48000));
    y.push(...dec.decode(enc.encode(frame)));
  }
  enc.close();
  dec.close();
  let best = -1;
  let bestLag = -1;
  for (let lag = 0; lag < 160; lag++) {
    let xy = 0;
    let xx = 0;
    let yy = 0;
    for (let n = 800; n < y.length; n++) {
      const a = y[n]!;
      const b = chirp((n - lag) / 8000);
      xy += a * b;
      xx += a * a;
      yy += b * b;
    }
    const r = xy / Math.sqrt(xx * yy);
    if (r > best) {
      best = r;
      bestLag = lag;
    }
  }
  assert.equal(bestLag, OPUS_DELAY_SAMPLES);
  assert.ok(best > 0.9, `correlation ${best}`);
  assert.equal(OPUS_DELAY_MS, 6.5);
  assert.equal((OPUS_DELAY_SAMPLES * 48000) / 8000, 312);
});

test('pass-through G.711, constant delays 0, 20, 40, 60 ms: audio delay = planted within 0.25 ms', () => {
  for (const name of ['pcmu', 'pcma']) {
    const p = profile(name);
    for (const tone of [1000, 2550, 350, 3350]) {
      const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
      for (const planted of [0, 20, 40, 60]) {
        const onsets = detect(receive(p, frames, PACKETS, () => planted), tone);
        // The first marker has no tone before it; every later one is found.
        assert.deepEqual(onsets.map((o) => o.loop), Array.from({ length: LOOPS - 1 }, (_, j) => j + 1), `${name} ${tone} Hz +${planted} ms`);
        checkDelays(onsets, () => planted, G711_TOLERANCE_MS, `${name} ${tone} Hz +${planted} ms`);
      }
    }
  }
});

test('through opus encode/decode: audio delay = planted + 6.5 ms within 0.5 ms', () => {
  const p = profile('opus');
  for (const tone of [1000, 2550, 350, 3350]) {
    const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
    for (const planted of [0, 20, 40, 60]) {
      const onsets = detect(receive(p, frames, PACKETS, () => planted), tone);
      assert.deepEqual(onsets.map((o) => o.loop), Array.from({ length: LOOPS - 1 }, (_, j) => j + 1), `opus ${tone} Hz +${planted} ms`);
      checkDelays(onsets, () => planted + OPUS_DELAY_MS, OPUS_TOLERANCE_MS, `opus ${tone} Hz +${planted} ms`);
    }
  }
});

test('precision over every grid tone: G.711 to a tenth of a sample, opus within one sample of 6.5 ms', () => {
  const worst: Record<string, number> = {};
  for (const name of ['pcmu', 'pcma', 'opus']) {
    const p = profile(name);
    const codecDelay = name === 'opus' ? OPUS_DELAY_MS : 0;
    worst[name] = 0;
    for (const tone of ALL_TONES) {
      const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
      const onsets = detect(receive(p, frames, 4 * LOOP_FRAMES, () => 30), tone);
      assert.equal(onsets.length, 3, `${name} ${tone} Hz`);
      // One sample is 0.125 ms: G.711 to a tenth of one, opus within one (measured: 0 and 0.37 samples).
      const w = checkDelays(onsets, () => 30 + codecDelay, name === 'opus' ? 0.125 : 0.0125, `${name} ${tone} Hz`);
      worst[name] = Math.max(worst[name]!, w);
    }
  }
  console.log(`marker onset error, worst over ${ALL_TONES.length} tones: ${Object.entries(worst).map(([n, w]) => `${n} ${(w * 1000).toFixed(1)} us`).join(', ')}`);
});

test('a step from 20 to 40 ms mid-stream and jitter that is not a step: each onset gets its own packet\'s delay', () => {
  const stepAt = 6 * LOOP_FRAMES + 10;
  const step = (k: number): number => (k < stepAt ? 20 : 40);
  const rand = prng(11);
  // 20..37 ms, independent per packet: never reorders (less than a ptime apart).
  const jitter = Array.from({ length: PACKETS }, () => 20 + 17 * rand());
  const jittered = (k: number): number => jitter[k]!;
  for (const name of ['pcmu', 'opus']) {
    const p = profile(name);
    const tone = 1350;
    const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
    const codecDelay = name === 'opus' ? OPUS_DELAY_MS : 0;
    const tolerance = name === 'opus' ? OPUS_TOLERANCE_MS : G711_TOLERANCE_MS;
    const stepped = detect(receive(p, frames, PACKETS, step), tone);
    assert.equal(stepped.length, LOOPS - 1);
    // The onset is in packet 25 j (G.711 at its first sample, opus 52 samples in): that packet's delay counts.
    checkDelays(stepped, (j) => step(j * LOOP_FRAMES) + codecDelay, tolerance, `${name} step`);
    assert.ok(stepped.some((o) => o.delayMs < 30) && stepped.some((o) => o.delayMs > 30), 'both sides of the step seen');
    const jittery = detect(receive(p, frames, PACKETS, jittered), tone);
    assert.equal(jittery.length, LOOPS - 1);
    checkDelays(jittery, (j) => jittered(j * LOOP_FRAMES) + codecDelay, tolerance, `${name} jitter`);
  }
});

test('transcoding opus -> PCMU with a one-frame hold: audio delay = planted + 20 ms + 6.5 ms', () => {
  const opus = profile('opus');
  const pcmu = profile('pcmu');
  const tone = 2050;
  const frames = encodeToneLoop(opus, tone, LOOP_FRAMES);
  const rand = prng(5);
  const jitter = Array.from({ length: PACKETS + 1 }, () => 10 * rand());
  const cases: [string, (k: number) => number][] = [
    ['constant 40 ms', () => 40],
    ['step 20 -> 60 ms', (k) => (k < 150 ? 20 : 60)],
    ['jitter 30..40 ms', (k) => 30 + jitter[k]!],
  ];
  for (const [what, delay] of cases) {
    // rtpengine's side: input k arrives at sendMs(k) + delay(k), is decoded and re-encoded to PCMU; output k is
    // emitted when input k + 1 arrives (and reaches the receiver at once).
    const transcoder = createDecoder(opus);
    const receiver = createDecoder(pcmu);
    const received: Received[] = [];
    for (let k = 0; k + 1 < PACKETS; k++) {
      const pcm = transcoder.decode(frames[k % LOOP_FRAMES]!);
      const payload = new Uint8Array(pcm.length);
      encodeUlaw(pcm, payload);
      received.push({ pcm: Int16Array.from(receiver.decode(payload)), arrivalMs: sendMs(k + 1) + delay(k + 1), gap: false });
    }
    transcoder.close();
    const onsets = detect(received, tone);
    assert.equal(onsets.length, LOOPS - 1, what);
    // The marker of loop j rides output 25 j, emitted when input 25 j + 1 arrived.
    checkDelays(onsets, (j) => delay(j * LOOP_FRAMES + 1) + PTIME_MS + OPUS_DELAY_MS, OPUS_TOLERANCE_MS, `transcoded, ${what}`);
  }
});

test('an opus encoder we do not control (auto mode, running continuously, as a transcoder\'s): same answer', () => {
  // rtpengine encodes opus itself towards an opus leg: its encoder sees the marked audio as one continuous signal
  // and picks modes on its own. Rendered at 48 kHz from the same frames, encoded live.
  const p = profile('opus');
  const pcm = new Int16Array(960);
  for (const tone of [300, 1000, 1500, 2500, 2850, 3350]) {
    const enc = createEncoder(p);
    const packets: Received[] = [];
    const dec = createDecoder(p);
    for (let k = 0; k < 20 * LOOP_FRAMES; k++) {
      fillToneLoopFrame(pcm, 48000, tone, k % LOOP_FRAMES, true);
      packets.push({ pcm: Int16Array.from(dec.decode(enc.encode(pcm))), arrivalMs: sendMs(k) + 45, gap: false });
    }
    enc.close();
    dec.close();
    const onsets = detect(packets, tone);
    assert.equal(onsets.length, 19, `${tone} Hz`);
    checkDelays(onsets, () => 45 + OPUS_DELAY_MS, 0.125, `${tone} Hz, auto mode`);
  }
});

test('lost packets: no false onsets, signalled or not; onsets away from the gaps are still found', () => {
  const rand = prng(3);
  const drop = new Set<number>();
  for (let k = 0; k < PACKETS; k++) if (rand() < 0.04) drop.add(k);
  // And right at the markers of some loops: the packet before, the marker packet, the one after, two after.
  for (const [loop, offset] of [[2, -1], [4, 0], [6, 1], [8, 2], [10, 3]] as const) drop.add(loop * LOOP_FRAMES + offset);
  for (const name of ['pcmu', 'pcma', 'opus']) {
    const p = profile(name);
    for (const tone of [1000, 1850, 3100]) {
      const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
      const codecDelay = name === 'opus' ? OPUS_DELAY_MS : 0;
      const tolerance = name === 'opus' ? OPUS_TOLERANCE_MS : G711_TOLERANCE_MS;
      const packets = receive(p, frames, PACKETS, () => 25, drop);
      for (const signalGaps of [true, false]) {
        const onsets = detect(packets, tone, { signalGaps });
        const what = `${name} ${tone} Hz, gaps ${signalGaps ? '' : 'not '}signalled`;
        checkDelays(onsets, () => 25 + codecDelay, tolerance, what);
        assert.equal(new Set(onsets.map((o) => o.loop)).size, onsets.length, `${what}: one onset per marker`);
        // A marker whose packet was lost is not there to find.
        assert.ok(!onsets.some((o) => drop.has(o.loop * LOOP_FRAMES)), `${what}: no onset for a lost marker`);
        // Markers with no loss from 2 packets before to 1 after are all found.
        const clean = Array.from({ length: LOOPS - 1 }, (_, j) => j + 1).filter((j) =>
          [-2, -1, 0, 1].every((d) => !drop.has(j * LOOP_FRAMES + d)),
        );
        const found = new Set(onsets.map((o) => o.loop));
        assert.ok(clean.length >= 5, 'the drop pattern leaves clean markers');
        for (const j of clean) assert.ok(found.has(j), `${what}: loop ${j} found (found ${[...found].join(',')})`);
      }
    }
  }
});

test('opus decoder warm-up: a decoder that starts at any packet of the loop never reports a wrong onset', () => {
  const p = profile('opus');
  const tone = 1700;
  const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
  for (let first = 0; first < LOOP_FRAMES; first++) {
    const onsets = detect(receive(p, frames, 4 * LOOP_FRAMES, () => 15, new Set(), first), tone);
    checkDelays(onsets, () => 15 + OPUS_DELAY_MS, OPUS_TOLERANCE_MS, `starting at packet ${first}`);
    // Every marker with two packets (40 ms) of decoded tone before it is found: a cold decoder converges in time.
    const expected = [1, 2, 3].filter((j) => j * LOOP_FRAMES - first >= 2);
    assert.deepEqual(onsets.map((o) => o.loop), expected, `starting at packet ${first}`);
  }
});

test('amplitude changes: any level, a marker louder or quieter than the tone, gain steps, a slow fade', () => {
  const scale = (r: Received, gain: (sample: number) => number): Received => ({
    ...r,
    pcm: r.pcm.map((x, i) => Math.max(-32768, Math.min(32767, Math.round(x * gain(i))))),
  });
  for (const name of ['pcma', 'opus']) {
    const p = profile(name);
    const tone = 600;
    const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
    const expected = 35 + (name === 'opus' ? OPUS_DELAY_MS : 0);
    const tolerance = name === 'opus' ? OPUS_TOLERANCE_MS : G711_TOLERANCE_MS;
    const packets = receive(p, frames, PACKETS, () => 35);
    const all = Array.from({ length: LOOPS - 1 }, (_, j) => j + 1);
    // The whole stream 40 dB down or 9 dB up (-10 dBFS tone peaks reach -1 dBFS).
    for (const gain of [0.01, 2.8]) {
      const onsets = detect(packets.map((r) => scale(r, () => gain)), tone);
      assert.deepEqual(onsets.map((o) => o.loop), all, `${name} x${gain}`);
      checkDelays(onsets, () => expected, tolerance, `${name} x${gain}`);
    }
    // The marker 14 dB quieter or 9 dB louder than the tone (a transcoder with an uneven frequency response): every
    // marker packet, and for opus the one after it (the marker's end) scaled from the edge on.
    for (const gain of [0.2, 2.8]) {
      const edge = name === 'opus' ? OPUS_DELAY_SAMPLES : 0;
      const uneven = packets.map((r, k) =>
        k % LOOP_FRAMES === 0 ? scale(r, (i) => (i >= edge ? gain : 1)) : k % LOOP_FRAMES === 1 && edge > 0 ? scale(r, (i) => (i < edge ? gain : 1)) : r,
      );
      const onsets = detect(uneven, tone);
      assert.deepEqual(onsets.map((o) => o.loop), all, `${name} marker x${gain}`);
      checkDelays(onsets, () => expected, tolerance, `${name} marker x${gain}`);
    }
    // -40 dB over the stream, sample by sample.
    let n = 0;
    const total = packets.length * 160;
    const faded = detect(packets.map((r) => scale(r, () => 10 ** ((-2 * n++) / total))), tone);
    assert.deepEqual(faded.map((o) => o.loop), all, `${name} fade`);
    checkDelays(faded, () => expected, tolerance, `${name} fade`);
    // A random gain (-20..0 dB) per packet. G.711's edge is on a packet boundary, so a step there is a marker at
    // another level: all found. Opus's edge is 52 samples into its packet, so a step 6.5 ms before it breaks the
    // clean tone the detector needs before an edge: such markers are skipped, never mismeasured.
    const rand = prng(8);
    const gains = packets.map(() => 0.1 + 0.9 * rand());
    const steps = detect(packets.map((r, k) => scale(r, () => gains[k]!)), tone);
    checkDelays(steps, () => expected, tolerance, `${name} gain steps`);
    if (name === 'opus') assert.ok(steps.length >= 4, `opus gain steps: ${steps.length} found`);
    else assert.deepEqual(steps.map((o) => o.loop), all, `${name} gain steps`);
  }
});

test('packets of another size (10 and 30 ms repacketization): the offset into the holding packet counts', () => {
  const p = profile('pcmu');
  const tone = 2900;
  const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
  const whole = receive(p, frames, PACKETS, () => 0);
  const audio = Int16Array.from(whole.flatMap((r) => [...r.pcm]));
  for (const size of [80, 240]) {
    // Chunk i holds samples [i size, (i + 1) size): it can only leave once its last sample was sent, and arrives
    // 50 ms after that.
    const chunks: Received[] = [];
    for (let s = 0; s + size <= audio.length; s += size) {
      chunks.push({ pcm: audio.subarray(s, s + size), arrivalMs: SEND0 + ((s + size) * 1000) / 8000 + 50, gap: false });
    }
    const onsets = detect(chunks, tone);
    assert.equal(onsets.length, LOOPS - 1, `${size} samples`);
    // A chunk leaves when its last sample was sent and every sample in it plays at its arrival + its offset in the
    // chunk: each is delayed 50 ms plus the chunk's duration, the marker's first sample wherever it falls.
    checkDelays(onsets, () => 50 + size / 8, G711_TOLERANCE_MS, `${size}-sample packets`);
  }
});

test('no markers, no onsets: plain tone loops, other tones, the marker alone, noise, silence', () => {
  for (const name of ['pcmu', 'opus']) {
    const p = profile(name);
    for (const tone of [1000, 2550]) {
      const plain = encodeToneLoop(p, tone, LOOP_FRAMES, { marker: false });
      const det = new MarkerOnsetDetector(tone);
      assert.equal(detect(receive(p, plain, PACKETS, () => 20), tone, { detector: det }).length, 0, `${name} ${tone} Hz without markers`);
      assert.equal(det.rejected, 0, 'not even a candidate');
      // Another stream's marked loop (a misrouted stream): its markers are not this stream's.
      const other = encodeToneLoop(p, toneFrequencyHz(1, 'a'), LOOP_FRAMES);
      assert.equal(detect(receive(p, other, PACKETS, () => 20), tone).length, 0, `${name} ${tone} Hz fed another call's loop`);
    }
  }
  const det = new MarkerOnsetDetector(1000);
  const block = new Int16Array(160);
  const rand = prng(1);
  for (let i = 0; i < 500; i++) {
    if (i < 100) fillTone(block, markerFrequencyHz(1000), 8000, TONE_AMPLITUDE_MINUS_10_DBFS, i * 160);
    else if (i < 200) block.fill(0);
    else if (i < 300) for (let s = 0; s < 160; s++) block[s] = Math.round((rand() * 2 - 1) * 10000);
    // Tone and noise alternating per packet: edges everywhere, none of them the marker's.
    else if (i % 2 === 0) fillTone(block, 1000, 8000, TONE_AMPLITUDE_MINUS_10_DBFS, i * 160);
    else for (let s = 0; s < 160; s++) block[s] = Math.round((rand() * 2 - 1) * 10000);
    assert.ok(Number.isNaN(det.push(block, i * 20)), `block ${i}`);
  }
  assert.equal(det.onsets, 0);
});

test('a tone whose phase jumps (a lost packet nobody signalled, in a stream that is all tone) is not an onset', () => {
  const det = new MarkerOnsetDetector(1250);
  const block = new Int16Array(160);
  for (let i = 0; i < 300; i++) {
    // Jump by an odd number of samples every 7th packet: a discontinuity in the waveform.
    fillTone(block, 1250, 8000, TONE_AMPLITUDE_MINUS_10_DBFS, i * 160 + Math.floor(i / 7) * 3);
    det.push(block, i * 20);
  }
  assert.equal(det.onsets, 0);
});

test('reset() and gap forget what came before; lastOnsetMs and counters stay', () => {
  const p = profile('pcmu');
  const tone = 1000;
  const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
  const packets = receive(p, frames, 3 * LOOP_FRAMES, () => 10);
  const det = new MarkerOnsetDetector(tone);
  for (const r of packets.slice(0, 30)) det.push(r.pcm, r.arrivalMs);
  assert.equal(det.onsets, 1);
  assert.ok(Math.abs(det.lastOnsetMs - (sendMs(25) + 10)) < 1e-3);
  // A reset right before the second marker's packet: no tone before it, so it is skipped.
  for (const r of packets.slice(30, 50)) det.push(r.pcm, r.arrivalMs);
  det.reset();
  for (const r of packets.slice(50)) det.push(r.pcm, r.arrivalMs);
  assert.equal(det.onsets, 1);
  assert.ok(Math.abs(det.lastOnsetMs - (sendMs(25) + 10)) < 1e-3);
  // A gap one packet (20 ms) before the marker: 20 ms of tone is enough, found.
  const again = new MarkerOnsetDetector(tone);
  packets.forEach((r, i) => again.push(r.pcm, r.arrivalMs, i === 49));
  assert.equal(again.onsets, 2);
  assert.ok(Math.abs(again.lastOnsetMs - (sendMs(50) + 10)) < 1e-3);
});

test('a long stream stays exact (running sums recomputed, no drift)', () => {
  const p = profile('pcmu');
  const tone = 2350;
  const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
  const dec = createDecoder(p);
  const det = new MarkerOnsetDetector(tone);
  const log = new MarkerSendLog();
  // 20 minutes.
  const count = 60_000;
  let last = Number.NaN;
  for (let k = 0; k < count; k++) {
    if (k % LOOP_FRAMES === 0) log.record(sendMs(k));
    const onset = det.push(dec.decode(frames[k % LOOP_FRAMES]!), sendMs(k) + 33);
    if (onset === onset) last = markerAudioDelayMs(onset, log);
  }
  assert.equal(det.onsets, count / LOOP_FRAMES - 1);
  assert.equal(det.rejected, 0);
  assert.ok(Math.abs(last - 33) < 1e-3, `${last}`);
});

test('the receiver\'s tone check with the marker excluded: clean streams still give a ratio > 0.99', () => {
  for (const name of ['pcmu', 'pcma', 'opus']) {
    const p = profile(name);
    for (const tone of [1000, 2550, 350]) {
      const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
      const plain = new ToneDetector(tone, 8000);
      const excluding = new ToneDetector(tone, 8000, { excludeHz: markerFrequencyHz(tone) });
      const dec = createDecoder(p);
      // Decoding from the stream's first packet, then checking from the 6th until 50 blocks counted (workers/leg.ts
      // skips 5 and checks 50).
      for (let k = 0; excluding.blocks < 50; k++) {
        const pcm = dec.decode(frames[k % LOOP_FRAMES]!);
        if (k < 5) continue;
        if (plain.blocks < 50) plain.add(pcm);
        excluding.add(pcm);
      }
      dec.close();
      assert.ok(excluding.ratio > 0.99, `${name} ${tone} Hz: ratio ${excluding.ratio}`);
      // A G.711 marker fills one block of 25, opus's straddles two.
      assert.equal(excluding.excludedBlocks, name === 'opus' ? 4 : 2, `${name} ${tone} Hz`);
      // Counting every block, the marker shows: the exclusion is what keeps the ratio at ~1.
      assert.ok(plain.ratio < 0.97, `${name} ${tone} Hz without exclusion: ${plain.ratio}`);
    }
  }
});

test('MarkerSendLog: latest at or before, ring of fixed size', () => {
  const log = new MarkerSendLog(4);
  assert.ok(Number.isNaN(log.latestAtOrBefore(1e9)), 'empty');
  for (const t of [100, 600, 1100, 1600, 2100, 2600]) log.record(t);
  assert.equal(log.size, 4);
  assert.equal(log.latestAtOrBefore(2600), 2600);
  assert.equal(log.latestAtOrBefore(2599.9), 2100);
  assert.equal(log.latestAtOrBefore(1100), 1100);
  // 100 and 600 were overwritten: nothing held is old enough.
  assert.ok(Number.isNaN(log.latestAtOrBefore(1099)));
  assert.equal(markerAudioDelayMs(1620.5, log), 20.5);
  // An onset a hair before its marker's send (a delay of ~0) still belongs to it.
  assert.ok(Math.abs(markerAudioDelayMs(2100 - 0.02, log) + 0.02) < 1e-9);
  assert.ok(markerAudioDelayMs(2100 - MARKER_ONSET_SLACK_MS - 0.01, log) > 498);
  log.clear();
  assert.equal(log.size, 0);
  assert.ok(Number.isNaN(markerAudioDelayMs(3000, log)));
  assert.throws(() => new MarkerSendLog(0), RangeError);
});

test('detector validation', () => {
  assert.throws(() => new MarkerOnsetDetector(1234), RangeError);
  assert.throws(() => new MarkerOnsetDetector(1000, 1000), RangeError);
  assert.throws(() => new MarkerOnsetDetector(1000, 4000), RangeError);
  const d = new MarkerOnsetDetector(1000);
  assert.equal(d.markerHz, 2000);
  assert.ok(Number.isNaN(d.push(new Int16Array(0), 0)), 'an empty packet is nothing');
  assert.equal(MARKER_FRAME, 0);
});

test('detector cost per decoded packet (information only, no assertion)', () => {
  const results: string[] = [];
  for (const name of ['pcmu', 'opus']) {
    const p = profile(name);
    const tone = 1000;
    const frames = encodeToneLoop(p, tone, LOOP_FRAMES);
    const decoded = receive(p, frames, LOOP_FRAMES * 4, () => 0).map((r) => r.pcm);
    const det = new MarkerOnsetDetector(tone);
    const n = 40_000;
    for (let i = 0; i < 2000; i++) det.push(decoded[i % decoded.length]!, i * 20);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) det.push(decoded[i % decoded.length]!, i * 20);
    const us = ((performance.now() - t0) * 1000) / n;
    const dec = createDecoder(p);
    const t1 = performance.now();
    for (let i = 0; i < 4000; i++) dec.decode(frames[i % LOOP_FRAMES]!);
    const decodeUs = ((performance.now() - t1) * 1000) / 4000;
    dec.close();
    results.push(`${name}: detector ${us.toFixed(2)} us/packet (decode ${decodeUs.toFixed(1)} us/packet)`);
  }
  console.log(`marker detector, 20 ms packets: ${results.join('; ')}`);
});
