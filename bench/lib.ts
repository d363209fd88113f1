/**
 * Shared by the benchmarks: run the CLI as a user would (one child process per run, so runs cannot disturb each
 * other's heap or threads), repeat, and report medians. Benchmarks print figures; they never pass or fail.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { startCli, jsonSummary, tempResults } from '../test/helpers/run-cli.js';
import type { Summary } from '../src/stats/summary.js';

export async function runSummary(args: string[]): Promise<Summary> {
  const out = tempResults();
  try {
    const r = await startCli([...args, '--json', '--progress', 'off', '--output', out.file]).done;
    if (r.code !== 0 && r.code !== 1) throw new Error(`rtp-bench ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return jsonSummary(r.stdout);
  } finally {
    out.cleanup();
  }
}

export function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** `--repeat N` from the bench's own argv (default given). */
export function repeats(defaultRepeats: number): number {
  const i = process.argv.indexOf('--repeat');
  const n = i >= 0 ? Number(process.argv[i + 1]) : defaultRepeats;
  if (!Number.isInteger(n) || n < 1) throw new Error('--repeat needs a whole number >= 1');
  return n;
}

export function fmt(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits);
}

/** Runs the same arguments n times, one after the other (never in parallel: they would compete for the cores). */
export async function repeatRuns(args: string[], n: number): Promise<Summary[]> {
  const runs: Summary[] = [];
  for (let i = 0; i < n; i++) runs.push(await runSummary(args));
  return runs;
}

/** The median over runs of one figure; runs where it is missing do not count. */
export function medianOf(runs: readonly Summary[], figure: (s: Summary) => number | null | undefined): number {
  return median(runs.map(figure).filter((v): v is number => v !== null && v !== undefined && !Number.isNaN(v)));
}

// ---- bare-loop's workload (bench/bare-loop.ts, and native-loop's --dgram) -----------------------------------------

/** One leg: a connected UDP socket, its one packet, and when that is next due (performance.now() ms). */
export interface DgramSender {
  socket: dgram.Socket;
  packet: Buffer;
  nextMs: number;
}

async function openConnected(port: number, peer: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => socket.connect(peer, '127.0.0.1', resolve));
  return socket;
}

/**
 * `calls` pairs of UDP sockets on 127.0.0.1 (ports firstPort + 4i and firstPort + 4i + 2) connected to each other,
 * each with a receive handler that only counts, a zeroed `packetBytes` packet, and its first due time: the schedule's
 * start, taken before the sockets open, plus the call's index modulo `ptimeMs` (so the calls' packets spread over the
 * packet time, and the first ticks send what fell due during the setup). `received()` is the count so far.
 */
export async function openDgramPairs(
  calls: number,
  firstPort: number,
  packetBytes: number,
  ptimeMs: number,
): Promise<{ senders: DgramSender[]; received: () => number }> {
  let received = 0;
  const senders: DgramSender[] = [];
  for (let i = 0; i < calls; i++) {
    const a = firstPort + 4 * i;
    const b = a + 2;
    for (const [port, peer] of [[a, b], [b, a]] as const) {
      const socket = await openConnected(port, peer);
      socket.on('message', () => received++);
      senders.push({ socket, packet: Buffer.alloc(packetBytes), nextMs: i % ptimeMs });
    }
  }
  // The schedule starts once every socket is open: a clock started before setup would make the first ticks send a
  // backlog, late by the setup time, and that backlog alone would set the loop's lateness p99.
  const start = performance.now();
  for (const s of senders) s.nextMs += start;
  return { senders, received: () => received };
}
