/**
 * bare-loop's workload on the native transport (workers/native): N calls = N pairs of connected UDP sockets on
 * 127.0.0.1 sending 172-byte packets to each other every 20 ms per leg from one 1 ms interval, and a receive
 * callback that only counts. One Transport, one sendBatch call per tick, one JS callback per receive drain.
 * Prints one JSON line like bare-loop's.
 *
 *   node dist/bench/native-loop.js CALLS SECONDS [FIRST_PORT] [--engine auto|io_uring|epoll] [--worker]
 *   node dist/bench/native-loop.js CALLS SECONDS [FIRST_PORT] --dgram | --timer
 *   node dist/bench/native-loop.js compare [--calls 300,500] [--seconds 15] [--repeat 3] [--first-port 40000]
 *                                          [--no-epoll] [--timer] [--no-worker]
 *
 * `--engine` picks the transport's engine (auto: io_uring where available); `--worker` runs the native loop inside a
 * worker thread; `--dgram` runs bare-loop's dgram loop (runDgramLoop in bench/lib.ts). `compare` runs
 * bench/bare-loop.js, the native loop (auto engine) and the native loop on epoll (and with --timer the schedule
 * alone, `runTimerFloor`) alternately (bare, native, ...; one child
 * process per run, the 1-minute load average printed with each), then one native run inside a worker
 * thread, and prints every run plus the medians and the native/bare ratio.
 *
 * Lateness here is taken after sendBatch returns (the whole tick's batch is in the kernel), i.e. conservative
 * against bare-loop, which takes it before each send.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Transport, type TransportEngine } from '../workers/native/transport.js';
import { median, runBenchScript, runDgramLoop, runPaced, loopFigures, LOOP_PACKET_BYTES, LOOP_PTIME_MS, type LoopResult } from './lib.js';

const PTIME_MS = LOOP_PTIME_MS;
const PACKET_BYTES = LOOP_PACKET_BYTES;
const PACKET_STRIDE = 192;

interface WorkerJob {
  calls: number;
  seconds: number;
  firstPort: number;
  engine: TransportEngine | 'auto';
}

export async function runNativeLoop(
  calls: number,
  seconds: number,
  firstPort: number,
  engine: TransportEngine | 'auto' = 'auto',
): Promise<LoopResult> {
  const legs = 2 * calls;
  const t = new Transport({
    sendArenaBytes: Math.max(64, legs * PACKET_STRIDE),
    batchCapacity: legs * 4,
    recvSlots: 1024,
    engine,
  });
  const handles = new Int32Array(legs);
  const nextMs = new Float64Array(legs);
  let received = 0;
  t.onReceive((count) => {
    received += count;
  });
  const start = performance.now();
  for (let i = 0; i < calls; i++) {
    const a = firstPort + 4 * i;
    const b = a + 2;
    handles[2 * i] = t.open('127.0.0.1', a, '127.0.0.1', b);
    handles[2 * i + 1] = t.open('127.0.0.1', b, '127.0.0.1', a);
    nextMs[2 * i] = nextMs[2 * i + 1] = start + (i % PTIME_MS);
  }
  const arena = t.sendArena;
  const batch = t.batch;
  const capacity = t.batchCapacity;
  // Every due time of the run, and per tick the due times of that tick's batch.
  const lateness = new Float64Array(Math.ceil(legs * (seconds * 1000 + 1000) / PTIME_MS) + legs * 4);
  const dueAt = new Float64Array(lateness.length);
  let latenessCount = 0;
  const tickDue = new Float64Array(capacity);
  let sent = 0;
  let seq = 0;

  const flush = (count: number): void => {
    sent += t.sendBatch(count);
    const after = performance.now();
    for (let k = 0; k < count && latenessCount < lateness.length; k++) {
      dueAt[latenessCount] = tickDue[k]!;
      lateness[latenessCount++] = after - tickDue[k]!;
    }
  };

  const run = await runPaced(seconds, (now) => {
    let count = 0;
    for (let leg = 0; leg < legs; leg++) {
      // A leg owing several packets (setup backlog) reuses its one arena slot within the batch, so those carry
      // the last sequence number; the receiver here only counts. A real leg points at its own frame per packet.
      while (nextMs[leg]! <= now) {
        const off = leg * PACKET_STRIDE;
        arena[off + 2] = (seq >>> 8) & 0xff;
        arena[off + 3] = seq & 0xff;
        seq++;
        batch[3 * count] = handles[leg]!;
        batch[3 * count + 1] = off;
        batch[3 * count + 2] = PACKET_BYTES;
        tickDue[count] = nextMs[leg]!;
        nextMs[leg] = nextMs[leg]! + PTIME_MS;
        if (++count === capacity) {
          flush(count);
          count = 0;
        }
      }
    }
    if (count > 0) flush(count);
  });
  const stats = t.statsSnapshot();
  t.destroy();
  return {
    ...loopFigures(run, { calls, sent, received }, lateness, dueAt, latenessCount),
    callbacks: stats.callbacks,
    polls: stats.polls,
    sendErrors: stats.sendEagain + stats.sendConnRefused + stats.sendOtherError + stats.sendBadEntry,
    kernelDrops: stats.kernelDrops,
    rearms: stats.rearms,
    bufferExhausted: stats.bufferExhausted,
    recvErrors: stats.recvConnRefused + stats.recvOtherError,
    lastRecvErrno: stats.lastRecvErrno,
    engine: t.engine,
  };
}

/**
 * The schedule alone: the same legs, due times and 1 ms interval, no sockets. Its lateness is the floor any
 * transport is measured against on this machine (timer granularity, scheduler and VM jitter). `--timer`.
 */
