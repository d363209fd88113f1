/**
 * Soak: does the generator (or the rtpengine it drives) grow while calls come and go for a long time? One embedded
 * rtpengine and the generator's own machinery (src/session.ts, src/call.ts: ng offer/answer/delete, media threads,
 * client ports), in this process so that its memory is what is measured, hold a population of calls that is
 * replaced continuously: every call-seconds / calls the oldest call ends (stop flag, then its delete) and a new one
 * is placed, so each call lives about call-seconds and every port, socket, timer and per-call object is made and
 * given back over and over. Every minute it prints this process's RSS, V8 heap used and external memory (after a
 * forced GC, so that garbage not yet collected does not read as growth), its active handles and requests
 * (process.getActiveResourcesInfo(): main thread only), rtpengine's RSS, and the calls that ended ok or failed.
 * The run ends by itself after --minutes, ending and deleting every call, and prints a verdict line.
 *
 *   node dist/bench/soak.js [--minutes 30] [--calls 20] [--call-seconds 60] [--codec-pair pcmu:pcmu] [--io native|dgram]
 *
 * Flat (the verdict): over the second half of the run (from the sample at half of --minutes, or the first once the
 * first calls have all been replaced if that is later) to the last sample, RSS grew by at most max(10%, 16 MB), heap
 * used and external by at most max(10%, 4 MB) each, rtpengine's RSS by at most max(10%, 8 MB), and active resources
 * by at most 4 (a sample may catch a few ng requests in flight, each with its timer). A leak of a socket or a timer
 * per call would add about calls/call-seconds x 60 = 20 a minute; of a kilobyte per packet, megabytes a second: it
 * grows in the second half as in the first. Why not from the start: the process's RSS rises for a while as its
 * allocators reach their working set and then stays (30 min at 20 calls: native I/O +31 MB until minute 17 then
 * within 1.5 MB for 13 minutes; dgram +22 MB until minute 5, then within 3 MB) while every V8 heap stays flat; that
 * warm-up is printed (from the first sample after the first calls were replaced to the half), not judged.
 * The media threads' own V8 heaps are asked for each minute too (MediaPool.memory, after a collection in each
 * thread) and judged like this process's heap. Not measured: the run timeline (not started here: it keeps one point
 * per second by design). A call that fails is replaced at once, so the population stays at --calls.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseCommandLine } from '../src/cli.js';
import { RunSession, newRunId } from '../src/session.js';
import { placeCall, type CallRecord } from '../src/call.js';
import { P_RECEIVED, P_SENT } from '../src/media/control.js';
import { readProcessUsage } from '../src/stack/worker-usage.js';
import { fmt } from './lib.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!(v > 0)) throw new Error(`--${name} needs a number above 0`);
  return v;
}
const pairArg = process.argv.indexOf('--codec-pair');
const PAIR = pairArg >= 0 ? process.argv[pairArg + 1]! : 'pcmu:pcmu';
// The media I/O (src/options.ts --io): to tell the native transport's memory from Node's dgram sockets'.
const ioArg = process.argv.indexOf('--io');
const IO = ioArg >= 0 ? ['--io', process.argv[ioArg + 1]!] : [];
const MINUTES = flag('minutes', 30);
const CALLS = Math.round(flag('calls', 20));
const CALL_SECONDS = flag('call-seconds', 60);
const SAMPLE_MS = 60_000;
/** Calls are placed open-ended and ended by their stop flag; this is only their outer bound. */
const OPEN_ENDED_MS = 24 * 3_600_000;

// A heap figure without a collection first says when V8 last collected, not what is live. --expose-gc set at
// runtime applies to contexts made after it, so gc() is fetched from a new one; the media run on other threads.
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Sample {
  minute: number;
  rss: number;
  heapUsed: number;
  /** The media threads' V8 heaps used, summed; null when a thread did not answer. */
  threadsHeapUsed: number | null;
  external: number;
  resources: number;
  daemonRss: number | null;
}

