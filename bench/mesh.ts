/**
 * The mesh's cost (issue 3): the same pcmu:pcmu calls through a real local l7mp mesh (network namespaces, an ingress,
 * one worker: l7mp sidecar + rtpengine) and straight to the embedded rtpengine, alternately, at 10, 20 and 30
 * calls: loss, one-way latency, and per call the l7mp objects, API requests and provisioning time (until accepted,
 * until ready, until media flowed both ways). Needs root.
 *
 *   node dist/bench/mesh.js [--repeat 3]
 */
import { repeatRuns, medianOf, repeats, fmt } from './lib.js';
import type { Summary } from '../src/stats/summary.js';

const CALLS = [10, 20, 30];
const n = repeats(3);
console.log(`local l7mp mesh vs straight to rtpengine: pcmu:pcmu, 10 calls/s, 15 s hold; ${n} run(s) each, alternating; medians`);
console.log('calls | path     | ok    | loss %  | latency p50 / p99 ms | jitter p99 ms | objects / requests per call | provisioning accepted p50 / p99 ms | ready p50 / p99 ms | media both ways p50 / p99 ms');
for (const calls of CALLS) {
  const base = ['--calls', String(calls), '--ramp', '10/s', '--hold', '15s', '--codec-pair', 'pcmu:pcmu'];
  const runs: Record<'mesh' | 'direct', Summary[]> = { mesh: [], direct: [] };
  for (let i = 0; i < n; i++) {
    runs.mesh.push(...(await repeatRuns([...base, '--mesh', 'local'], 1)));
    runs.direct.push(...(await repeatRuns(base, 1)));
  }
  for (const path of ['mesh', 'direct'] as const) {
    const r = runs[path];
    const m = (f: (s: Summary) => number | null | undefined): number => medianOf(r, f);
    const mesh = path === 'mesh';
    console.log(
      `${String(calls).padStart(5)} | ${path.padEnd(8)} | ${`${m((s) => s.calls.ok)}/${calls}`.padEnd(5)} | ${fmt(m((s) => s.packets.lossPct), 3).padStart(7)} | ` +
        `${fmt(m((s) => s.latencyMs?.p50))} / ${fmt(m((s) => s.latencyMs?.p99))}`.padEnd(20) +
        ` | ${fmt(m((s) => s.jitterMs?.p99)).padStart(13)} | ` +
        (mesh ? `${fmt(m((s) => s.mesh?.objectsPerCall), 0)} / ${fmt(m((s) => s.mesh?.requestsPerCall), 0)} (+${fmt(m((s) => s.mesh?.releaseRequestsPerCall), 0)} to remove)` : '-').padEnd(27) +
        ` | ${mesh ? `${fmt(m((s) => s.mesh?.acceptedMs?.p50), 1)} / ${fmt(m((s) => s.mesh?.acceptedMs?.p99), 1)}` : '-'}`.padEnd(37) +
        ` | ${mesh ? `${fmt(m((s) => s.mesh?.readyMs?.p50), 1)} / ${fmt(m((s) => s.mesh?.readyMs?.p99), 1)}` : '-'}`.padEnd(21) +
        ` | ${mesh ? `${fmt(m((s) => s.mesh?.firstMediaMs?.p50), 1)} / ${fmt(m((s) => s.mesh?.firstMediaMs?.p99), 1)}` : '-'}`,
    );
    for (const [i, s] of r.entries()) {
      console.log(`    run ${i + 1}: loss ${fmt(s.packets.lossPct, 3)}% (start-of-call ${s.packets.startOfCallLost}), latency p99 ${fmt(s.latencyMs?.p99)} ms, failed ${JSON.stringify(s.calls.failedByCause)}${s.generator.saturated ? `; ${s.generator.saturated.slice(0, 80)}...` : ''}`);
    }
  }
}
