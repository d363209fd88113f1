/**
 * `rtp-bench capacity` against a real rtpengine whose CPU the test caps (a cgroup at 0.1 core): the knee it finds
 * must be where rtpengine ran out of its planted CPU, not anywhere else. Short steps, a small population.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startCli, tempResults, waitFor, why } from './helpers/run-cli.js';
import { childProcesses, gone } from './helpers/process.js';
import { cgroupFlavour } from '../src/stack/cpu-cap.js';
import type { CapacityResults } from '../src/commands/capacity.js';
import type { ScalePoint } from '../src/commands/scale.js';

const CAP_CORES = 0.1;

/** --worker-cpu needs root and a cgroup CPU controller: the tests skip, saying so, where there is none. */
const SKIP = cgroupFlavour('/sys/fs/cgroup') !== null && process.getuid?.() === 0 ? false : 'needs root and a cgroup CPU controller (--worker-cpu)';

test('capacity of opus:pcmu on one rtpengine capped at 0.1 core: the answer passes, one more call breaks the SLO, and there rtpengine is at its cap', { skip: SKIP }, async (t) => {
  const out = tempResults();
  try {
    const r = await startCli(
      ['capacity', '--codec-pair', 'opus:pcmu', '--worker-cpu', String(CAP_CORES), '--start', '2', '--max', '12', '--step-hold', '3s', '--resolution', '1', '--ramp', '20/s', '--output', out.file, '--progress', 'off'],
    ).done;
    assert.equal(r.code, 0, why(r));
    const results = JSON.parse(readFileSync(out.file, 'utf8')) as CapacityResults;
    assert.equal(results.kind, 'capacity');
    const [p] = results.profiles;
    assert.deepEqual(results.capacity, p!.capacity, 'one codec pair: its answer also at the top');
    const answer = p!.capacity.maxCalls;
    t.diagnostic(`capacity ${answer} calls; steps ${p!.capacity.steps.map((s) => `${s.calls}${s.pass ? '+' : '-'} cpu ${s.workers[0]?.cpuPct?.toFixed(0)}%`).join(', ')}; ${p!.capacity.cpuMsPerCallSecond?.toFixed(1)} ms CPU per call-second`);
    assert.ok(answer !== null && answer >= 1, `an answer: ${p!.capacity.reason}`);
    const passing = p!.capacity.steps.find((s) => s.calls === answer)!;
    const failing = p!.capacity.steps.find((s) => s.calls === answer + 1);
    assert.ok(passing.pass, 'the answer was measured passing');
    assert.ok(failing !== undefined && !failing.pass, 'one call more was measured failing (resolution 1)');
    // The planted truth: rtpengine may use 10% of a core. The failing step found it there.
    const capPct = CAP_CORES * 100;
    const cpuAtFail = failing!.workers[0]!.cpuPct!;
    assert.ok(cpuAtFail >= capPct * 0.85 && cpuAtFail <= capPct * 1.15, `rtpengine at ${cpuAtFail}% of a core where the SLO broke, its cap is ${capPct}%`);
    // The steps below the knee stayed within the cap (a capped process cannot exceed it; more would be a bug in how
    // its CPU is read).
    for (const step of p!.capacity.steps.filter((s) => s.pass)) {
      assert.ok(step.workers[0]!.cpuPct! <= capPct * 1.15, `step ${step.calls}: rtpengine at ${step.workers[0]!.cpuPct}%`);
    }
  } finally {
    out.cleanup();
  }
});

test('scale --workers 1,2 with each rtpengine capped at 0.2 core: two workers carry about twice what one does', { skip: SKIP }, async (t) => {
  const out = tempResults();
  try {
    const r = await startCli(
      // 0.2 core is about 10 transcoded calls: enough that the search's one-call resolution and the knee's noise
      // (a few calls at 0.1 core) do not swamp the factor of two.
      ['scale', '--workers', '1,2', '--codec-pair', 'opus:pcmu', '--worker-cpu', '0.2', '--start', '4', '--max', '32', '--step-hold', '3s', '--resolution', '1', '--ramp', '20/s', '--output', out.file, '--progress', 'off'],
    ).done;
    assert.equal(r.code, 0, why(r));
    const results = JSON.parse(readFileSync(out.file, 'utf8')) as { kind: string; scale: { points: ScalePoint[] } };
    assert.equal(results.kind, 'scale');
    const [one, two] = results.scale.points as [ScalePoint, ScalePoint];
    t.diagnostic(`1 worker: ${one.maxCalls} calls; 2 workers: ${two.maxCalls} calls; efficiency ${two.efficiency?.toFixed(2)}`);
    assert.equal(one.workers, 1);
    assert.equal(two.workers, 2);
    assert.ok(one.maxCalls !== null && one.maxCalls >= 4, `one worker: ${one.maxCalls}`);
    // The planted truth: the second worker brings as much CPU as the first. The knee of each search moves by a call
    // or two from run to run; no scaling (0.5) or a worker counted twice (2) is far outside.
    assert.ok(two.efficiency !== null && two.efficiency >= 0.65 && two.efficiency <= 1.4, `efficiency ${two.efficiency}`);
    assert.equal(two.efficiency, two.maxCalls! / (2 * one.maxCalls));
  } finally {
    out.cleanup();
  }
});

test('Ctrl-C during a capacity search: exit 130, the steps measured so far are in the results (no answer claimed), rtpengine stopped', async () => {
  const out = tempResults();
  try {
    const run = startCli(['capacity', '--codec-pair', 'pcmu:pcmu', '--start', '2', '--max', '64', '--step-hold', '3s', '--ramp', '20/s', '--output', out.file, '--progress', 'on']);
    let stderr = '';
    run.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('the first step to be judged', () => /pcmu:pcmu: 2 calls (pass|broke)/.test(stderr), 60_000);
    const daemons = childProcesses(run.child.pid!).filter((p) => p.comm === 'rtpengine');
    assert.equal(daemons.length, 1, 'the embedded rtpengine was seen');
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, why(r));
    const results = JSON.parse(readFileSync(out.file, 'utf8')) as CapacityResults;
    const search = results.profiles[0]!.capacity;
    assert.equal(search.maxCalls, null);
    assert.match(search.reason, /^interrupted after \d+ step\(s\), before an answer$/);
    assert.ok(search.steps.length >= 1, 'the first step is kept');
    assert.deepEqual(search.steps[0]!.calls, 2);
    for (const step of search.steps) assert.ok(step.window.toT - step.window.fromT >= 2.9, `step of ${step.calls} calls measured its whole window`);
    for (const d of daemons) assert.ok(await gone(d.pid), `rtpengine ${d.pid} stopped`);
  } finally {
    out.cleanup();
  }
});
