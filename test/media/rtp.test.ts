import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RTP_HEADER_BYTES,
  parseRtp,
  rtpMarker,
  rtpPayloadEnd,
  rtpPayloadOffset,
  rtpPayloadType,
  rtpSequence,
  rtpSsrc,
  rtpTimestamp,
  rtpTimestampInt32,
  setRtpMarker,
  setRtpPayloadType,
  setRtpSequence,
  setRtpSsrc,
  setRtpTimestamp,
  writeRtpHeader,
} from '../../src/media/rtp.js';

test('writeRtpHeader lays out the RFC 3550 fixed header', () => {
  const cases: { name: string; fields: Parameters<typeof writeRtpHeader>[1]; bytes: number[] }[] = [
    {
      name: 'marker, opus PT 111',
      fields: { marker: true, payloadType: 111, sequenceNumber: 0x1234, timestamp: 0xdeadbeef, ssrc: 0x01020304 },
      bytes: [0x80, 0xef, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04],
    },
    {
      name: 'no marker, PCMU, top seq, timestamp past 2^32 wraps',
      fields: { marker: false, payloadType: 0, sequenceNumber: 65535, timestamp: 2 ** 32 + 5, ssrc: 0xffffffff },
      bytes: [0x80, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff],
    },
    {
      name: 'PCMA PT 8, negative timestamp wraps to 2^32 - 1',
      fields: { marker: false, payloadType: 8, sequenceNumber: 1, timestamp: -1, ssrc: 0 },
      bytes: [0x80, 0x08, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00],
    },
  ];
  for (const c of cases) {
    const buf = new Uint8Array(20).fill(0xaa);
    writeRtpHeader(buf, c.fields);
    assert.deepEqual([...buf.subarray(0, 12)], c.bytes, c.name);
    assert.equal(buf[12], 0xaa, `${c.name}: wrote past the header`);
    assert.equal(rtpPayloadOffset(buf), RTP_HEADER_BYTES, c.name);
  }
  assert.throws(() => writeRtpHeader(new Uint8Array(11), cases[0]!.fields), RangeError);
});

test('readers decode a literal packet', () => {
  const buf = Uint8Array.from([0x80, 0xef, 0xab, 0xcd, 0x80, 0x00, 0x00, 0x01, 0xfe, 0xdc, 0xba, 0x98, 1, 2]);
  assert.equal(rtpSequence(buf), 0xabcd);
  assert.equal(rtpTimestamp(buf), 0x80000001);
  assert.equal(rtpTimestampInt32(buf), -0x7fffffff);
  assert.equal(rtpSsrc(buf), 0xfedcba98);
  assert.equal(rtpPayloadType(buf), 111);
  assert.equal(rtpMarker(buf), true);
  assert.equal(rtpPayloadOffset(buf), 12);
  assert.equal(rtpPayloadEnd(buf), 14);
});

test('setters patch only their field', () => {
  const buf = new Uint8Array(12);
  writeRtpHeader(buf, { marker: false, payloadType: 8, sequenceNumber: 0, timestamp: 0, ssrc: 0x11223344 });
  setRtpSequence(buf, 65536 + 7);
  setRtpTimestamp(buf, 2 ** 32 + 0x0102);
  setRtpMarker(buf, true);
  assert.deepEqual([...buf], [0x80, 0x88, 0x00, 0x07, 0x00, 0x00, 0x01, 0x02, 0x11, 0x22, 0x33, 0x44]);
  setRtpMarker(buf, false);
  setRtpTimestamp(buf, 3 * 2 ** 32 - 1);
  setRtpSsrc(buf, 0xa0b0c0d0);
  setRtpPayloadType(buf, 0);
  assert.deepEqual([...buf], [0x80, 0x00, 0x00, 0x07, 0xff, 0xff, 0xff, 0xff, 0xa0, 0xb0, 0xc0, 0xd0]);
  setRtpMarker(buf, true);
  setRtpPayloadType(buf, 111);
  assert.equal(buf[1], 0xef);
});

// V=2 P=1 X=1 CC=2, PT 8, seq 1, ts 16, SSRC, 2 CSRCs, extension 0xBEDE with 1 word, payload 1 2 3, 3 padding octets.
const FULL = [
  0xb2, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0xca, 0xfe, 0xba, 0xbe,
  0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22,
  0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0x00, 0x00,
  0x01, 0x02, 0x03,
  0x00, 0x00, 0x03,
];

test('parseRtp decodes CSRCs, header extension and padding', () => {
  const buf = Uint8Array.from(FULL);
  assert.equal(rtpPayloadOffset(buf), 28);
  assert.equal(rtpPayloadEnd(buf), 31);
  const p = parseRtp(buf);
  assert.ok(p);
  assert.equal(p.padding, true);
  assert.equal(p.marker, false);
  assert.equal(p.payloadType, 8);
  assert.equal(p.sequenceNumber, 1);
  assert.equal(p.timestamp, 16);
  assert.equal(p.ssrc, 0xcafebabe);
  assert.deepEqual(p.csrcs, [0x11111111, 0x22222222]);
  assert.ok(p.extension);
  assert.equal(p.extension.profile, 0xbede);
  assert.equal(p.extension.lengthWords, 1);
  assert.deepEqual([...p.extension.data], [0x10, 0xaa, 0x00, 0x00]);
  assert.deepEqual([...p.payload], [1, 2, 3]);
  assert.equal(p.paddingBytes, 3);
});

test('invalid RTP gives -1 / null', () => {
  const mutate = (f: (b: number[]) => void): Uint8Array => {
    const b = [...FULL];
    f(b);
    return Uint8Array.from(b);
  };
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['11 bytes', new Uint8Array(11).fill(0x80)],
    ['version 1', Uint8Array.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
    ['version 3', Uint8Array.from([0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
    ['version 0', new Uint8Array(12)],
    ['CSRC count past the end', Uint8Array.from([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3])],
    ['extension header truncated', Uint8Array.from([0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0])],
    ['extension length past the end', Uint8Array.from([0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 2, 1, 2, 3, 4])],
    ['padding count 0', mutate((b) => (b[b.length - 1] = 0))],
    ['padding larger than the payload', mutate((b) => (b[b.length - 1] = 7))],
    ['padding bit on a header-only packet', Uint8Array.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])],
  ];
  for (const [name, buf] of cases) {
    assert.equal(rtpPayloadOffset(buf), -1, name);
    assert.equal(rtpPayloadEnd(buf), -1, name);
    assert.equal(parseRtp(buf), null, name);
  }
});

test('padding may consume the whole payload, no more', () => {
  // Payload 1 2 3 + 3 padding octets = 6 bytes after the header parts; a count of 6 leaves an empty payload.
  const buf = Uint8Array.from(FULL);
  buf[buf.length - 1] = 6;
  assert.equal(rtpPayloadOffset(buf), 28);
  assert.equal(rtpPayloadEnd(buf), 28);
  assert.equal(parseRtp(buf)?.payload.length, 0);
  buf[buf.length - 1] = 1;
  assert.equal(rtpPayloadEnd(buf), 33);
  // A header-only packet without padding is valid RTP with an empty payload.
  const bare = Uint8Array.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(rtpPayloadOffset(bare), 12);
  assert.equal(rtpPayloadEnd(bare), 12);
});
