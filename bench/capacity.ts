/**
 * What the local stack carries: calls through the embedded rtpengine (Debian's rtpengine-daemon, userspace
 * forwarding) on this machine, which the generator shares. Targets (issue 2): 200 pcmu:pcmu calls and 25 opus:pcmu
 * calls with loss under 0.1%.
 *
 *   node dist/bench/capacity.js [--repeat 3]
 */
import { repeatRuns, medianOf, repeats, fmt } from './lib.js';
import type { Summary } from '../src/stats/summary.js';

const CASES = [
  { label: '200 pcmu:pcmu', args: ['--calls', '200', '--ramp', '50/s', '--hold', '20s', '--codec-pair', 'pcmu:pcmu'] },
  { label: '25 opus:pcmu', args: ['--calls', '25', '--ramp', '10/s', '--hold', '20s', '--codec-pair', 'opus:pcmu'] },
];

const n = repeats(3);
console.log(`local rtpengine capacity; ${n} run(s) per case, medians`);
console.log('case            | ok/calls | loss %  | latency p50 / p99 ms | jitter p99 ms | transit jitter p99 ms | MOS p50 | setup p99 ms | gen. lateness p99 ms');
for (const c of CASES) {
  const runs = await repeatRuns(c.args, n);
  const m = (f: (s: Summary) => number | null | undefined): number => medianOf(runs, f);
  console.log(
    `${c.label.padEnd(15)} | ${`${m((s) => s.calls.ok)}/${m((s) => s.calls.attempted)}`.padStart(8)} | ${fmt(m((s) => s.packets.lossPct), 3).padStart(7)} | ` +
      `${fmt(m((s) => s.latencyMs?.p50))} / ${fmt(m((s) => s.latencyMs?.p99))}`.padEnd(20) +
      ` | ${fmt(m((s) => s.jitterMs?.p99)).padStart(13)} | ${fmt(m((s) => s.transitJitterMs?.p99)).padStart(21)} | ${fmt(m((s) => s.mos?.p50)).padStart(7)} | ` +
      `${fmt(m((s) => s.setupMs?.p99)).padStart(12)} | ${fmt(m((s) => s.generator.sendLatenessMs?.p99)).padStart(20)}`,
  );
  for (const [i, s] of runs.entries()) {
    console.log(`  run ${i + 1}: loss ${fmt(s.packets.lossPct, 3)}%, latency p99 ${fmt(s.latencyMs?.p99)} ms, failed ${JSON.stringify(s.calls.failedByCause)}${s.generator.saturated ? `, ${s.generator.saturated}` : ''}`);
  }
}
