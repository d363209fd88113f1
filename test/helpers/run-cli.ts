/** Runs the rtp-bench CLI as a user would (a child process), for the integration tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import type { Results } from '../../src/report/results.js';
import type { Summary } from '../../src/stats/summary.js';

export interface CliRun {
  child: ChildProcess;
  /** Resolves when the process has exited. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export interface CliOptions {
  /** Working directory (default: the package root). */
  cwd?: string;
  /** Runs the CLI through this command, e.g. ['ip', 'netns', 'exec', 'ns'] or a shell that joins a cgroup first. */
  prefix?: string[];
  /** The program to run instead of `node dist/src/cli.js` (e.g. the bin through a symlink). */
  program?: string;
}

export function startCli(args: string[], options: CliOptions = {}): CliRun {
  const program = options.program === undefined ? [process.execPath, join(packageRoot(), 'dist', 'src', 'cli.js')] : [options.program];
  const [command, ...rest] = [...(options.prefix ?? []), ...program, ...args];
  const child = spawn(command!, rest, {
    cwd: options.cwd ?? packageRoot(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** A temporary folder for one test's results, removed by the returned cleanup. */
export function tempResults(): { dir: string; file: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-test-'));
  return { dir, file: join(dir, 'run.json'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function readResults(file: string): Results & { format: number } {
  return JSON.parse(readFileSync(file, 'utf8')) as Results & { format: number };
}

/** The summary printed by --json on stdout. */
export function jsonSummary(stdout: string): Summary {
  return (JSON.parse(stdout) as { summary: Summary }).summary;
}

/** Polls until check() is truthy, failing after deadlineMs: readiness is observed, never assumed from a sleep. */
export async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, deadlineMs = 15_000, everyMs = 50): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * What to show when a run's exit code is not the expected one: its stderr, and when its stdout is the --json
 * summary, the generator's verdict and the failures by cause (a run limited by a loaded machine says so here).
 */
export function why(r: { code: number | null; stderr: string; stdout: string }): string {
  let verdict = '';
  try {
    const s = jsonSummary(r.stdout);
    verdict = `\ngenerator: ${s.generator.limited ?? s.generator.saturated ?? 'ok'}\nfailed: ${JSON.stringify(s.calls.failedByCause)}`;
  } catch {
    // Not a --json run, or it ended before its summary.
  }
  return `exit ${r.code}\n${r.stderr}${verdict}`;
}
