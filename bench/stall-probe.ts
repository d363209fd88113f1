/**
 * The machine's own floor for send lateness: a thread that does nothing but wake on the native 0.5 ms ticker (the
 * media threads' tick) and note when it woke. Whatever lateness it sees, no generator on this machine can avoid:
 * the thread was not running (host or kernel scheduling), not busy. It reports the gaps between wakeups and the
 * send lateness a zero-cost generator with this tick would record for 500 calls' sends (one due every 20 us,
 * each sent at the first wakeup after it is due), to set next to calibrate's figures.
 *
 *   node dist/bench/stall-probe.js [SECONDS]     prints one JSON line
 */
import { performance } from 'node:perf_hooks';
import { Transport } from '../workers/native/transport.js';
import { percentile } from './lib.js';

const seconds = Number(process.argv[2] ?? 10);
const TICK_US = 500;
/** 500 calls x 2 legs x 50 packets/s: one send due every 20 us. */
const SEND_SPACING_MS = 0.02;

export interface StallProbe {
  seconds: number;
  wakeups: number;
  gapP50Ms: number | null;
  gapP99Ms: number | null;
  gapMaxMs: number | null;
  /** Gaps between wakeups longer than 2 ms (a 0.5 ms tick that missed three or more periods). */
  gapsOver2Ms: number;
  /** What a zero-cost sender of 500 calls would record as send lateness. */
  latenessP50Ms: number | null;
  latenessP99Ms: number | null;
}

const gaps: number[] = [];
const transport = new Transport();
const start = performance.now();
let last = start;
await new Promise<void>((resolve) => {
  transport.startTicker(TICK_US, () => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
    if (now - start < seconds * 1000) return;
    transport.stopTicker();
    transport.destroy();
    resolve();
  });
});

// Sends due uniformly in time: within a gap of g ms, the sends due in it are late by g, g - 20 us, ... down to 0.
const lateness: number[] = [];
for (const g of gaps) for (let late = g % SEND_SPACING_MS; late <= g; late += SEND_SPACING_MS) lateness.push(late);
const sortedGaps = Float64Array.from(gaps).sort();
const sortedLateness = Float64Array.from(lateness).sort();
const result: StallProbe = {
  seconds,
  wakeups: gaps.length,
  gapP50Ms: percentile(sortedGaps, 0.5),
  gapP99Ms: percentile(sortedGaps, 0.99),
  gapMaxMs: percentile(sortedGaps, 1),
  gapsOver2Ms: gaps.filter((g) => g > 2).length,
  latenessP50Ms: percentile(sortedLateness, 0.5),
  latenessP99Ms: percentile(sortedLateness, 0.99),
};
console.log(JSON.stringify(result));
