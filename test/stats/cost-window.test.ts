/**
 * CostWindow and costBetween (src/stats/cost-window.ts) against planted runs with known answers: the generator's
 * CPU and packet counters follow a schedule of phases (start-up, settling, steady hold, teardown), each with its own
 * CPU cost per packet operation, so that a window that starts or ends even 1 ms off its place gives another figure.
 * Time is node:test's mock clock (setTimeout and Date), moved 1 ms at a time: every sample is taken at the very
 * millisecond its timer was due.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { CostWindow, costBetween, type CostSample } from '../../src/stats/cost-window.js';

/** A phase of a planted run: until `untilMs`, `opsPerMs` packet operations a millisecond at `usPerOp` CPU each. */
interface Phase {
  untilMs: number;
  opsPerMs: number;
  usPerOp: number;
}

/** The counters of a planted run at `atMs` (integers: the phases' rates are whole numbers). */
function countersAt(phases: readonly Phase[], atMs: number): CostSample {
  let from = 0;
  let packetOps = 0;
  let cpuUs = 0;
  for (const p of phases) {
    const ms = Math.max(0, Math.min(atMs, p.untilMs) - from);
    packetOps += ms * p.opsPerMs;
    cpuUs += ms * p.opsPerMs * p.usPerOp;
    from = p.untilMs;
  }
  assert.ok(atMs <= from, `the planted run ends at ${from} ms, sampled at ${atMs} ms`);
  return { cpuUs, packetOps, atMs };
}

/**
 * A CostWindow over a planted run, constructed at mock time 0: `advanceTo(t)` moves the clock, `sampledAt` lists
 * when the window sampled.
 */
function plantedWindow(t: TestContext, phases: readonly Phase[], rampEndMs: number, holdMs: number) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const sampledAt: number[] = [];
  const window = new CostWindow(
    () => {
      sampledAt.push(Date.now());
      return countersAt(phases, Date.now());
    },
    rampEndMs,
    holdMs,
  );
  const advanceTo = (ms: number): void => {
    while (Date.now() < ms) t.mock.timers.tick(1);
  };
  return { window, sampledAt, advanceTo };
}

/**
 * Ramp until 5 s, then a 10 s hold (media ends at 15 s), teardown until 16 s. Only the steady part, 6 000-14 500 ms
 * (1 s after the last arrival to 0.5 s before the end), costs 7 us a packet operation; start-up 30, settling 11,
 * the last 0.5 s of the hold 13, teardown 19.
 */
const LONG_RUN: Phase[] = [
  { untilMs: 5000, opsPerMs: 40, usPerOp: 30 },
  { untilMs: 6000, opsPerMs: 100, usPerOp: 11 },
  { untilMs: 14_500, opsPerMs: 100, usPerOp: 7 },
  { untilMs: 15_000, opsPerMs: 100, usPerOp: 13 },
  { untilMs: 16_000, opsPerMs: 50, usPerOp: 19 },
];

test('a long hold: the window runs from 1 s after the last arrival to 0.5 s before the end, and costs what the steady part costs', (t) => {
  const { window, sampledAt, advanceTo } = plantedWindow(t, LONG_RUN, 5000, 10_000);
  advanceTo(16_000);
  const { cost, window: kind } = window.result();
  assert.equal(kind, 'hold');
  assert.deepEqual(sampledAt, [0, 6000, 14_500], 'run start, window start, window end (result() needs no new sample)');
  // 8 500 ms at 100 operations a millisecond, 7 us each.
  assert.deepEqual(cost, { cpuUs: 5_950_000, packetOps: 850_000, wallMs: 8500, usPerPacketOp: 7, cpuPct: 70 });
});

