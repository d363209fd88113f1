/**
 * The timeline's arithmetic on planted samples, and the parsers of what workers report about themselves: known
 * answers, so a wrong difference, rate or window edge shows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pointsFrom, timelineCsv, workerFigures, type CounterSample, type TimelinePoint } from '../../src/stats/timeline.js';
import { cpuMsFromStat, parsePrometheusText, rssBytesFromStatus, rtpengineMetricsOf } from '../../src/stack/worker-usage.js';

function sample(second: number, o: Partial<CounterSample> & { cpuMs?: number; packets?: number; calls?: number }): CounterSample {
  return {
    epochSecond: second,
    atMs: second * 1000 + 5,
    callsUp: o.callsUp ?? 10,
    sent: o.sent ?? 0,
    received: o.received ?? 0,
    lostA3: o.lostA3 ?? 0,
    workers: [
      {
        name: 'w1',
        calls: o.calls ?? 10,
        cpuMs: o.cpuMs ?? null,
        rssBytes: 32 * 2 ** 20,
        metrics: o.packets === undefined ? null : { sessions: 10, foreignSessions: 0, transcoded: 20, streamsUserspace: 20, streamsKernel: 0, packets: o.packets, packetErrors: 1 },
      },
    ],
  };
}

test('points: rates over the second, interval loss of what was expected in it, worker CPU from its CPU time', () => {
  const start = 100 * 1000;
  const samples = [
    sample(101, { sent: 0, received: 0, lostA3: 0, cpuMs: 0, packets: 0 }),
    sample(102, { sent: 1000, received: 990, lostA3: 10, cpuMs: 250, packets: 2000 }),
    sample(103, { sent: 2000, received: 1990, lostA3: 10, cpuMs: 400, packets: 4000 }),
  ];
  const latency = { count: 3, p50: 20, p99: 25, max: 30 };
  const asked: number[] = [];
  const points = pointsFrom(samples, start, (s) => {
    asked.push(s);
    return { latencyMs: latency, sendLatenessMs: null };
  });
  assert.deepEqual(asked, [101, 102], 'each point takes the histograms of the second it covers');
  assert.equal(points.length, 2);
  const [p1, p2] = points as [TimelinePoint, TimelinePoint];
  assert.equal(p1.t, 2);
  assert.equal(p1.sentPps, 1000);
  assert.equal(p1.receivedPps, 990);
  assert.equal(p1.lossPct, 1, '10 lost of 1000 expected');
  assert.equal(p2.lossPct, 0);
  assert.equal(p1.workers[0]!.cpuPct, 25, '250 ms of CPU in one second');
  assert.equal(p2.workers[0]!.cpuPct, 15);
  assert.equal(p1.workers[0]!.packetsPerSec, 2000);
  assert.equal(p1.workers[0]!.rssMiB, 32);
  assert.deepEqual(p1.latencyMs, latency);
});

test('worker figures over a window: mean CPU, CPU per call-second, the counters at its end; outside points ignored', () => {
  const samples = [0, 1, 2, 3, 4].map((i) => sample(101 + i, { cpuMs: [0, 900, 1100, 1300, 1500][i]!, calls: [10, 10, 20, 20, 20][i]!, packets: i * 100 }));
  const points = pointsFrom(samples, 100_000, () => ({ latencyMs: null, sendLatenessMs: null }));
  // t = 2, 3, 4, 5 with CPU 90, 20, 20, 20 %; the window [3, 5] leaves out the start-up second.
  const [w] = workerFigures(points, 3, 5);
  assert.equal(w!.meanCalls, 20);
  assert.equal(w!.cpuPct, 20);
  assert.equal(w!.cpuMsPerCallSecond, 10, '200 ms of CPU a second over 20 calls');
  assert.equal(w!.maxRssMiB, 32);
  assert.equal(w!.packetErrors, 1);
});

test('CSV: a header naming each worker column, one row per point, empty cells for what was not measured', () => {
  const points = pointsFrom([sample(101, {}), sample(102, { sent: 50, received: 50 })], 100_000, () => ({ latencyMs: null, sendLatenessMs: null }));
  const [head, row, end] = timelineCsv(points).split('\n');
  assert.equal(head, 't,epochSecond,callsUp,sentPps,receivedPps,lossPct,latencyP50Ms,latencyP99Ms,sendLatenessP99Ms,w1 calls,w1 cpuPct,w1 rssMiB,w1 sessions,w1 transcoded,w1 streamsUserspace,w1 streamsKernel,w1 packetsPerSec,w1 packetErrors,w1 foreignSessions');
  assert.equal(row, '2,102,10,50,50,0,,,,10,,32,,,,,,,');
  assert.equal(end, '');
});

test("/proc/PID/stat: utime + stime in ms, also with a command name holding spaces and ')'", () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[11] = '150'; // utime, field 14
  fields[12] = '25'; // stime, field 15
  assert.equal(cpuMsFromStat(`4242 (rtp engine) x) ${fields.join(' ')}`), 1750);
  assert.equal(cpuMsFromStat('garbage'), null);
  assert.equal(rssBytesFromStatus('Name:\trtpengine\nVmRSS:\t   45312 kB\nThreads: 9\n'), 45312 * 1024);
  assert.equal(rssBytesFromStatus('Name: x\n'), null);
});

test("rtpengine's /metrics text: the counters a planner reads, ports summed over interfaces, junk skipped", () => {
  const text = [
    '# HELP rtpengine_sessions Number of sessions',
    '# TYPE rtpengine_sessions gauge',
    'rtpengine_sessions{type="own"} 12',
    'rtpengine_sessions{type="foreign"} 3',
    'rtpengine_transcoded_media 24',
    'rtpengine_mediastreams{type="userspace"} 20',
    'rtpengine_mediastreams{type="kernel"} 4',
    'rtpengine_packets_total{type="userspace"} 1000 1700000000000',
    'rtpengine_packets_total{type="kernel"} 500',
    'rtpengine_packet_errors_total{type="userspace"} 2',
    'rtpengine_ports_used{name="default",address="127.0.0.1"} 48',
    'rtpengine_ports_used{name="default",address="::1"} 2',
    'rtpengine_ports_free{name="default",address="127.0.0.1"} 52',
    'not a metric line at all',
    'rtpengine_call_duration_avg 1.500000',
  ].join('\n');
  const series = parsePrometheusText(text);
  assert.equal(series.get('rtpengine_call_duration_avg'), 1.5);
  assert.equal(series.has('not'), false);
  assert.deepEqual(rtpengineMetricsOf(series), {
    sessionsOwn: 12,
    sessionsForeign: 3,
    transcodedMedia: 24,
    streamsUserspace: 20,
    streamsKernel: 4,
    streamsMixed: 0,
    packetsUserspace: 1000,
    packetsKernel: 500,
    packetErrors: 2,
    portsUsed: 50,
    portsFree: 52,
  });
});
