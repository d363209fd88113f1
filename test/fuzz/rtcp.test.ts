/**
 * Properties of the RTCP code (src/media/rtcp.ts): what writeCompound/writeBye write parses back to the same
 * fields, and parseCompound judges any datagram (noise, valid compounds cut, flipped, with counts and lengths forced
 * large) without throwing, reading each byte a bounded number of times and none past the end: it walks the packets
 * by their length fields, each at least 4 bytes, so it cannot loop without advancing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_REPORT_BLOCKS, compoundBytes, parseCompound, utf8Length, type RtcpPacket } from '../../src/media/rtcp.js';
import { checkProperty, countingView } from '../helpers/fuzz.js';
import { cname, compound, rtcpDatagram, report, u32 } from '../helpers/packet-fuzz.js';

test('RTCP: what writeCompound and writeBye write parses back to the same fields', (t) => {
  checkProperty(
    t,
    'RTCP round trip',
    fc.property(report, cname, fc.boolean(), (r, name, bye) => {
      const bytes = compound(r, name, bye);
      assert.equal(bytes.length, compoundBytes(r, name) + (bye ? 8 : 0));
      assert.equal(utf8Length(name), Buffer.byteLength(name));
      const first: RtcpPacket = r.kind === 'sr' ? { type: 'sr', ssrc: r.ssrc, sender: r.sender, reports: r.reports } : { type: 'rr', ssrc: r.ssrc, reports: r.reports };
      // Node's UTF-8 encoder also turns a lone surrogate into U+FFFD: the CNAME as the peer decodes it.
      const want: RtcpPacket[] = [first, { type: 'sdes', chunks: [{ ssrc: r.ssrc, cname: Buffer.from(name, 'utf8').toString('utf8') }] }];
      if (bye) want.push({ type: 'bye', ssrcs: [r.ssrc], reason: null });
      assert.deepEqual(parseCompound(bytes), want);
    }),
    3000,
  );
});

test('RTCP: report block values outside the wire ranges are clamped, never wrapped into nonsense', (t) => {
  const anyNumber = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(Number.NaN, Infinity, -Infinity, 2 ** 40, -(2 ** 40)));
  checkProperty(
    t,
    'RTCP clamping',
    fc.property(fc.record({ ssrc: u32, fractionLost: anyNumber, cumulativeLost: anyNumber, extendedHighestSeq: u32, jitter: anyNumber, lastSr: u32, delaySinceLastSr: u32 }), (b) => {
      const parsed = parseCompound(compound({ kind: 'rr', ssrc: 1, reports: [b] }, 'x', false));
      assert.ok(parsed !== null && parsed[0]!.type === 'rr');
      const got = parsed[0]!.reports[0]!;
      // NaN goes to the low end; -0.5 truncates to -0, which the wire carries as 0 (hence the + 0).
      const clamp = (v: number, lo: number, hi: number): number => (!(v >= lo) ? lo : v > hi ? hi : Math.trunc(v) + 0);
      assert.equal(got.fractionLost, clamp(b.fractionLost, 0, 255));
      assert.equal(got.cumulativeLost, clamp(b.cumulativeLost, -0x800000, 0x7fffff));
      assert.equal(got.jitter, clamp(b.jitter, 0, 0xffffffff));
    }),
    3000,
  );
});

test('RTCP: any datagram is judged without throwing, reading a bounded amount inside it', (t) => {
  let parsed = 0;
  checkProperty(
    t,
    'RTCP arbitrary and mutated datagrams',
    fc.property(rtcpDatagram, (b) => {
      const counted = countingView(b);
      const packets = parseCompound(counted.view);
      assert.ok(counted.log.maxIndex < b.length, `read index ${counted.log.maxIndex} of ${b.length}`);
      // Every byte is read about once (a u32 is 4 reads of 4 bytes), plus a padding count per packet.
      assert.ok(counted.log.reads <= 2 * b.length + 8, `${counted.log.reads} reads of ${b.length} bytes`);
      if (packets === null) return;
      parsed++;
      assert.ok(packets.length >= 1 && packets.length <= b.length / 4);
      assert.ok(packets[0]!.type === 'sr' || packets[0]!.type === 'rr');
      for (const p of packets) {
        if (p.type === 'sr' || p.type === 'rr') {
          assert.ok(p.reports.length <= MAX_REPORT_BLOCKS);
          for (const r of p.reports) {
            assert.ok(r.cumulativeLost >= -0x800000 && r.cumulativeLost <= 0x7fffff);
            assert.ok(r.fractionLost >= 0 && r.fractionLost <= 255);
          }
        } else if (p.type === 'other') {
          assert.ok(p.length >= 4 && p.length <= b.length);
        }
      }
    }),
    12000,
  );
  assert.ok(parsed > 1200, `only ${parsed} datagrams parsed as RTCP: the arbitraries do not reach the deep paths`);
});