export async function runTimerFloor(calls: number, seconds: number): Promise<LoopResult> {
  const legs = 2 * calls;
  const nextMs = new Float64Array(legs);
  const start = performance.now();
  for (let i = 0; i < calls; i++) nextMs[2 * i] = nextMs[2 * i + 1] = start + (i % PTIME_MS);
  const lateness = new Float64Array(Math.ceil(legs * (seconds * 1000 + 1000) / PTIME_MS) + legs * 4);
  const dueAt = new Float64Array(lateness.length);
  let n = 0;
  const run = await runPaced(seconds, (now) => {
    for (let leg = 0; leg < legs; leg++) {
      while (nextMs[leg]! <= now) {
        if (n < lateness.length) {
          dueAt[n] = nextMs[leg]!;
          lateness[n++] = now - nextMs[leg]!;
        }
        nextMs[leg] = nextMs[leg]! + PTIME_MS;
      }
    }
  });
  return loopFigures(run, { calls, sent: 0, received: 0 }, lateness, dueAt, n);
}

function runInWorker(job: WorkerJob): Promise<LoopResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { nativeLoopJob: job } });
    let result: LoopResult | null = null;
    w.on('message', (m: LoopResult) => (result = m));
    w.on('error', reject);
    w.on('exit', (code) => (result && code === 0 ? resolve(result) : reject(new Error(`worker exited ${code}`))));
  });
}

// ---- compare: alternate bare-loop and native-loop child processes ----


function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

type Kind = 'bare' | 'native' | 'nativeEpoll' | 'timer';
const KIND_ARGS: Record<Kind, [string, string[]]> = {
  bare: ['./bare-loop.js', []],
  native: ['./native-loop.js', ['--engine', 'auto']],
  nativeEpoll: ['./native-loop.js', ['--engine', 'epoll']],
  timer: ['./native-loop.js', ['--timer']],
};

function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

async function compare(): Promise<void> {
  const callsList = option('--calls', '300,500').split(',').map(Number);
  const seconds = option('--seconds', '15');
  const repeat = Number(option('--repeat', '3'));
  const firstPort = option('--first-port', '40000');
  const kinds: Kind[] = ['bare', 'native'];
  if (!process.argv.includes('--no-epoll')) kinds.push('nativeEpoll');
  if (process.argv.includes('--timer')) kinds.push('timer');
  const runs: { kind: Kind; calls: number; result: LoopResult }[] = [];
  for (const calls of callsList) {
    for (let r = 0; r < repeat; r++) {
      for (const kind of kinds) {
        const [script, extra] = KIND_ARGS[kind];
        const loadBefore = loadAverage();
        const result = await runBenchScript<LoopResult>(script, [String(calls), seconds, firstPort, ...extra]);
        runs.push({ kind, calls, result });
        console.log(JSON.stringify({ run: runs.length, kind, loadBefore, loadAfter: loadAverage(), ...result }));
      }
    }
  }
  const summary = callsList.map((calls) => {
    const pick = (kind: Kind, f: (r: LoopResult) => number | null | undefined): number | null => {
      const v = runs
        .filter((x) => x.kind === kind && x.calls === calls)
        .map((x) => f(x.result))
        .filter((x): x is number => typeof x === 'number' && !Number.isNaN(x));
      return v.length ? median(v) : null;
    };
    const row: Record<string, number | null> = { calls };
    for (const kind of kinds) {
      row[`${kind}UsPerOp`] = pick(kind, (r) => r.usPerPacketOp);
      row[`${kind}CpuPct`] = pick(kind, (r) => r.cpuPct);
      row[`${kind}LatenessP99Ms`] = pick(kind, (r) => r.latenessP99Ms);
      row[`${kind}SteadyLatenessP99Ms`] = pick(kind, (r) => r.steadyLatenessP99Ms);
      row[`${kind}ReceivedRatio`] = pick(kind, (r) => r.received / r.sent);
    }
    const b = row.bareUsPerOp ?? null;
    const n = row.nativeUsPerOp ?? null;
    const e = row.nativeEpollUsPerOp ?? null;
    row.nativeOverBareUsPerOp = b && n ? n / b : null;
    row.nativeEpollOverBareUsPerOp = b && e ? e / b : null;
    return row;
  });
  console.log(JSON.stringify({ summary }));
  if (!process.argv.includes('--no-worker')) {
    const calls = Math.max(...callsList);
    const args = [String(calls), seconds, firstPort, '--worker', '--engine', 'auto'];
    const result = await runBenchScript<LoopResult>('./native-loop.js', args);
    console.log(JSON.stringify({ kind: 'native-in-worker', ...result }));
  }
}

if (!isMainThread && (workerData as { nativeLoopJob?: WorkerJob } | null)?.nativeLoopJob) {
  const job = (workerData as { nativeLoopJob: WorkerJob }).nativeLoopJob;
  parentPort!.postMessage(await runNativeLoop(job.calls, job.seconds, job.firstPort, job.engine));
} else if (isMainThread && process.argv[2] === 'compare') {
  await compare();
} else if (isMainThread) {
  const engine = option('--engine', 'auto') as TransportEngine | 'auto';
  const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--engine');
  const calls = Number(positional[0] ?? 300);
  const seconds = Number(positional[1] ?? 10);
  const firstPort = Number(positional[2] ?? 40000);
  let result: LoopResult;
  if (process.argv.includes('--dgram')) result = await runDgramLoop(calls, seconds, firstPort);
  else if (process.argv.includes('--timer')) result = await runTimerFloor(calls, seconds);
  else if (process.argv.includes('--worker')) result = await runInWorker({ calls, seconds, firstPort, engine });
  else result = await runNativeLoop(calls, seconds, firstPort, engine);
  console.log(JSON.stringify(result));
}
