/**
 * The audio decoders the receive path runs on payloads from the network (src/media/codec.ts, through the audio
 * probe): any payload, and real frames mutated, decodes or is counted as an error, never throws, and never yields
 * more than one packet's worth of samples (120 ms at 8 kHz for opus, one sample per byte for G.711).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createDecoder, encodeToneLoop } from '../../src/media/codec.js';
import { codecByName } from '../../src/profile.js';
import { checkProperty, mutated } from '../helpers/fuzz.js';

test('opus decoder: any payload decodes to whole 2.5 ms steps up to 120 ms, or counts an error', (t) => {
  const opus = codecByName('opus')!;
  const dec = createDecoder(opus);
  const frames = encodeToneLoop(opus, 1000, 25);
  const payload = fc.oneof(fc.uint8Array({ maxLength: 300, size: 'medium' }), fc.constantFrom(...frames), mutated(fc.constantFrom(...frames)));
  let decoded = 0;
  try {
    checkProperty(
      t,
      'opus decode',
      fc.property(payload, (p) => {
        const out = dec.decode(p);
        assert.ok(out.length === 0 || (out.length % 20 === 0 && out.length <= 960), `${out.length} samples`);
        if (out.length > 0) decoded++;
      }),
      3000,
    );
    assert.ok(decoded > 0 && dec.errors > 0, `${decoded} decoded, ${dec.errors} errors: the arbitrary misses one side`);
  } finally {
    dec.close();
  }
});

test('G.711 decoders: one sample per payload byte, whatever the bytes', (t) => {
  for (const name of ['pcmu', 'pcma']) {
    const dec = createDecoder(codecByName(name)!);
    try {
      checkProperty(
        t,
        `${name} decode`,
        fc.property(fc.uint8Array({ maxLength: 400, size: 'medium' }), (p) => {
          assert.equal(dec.decode(p).length, p.length);
        }),
        2000,
      );
    } finally {
      dec.close();
    }
  }
});
