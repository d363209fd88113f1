import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALAW_SILENCE,
  ULAW_SILENCE,
  alawDecode,
  alawEncode,
  decodeAlaw,
  decodeUlaw,
  encodeAlaw,
  encodeUlaw,
  ulawDecode,
  ulawEncode,
} from '../../src/media/g711.js';

test('u-law known code words', () => {
  // [sample, code] worked through the G.711 segment rule (bias 132, 8 segments, inverted bits).
  const encode: [number, number][] = [
    [0, 0xff],
    [-1, 0x7f],
    [100, 0xf2],
    [-100, 0x72],
    [1000, 0xce],
    [32767, 0x80],
    [32635, 0x80],
    [-32768, 0x00],
  ];
  for (const [s, c] of encode) assert.equal(ulawEncode(s), c, `encode ${s}`);
  const decode: [number, number][] = [
    [0x00, -32124],
    [0x80, 32124],
    [0xff, 0],
    [0x7f, 0],
    [0xfe, 8],
    [0x7e, -8],
    [0xef, 132],
    [0xf2, 104],
    [0xce, 988],
  ];
  for (const [c, s] of decode) assert.equal(ulawDecode(c), s, `decode 0x${c.toString(16)}`);
  assert.equal(ULAW_SILENCE, 0xff);
});

test('A-law known code words', () => {
  const encode: [number, number][] = [
    [0, 0xd5],
    [-1, 0x55],
    [100, 0xd3],
    [1000, 0xfa],
    [-1000, 0x7a],
    [32767, 0xaa],
    [-32768, 0x2a],
  ];
  for (const [s, c] of encode) assert.equal(alawEncode(s), c, `encode ${s}`);
  const decode: [number, number][] = [
    [0xd5, 8],
    [0x55, -8],
    [0xaa, 32256],
    [0x2a, -32256],
    [0xd3, 104],
    [0xfa, 1008],
    [0x7a, -1008],
  ];
  for (const [c, s] of decode) assert.equal(alawDecode(c), s, `decode 0x${c.toString(16)}`);
  assert.equal(ALAW_SILENCE, 0xd5);
});

test('every code word decodes to a level that encodes back to it', () => {
  for (let c = 0; c < 256; c++) {
    // u-law has two zeros (0xFF and 0x7F); encoding 0 gives 0xFF.
    assert.equal(ulawEncode(ulawDecode(c)), c === 0x7f ? 0xff : c, `u-law 0x${c.toString(16)}`);
    assert.equal(alawEncode(alawDecode(c)), c, `A-law 0x${c.toString(16)}`);
  }
});

test('round-trip error stays within half a quantisation step over the whole 16-bit range', () => {
  let prevU = -Infinity;
  let prevA = -Infinity;
  for (let x = -32768; x <= 32767; x++) {
    const cu = ulawEncode(x);
    const yu = ulawDecode(cu);
    const exponent = (~cu >> 4) & 7;
    // Step is 8 << exponent; beyond the clip level 32635 the error grows to at most 643 (32767 -> 32124).
    const boundU = Math.abs(x) <= 32635 ? 4 << exponent : 644;
    assert.ok(Math.abs(x - yu) <= boundU, `u-law ${x} -> ${yu}`);
    assert.ok(yu >= prevU, 'u-law is monotonic');
    prevU = yu;

    const ca = alawEncode(x);
    const ya = alawDecode(ca);
    const seg = ((ca ^ 0x55) >> 4) & 7;
    const boundA = seg < 2 ? 8 : 8 << (seg - 1);
    assert.ok(Math.abs(x - ya) <= boundA, `A-law ${x} -> ${ya}`);
    assert.ok(ya >= prevA, 'A-law is monotonic');
    prevA = ya;
  }
  // Largest overall errors: 512 for A-law (top segment), 643 for u-law (clipping).
  assert.equal(32767 - ulawDecode(ulawEncode(32767)), 643);
  assert.equal(31744 - alawDecode(alawEncode(31744)), -512);
});

test('scalar inputs are rounded and saturated', () => {
  assert.equal(ulawEncode(99.6), ulawEncode(100));
  assert.equal(ulawEncode(1e9), 0x80);
  assert.equal(ulawEncode(-1e9), 0x00);
  assert.equal(ulawEncode(Number.NaN), 0xff);
  assert.equal(alawEncode(40000), 0xaa);
  assert.equal(ulawDecode(0x1ff), ulawDecode(0xff));
});

test('block forms match the scalar forms', () => {
  const pcm = new Int16Array(65536);
  for (let i = 0; i < pcm.length; i++) pcm[i] = i - 32768;
  const u = new Uint8Array(pcm.length);
  const a = new Uint8Array(pcm.length);
  encodeUlaw(pcm, u);
  encodeAlaw(pcm, a);
  const du = new Int16Array(256);
  const da = new Int16Array(256);
  const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
  decodeUlaw(codes, du);
  decodeAlaw(codes, da);
  for (let i = 0; i < pcm.length; i++) {
    assert.equal(u[i], ulawEncode(pcm[i]!));
    assert.equal(a[i], alawEncode(pcm[i]!));
  }
  for (let c = 0; c < 256; c++) {
    assert.equal(du[c], ulawDecode(c));
    assert.equal(da[c], alawDecode(c));
  }
  // Decoding writes code.length samples and leaves the rest of `out` alone.
  const out = new Int16Array(4).fill(7);
  decodeUlaw(Uint8Array.from([0x00, 0x80]), out);
  assert.deepEqual([...out], [-32124, 32124, 7, 7]);
  assert.throws(() => encodeUlaw(new Int16Array(160), new Uint8Array(159)), RangeError);
  assert.throws(() => decodeAlaw(new Uint8Array(160), new Int16Array(10)), RangeError);
});
