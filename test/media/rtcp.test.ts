import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RTCP_BYE,
  RTCP_RR,
  RTCP_SDES,
  RTCP_SR,
  compoundBytes,
  ntpFromUnixMs,
  ntpMiddle32,
  parseCompound,
  rttMs,
  sdesCnameBytes,
  writeBye,
  writeCompound,
  type ReportBlock,
  type RtcpReport,
} from '../../src/media/rtcp.js';

const BLOCK: ReportBlock = {
  ssrc: 0x0a0b0c0d,
  fractionLost: 51,
  cumulativeLost: -2,
  extendedHighestSeq: 0x0001ffff,
  jitter: 0x40,
  lastSr: 0x12345678,
  delaySinceLastSr: 0x00010000,
};

// RR with one block + SDES with CNAME "ab", computed by hand from RFC 3550 6.4.2 and 6.5.
const RR_AB = [
  0x81, 0xc9, 0x00, 0x07, 0x01, 0x02, 0x03, 0x04,
  0x0a, 0x0b, 0x0c, 0x0d, 0x33, 0xff, 0xff, 0xfe, 0x00, 0x01, 0xff, 0xff,
  0x00, 0x00, 0x00, 0x40, 0x12, 0x34, 0x56, 0x78, 0x00, 0x01, 0x00, 0x00,
  0x81, 0xca, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, 0x01, 0x02, 0x61, 0x62, 0x00, 0x00, 0x00, 0x00,
];

// SR without blocks + SDES with CNAME "x".
const SR_X = [
  0x80, 0xc8, 0x00, 0x06, 0xde, 0xad, 0xbe, 0xef,
  0xe8, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x06, 0x40,
  0x81, 0xca, 0x00, 0x02, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x01, 0x78, 0x00,
];

const SR_REPORT: RtcpReport = {
  kind: 'sr',
  ssrc: 0xdeadbeef,
  sender: { ntpSeconds: 0xe8000000, ntpFraction: 0x80000000, rtpTimestamp: 160, packetCount: 10, octetCount: 1600 },
  reports: [],
};

test('writeCompound writes RR + SDES byte for byte', () => {
  const buf = new Uint8Array(100).fill(0xee);
  const n = writeCompound(buf, { kind: 'rr', ssrc: 0x01020304, reports: [BLOCK] }, 'ab');
  assert.equal(n, 48);
  assert.deepEqual([...buf.subarray(0, n)], RR_AB);
  assert.equal(buf[48], 0xee);
  assert.equal(compoundBytes({ kind: 'rr', ssrc: 1, reports: [BLOCK] }, 'ab'), 48);
});

test('writeCompound writes SR + SDES byte for byte', () => {
  const buf = new Uint8Array(40).fill(0xee);
  assert.equal(writeCompound(buf, SR_REPORT, 'x'), 40);
  assert.deepEqual([...buf], SR_X);
});

test('SDES CNAME chunk pads to 32 bits with at least one null octet', () => {
  // CNAME bytes -> SDES packet bytes: header 4 + SSRC 4 + roundup4(type 1 + length 1 + text + null 1).
  const table: [string, number][] = [
    ['', 12],
    ['a', 12],
    ['ab', 16],
    ['abc', 16],
    ['abcd', 16],
    ['abcde', 16],
    ['abcdef', 20],
    ['é', 16], // 2 UTF-8 bytes
    ['€', 16], // 3 UTF-8 bytes
    ['😀', 16], // 4 UTF-8 bytes
  ];
  for (const [cname, bytes] of table) {
    const buf = new Uint8Array(200).fill(0xee);
    const n = writeCompound(buf, { kind: 'rr', ssrc: 7, reports: [] }, cname);
    assert.equal(n - 8, bytes, `CNAME ${JSON.stringify(cname)}`);
    assert.equal(n % 4, 0);
    assert.equal(buf[n - 1], 0, 'chunk ends in a null octet');
    const parsed = parseCompound(buf.subarray(0, n));
    assert.ok(parsed, `CNAME ${JSON.stringify(cname)} parses`);
    assert.deepEqual(parsed[1], { type: 'sdes', chunks: [{ ssrc: 7, cname }] });
  }
  assert.equal(sdesCnameBytes(255), 4 + 4 + 260);
});

test('writeCompound range errors', () => {
  assert.throws(() => writeCompound(new Uint8Array(47), { kind: 'rr', ssrc: 1, reports: [BLOCK] }, 'ab'), RangeError);
  assert.throws(() => writeCompound(new Uint8Array(2000), { kind: 'rr', ssrc: 1, reports: new Array<ReportBlock>(32).fill(BLOCK) }, 'x'), RangeError);
  assert.throws(() => writeCompound(new Uint8Array(2000), { kind: 'rr', ssrc: 1, reports: [] }, 'x'.repeat(256)), RangeError);
  assert.equal(writeCompound(new Uint8Array(2000), { kind: 'rr', ssrc: 1, reports: [] }, 'x'.repeat(255)), 8 + 268);
});

