/**
 * Shared by the benchmarks: run the CLI as a user would (one child process per run, so runs cannot disturb each
 * other's heap or threads), repeat, and report medians. Benchmarks print figures; they never pass or fail.
 */
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
