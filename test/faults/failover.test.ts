/**
 * The failover arithmetic on planted figures: which worker survives, one call's failover from its legs' fault
 * watches, the run's summary of them, the table's lines and the fault marks on the timeline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callFailover, duringMedia, survivorIndex } from '../../src/faults/failover.js';
import { failoverSummary, faultLines, markFaults } from '../../src/faults/summary.js';
import { MetricSet } from '../../src/stats/histogram.js';
import { emptyReceived, type CallMediaResult, type LegResult, type ReceivedStream } from '../../src/media/task.js';
import type { CallRecord } from '../../src/call.js';
import type { CallFailover, FaultRecord } from '../../src/faults/model.js';
import type { TimelinePoint } from '../../src/stats/timeline.js';

test('the survivor is the next live worker after the dead one, wrapping around', () => {
  assert.equal(survivorIndex(0, 2, new Set([0])), 1);
  assert.equal(survivorIndex(1, 2, new Set([1])), 0);
  assert.equal(survivorIndex(1, 4, new Set([1, 2])), 3);
  assert.equal(survivorIndex(3, 4, new Set([3])), 0);
  assert.equal(survivorIndex(0, 2, new Set([0, 1])), null);
  assert.equal(survivorIndex(0, 1, new Set([0])), null);
});

const F = 1_000_000;

/** A receiving leg: 20 ms packets up to `lastBefore` (ms after F, negative: before), then from `firstAfter` on. */
function heard(lastBefore: number, firstAfter: number | null, lostFrames = 0): ReceivedStream {
  const arrivals = [F + lastBefore - 20, F + lastBefore];
  const deficits = [-20, -20];
  if (firstAfter !== null) {
    for (let t = firstAfter; t < firstAfter + 100; t += 20) {
      arrivals.push(F + t);
      deficits.push(-20 + lostFrames * 20);
    }
  }
  return { ...emptyReceived(), packets: arrivals.length, lastPacketEpochMs: arrivals[arrivals.length - 1]!, faultWatch: { arrivalsEpochMs: arrivals, deficitsMs: deficits, laterMinDeficitMs: null } };
}

function media(rxA: ReceivedStream, rxB: ReceivedStream): CallMediaResult {
  const leg = (name: 'a' | 'b', received: ReceivedStream): LegResult => ({
    leg: name,
    sent: { packets: 100, bytes: 0, failed: 0, skipped: 0, lastSeq: 99, lastFailed: false, refused: 0 },
    received,
    rtcp: { sent: 0, received: 0, malformed: 0, lastReport: null },
  });
  return {
    callId: 'c', error: null, mediaStartEpochMs: F - 3000, mediaEndEpochMs: F + 3000, phaseMs: 0, stoppedEarly: false,
    legs: [leg('a', rxA), leg('b', rxB)], histograms: {}, outliers: { clamped: 0, rejected: 0 }, io: 'dgram', priority: 'normal',
  };
}

test('one call through a failover: the gap per direction, the audio lost, when media flowed both ways again', () => {
  // a->b (heard by leg B): last packet 2 ms before the kill, first from the survivor 38 ms after it, one frame lost.
  // b->a (heard by leg A): 10 ms before, 30 ms after, nothing lost. The worker was seen dead 1 ms after the kill.
  const f = callFailover({ fault: 'kill-worker=1@3s', worker: 'w1', survivor: 'w2', faultAtEpochMs: F, boundaryEpochMs: F + 1, media: media(heard(-10, 30), heard(-2, 38, 1)), deleted: true });
  assert.deepEqual(f, { fault: 'kill-worker=1@3s', worker: 'w1', survivor: 'w2', gapMs: { a: 40, b: 40 }, lostAudioMs: { a: 20, b: 0 }, resumed: true, deleted: true, recoverMs: 38 });
});

test('media that never came back: not resumed, no gap, no recovery; a packet just before the boundary is not a return', () => {
  const f = callFailover({ fault: 'kill-worker=1@3s', worker: 'w1', survivor: null, faultAtEpochMs: F, boundaryEpochMs: F + 3, media: media(heard(-5, null), heard(0.5, null)), deleted: false });
  assert.deepEqual(f, { fault: 'kill-worker=1@3s', worker: 'w1', survivor: null, gapMs: { a: null, b: null }, lostAudioMs: { a: null, b: null }, resumed: false, deleted: false, recoverMs: null });
  // One direction back, the other not: the call did not survive.
  assert.equal(callFailover({ fault: 'x', worker: 'w1', survivor: 'w2', faultAtEpochMs: F, boundaryEpochMs: F + 1, media: media(heard(-5, 25), heard(-5, null)), deleted: true }).resumed, false);
  assert.equal(duringMedia(F, { mediaStartEpochMs: F - 1, mediaEndEpochMs: F + 1 }), true);
  assert.equal(duringMedia(F, { mediaStartEpochMs: F + 1, mediaEndEpochMs: F + 2 }), false);
});