test('cumulative lost is clamped to signed 24 bits and sign-extended on parse', () => {
  const table: [number, number[], number][] = [
    [-2, [0xff, 0xff, 0xfe], -2],
    [0, [0x00, 0x00, 0x00], 0],
    [0x7fffff, [0x7f, 0xff, 0xff], 0x7fffff],
    [1e9, [0x7f, 0xff, 0xff], 0x7fffff],
    [-0x800000, [0x80, 0x00, 0x00], -0x800000],
    [-1e9, [0x80, 0x00, 0x00], -0x800000],
    [Number.NaN, [0x80, 0x00, 0x00], -0x800000],
  ];
  for (const [value, bytes, parsed] of table) {
    const buf = new Uint8Array(100);
    const n = writeCompound(buf, { kind: 'rr', ssrc: 1, reports: [{ ...BLOCK, cumulativeLost: value }] }, 'c');
    assert.deepEqual([...buf.subarray(13, 16)], bytes, `value ${value}`);
    const p = parseCompound(buf.subarray(0, n));
    assert.ok(p && p[0]?.type === 'rr');
    assert.equal(p[0].reports[0]?.cumulativeLost, parsed);
  }
  const buf = new Uint8Array(100);
  writeCompound(buf, { kind: 'rr', ssrc: 1, reports: [{ ...BLOCK, fractionLost: 300 }] }, 'c');
  assert.equal(buf[12], 255);
});

test('parseCompound decodes the literal RR and SR vectors', () => {
  assert.deepEqual(parseCompound(Uint8Array.from(RR_AB)), [
    { type: 'rr', ssrc: 0x01020304, reports: [BLOCK] },
    { type: 'sdes', chunks: [{ ssrc: 0x01020304, cname: 'ab' }] },
  ]);
  assert.deepEqual(parseCompound(Uint8Array.from(SR_X)), [
    { type: 'sr', ssrc: 0xdeadbeef, sender: SR_REPORT.sender, reports: [] },
    { type: 'sdes', chunks: [{ ssrc: 0xdeadbeef, cname: 'x' }] },
  ]);
});

test('SR with report blocks round-trips', () => {
  const blocks: ReportBlock[] = [BLOCK, { ...BLOCK, ssrc: 0xffffffff, cumulativeLost: 5, jitter: 0xffffffff }];
  const report: RtcpReport = { ...SR_REPORT, reports: blocks };
  const buf = new Uint8Array(200);
  const n = writeCompound(buf, report, 'leg-a@rtp-bench');
  assert.equal(n, 28 + 48 + sdesCnameBytes(15));
  assert.equal(buf[0], 0x82);
  assert.equal(buf[1], RTCP_SR);
  assert.deepEqual(parseCompound(buf.subarray(0, n)), [
    { type: 'sr', ssrc: 0xdeadbeef, sender: SR_REPORT.sender, reports: blocks },
    { type: 'sdes', chunks: [{ ssrc: 0xdeadbeef, cname: 'leg-a@rtp-bench' }] },
  ]);
});

test('writeBye appends a BYE to a compound', () => {
  const buf = new Uint8Array(100);
  let n = writeCompound(buf, { kind: 'rr', ssrc: 0x01020304, reports: [BLOCK] }, 'ab');
  n += writeBye(buf, 0x01020304, n);
  assert.equal(n, 56);
  assert.deepEqual([...buf.subarray(48, 56)], [0x81, 0xcb, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04]);
  const p = parseCompound(buf.subarray(0, n));
  assert.deepEqual(p?.[2], { type: 'bye', ssrcs: [0x01020304], reason: null });
  assert.throws(() => writeBye(new Uint8Array(10), 1, 3), RangeError);
  assert.equal(writeBye(new Uint8Array(8), 1), 8);
});

test('parseCompound decodes BYE with reason, APP as other, padding on the last packet', () => {
  const bytes = [
    0x80, 0xc9, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09, // empty RR
    0x80, 0xcc, 0x00, 0x02, 0x00, 0x00, 0x00, 0x09, 0x61, 0x62, 0x63, 0x64, // APP "abcd"
    0xa1, 0xcb, 0x00, 0x04, 0x00, 0x00, 0x00, 0x09, 0x04, 0x64, 0x6f, 0x6e, 0x65, 0x00, 0x00, 0x00, // BYE "done"
    0x00, 0x00, 0x00, 0x04, // 4 padding octets
  ];
  assert.deepEqual(parseCompound(Uint8Array.from(bytes)), [
    { type: 'rr', ssrc: 9, reports: [] },
    { type: 'other', packetType: 204, length: 12 },
    { type: 'bye', ssrcs: [9], reason: 'done' },
  ]);
});

