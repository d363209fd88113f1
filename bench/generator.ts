/**
 * Generator cost: `rtp-bench calibrate` (legs send straight to each other, no rtpengine), so every microsecond
 * measured is the generator's own, next to a bare Node loop moving the same packets (bench/bare-loop.ts), run
 * alternately so both see the same machine. The ratio is the figure to watch: this machine's speed drifts by
 * 20-30% over minutes, the ratio much less.
 *
 * Targets (issue 2): 500 calls = 100,000 packet operations/s on one thread at no more than 10 us per operation,
 * send lateness p99 under 2 ms, zero loss; 1,000 calls on 2 threads with zero loss.
 *
 *   node dist/bench/generator.js [--repeat 3]
 */
import { runSummary, runBenchScript, median, repeats, fmt, type LoopResult } from './lib.js';
import type { Summary } from '../src/stats/summary.js';
import type { StallProbe } from './stall-probe.js';

/** Each case with native I/O (the io_uring/epoll addon) and with Node's dgram: the bare loop is dgram too. */
const CASES = [
  { calls: 300, threads: 1, ramp: '150/s', io: 'native' },
  { calls: 300, threads: 1, ramp: '150/s', io: 'dgram' },
  { calls: 500, threads: 1, ramp: '100/s', io: 'native' },
  { calls: 500, threads: 1, ramp: '100/s', io: 'dgram' },
  { calls: 1000, threads: 2, ramp: '200/s', io: 'native' },
  { calls: 1000, threads: 2, ramp: '200/s', io: 'dgram' },
];
const HOLD_S = 15;

function bareLoop(calls: number): Promise<LoopResult> {
  // Ports apart from the generator's 20000-29999, so a straggler of one cannot reach the other.
  return runBenchScript<LoopResult>('./bare-loop.js', [String(calls), String(HOLD_S), '40000']);
}

/** The machine's floor (bench/stall-probe.ts), run alongside each repetition; null without the native addon. */
function stallProbe(): Promise<StallProbe | null> {
  return runBenchScript<StallProbe>('./stall-probe.js', ['10']).catch(() => null);
}

const n = repeats(3);
console.log(`generator self-calibration (pcmu:pcmu, RTCP on, all tracking on) vs a bare Node loop; ${HOLD_S} s hold, ${n} run(s) each, alternating; medians`);
console.log('case                        | rtp-bench us/op | bare us/op | ratio | rtp-bench lateness p50 / p99 / max ms | bare p99 ms | loss %');
const groups = [...new Set(CASES.map((c) => `${c.calls}/${c.threads}`))];
for (const group of groups) {
  const cases = CASES.filter((c) => `${c.calls}/${c.threads}` === group);
  const ours = new Map<string, Summary[]>(cases.map((c) => [c.io, []]));
  const bare: LoopResult[] = [];
  const probes: StallProbe[] = [];
  // Alternate every variant within a repetition, so all of them see the same machine.
  for (let i = 0; i < n; i++) {
    for (const c of cases) {
      ours.get(c.io)!.push(await runSummary(['calibrate', '--calls', String(c.calls), '--threads', String(c.threads), '--ramp', c.ramp, '--hold', `${HOLD_S}s`, '--io', c.io]));
    }
    // The bare loop is one dgram thread: with two threads it would only show a saturated core, so it is skipped.
    if (cases[0]!.threads === 1) bare.push(await bareLoop(cases[0]!.calls));
    const probe = await stallProbe();
    if (probe !== null) probes.push(probe);
  }
  console.log(
    probes.length === 0
      ? '  machine floor: no stall probe (the native addon is not built)'
      : `  machine floor (bench/stall-probe.ts, an idle thread on the 0.5 ms ticker, medians): wakeup gap p99 ${fmt(median(probes.map((p) => p.gapP99Ms ?? Number.NaN)))} ms, ` +
          `max ${fmt(median(probes.map((p) => p.gapMaxMs ?? Number.NaN)))} ms, ${median(probes.map((p) => p.gapsOver2Ms))} gaps > 2 ms in 10 s; ` +
          `a zero-cost sender of 500 calls would see lateness p50 ${fmt(median(probes.map((p) => p.latenessP50Ms ?? Number.NaN)))} / p99 ${fmt(median(probes.map((p) => p.latenessP99Ms ?? Number.NaN)))} ms`,
  );
  const usBare = median(bare.map((b) => b.usPerPacketOp));
  for (const c of cases) {
    const runs = ours.get(c.io)!;
    const m = (f: (s: Summary) => number | null | undefined): number => median(runs.map((s) => f(s) ?? Number.NaN));
    const usOurs = m((s) => s.generator.cpuUsPerPacketOp);
    console.log(
      `${`${c.calls} calls, ${c.threads} thr, ${c.io}`.padEnd(27)} | ${fmt(usOurs).padStart(15)} | ${fmt(usBare).padStart(10)} | ${fmt(usOurs / usBare).padStart(5)} | ` +
        `${fmt(m((s) => s.generator.sendLatenessMs?.p50))} / ${fmt(m((s) => s.generator.sendLatenessMs?.p99))} / ${fmt(m((s) => s.generator.sendLatenessMs?.max))}`.padEnd(37) +
        ` | ${fmt(median(bare.map((b) => b.latenessP99Ms ?? Number.NaN))).padStart(11)} | ${fmt(m((s) => s.packets.lossPct), 3)}`,
    );
    for (const [i, s] of runs.entries()) {
      console.log(
        `  run ${i + 1}: ${fmt(s.generator.cpuUsPerPacketOp)} us/op (${s.generator.costWindow}, ${s.generator.io}), CPU ${fmt(s.generator.cpuPct, 0)}%, ` +
          `p99 lateness ${fmt(s.generator.sendLatenessMs?.p99)} ms, loss ${fmt(s.packets.lossPct, 3)}%, calls ok ${s.calls.ok}` +
          (bare[i] ? `; bare ${fmt(bare[i]!.usPerPacketOp)} us/op, p99 ${fmt(bare[i]!.latenessP99Ms)} ms` : ''),
      );
    }
  }
}
