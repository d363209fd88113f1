/**
 * One direction's accounting (src/stats/stream.ts) on planted leg results: what is loss, what is the transcoding
 * tail, what the generator dropped itself, and the MOS of streams that got little or nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { streamRecord, MOS_FLOOR } from '../../src/stats/stream.js';
import { mosForStream } from '../../src/stats/emodel.js';
import { codecByName } from '../../src/profile.js';
import { emptyReceived, type LegResult, type ReceivedStream } from '../../src/media/task.js';

const PCMU = codecByName('pcmu')!;
const PCMA = codecByName('pcma')!;
const OPUS = codecByName('opus')!;

function sender(packets: number, over: Partial<LegResult['sent']> = {}): LegResult {
  return {
    leg: 'a',
    sent: { packets, bytes: packets * 172, failed: 0, skipped: 0, lastSeq: 99, lastFailed: false, refused: 0, ...over },
    received: emptyReceived(),
    rtcp: { sent: 0, received: 0, malformed: 0, lastReport: null },
  };
}

function receiver(over: Partial<ReceivedStream>): LegResult {
  return {
    leg: 'b',
    sent: { packets: 0, bytes: 0, failed: 0, skipped: 0, lastSeq: -1, lastFailed: false, refused: 0 },
    received: { ...emptyReceived(), latencyMeanMs: 20, meanJitterMs: 1, ...over },
    rtcp: { sent: 0, received: 0, malformed: 0, lastReport: null },
  };
}

test('pass-through: every packet arrived, nothing lost, no tail', () => {
  const s = streamRecord(sender(500), receiver({ packets: 500, farLastSeqReceived: true }), false, PCMU, PCMU);
  assert.deepEqual([s.sent, s.received, s.tail, s.missing, s.lost, s.lossPct], [500, 500, 0, 0, 0, 0]);
});

test('transcoded, last packet held back: one tail packet, not loss', () => {
  const s = streamRecord(sender(500), receiver({ packets: 499, farLastSeqReceived: false }), true, OPUS, PCMU);
  assert.deepEqual([s.tail, s.missing, s.lost, s.lossPct], [1, 0, 0, 0]);
});

test('transcoded but the last packet DID arrive (pcmu:pcma holds nothing): a missing packet elsewhere is loss', () => {
  const s = streamRecord(sender(500), receiver({ packets: 499, farLastSeqReceived: true }), true, PCMU, PCMA);
  assert.deepEqual([s.tail, s.missing, s.lost], [0, 1, 1]);
  assert.equal(s.lossPct, 0.2);
});

test('a transcoding survivor sends 60 ms opus packets: loss counts the frames of audio they carry, not packets', () => {
  // 500 PCMU frames sent; before the failover 300 opus packets of 20 ms, after it 66 of 60 ms (198 frames): one frame
  // lost at the failover, one held back as the tail. By packets it would be 26.6% loss.
  const s = streamRecord(sender(500), receiver({ packets: 366, audioMs: 300 * 20 + 66 * 60, farLastSeqReceived: false }), true, PCMU, OPUS);
  assert.deepEqual([s.received, s.audioMs, s.tail, s.missing, s.lost], [366, 9960, 1, 1, 1]);
  assert.equal(s.lossPct.toFixed(2), '0.20');
  // Packets that carry less than a frame each never count for less than one packet.
  const short = streamRecord(sender(500), receiver({ packets: 500, audioMs: 500 * 10, farLastSeqReceived: true }), false, PCMU, PCMU);
  assert.equal(short.lost, 0);
});

test('transcoded, the last packet was refused by our own kernel: not the tail (it was never sent), no loss', () => {
  const s = streamRecord(sender(499, { failed: 1, lastFailed: true }), receiver({ packets: 499, farLastSeqReceived: false }), true, OPUS, PCMU);
  assert.deepEqual([s.sent, s.tail, s.lost], [499, 0, 0]);
  assert.equal(s.generatorDrops.sendFailed, 1);
});

test("drops at the receiver's own socket are missing, but not the system's loss", () => {
  const s = streamRecord(sender(1000), receiver({ packets: 990, receiveQueueDrops: 7, farLastSeqReceived: true }), false, PCMU, PCMU);
  assert.deepEqual([s.missing, s.lost], [10, 3]);
  assert.equal(s.lossPct, 0.3);
  assert.equal(s.generatorDrops.receiveQueue, 7);
});

test('more received than sent (duplicates counted as unique by a broken peer) never makes loss negative', () => {
  const s = streamRecord(sender(100), receiver({ packets: 105, farLastSeqReceived: true }), false, PCMU, PCMU);
  assert.deepEqual([s.missing, s.lost, s.lossPct], [0, 0, 0]);
});

test('a stream that received nothing counts at the floor of the MOS scale; one with no latency match still gets its loss', () => {
  const silent = streamRecord(sender(500), receiver({ packets: 0, latencyMeanMs: null }), false, PCMU, PCMU);
  assert.equal(silent.mos, MOS_FLOOR);
  assert.equal(silent.lossPct, 100);
  const unmatched = streamRecord(sender(500), receiver({ packets: 250, latencyMeanMs: null, meanJitterMs: 0, farLastSeqReceived: true }), false, PCMU, PCMU);
  assert.equal(unmatched.mosLatencyKnown, false);
  const expected = mosForStream({ oneWayLatencyMs: 0, jitterMs: 0, lossPct: 50, ptimeMs: 20, ie: PCMU.emodel.ie, bpl: PCMU.emodel.bpl }).mos;
  assert.equal(unmatched.mos, expected);
  assert.ok(expected < 2, `50% loss rates badly (${expected})`);
  const nothingSent = streamRecord(sender(0, { lastSeq: -1 }), receiver({ packets: 0 }), false, PCMU, PCMU);
  assert.equal(nothingSent.mos, null, 'a stream that never sent has no quality to rate');
});
