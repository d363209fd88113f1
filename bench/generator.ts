/**
 * Generator cost: `rtp-bench calibrate` (legs send straight to each other, no rtpengine), so every microsecond
 * measured is the generator's own. Targets (issue 2): 500 calls = 100,000 packet operations/s on one thread at no
 * more than 10 us per operation, send lateness p99 under 2 ms, zero loss; 1,000 calls on 2 threads with zero loss.
 *
 *   node dist/bench/generator.js [--repeat 3]
 */
import { repeatRuns, medianOf, repeats, fmt } from './lib.js';
import type { Summary } from '../src/stats/summary.js';

const CASES = [
  { label: '500 calls, 1 thread', args: ['calibrate', '--calls', '500', '--threads', '1', '--ramp', '100/s', '--hold', '20s'] },
  { label: '1000 calls, 2 threads', args: ['calibrate', '--calls', '1000', '--threads', '2', '--ramp', '200/s', '--hold', '20s'] },
];

const n = repeats(3);
console.log(`generator self-calibration, pcmu:pcmu, RTCP on, all tracking on; ${n} run(s) per case, medians`);
console.log('case                     | us/packet op | CPU %  | lateness p50 / p99 / max ms | loss %  | packets');
for (const c of CASES) {
  const runs = await repeatRuns(c.args, n);
  const m = (f: (s: Summary) => number | null | undefined): number => medianOf(runs, f);
  console.log(
    `${c.label.padEnd(24)} | ${fmt(m((s) => s.generator.cpuUsPerPacketOp)).padStart(12)} | ${fmt(m((s) => s.generator.cpuPct), 0).padStart(6)} | ` +
      `${fmt(m((s) => s.generator.sendLatenessMs?.p50))} / ${fmt(m((s) => s.generator.sendLatenessMs?.p99))} / ${fmt(m((s) => s.generator.sendLatenessMs?.max))}`.padEnd(27) +
      ` | ${fmt(m((s) => s.packets.lossPct), 3).padStart(7)} | ${m((s) => s.packets.sent)}`,
  );
  for (const [i, s] of runs.entries()) {
    console.log(`  run ${i + 1}: ${fmt(s.generator.cpuUsPerPacketOp)} us/op (${s.generator.costWindow}), p99 lateness ${fmt(s.generator.sendLatenessMs?.p99)} ms, loss ${fmt(s.packets.lossPct, 3)}%, calls ok ${s.calls.ok}`);
  }
}
