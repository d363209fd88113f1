/**
 * The run summary's judgement of the generator (pure: planted evidence, exact wording of the bottleneck) and its
 * counting of calls and streams (interrupted apart from failed, generator drops apart from the system's loss).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeGenerator, summarize, type GeneratorEvidence, type RunMeasure } from '../../src/stats/summary.js';
import { MetricSet } from '../../src/stats/histogram.js';
import type { CallRecord } from '../../src/call.js';
import type { StreamRecord } from '../../src/stats/stream.js';

function measure(cpuPct: number, threads = 1): RunMeasure {
  return {
    wallMs: 10_000,
    ngRetransmissions: 0,
    io: 'dgram',
    priority: 'normal',
    cost: { cpuUs: cpuPct * 10_000 * 10, packetOps: 1000, wallMs: 10_000, usPerPacketOp: 10, cpuPct },
    costWindow: 'hold',
    threads,
    interrupted: false,
    contention: null,
    localSystemUnderTest: true,
    ngInFlight: 64,
    workers: [],
  };
}

function evidence(over: Partial<GeneratorEvidence> = {}): GeneratorEvidence {
  return {
    latenessP99Ms: 1,
    mediaStartWaitP99Ms: 1,
    cpuPct: 20,
    threads: 1,
    drops: { sendFailed: 0, skipped: 0, receiveQueue: 0, truncated: 0 },
    packetsOffered: 100_000,
    contention: { runQueueWaitMsPerSec: 5, throttledShare: null, cap: null },
    localSystemUnderTest: false,
    ...over,
  };
}

test('a healthy generator: no warning, not limited', () => {
  assert.deepEqual(judgeGenerator(evidence()), { limited: null, saturated: null });
});

test('a CPU cap that throttled it: limited, and the cap is named with its cgroup and size', () => {
  const v = judgeGenerator(
    evidence({
      latenessP99Ms: 5600,
      cpuPct: 5,
      drops: { sendFailed: 0, skipped: 30_000, receiveQueue: 120, truncated: 0 },
      packetsOffered: 90_000,
      contention: { runQueueWaitMsPerSec: 40, throttledShare: 0.93, cap: { cgroup: '/sys/fs/cgroup/cpu/capped', cores: 0.05 } },
    }),
  );
  assert.equal(v.saturated, null);
  assert.equal(
    v.limited,
    'GENERATOR-LIMITED: these figures describe rtp-bench, not the system under test. The generator lost 30120 packets itself ' +
      '(30000 frames too late to send, 120 dropped at its own full receive queues; 33.5% of its packets), accounted apart from the ' +
      "system's loss; its sends were 5600 ms late at p99: starved of CPU by a CPU cap: its cgroup /sys/fs/cgroup/cpu/capped allows " +
      '5.0% of one core and throttled it 93.0% of the time (lift the cap or give rtp-bench more CPU)',
  );
});

test('threads waiting in the run queue: other processes (the local rtpengine) are named, not the generator', () => {
  const v = judgeGenerator(evidence({ latenessP99Ms: 75, cpuPct: 30, contention: { runQueueWaitMsPerSec: 400, throttledShare: null, cap: null }, localSystemUnderTest: true }));
  assert.match(v.limited ?? '', /Its sends were 75 ms late at p99: starved of CPU: its threads waited 0\.40 s per second between them for a core that the rtpengine \(or mesh\) on this machine and any other process used/);
  const remote = judgeGenerator(evidence({ latenessP99Ms: 75, cpuPct: 30, contention: { runQueueWaitMsPerSec: 400, throttledShare: null, cap: null } }));
  assert.match(remote.limited ?? '', /a core that other processes on this machine used/);
});

test('calls whose media started late: limited, saying the system carried less than planned', () => {
  assert.equal(judgeGenerator(evidence({ mediaStartWaitP99Ms: 200 })).limited, null);
  assert.match(judgeGenerator(evidence({ mediaStartWaitP99Ms: 2600 })).limited ?? '', /Calls waited up to 2\.6 s \(p99\) for a media thread to start their media, so the system carried less than the plan/);
});

test('busy media threads: limited by its own threads, with the flag that helps', () => {
  const v = judgeGenerator(evidence({ latenessP99Ms: 60, cpuPct: 190, threads: 2 }));
  assert.match(v.limited ?? '', /its 2 media thread\(s\) were busy \(190% CPU\): add --threads/);
});

test('thresholds: drops up to 0.1% and lateness up to 50 ms warn; beyond, the run is limited', () => {
  const few = judgeGenerator(evidence({ drops: { sendFailed: 100, skipped: 0, receiveQueue: 0, truncated: 0 } }));
  assert.equal(few.limited, null);
  assert.match(few.saturated ?? '', /^The generator lost 100 packets itself \(100 sends refused by its kernel; 0\.10% of its packets\).*too few to change the figures/);
  assert.notEqual(judgeGenerator(evidence({ drops: { sendFailed: 101, skipped: 0, receiveQueue: 0, truncated: 0 } })).limited, null);
  assert.equal(judgeGenerator(evidence({ latenessP99Ms: 50 })).limited, null);
  assert.match(judgeGenerator(evidence({ latenessP99Ms: 50 })).saturated ?? '', /^send lateness p99 50\.0 ms/);
  assert.notEqual(judgeGenerator(evidence({ latenessP99Ms: 50.1 })).limited, null);
  assert.equal(judgeGenerator(evidence({ latenessP99Ms: 5 })).saturated, null);
});

function late(p99Ms: number): MetricSet {
  const m = new MetricSet();
  for (let i = 0; i < 98; i++) m.record('sendLatenessMs', 0.5);
  m.record('sendLatenessMs', p99Ms);
  m.record('sendLatenessMs', p99Ms);
  return m;
}

test('summarize hands its lateness and CPU to the judgement', () => {
  assert.match(summarize([], late(12), measure(95)).generator.saturated ?? '', /^send lateness p99 12\.0 ms: its 1 media thread\(s\) were busy \(95% CPU\): add --threads/);
  assert.equal(summarize([], late(1), measure(30)).generator.saturated, null);
  assert.match(summarize([], late(1), measure(170, 2)).generator.saturated ?? '', /near its limit/);
  assert.equal(summarize([], late(1), measure(150, 2)).generator.saturated, null, '75% per thread is not saturated');
});

function stream(over: Partial<StreamRecord>): StreamRecord {
  return {
    direction: 'a->b', codecSent: 'pcmu', codecReceived: 'pcmu', sent: 100, received: 100, audioMs: 2000, tail: 0, missing: 0, lost: 0, lossPct: 0,
    generatorDrops: { sendFailed: 0, skipped: 0, receiveQueue: 0, truncated: 0 }, duplicates: 0, late: 0, expectedA3: 100, lostA3: 0,
    sequenceJumps: 0, startLost: 0, malformed: 0, wrongPayloadType: 0, payloadMismatches: 0, payloadType: 0, jitterMs: 0, meanJitterMs: 0,
    maxJitterMs: 0, transitJitterMs: 0, latencyMeanMs: 1, latencyMaxMs: 1, r: 93, mos: 4.4, mosLatencyKnown: true,
    audio: { checked: false, ratio: null, passed: null, delays: 0, delayMeanMs: null, delayMaxMs: null },
    ...over,
  };
}

function call(index: number, status: CallRecord['status'], streams: StreamRecord[], cause: string | null = null): CallRecord {
  return {
    index, callId: `c-${index}`, worker: 'w', status, failure: cause === null ? null : { stage: 'media', cause, message: cause },
    dueEpochMs: 0, startLagMs: 0, offerMs: 1, answerMs: 1, setupMs: 2, ngQueueMs: 0, firstMediaMs: { a: 1, b: 1 }, mediaStartWaitMs: 0,
    mediaMs: 1000, ports: null, streams, rtcp: null, rtpengine: null, mesh: null, deleteMs: 1, deleteWarning: null, failover: null,
  };
}

test('interrupted calls are counted apart from failures; drops and loss add up apart; a silent stream counts in MOS', () => {
  const records = [
    call(0, 'ok', [stream({}), stream({ direction: 'b->a', sent: 100, received: 90, missing: 10, lost: 4, lossPct: 4, generatorDrops: { sendFailed: 2, skipped: 3, receiveQueue: 6, truncated: 1 } })]),
    call(1, 'interrupted', [stream({}), stream({ direction: 'b->a' })], 'interrupted'),
    call(2, 'failed', [stream({}), stream({ direction: 'b->a', received: 0, missing: 100, lost: 100, lossPct: 100, r: 0, mos: 1, mosLatencyKnown: false, latencyMeanMs: null })], 'no media b->a'),
  ];
  const s = summarize(records, new MetricSet(), measure(20));
  assert.deepEqual(s.calls, { attempted: 3, ok: 1, failed: 1, interrupted: 1, failedByCause: { 'no media b->a': 1 }, firstFailure: { 'no media b->a': 'no media b->a' } });
  assert.equal(s.packets.sent, 600);
  assert.equal(s.packets.missing, 110);
  assert.equal(s.packets.lost, 104);
  assert.deepEqual(s.generator.drops, { sendFailed: 2, skipped: 3, receiveQueue: 6, truncated: 1 });
  assert.equal(s.mos?.count, 6, 'every stream that sent has a MOS, the silent one too');
  assert.equal(s.mos?.min, 1);
});

test('a stream whose receive-queue drops could not be read makes the total unknown, not zero', () => {
  const records = [call(0, 'ok', [stream({ generatorDrops: { sendFailed: 0, skipped: 0, receiveQueue: null, truncated: 0 } }), stream({ direction: 'b->a' })])];
  assert.equal(summarize(records, new MetricSet(), measure(20)).generator.drops.receiveQueue, null);
});

test("waits in rtp-bench's own ng queue are said, with the flag; none, nothing said", () => {
  const queued = [call(0, 'ok', [stream({}), stream({ direction: 'b->a' })]), call(1, 'ok', [stream({}), stream({ direction: 'b->a' })])];
  queued[1]!.ngQueueMs = 35;
  const s = summarize(queued, new MetricSet(), measure(20));
  assert.ok(Math.abs(s.ngQueueMs!.max - 35) < 0.04, 'HDR keeps 3 significant digits');
  assert.deepEqual(s.toolLimits.length, 1);
  assert.match(s.toolLimits[0]!, /^ng requests waited in rtp-bench's own queue \(--ng-in-flight 64 reached; p99 35\.0 ms per call\).*raise --ng-in-flight/);
  assert.deepEqual(summarize([queued[0]!], new MetricSet(), measure(20)).toolLimits, []);
});
