/**
 * The receiving leg's audio probe on planted streams: the tone check, the audio delay of every marker in its
 * listening windows (and none outside them), and a restart after a gap or a new source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioProbe, WINDOW_EVERY_FRAMES, WINDOW_FRAMES } from '../../src/media/audio-probe.js';
import { encodeToneLoop } from '../../src/media/codec.js';
import { MarkerSendLog } from '../../src/media/marker.js';
import { codecByName } from '../../src/profile.js';

const LOOP = 25;

/** `frames` packets of a 1000 Hz loop sent every 20 ms from t=0 and arriving `delayMs` later; returns the probe. */
function play(codec: string, frames: number, delayMs: number, options: { drop?: Set<number>; sourceChangeAt?: number } = {}): { probe: AudioProbe; delays: number[] } {
  const profile = codecByName(codec)!;
  const loop = encodeToneLoop(profile, 1000, LOOP);
  const sends = new MarkerSendLog();
  const delays: number[] = [];
  const probe = new AudioProbe(profile, 1000, (d) => delays.push(d));
  for (let k = 0; k < frames; k++) {
    const sentAt = k * 20;
    if (k % LOOP === 0) sends.record(sentAt);
    if (options.drop?.has(k)) {
      probe.skip();
      continue;
    }
    if (k === options.sourceChangeAt) probe.newSource();
    probe.onPacket(k & 0xffff, loop[k % LOOP]!, sentAt + delayMs, sends);
  }
  probe.close();
  return { probe, delays };
}

test('pass-through G.711: every marker after the first in each window, at exactly the planted delay; tone ratio ~1', () => {
  const frames = WINDOW_EVERY_FRAMES + WINDOW_FRAMES;
  const { probe, delays } = play('pcmu', frames, 37);
  // Windows at packets 0-74 and 500-574: markers at 25, 50 (not 0: no tone before it yet), 525, 550 (not 500: a
  // fresh decoder and detector start there).
  assert.equal(delays.length, 4);
  for (const d of delays) assert.ok(Math.abs(d - 37) < 0.2, `delay ${d}`);
  const r = probe.result();
  assert.equal(r.delays, 4);
  assert.ok(Math.abs(r.delayMeanMs! - 37) < 0.2);
  assert.equal(r.toneFrames, 50);
  assert.ok(r.toneRatio! > 0.99, `ratio ${r.toneRatio}`);
});

test('opus: the audio delay is the planted delay plus opus\'s 6.5 ms algorithmic delay', () => {
  const { delays } = play('opus', WINDOW_FRAMES, 20);
  assert.ok(delays.length >= 1);
  for (const d of delays) assert.ok(Math.abs(d - 26.5) < 0.5, `delay ${d}`);
});

test('outside the windows nothing is decoded or measured', () => {
  const { delays } = play('pcmu', WINDOW_EVERY_FRAMES, 5);
  assert.equal(delays.length, 2, 'only the first window (markers 25 and 50)');
});

test('a lost packet or a new source restarts the search: no false delay, the next markers are found again', () => {
  // The marker packet itself is lost: that marker is not found (no false onset from the jump), marker 50 is.
  const lost = play('pcmu', WINDOW_FRAMES, 10, { drop: new Set([25]) });
  assert.deepEqual(lost.delays.map((d) => Math.round(d * 10) / 10), [10]);
  // The packet before it is lost: the audio just before the edge is not continuous, so marker 25 is passed over
  // rather than risked; marker 50 is found.
  const before = play('pcmu', WINDOW_FRAMES, 10, { drop: new Set([24]) });
  assert.deepEqual(before.delays.map((d) => Math.round(d * 10) / 10), [10]);
  // A new source at 30 restarts the decoder within the window: marker 25 before it and 50 after it.
  const switched = play('pcmu', WINDOW_FRAMES, 10, { sourceChangeAt: 30 });
  assert.deepEqual(switched.delays.map((d) => Math.round(d * 10) / 10), [10, 10]);
});
