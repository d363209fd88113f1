/**
 * ITU-T G.711 u-law (PCMU) and A-law (PCMA) for 16-bit linear PCM.
 *
 * The per-sample work is one table lookup: the tables are built once at module load from the classic segment
 * algorithm (the Sun/CCITT reference, as in ITU-T G.191), 64 KiB per encoder table and 512 bytes per decoder.
 */

const ULAW_BIAS = 0x84;
const ULAW_CLIP = 32635;

/** Reference u-law encoder for one 16-bit sample; only used to fill the table. */
function ulawEncodeSlow(sample: number): number {
  let pcm = sample;
  const sign = pcm < 0 ? 0x80 : 0;
  if (sign !== 0) pcm = -pcm;
  if (pcm > ULAW_CLIP) pcm = ULAW_CLIP;
  pcm += ULAW_BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (pcm & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (pcm >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function ulawDecodeSlow(code: number): number {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 0x07;
  const magnitude = ((((u & 0x0f) << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
  return (u & 0x80) !== 0 ? -magnitude : magnitude;
}

/** Reference A-law encoder: works on the 13-bit value the standard defines, hence the >> 3. */
function alawEncodeSlow(sample: number): number {
  let pcm = sample >> 3;
  let mask: number;
  if (pcm >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  let seg = 0;
  while (seg < 8 && pcm > (0x20 << seg) - 1) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  const mantissa = seg < 2 ? (pcm >> 1) & 0x0f : (pcm >> seg) & 0x0f;
  return ((seg << 4) | mantissa) ^ mask;
}

function alawDecodeSlow(code: number): number {
  const a = code ^ 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return (a & 0x80) !== 0 ? t : -t;
}

/** Indexed by the sample's 16-bit two's complement pattern (sample & 0xffff). */
const ULAW_ENCODE = new Uint8Array(65536);
const ALAW_ENCODE = new Uint8Array(65536);
const ULAW_DECODE = new Int16Array(256);
const ALAW_DECODE = new Int16Array(256);

for (let i = 0; i < 65536; i++) {
  const sample = (i << 16) >> 16;
  ULAW_ENCODE[i] = ulawEncodeSlow(sample);
  ALAW_ENCODE[i] = alawEncodeSlow(sample);
}
for (let c = 0; c < 256; c++) {
  ULAW_DECODE[c] = ulawDecodeSlow(c);
  ALAW_DECODE[c] = alawDecodeSlow(c);
}

/** Rounds and saturates to int16, then takes the table index; NaN encodes as 0. */
function sampleIndex(sample: number): number {
  const s = sample >= 32767 ? 32767 : sample <= -32768 ? -32768 : Math.round(sample);
  return (s | 0) & 0xffff;
}

export function ulawEncode(sample: number): number {
  return ULAW_ENCODE[sampleIndex(sample)]!;
}

/** Only the low 8 bits of `code` are used. */
export function ulawDecode(code: number): number {
  return ULAW_DECODE[code & 0xff]!;
}

export function alawEncode(sample: number): number {
  return ALAW_ENCODE[sampleIndex(sample)]!;
}

export function alawDecode(code: number): number {
  return ALAW_DECODE[code & 0xff]!;
}

function checkLength(need: number, have: number): void {
  if (have < need) throw new RangeError(`output holds ${have} samples, ${need} needed`);
}

/** HOT. Encodes pcm.length samples into out[0..pcm.length). */
export function encodeUlaw(pcm: Int16Array, out: Uint8Array): void {
  const n = pcm.length;
  checkLength(n, out.length);
  for (let i = 0; i < n; i++) out[i] = ULAW_ENCODE[pcm[i]! & 0xffff]!;
}

/** HOT. Decodes code.length samples into out[0..code.length). */
export function decodeUlaw(code: Uint8Array, out: Int16Array): void {
  const n = code.length;
  checkLength(n, out.length);
  for (let i = 0; i < n; i++) out[i] = ULAW_DECODE[code[i]!]!;
}

/** HOT. */
export function encodeAlaw(pcm: Int16Array, out: Uint8Array): void {
  const n = pcm.length;
  checkLength(n, out.length);
  for (let i = 0; i < n; i++) out[i] = ALAW_ENCODE[pcm[i]! & 0xffff]!;
}

/** HOT. */
export function decodeAlaw(code: Uint8Array, out: Int16Array): void {
  const n = code.length;
  checkLength(n, out.length);
  for (let i = 0; i < n; i++) out[i] = ALAW_DECODE[code[i]!]!;
}

/** The silence code word: what a zero sample encodes to (u-law 0xFF, A-law 0xD5). */
export const ULAW_SILENCE = 0xff;
export const ALAW_SILENCE = 0xd5;