const MB = 1024 * 1024;

// --output only so that the plan does not create ./results: a soak writes no results file.
const { plan } = parseCommandLine(['--calls', String(CALLS), '--codec-pair', PAIR, ...IO, '--progress', 'off', '--output', join(tmpdir(), 'rtp-bench-soak.json')]);
const opened = await RunSession.open(plan, { err: process.stderr, out: process.stdout }, `soak-${newRunId()}`);
if (typeof opened === 'number') {
  process.exitCode = opened;
} else {
  const session = opened;
  const daemonPid = session.stack?.workers[0]?.local?.pid ?? null;
  const control = session.pool!.control;
  const t0 = performance.now();
  const ctx = session.callContext(performance.timeOrigin + t0 + OPEN_ENDED_MS);
  const live: { index: number; done: Promise<CallRecord> }[] = [];
  const outcomes = { ok: 0, failed: 0, interrupted: 0 };
  const causes = new Map<string, number>();
  let nextIndex = 0;
  const place = (): void => {
    const index = nextIndex++;
    const done = placeCall(ctx, index, performance.timeOrigin + performance.now());
    live.push({ index, done });
    void done.then((record) => {
      outcomes[record.status]++;
      if (record.failure !== null) causes.set(record.failure.cause, (causes.get(record.failure.cause) ?? 0) + 1);
      live.splice(live.findIndex((c) => c.index === index), 1);
    });
  };

  const samples: Sample[] = [];
  const sample = async (minute: number): Promise<void> => {
    gc();
    const threads = await session.pool!.memory(true);
    const m = process.memoryUsage();
    const s: Sample = {
      minute,
      rss: m.rss,
      heapUsed: m.heapUsed,
      threadsHeapUsed: threads.length === session.pool!.threads ? threads.reduce((sum, t) => sum + t.heapUsed, 0) : null,
      external: m.external,
      resources: process.getActiveResourcesInfo().length,
      daemonRss: daemonPid === null ? null : readProcessUsage(daemonPid)?.rssBytes ?? null,
    };
    samples.push(s);
    const packets = `${(control.total(P_SENT) / 1e6).toFixed(2)}M sent, ${(control.total(P_RECEIVED) / 1e6).toFixed(2)}M received`;
    console.log(
      `minute ${String(minute).padStart(3)}: rss ${fmt(s.rss / MB, 1)} MB, heap used ${fmt(s.heapUsed / MB, 1)} MB, media threads' heap used ${s.threadsHeapUsed === null ? '-' : `${fmt(s.threadsHeapUsed / MB, 1)} MB`}, external ${fmt(s.external / MB, 1)} MB, ` +
        `active resources ${s.resources}, rtpengine rss ${s.daemonRss === null ? '-' : `${fmt(s.daemonRss / MB, 1)} MB`}; ` +
        `calls up ${live.length}, ended ok ${outcomes.ok} failed ${outcomes.failed}; packets ${packets}`,
    );
  };

  console.log(
    `soak: ${CALLS} ${PAIR} calls, each replaced after about ${CALL_SECONDS} s (one every ${fmt(CALL_SECONDS / CALLS, 1)} s), for ${MINUTES} min; ` +
      `rtpengine ${session.stack?.workers[0]?.version ?? '?'} (pid ${daemonPid ?? '-'}), ${plan.threads} media thread(s), --io ${plan.io}`,
  );
  try {
    const gapMs = 1000 / plan.rampPerSec;
    for (let i = 0; i < CALLS && !session.abort.signal.aborted; i++) {
      place();
      await sleep(gapMs, undefined, { signal: session.abort.signal }).catch(() => undefined);
    }
    await sample(0);
    const endAt = t0 + MINUTES * SAMPLE_MS;
    const replaceEveryMs = (CALL_SECONDS * 1000) / CALLS;
    let nextReplace = performance.now() + replaceEveryMs;
    let nextSample = t0 + SAMPLE_MS;
    while (!session.abort.signal.aborted) {
      const now = performance.now();
      if (now >= nextSample) {
        await sample(Math.round((nextSample - t0) / SAMPLE_MS));
        nextSample += SAMPLE_MS;
        if (nextSample > endAt + 1) break;
        continue;
      }
      if (now >= nextReplace) {
        // The oldest call ends (its media stops at the thread's next tick, then it is deleted); a new one starts now.
        const oldest = live[0];
        if (oldest !== undefined) control.stopCall(oldest.index);
        place();
        // Calls that failed meanwhile are replaced too: the population stays at CALLS (the oldest is still ending).
        while (live.length < CALLS + (oldest === undefined ? 0 : 1)) place();
        nextReplace += replaceEveryMs;
        continue;
      }
      await sleep(Math.min(nextReplace, nextSample) - now, undefined, { signal: session.abort.signal }).catch(() => undefined);
    }
  } finally {
    for (const c of live) control.stopCall(c.index);
    await Promise.all(live.map((c) => c.done));
    await session.close();
  }

  const warm = samples.find((s) => s.minute * 60 >= CALL_SECONDS && s !== samples[samples.length - 1]) ?? samples[0];
  const half = samples.find((s) => s.minute >= MINUTES / 2 && s !== samples[samples.length - 1]);
  const first = half !== undefined && warm !== undefined && half.minute > warm.minute ? half : warm;
  const last = samples[samples.length - 1];
  if (first !== undefined && last !== undefined) {
    const max = (f: (s: Sample) => number | null): number => Math.max(...samples.map((s) => f(s) ?? Number.NaN));
    const grew = (f: (s: Sample) => number | null, floorBytes: number): { ok: boolean; text: string } => {
      const a = f(first);
      const b = f(last);
      if (a === null || b === null) return { ok: true, text: '-' };
      return { ok: b - a <= Math.max(0.1 * a, floorBytes), text: `${fmt(a / MB, 1)} -> ${fmt(b / MB, 1)} MB (max ${fmt(max(f) / MB, 1)})` };
    };
    const rss = grew((s) => s.rss, 16 * MB);
    const heap = grew((s) => s.heapUsed, 4 * MB);
    const threadsHeap = grew((s) => s.threadsHeapUsed, 4 * MB);
    const external = grew((s) => s.external, 4 * MB);
    const daemon = grew((s) => s.daemonRss, 8 * MB);
    const resourcesOk = last.resources - first.resources <= 4;
    const flat = rss.ok && heap.ok && threadsHeap.ok && external.ok && daemon.ok && resourcesOk;
    if (warm !== undefined && warm !== first) {
      console.log(`warm-up (minute ${warm.minute} to ${first.minute}, not judged): rss ${fmt(warm.rss / MB, 1)} -> ${fmt(first.rss / MB, 1)} MB, heap used ${fmt(warm.heapUsed / MB, 1)} -> ${fmt(first.heapUsed / MB, 1)} MB`);
    }
    console.log(
      `soak result (minute ${first.minute} vs minute ${last.minute}): rss ${rss.text}, heap used ${heap.text}, media threads' heap used ${threadsHeap.text}, external ${external.text}, ` +
        `active resources ${first.resources} -> ${last.resources} (max ${max((s) => s.resources)}), rtpengine rss ${daemon.text}; ` +
        `calls ended ok ${outcomes.ok}, failed ${outcomes.failed}${causes.size > 0 ? ` ${JSON.stringify(Object.fromEntries(causes))}` : ''}, interrupted ${outcomes.interrupted}; ` +
        `${flat ? 'FLAT' : 'GREW'} (criterion: growth <= max(10%, 16 MB) rss, max(10%, 4 MB) heaps and external, 8 MB rtpengine, 4 resources)`,
    );
  }
}
