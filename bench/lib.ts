/**
 * Shared by the benchmarks: run the CLI as a user would (one child process per run, so runs cannot disturb each
 * other's heap or threads), repeat, and report medians. Benchmarks print figures; they never pass or fail.
 */
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
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

/**
 * Runs another bench script (`./bare-loop.js`, ...) in a child process of its own and returns the JSON of the last
 * line it printed; its stderr goes to ours. Rejects with its output when it fails.
 */
export function runBenchScript<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`${script} ${args.join(' ')} exited ${code}: ${out}`));
      else resolve(JSON.parse(line) as T);
    });
  });
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

// ---- the loops' shared figures (bench/bare-loop.ts, bench/native-loop.ts) -----------------------------------------

/** The loops' workload: 172-byte packets (a 160-byte G.711 frame and its RTP header) every 20 ms per leg. */
export const LOOP_PACKET_BYTES = 172;
export const LOOP_PTIME_MS = 20;

export interface LoopResult {
  calls: number;
  sent: number;
  received: number;
  usPerPacketOp: number;
  cpuPct: number;
  latenessP50Ms: number | null;
  latenessP99Ms: number | null;
  latenessMaxMs: number | null;
  /** Lateness of packets due at least STEADY_AFTER_MS after the loop started (setup backlog excluded). */
  steadyLatenessP50Ms?: number | null;
  steadyLatenessP99Ms?: number | null;
  [extra: string]: unknown;
}

/**
 * The steady figures count only packets due after this much of the loop: the first second still carries start-up
 * effects (JIT warm-up, first socket buffers) that say nothing about the loop's steady cost.
 */
export const STEADY_AFTER_MS = 1000;

export function percentile(sorted: Float64Array, q: number): number | null {
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

export function steadyOf(lateness: Float64Array, dueAt: Float64Array, count: number, from: number): Float64Array {
  const out = new Float64Array(count);
  let n = 0;
  for (let i = 0; i < count; i++) if (dueAt[i]! >= from) out[n++] = lateness[i]!;
  return out.subarray(0, n).sort();
}

/**
 * The floor the generator is measured against (bench/bare-loop.ts, and native-loop's `--dgram`): the least a Node
 * program can do to move the same packets. openDgramPairs' sockets and schedule, one 1 ms interval sending every due
 * packet (lateness taken before each send), receive handlers that only count; no tracking, no RTCP.
 */
export async function runDgramLoop(calls: number, seconds: number, firstPort: number): Promise<LoopResult> {
  let sent = 0;
  const { senders, received } = await openDgramPairs(calls, firstPort, LOOP_PACKET_BYTES, LOOP_PTIME_MS);
  const lateness: number[] = [];
  const dueAt: number[] = [];
  const run = await runPaced(seconds, (now) => {
    for (const s of senders) {
      while (s.nextMs <= now) {
        lateness.push(performance.now() - s.nextMs);
        dueAt.push(s.nextMs);
        s.packet.writeUInt16BE(sent & 0xffff, 2);
        s.socket.send(s.packet);
        sent++;
        s.nextMs += LOOP_PTIME_MS;
      }
    }
  });
  for (const s of senders) s.socket.close();
  return loopFigures(run, { calls, sent, received: received() }, Float64Array.from(lateness), Float64Array.from(dueAt), lateness.length);
}

/**
 * The loops' pacing: `tick(now)` from one 1 ms interval for `seconds`, then 200 ms for the last packets to arrive.
 * Returns when it started (performance.now()), how long it ran and the process CPU it used.
 */
export async function runPaced(seconds: number, tick: (now: number) => void): Promise<{ t0: number; elapsedMs: number; cpu: NodeJS.CpuUsage }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      tick(now);
      if (now - t0 >= seconds * 1000) {
        clearInterval(timer);
        setTimeout(resolve, 200);
      }
    }, 1);
  });
  const cpu = process.cpuUsage(cpu0);
  return { t0, elapsedMs: performance.now() - t0, cpu };
}

/** A loop's figures from its first `count` lateness values and their due times (sorts `lateness` in place). */
export function loopFigures(
  run: { t0: number; elapsedMs: number; cpu: NodeJS.CpuUsage },
  counts: { calls: number; sent: number; received: number },
  lateness: Float64Array,
  dueAt: Float64Array,
  count: number,
): LoopResult {
  const cpuUs = run.cpu.user + run.cpu.system;
  const steady = steadyOf(lateness, dueAt, count, run.t0 + STEADY_AFTER_MS);
  const all = lateness.subarray(0, count).sort();
  const ops = counts.sent + counts.received;
  return {
    ...counts,
    usPerPacketOp: ops > 0 ? cpuUs / ops : Number.NaN,
    cpuPct: cpuUs / 10 / run.elapsedMs,
    latenessP50Ms: percentile(all, 0.5),
    latenessP99Ms: percentile(all, 0.99),
    latenessMaxMs: percentile(all, 1),
    steadyLatenessP50Ms: percentile(steady, 0.5),
    steadyLatenessP99Ms: percentile(steady, 0.99),
    userUs: run.cpu.user,
    systemUs: run.cpu.system,
    thread: isMainThread ? 'main' : 'worker',
  };
}