test('a hold under 5 s: the window keeps off its first 20 % and last 10 %', (t) => {
  // Ramp until 2 s, hold 3 s: the window is 2 600-4 700 ms.
  const phases: Phase[] = [
    { untilMs: 2600, opsPerMs: 10, usPerOp: 50 },
    { untilMs: 4700, opsPerMs: 20, usPerOp: 4 },
    { untilMs: 6000, opsPerMs: 10, usPerOp: 50 },
  ];
  const { window, sampledAt, advanceTo } = plantedWindow(t, phases, 2000, 3000);
  advanceTo(6000);
  const { cost, window: kind } = window.result();
  assert.equal(kind, 'hold');
  assert.deepEqual(sampledAt, [0, 2600, 4700]);
  assert.deepEqual(cost, { cpuUs: 168_000, packetOps: 42_000, wallMs: 2100, usPerPacketOp: 4, cpuPct: 8 });
});

test('a hold too short for a 1 s window falls back to the whole run, from the first sample to the result', (t) => {
  // Hold 1 420 ms: the window would be 284 ms to 1 278 ms after the ramp, 994 ms: too short.
  const phases: Phase[] = [
    { untilMs: 2000, opsPerMs: 10, usPerOp: 30 },
    { untilMs: 4000, opsPerMs: 30, usPerOp: 10 },
  ];
  const { window, sampledAt, advanceTo } = plantedWindow(t, phases, 2000, 1420);
  advanceTo(4000);
  const { cost, window: kind } = window.result();
  assert.equal(kind, 'run');
  assert.deepEqual(sampledAt, [0, 4000], 'no sample in between: only the run start and the result');
  // 2 000 ms at 10 x 30 us + 2 000 ms at 30 x 10 us = 1 200 000 us over 80 000 operations.
  assert.deepEqual(cost, { cpuUs: 1_200_000, packetOps: 80_000, wallMs: 4000, usPerPacketOp: 15, cpuPct: 30 });
});

test('the shortest hold with a window: 1 430 ms gives 1 001 ms (286 ms to 1 287 ms after the ramp)', (t) => {
  const phases: Phase[] = [{ untilMs: 5000, opsPerMs: 10, usPerOp: 10 }];
  const { window, sampledAt, advanceTo } = plantedWindow(t, phases, 2000, 1430);
  advanceTo(5000);
  const { cost, window: kind } = window.result();
  assert.equal(kind, 'hold');
  assert.deepEqual(sampledAt, [0, 2286, 3287]);
  assert.equal(cost.wallMs, 1001);
});

test('a run stopped before the window ends (Ctrl-C) reports the whole run so far, and samples nothing afterwards', (t) => {
  const { window, sampledAt, advanceTo } = plantedWindow(t, LONG_RUN, 5000, 10_000);
  advanceTo(10_000);
  const { cost, window: kind } = window.result();
  assert.equal(kind, 'run');
  // 5 000 ms x 40 x 30 us + 1 000 ms x 100 x 11 us + 4 000 ms x 100 x 7 us = 9 900 000 us over 700 000 operations.
  assert.deepEqual(cost, { cpuUs: 9_900_000, packetOps: 700_000, wallMs: 10_000, usPerPacketOp: 9_900_000 / 700_000, cpuPct: 99 });
  assert.deepEqual(sampledAt, [0, 6000, 10_000]);
  advanceTo(16_000);
  assert.deepEqual(sampledAt, [0, 6000, 10_000], 'the window-end timer was cleared');
});

test('costBetween: per packet operation and CPU share; no operations or no time give null and 0, not a division by zero', () => {
  const a: CostSample = { cpuUs: 1_000_000, packetOps: 50_000, atMs: 1000 };
  assert.deepEqual(costBetween(a, { cpuUs: 1_600_000, packetOps: 80_000, atMs: 3000 }), {
    cpuUs: 600_000,
    packetOps: 30_000,
    wallMs: 2000,
    usPerPacketOp: 20,
    cpuPct: 30,
  });
  // Two threads' worth of CPU in the wall time: more than 100 %.
  assert.equal(costBetween(a, { cpuUs: 3_000_000, packetOps: 60_000, atMs: 2000 }).cpuPct, 200);
  assert.equal(costBetween(a, { cpuUs: 1_500_000, packetOps: 50_000, atMs: 2000 }).usPerPacketOp, null);
  assert.equal(costBetween(a, { cpuUs: 1_000_000, packetOps: 50_000, atMs: 1000 }).cpuPct, 0);
});