function callWith(failover: CallFailover | null): CallRecord {
  return {
    index: 0, callId: 'c', worker: 'w1', status: 'ok', failure: null, dueEpochMs: 0, startLagMs: 0, offerMs: 1, answerMs: 1, setupMs: 2, ngQueueMs: 0,
    firstMediaMs: { a: 1, b: 1 }, mediaStartWaitMs: 0, mediaMs: 1000, ports: null, streams: [], rtcp: null, rtpengine: null, mesh: null, deleteMs: 1,
    deleteWarning: null, failover,
  };
}

const SURVIVED = (gap: number): CallFailover => ({ fault: 'kill-worker=1@3s', worker: 'w1', survivor: 'w2', gapMs: { a: gap, b: gap + 1 }, lostAudioMs: { a: gap - 20, b: 0 }, resumed: true, deleted: true, recoverMs: gap });
const LOST: CallFailover = { fault: 'kill-worker=1@3s', worker: 'w1', survivor: null, gapMs: { a: null, b: null }, lostAudioMs: { a: null, b: null }, resumed: false, deleted: false, recoverMs: null };

test('the run\'s failover summary: affected, survived, lost, and the gaps as distributions per direction', () => {
  const s = failoverSummary([callWith(SURVIVED(20)), callWith(SURVIVED(40)), callWith(LOST), callWith(null)], new MetricSet());
  assert.ok(s !== null);
  assert.deepEqual([s.affected, s.survived, s.lost, s.deleted], [3, 2, 1, 2]);
  // HDR histograms keep 3 significant digits.
  const r = (v: number | undefined): number => Math.round(v ?? Number.NaN);
  assert.equal(s.gapMs.a?.count, 2);
  assert.equal(r(s.gapMs.a?.min), 20);
  assert.equal(r(s.gapMs.b?.max), 41);
  assert.equal(r(s.lostAudioMs.a?.max), 20);
  assert.equal(r(s.recoverMs?.p50), 20);
  assert.equal(failoverSummary([callWith(null)], new MetricSet()), null);
});

const KILL: FaultRecord = {
  kind: 'kill-worker', spec: 'kill-worker=1@3s', target: 'worker 1 (127.0.9.1:2223)', atMs: Date.UTC(2026, 0, 1, 12, 0, 3), atT: 3.0004, durationMs: null, done: true,
  note: 'SIGKILL to pid 42 with 2 call(s)', failover: null,
};

test('the table\'s faults section: each fault with its time, then the calls it hit and their gaps', () => {
  const lines = faultLines([KILL], failoverSummary([callWith(SURVIVED(20)), callWith(LOST)], new MetricSet()));
  assert.deepEqual(lines, [
    'faults',
    '  kill-worker=1@3s t=3.000 s (2026-01-01T12:00:03.000Z): SIGKILL to pid 42 with 2 call(s)',
    '  calls hit 2: survived 1, lost 1, deleted afterwards 1',
    '  gap a->b: p50 20.0, p99 20.0, max 20.0 ms (1 calls)',
    '  gap b->a: p50 21.0, p99 21.0, max 21.0 ms (1 calls)',
    '  audio lost a->b: p50 0.0, p99 0.0, max 0.0 ms (1 calls)',
    '  audio lost b->a: p50 0.0, p99 0.0, max 0.0 ms (1 calls)',
    '  until media both ways: p50 20.0, p99 20.0, max 20.0 ms (1 calls)',
  ]);
  assert.deepEqual(faultLines([], null), []);
  assert.deepEqual(faultLines([{ ...KILL, atMs: null, atT: null, done: false, note: 'not made: the run ended before its time' }], null), [
    'faults',
    '  kill-worker=1@3s: not made: the run ended before its time',
    '  no call had media on a worker when a fault hit it',
  ]);
});

test('a fault is marked on the timeline point of the second it happened in', () => {
  const point = (t: number): TimelinePoint => ({ t, epochSecond: t, callsUp: 1, sentPps: 0, receivedPps: 0, lossPct: null, latencyMs: null, sendLatenessMs: null, workers: [] });
  const marked = markFaults([point(1), point(2), point(3), point(4)], [KILL, { ...KILL, spec: 'pause-worker=2@3.5s:1s', atT: 3.5 }, { ...KILL, spec: 'late', atT: null }]);
  assert.deepEqual(marked.map((p) => p.faults ?? []), [[], [], [], ['kill-worker=1@3s', 'pause-worker=2@3.5s:1s']]);
});
