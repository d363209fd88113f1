/**
 * Where the 20/40/60 ms latency steps through transcoding come from, shown with a cause planted on purpose: a run of
 * opus:pcmu calls whose generator is stopped (SIGSTOP) for HOLD_MS once every call is up, so every stream's input is
 * late by that much once. rtpengine's one-frame hold ratchets to one frame plus the worst lateness its input has
 * had, so after the stop each call's delay should sit HOLD_MS higher for good, in the sequence-matched latency AND
 * in the audio delay measured from the marker in the decoded audio (which uses no sequence numbers); the audio
 * delay stays 6.5 ms (opus's lookahead) above the latency throughout. Prints both distributions for a run without
 * the stop and one with it.
 *
 *   node dist/bench/latency-steps.js [--hold-ms 45]
 */
import { readFileSync } from 'node:fs';
import { startCli, tempResults } from '../test/helpers/run-cli.js';
import type { Results } from '../src/report/results.js';

const argHold = process.argv.indexOf('--hold-ms');
const HOLD_MS = argHold > 0 ? Number(process.argv[argHold + 1]) : 45;
const CALLS = 10;
const ARGS = ['--calls', String(CALLS), '--ramp', '10/s', '--hold', '16s', '--codec-pair', 'opus:pcmu', '--audio-check-share', '1', '--progress', 'on', '--json'];

async function run(stop: boolean): Promise<Results> {
  const out = tempResults();
  try {
    const cli = startCli([...ARGS, '--output', out.file]);
    let stderr = '';
    cli.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (stop) {
      // Once every call is up (the progress line says so) and a few markers have been measured, stop the generator.
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (stderr.includes(`calls up ${CALLS}/${CALLS}`)) {
            clearInterval(poll);
            resolve();
          }
        }, 50);
      });
      await new Promise((r) => setTimeout(r, 3000));
      cli.child.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, HOLD_MS));
      cli.child.kill('SIGCONT');
    }
    const r = await cli.done;
    if (r.code !== 0 && r.code !== 1 && r.code !== 4) throw new Error(`rtp-bench exited ${r.code}: ${r.stderr}`);
    return JSON.parse(readFileSync(out.file, 'utf8')) as Results;
  } finally {
    out.cleanup();
  }
}

function line(label: string, r: Results): string {
  const s = r.summary;
  const p = (x: { p10?: number; p50: number; p90: number; max: number } | null): string => (x === null ? '-' : `p50 ${x.p50.toFixed(1)}, p90 ${x.p90.toFixed(1)}, max ${x.max.toFixed(1)}`);
  const diffs = r.calls.flatMap((c) => c.streams.flatMap((st) => (st.audio.delayMeanMs === null || st.latencyMeanMs === null ? [] : [st.audio.delayMeanMs - st.latencyMeanMs])));
  diffs.sort((a, b) => a - b);
  const mid = diffs[Math.floor(diffs.length / 2)];
  return (
    `${label.padEnd(24)} latency ms ${p(s.latencyMs)} | audio delay ms ${p(s.audioDelayMs)} | ` +
    `audio - latency per stream, median ${mid === undefined ? '-' : mid.toFixed(2)} ms | send lateness max ${s.generator.sendLatenessMs?.max.toFixed(1)} ms`
  );
}

console.log(`${CALLS} opus:pcmu calls through the embedded rtpengine, 16 s hold; the second run's generator stopped for ${HOLD_MS} ms once, 3 s after all calls were up`);
console.log(line('undisturbed', await run(false)));
console.log(line(`stopped ${HOLD_MS} ms once`, await run(true)));