test('parseCompound rejects what RFC 3550 A.2 rejects', () => {
  const rrAb = (): number[] => [...RR_AB];
  const cases: [string, number[]][] = [
    ['empty', []],
    ['4 bytes', [0x80, 0xc9, 0x00, 0x00]],
    ['first packet SDES', [...RR_AB.slice(32), ...RR_AB.slice(0, 32)]],
    ['first packet BYE', [0x81, 0xcb, 0x00, 0x01, 0, 0, 0, 1]],
    ['version 1 in the first packet', [0x41, ...RR_AB.slice(1)]],
    ['version 3 in the second packet', (() => { const b = rrAb(); b[32] = 0xc1; return b; })()],
    ['trailing bytes after the last packet', [...RR_AB, 0, 0, 0, 0]],
    ['length past the end', RR_AB.slice(0, 44)],
    ['length word too large in the first packet', (() => { const b = rrAb(); b[3] = 0x08; return b; })()],
    ['padding bit on the first of two packets', (() => { const b = rrAb(); b[0] = 0xa1; return b; })()],
    ['padding count 0', [0xa0, 0xc9, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 0]],
    ['padding count larger than the packet body', [0xa0, 0xc9, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 9]],
    ['RR count 1 without the block', [0x81, 0xc9, 0x00, 0x01, 0, 0, 0, 1]],
    ['SR too short for sender info', [0x80, 0xc8, 0x00, 0x01, 0, 0, 0, 1]],
    ['SDES item runs past the packet', [0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1, 0x81, 0xca, 0x00, 0x02, 0, 0, 0, 1, 0x01, 0x09, 0x61, 0x62]],
    ['SDES chunk without a null octet', [0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1, 0x81, 0xca, 0x00, 0x02, 0, 0, 0, 1, 0x01, 0x02, 0x61, 0x62]],
    ['SDES count 2 with one chunk', [0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1, 0x82, 0xca, 0x00, 0x02, 0, 0, 0, 1, 0x01, 0x01, 0x61, 0x00]],
    ['BYE count 2 with one SSRC', [0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1, 0x82, 0xcb, 0x00, 0x01, 0, 0, 0, 1]],
    ['BYE reason past the end', [0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1, 0x81, 0xcb, 0x00, 0x02, 0, 0, 0, 1, 0x09, 0x61, 0x62, 0x63]],
  ];
  for (const [name, bytes] of cases) assert.equal(parseCompound(Uint8Array.from(bytes)), null, name);
  // The valid padded form of the padding cases above.
  assert.deepEqual(parseCompound(Uint8Array.from([0xa0, 0xc9, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 4])), [
    { type: 'rr', ssrc: 1, reports: [] },
  ]);
  assert.deepEqual(
    [RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE],
    [200, 201, 202, 203],
  );
});

test('NTP conversions', () => {
  assert.deepEqual(ntpFromUnixMs(0), { seconds: 2208988800, fraction: 0 });
  assert.deepEqual(ntpFromUnixMs(1500), { seconds: 2208988801, fraction: 0x80000000 });
  assert.deepEqual(ntpFromUnixMs(250), { seconds: 2208988800, fraction: 0x40000000 });
  // 2036-02-07T06:28:16Z: NTP era 0 ends, the seconds field wraps to 0.
  assert.deepEqual(ntpFromUnixMs((2 ** 32 - 2208988800) * 1000), { seconds: 0, fraction: 0 });
  // 2024-01-01T00:00:00Z = Unix 1704067200 -> NTP 3913056000.
  assert.deepEqual(ntpFromUnixMs(1704067200000), { seconds: 3913056000, fraction: 0 });
  const almost = ntpFromUnixMs(999.9999999);
  assert.equal(almost.seconds, 2208988800);
  assert.ok(almost.fraction <= 0xffffffff && almost.fraction > 0xfffff000);
  assert.equal(ntpMiddle32(0xe8001234, 0x56789abc), 0x12345678);
  assert.equal(ntpMiddle32(0xffffffff, 0xffffffff), 0xffffffff);
});

test('rttMs: RFC 3550 6.4.1 worked example, wrap, and edge cases', () => {
  // A = 0xb710:8000 (46864.5 s), LSR = 0xb705:2000 (46853.125 s), DLSR = 0x0005:4000 (5.25 s) -> 6.125 s.
  assert.equal(rttMs(0xb7108000, 0xb7052000, 0x00054000), 6125);
  // The 16.16 clock wrapped between the SR and its report: A - LSR is still 0x2000 units = 125 ms.
  assert.equal(rttMs(0x00001000, 0xfffff000, 0), 125);
  assert.equal(rttMs(0x00001000, 0xfffff000, 0x1000), 62.5);
  assert.ok(Number.isNaN(rttMs(0x12345678, 0, 0)));
  assert.equal(rttMs(0x00010000, 0x00010000, 5), 0);
  // End to end: SR sent at t, report received 30 ms later, peer held it 20 ms -> about 10 ms.
  const sent = ntpFromUnixMs(1_700_000_000_000);
  const arrived = ntpFromUnixMs(1_700_000_000_030);
  const lsr = ntpMiddle32(sent.seconds, sent.fraction);
  const a = ntpMiddle32(arrived.seconds, arrived.fraction);
  const dlsr = Math.round(0.02 * 65536);
  assert.ok(Math.abs(rttMs(a, lsr, dlsr) - 10) < 0.05);
});
