/**
 * The floor the generator is measured against: the least a Node program can do to move the same packets
 * (runDgramLoop in bench/lib.ts). Prints one JSON line.
 *
 *   node dist/bench/bare-loop.js CALLS SECONDS [FIRST_PORT]
 */
import { runDgramLoop } from './lib.js';

const calls = Number(process.argv[2] ?? 300);
const seconds = Number(process.argv[3] ?? 10);
const firstPort = Number(process.argv[4] ?? 40000);
console.log(JSON.stringify(await runDgramLoop(calls, seconds, firstPort)));
