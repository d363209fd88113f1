/**
 * Control-plane speed: calls set up and torn down per second (offer + answer + delete) against the local rtpengine,
 * with 64 requests in flight, using exactly the offer/answer rtp-bench sends for a real call (no media).
 * Expect about 1,100 transcoded (opus:pcmu) calls/s on a 2-core VM, where the daemon's CPU is the limit (about 1 ms a
 * call, half of it libopus's start-up; much less on bare metal), and about 0.21 ms of daemon CPU a pass-through call:
 * docs/rtpengine-behaviour.md#control-plane-cost. An earlier figure of 3,400-4,400 calls/s was wrong: its client
 * reused cookies, rtpengine answered from its reply cache and created no calls (call ids and cookies here are unique).
 *
 *   node dist/bench/control-plane.js [--repeat 3] [--calls 4000]
 */
import { performance } from 'node:perf_hooks';
import { startRtpengine } from '../src/stack/rtpengine.js';
import { NgClient } from '../src/ng/client.js';
import { parseCommandLine } from '../src/cli.js';
import { legPlans, offerParams, answerParams, tagOf } from '../src/call.js';
import { median, repeats, fmt } from './lib.js';

const IN_FLIGHT = 64;
const callsArg = process.argv.indexOf('--calls');
const CALLS = callsArg >= 0 ? Number(process.argv[callsArg + 1]) : 4000;

const n = repeats(3);
const engine = await startRtpengine({ address: '127.0.0.1', portMin: 40000, portMax: 41999 });
const ng = await NgClient.open({ host: '127.0.0.1', port: engine.ngPort, maxInFlight: IN_FLIGHT });
console.log(`control plane: ${CALLS} calls per run (offer + answer + delete), ${IN_FLIGHT} requests in flight, rtpengine ${engine.version} -L 5; ${n} run(s), medians`);
try {
  for (const pair of ['pcmu:pcmu', 'opus:pcmu']) {
    const { plan } = parseCommandLine(['--calls', String(IN_FLIGHT), '--codec-pair', pair]);
    const rates: number[] = [];
    const perCall: number[] = [];
    for (let r = 0; r < n; r++) {
      let next = 0;
      const started = performance.now();
      const lane = async (): Promise<void> => {
        for (let i = next++; i < CALLS; i = next++) {
          const callId = `cp-${r}-${i}-${pair}`;
          const legs = legPlans(plan, i, { aRtp: 20000, bRtp: 20002 });
          const t0 = performance.now();
          await ng.offer(offerParams(plan, callId, legs.a));
          await ng.answer(answerParams(plan, callId, legs.b));
          await ng.delete({ callId, fromTag: tagOf(callId, 'a'), deleteDelay: 0 });
          perCall.push(performance.now() - t0);
        }
      };
      // Each lane keeps one call's request in flight at a time; IN_FLIGHT lanes keep IN_FLIGHT requests in flight.
      await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
      rates.push(CALLS / ((performance.now() - started) / 1000));
    }
    console.log(`${pair.padEnd(10)} ${fmt(median(rates), 0)} calls/s (runs: ${rates.map((x) => x.toFixed(0)).join(', ')}); per call p50 ${fmt(median(perCall))} ms`);
  }
} finally {
  await ng.close();
  await engine.stop();
}
