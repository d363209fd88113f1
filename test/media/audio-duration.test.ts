import { test } from 'node:test';
import assert from 'node:assert/strict';
import { audioDurationMs, g711DurationMs, opusDurationMs } from '../../src/media/audio-duration.js';
import { encodeToneLoop } from '../../src/media/codec.js';
import { codecByName } from '../../src/profile.js';

/** [bytes, ms]: TOC byte = config (5 bits) | stereo (1 bit) | code (2 bits), RFC 6716 section 3.1. */
const OPUS: ReadonlyArray<readonly [number[], number, string]> = [
  [[0x00, 0xaa], 10, 'config 0, SILK NB 10 ms, code 0: one frame'],
  [[0x08, 0xaa], 20, 'config 1, SILK NB 20 ms'],
  [[0x10], 40, 'config 2, SILK NB 40 ms'],
  [[0x18, 0xaa], 60, 'config 3, SILK NB 60 ms'],
  [[0x58, 0xaa], 60, 'config 11, SILK WB 60 ms'],
  [[0x60], 10, 'config 12, hybrid SWB 10 ms'],
  [[0x78, 0xaa], 20, 'config 15, hybrid FB 20 ms'],
  [[0x7c, 0xaa], 20, 'config 15, stereo bit set: same duration'],
  [[0x80], 2.5, 'config 16, CELT NB 2.5 ms'],
  [[0xf8], 20, 'config 31, CELT FB 20 ms'],
  [[0xfc, 0x01, 0x02], 20, 'config 31 stereo, code 0'],
  [[0xf9, 0x01, 0x02], 40, 'code 1: two frames of equal size'],
  [[0xfa, 0x01, 0x02, 0x03], 40, 'code 2: two frames of different sizes'],
  [[0xfb, 0x03, 0xaa], 60, 'code 3 with 3 frames: a 60 ms packet as a transcoding survivor sends'],
  [[0xfb, 0xc2, 0x00], 40, 'code 3, VBR and padding flags set: the count is the low 6 bits'],
  [[0x83, 0x04], 10, 'config 16 (2.5 ms) x 4 frames'],
  [[0x19, 0xaa], 120, 'config 3 (60 ms), code 1: 120 ms, the most a packet may carry'],
  [[0x1b, 0x03], 0, 'config 3 x 3 frames = 180 ms: more than 120 ms, invalid'],
  [[0xfb, 0x00], 0, 'code 3 with a count of 0: invalid'],
  [[0xfb], 0, 'code 3 without its count byte: invalid'],
  [[], 0, 'empty payload'],
];

test('opus: duration from the TOC byte (frame size from the config, frame count from the code)', () => {
  for (const [bytes, ms, what] of OPUS) assert.equal(opusDurationMs(Uint8Array.from(bytes), 0, bytes.length), ms, what);
});

test('opus: the payload is read where it lies in the packet, not past its end', () => {
  // A 12-byte RTP header, then code 3 x 3 frames of 20 ms.
  const packet = Uint8Array.from([...new Array<number>(12).fill(0x80), 0xfb, 0x03, 0x11, 0x22]);
  assert.equal(opusDurationMs(packet, 12, packet.length), 60);
  // The count byte lies beyond the payload's end: invalid, whatever follows in the buffer.
  assert.equal(opusDurationMs(packet, 12, 13), 0);
  assert.equal(audioDurationMs('opus', packet, 12, packet.length), 60);
});

test('G.711: one byte per sample at 8 kHz', () => {
  assert.equal(g711DurationMs(12, 12 + 160), 20);
  assert.equal(g711DurationMs(0, 480), 60);
  assert.equal(g711DurationMs(12, 12), 0);
  assert.equal(audioDurationMs('g711-ulaw', new Uint8Array(172), 12, 172), 20);
  assert.equal(audioDurationMs('g711-alaw', new Uint8Array(92), 12, 92), 10);
});

test('the opus frames rtp-bench itself sends carry 20 ms each', () => {
  const opus = codecByName('opus');
  assert.ok(opus);
  for (const frame of encodeToneLoop(opus, 1000, 5)) assert.equal(opusDurationMs(frame, 0, frame.length), 20);
});
