/**
 * The failover arithmetic on planted figures: which worker survives, one call's failover from its legs' fault
 * watches, the run's summary of them, the table's lines and the fault marks on the timeline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callFailover, duringMedia, faultGapAt, survivorIndex } from '../../src/faults/failover.js';
import { failoverSummary, faultLines, markFaults } from '../../src/faults/summary.js';
import { MetricSet } from '../../src/stats/histogram.js';
import { emptyReceived, FAULT_WATCH_ARRIVALS, type CallMediaResult, type FaultWatch, type LegResult, type ReceivedStream } from '../../src/media/task.js';
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
  return { ...emptyReceived(), packets: arrivals.length, lastPacketEpochMs: arrivals[arrivals.length - 1]!, faultWatch: { arrivalsEpochMs: arrivals, deficitsMs: deficits, laterMinDeficitMs: null, longestSilence: null } };
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

/**
 * What a receiving leg keeps of `arrivals` (ms after F, in order; 20 ms of audio each) watched from F, by the rule
 * FaultWatch states: the last arrival at or before F and the next FAULT_WATCH_ARRIVALS - 1, each with its deficit
 * ((arrival - first arrival) - audio received), the lowest deficit after those, and the longest silence since F.
 */
function watchOf(arrivals: readonly number[]): FaultWatch {
  const kept: number[] = [];
  const deficits: number[] = [];
  let later: number | null = null;
  let longest: FaultWatch['longestSilence'] = null;
  arrivals.forEach((t, k) => {
    const deficit = t - arrivals[0]! - 20 * (k + 1);
    const before = k === 0 ? null : arrivals[k - 1]!;
    if (t <= 0) return;
    if (kept.length === 0 && before !== null) {
      kept.push(F + before);
      deficits.push(before - arrivals[0]! - 20 * k);
    }
    if (kept.length < FAULT_WATCH_ARRIVALS) {
      kept.push(F + t);
      deficits.push(deficit);
    } else {
      later = Math.min(later ?? deficit, deficit);
    }
    if (before !== null && (longest === null || t - before > longest.toEpochMs - longest.fromEpochMs)) {
      longest = { fromEpochMs: F + before, toEpochMs: F + t, fromDeficitMs: before - arrivals[0]! - 20 * k, toDeficitMs: deficit, laterMinDeficitMs: deficit };
    } else if (longest !== null) {
      longest.laterMinDeficitMs = Math.min(longest.laterMinDeficitMs, deficit);
    }
  });
  return { arrivalsEpochMs: kept, deficitsMs: deficits, laterMinDeficitMs: later, longestSilence: longest };
}

/** One packet every 20 ms from `from` while below `to` (ms after F). */
function steady(from: number, to: number): number[] {
  return Array.from({ length: Math.ceil((to - from) / 20) }, (_, k) => from + 20 * k);
}

/** The gap at `boundary` (ms after F), its times back in ms after F. */
function gapIn(watch: FaultWatch, boundary: number): { from: number; to: number; ms: number; lostAudioMs: number } | null {
  const gap = faultGapAt(watch, F + boundary);
  return gap === null ? null : { from: gap.fromEpochMs - F, to: gap.toEpochMs - F, ms: gap.ms, lostAudioMs: gap.lostAudioMs };
}

test('a gap inside the kept arrivals: found from them; the longest silence says the same', () => {
  // 300 ms without packets 500 ms into the watch (14 frames never came), then steady again.
  const watch = watchOf([...steady(-100, 501), ...steady(800, 3000)]);
  assert.equal(watch.arrivalsEpochMs.length, FAULT_WATCH_ARRIVALS);
  assert.equal(watch.arrivalsEpochMs[0], F, 'the last arrival before the watch (F itself: not after it)');
  assert.deepEqual(gapIn(watch, 600), { from: 500, to: 800, ms: 300, lostAudioMs: 280 });
  assert.deepEqual(watch.longestSilence, { fromEpochMs: F + 500, toEpochMs: F + 800, fromDeficitMs: -20, toDeficitMs: 260, laterMinDeficitMs: 260 });
  // A boundary in ordinary flow: the 20 ms around it.
  assert.deepEqual(gapIn(watch, 1010), { from: 1000, to: 1020, ms: 20, lostAudioMs: 0 });
});

test('a gap beyond the kept arrivals (an old pod forwarding 4 s): the longest silence, when it spans the boundary', () => {
  // Steady for 4 s after the watch start (the kept arrivals end at 2540), then 1.5 s of silence, then the
  // replacement: the first two frames it forwards come 5 ms apart (late audio), then steady.
  const arrivals = [...steady(-100, 4001), 5500, 5505, ...steady(5520, 7000)];
  const watch = watchOf(arrivals);
  assert.equal(watch.arrivalsEpochMs.at(-1), F + 2540, 'kept: 127 arrivals after the watch start');
  // Nothing kept lies after the boundary. Audio lost: 73 frames (1460 ms); the deficit at the silence's end alone
  // would say 1480, but the frame that came 5 ms after it was late, not lost.
  const gap = { from: 4000, to: 5500, ms: 1500, lostAudioMs: 1460 };
  assert.deepEqual(watch.longestSilence, { fromEpochMs: F + 4000, toEpochMs: F + 5500, fromDeficitMs: -20, toDeficitMs: 1460, laterMinDeficitMs: 1440 });
  assert.deepEqual(gapIn(watch, 4200), gap);
  assert.deepEqual(gapIn(watch, 4000), gap, 'a boundary on the last packet before it: spanned');
  assert.deepEqual(gapIn(watch, 5499.9), gap);
  // Beyond the kept arrivals but not in that silence: the gap there is unknown, never the longest silence.
  assert.equal(gapIn(watch, 3010), null, 'in ordinary flow before it');
  assert.equal(gapIn(watch, 5500), null, 'at its end: media was back');
  assert.equal(gapIn(watch, 6010), null, 'after it');
  assert.equal(watch.laterMinDeficitMs, -20, 'the clock of the packets after those kept: the steady flow before the silence');
});

test('a longer silence elsewhere: a shorter one at a boundary beyond the kept arrivals is not found', () => {
  // 400 ms at 3000 (beyond the kept arrivals), 700 ms at 5000: the one at the boundary is not the longest.
  const watch = watchOf([...steady(-100, 3001), ...steady(3400, 5001), ...steady(5700, 6500)]);
  assert.deepEqual(watch.longestSilence && [watch.longestSilence.fromEpochMs - F, watch.longestSilence.toEpochMs - F], [5000, 5700]);
  assert.equal(gapIn(watch, 3100), null);
  assert.deepEqual(gapIn(watch, 5100), { from: 5000, to: 5700, ms: 700, lostAudioMs: 680 });
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
