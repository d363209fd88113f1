/**
 * Sharding one plan over several generator processes (`--shard I/N`): which calls are shard I's, at what rate they
 * arrive, which client ports it may bind, what its calls are called. Pure: src/plan.ts validates the flags, and the
 * run (src/commands/run.ts) places the calls this module hands it.
 *
 * The calls of the whole plan are numbered 0..calls-1 as one run numbers them; shard I of N takes the global indexes
 * I-1, I-1+N, I-1+2N, ... So the shares differ by one at most and sum to --calls, each call keeps the due time, tone
 * slot and audio-check choice it would have had in one run (all of which follow the index), and N shards started at
 * the same instant (--start-at) together place exactly the arrivals of the unsharded run.
 */
import type { PortRange } from './addresses.js';
import { PORTS_PER_CALL } from './ports.js';

/** Shard `index` (1-based) of `count`, and the whole plan's figures it took its share of. */
export interface ShardPlan {
  index: number;
  count: number;
  /** --calls of the whole plan (churn: its peak estimate); this shard's own share is RunPlan.calls. */
  totalCalls: number;
  /** --ramp (or churn's --rate) of the whole plan, calls/s; this shard's own is RunPlan.rampPerSec. */
  totalRatePerSec: number;
  /** The client port range the shards divide (the shard's own slice is RunPlan.localPorts). */
  totalLocalPorts: PortRange;
  /** Where I and N came from: the flag, or a Kubernetes Indexed Job's JOB_COMPLETION_INDEX with RTP_BENCH_SHARDS. */
  source: 'flag' | 'environment';
}

/** How many of `total` calls shard `index` of `count` places: the first total % count shards one more. */
export function shardCalls(total: number, index: number, count: number): number {
  return Math.floor(total / count) + (index - 1 < total % count ? 1 : 0);
}

/** The global index of shard `index`'s j-th call (j from 0). */
export function globalIndex(j: number, index: number, count: number): number {
  return j * count + (index - 1);
}

/** The global indexes of shard `index`'s calls, in order. */
export function shardIndexes(total: number, index: number, count: number): number[] {
  return Array.from({ length: shardCalls(total, index, count) }, (_, j) => globalIndex(j, index, count));
}

/**
 * Shard `index`'s slice of `range`: whole blocks of 4 ports, the blocks divided as evenly as the calls are. Slices
 * of different shards never overlap, so N shards on one host bind disjoint ports.
 */
export function portSlice(range: PortRange, index: number, count: number): PortRange {
  const blocks = Math.floor((range.max - range.min + 1) / PORTS_PER_CALL);
  const first = (index - 1) * Math.floor(blocks / count) + Math.min(index - 1, blocks % count);
  const size = shardCalls(blocks, index, count);
  const min = range.min + first * PORTS_PER_CALL;
  return { min, max: min + size * PORTS_PER_CALL - 1 };
}

/**
 * The id a shard's calls, Redis keys and mesh objects carry: the shared run id with the shard in it, so that call-ids
 * are unique across shards and one shard's cleanup (src/stack/redis.ts, the mesh's releaseRun) never touches
 * another's. `20261207-114019-a258` shard 2 -> `20261207-114019-a258-s2`; unsharded, the run id itself.
 */
export function sessionIdOf(runId: string, shard: Pick<ShardPlan, 'index'> | null): string {
  return shard === null ? runId : `${runId}-s${shard.index}`;
}

/** Run ids given with --run-id: also a file name and part of Kubernetes object labels, so kept to their alphabet. */
export const RUN_ID_PATTERN = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;

/**
 * The run id all shards derive alike from --start-at when no --run-id is given: the start time (UTC, to the second)
 * and the shard count, e.g. `20261207-114019-sh4`. Deterministic, so N processes agree without talking.
 */
export function runIdFromStartAt(startAtEpochMs: number, count: number): string {
  const t = new Date(startAtEpochMs).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${t}-sh${count}`;
}

/** How far --start-at may lie ahead: a run that waits longer was most likely given the wrong day. */
export const START_AT_MAX_AHEAD_MS = 24 * 3_600_000;
/**
 * How far in the past --start-at may be and still run (at once, saying how late): shards started by a scheduler
 * come up seconds to minutes apart (image pulls, pod scheduling); beyond this the shards would not overlap.
 */
export const START_AT_LATE_TOLERANCE_MS = 5 * 60_000;

/**
 * --start-at text -> epoch ms: ISO 8601 with a date and time (an offset or Z; without one, the local time zone, as
 * Date reads it), or epoch seconds (up to 11 digits) or milliseconds (12 or more), optionally with a fraction.
 * null when it is neither.
 */
export function parseStartAt(text: string): number | null {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    const digits = t.split('.')[0]!.length;
    return Math.round(digits >= 12 ? n : n * 1000);
  }
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(t)) return null;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

/** Whether a start time is acceptable now: null, or why not (in words, for the flag's message). */
export function startAtProblem(startAtEpochMs: number, nowMs: number): string | null {
  const ahead = startAtEpochMs - nowMs;
  if (ahead > START_AT_MAX_AHEAD_MS) return `is ${formatSeconds(ahead)} ahead, more than 24 h`;
  if (-ahead > START_AT_LATE_TOLERANCE_MS) return `was ${formatSeconds(-ahead)} ago, more than the ${START_AT_LATE_TOLERANCE_MS / 60_000} min a late shard may start after it`;
  return null;
}

export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
