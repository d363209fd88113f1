/**
 * The daemons rtp-bench starts (rtpengine, the l7mp proxies): children of this process in their own process group,
 * their output kept in memory (the last lines only) so a failure can show it, stopped by PID, and never left behind:
 * SIGKILLed by an exit hook when rtp-bench exits, and given setpriv's parent-death signal when it is killed outright.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const LOG_LINES_KEPT = 200;
const STOP_GRACE_MS = 3000;

/** A daemon exited before it was ready, or was not ready in time; its last log lines come with it. */
/** Lines of a daemon's own log quoted when it fails to start (and the default of every logTail()). */
export const LOG_LINES_SHOWN = 20;

export class DaemonStartError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly logTail: string[],
  ) {
    super(message);
  }
}

const running = new Set<ChildProcess>();
/** util-linux, in every Debian. */
const SETPRIV = '/usr/bin/setpriv';

let exitHookInstalled = false;

/** SIGKILLs `child` if this process exits while the child still runs (a crashed or exiting run must not leave daemons behind). */
function killOnExit(child: ChildProcess): void {
  installExitHook();
  if (child.exitCode !== null || child.signalCode !== null) return;
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/**
 * A command line (`argv[0]` the program) wrapped so that the child gets SIGTERM when this process dies without
 * running its exit hook (SIGKILL): setpriv sets the parent-death signal and execs the command, so the PID stays
 * the command's. Returns [program, args] for spawn.
 */
export function withParentDeathSignal(argv: string[]): [string, string[]] {
  const [command, ...args] = argv;
  if (command === undefined) throw new RangeError('empty command line');
  return existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'SIGTERM', command, ...args]] : [command, args];
}

/** A crashed or exiting run must not leave daemons behind: 'exit' handlers must be synchronous, so SIGKILL. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
}

/** The last LOG_LINES_KEPT lines of a daemon's output. */
class LogRing {
  private readonly lines: string[] = [];
  private partial = '';

  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.add(line);
  }

  flush(): void {
    if (this.partial) this.add(this.partial);
    this.partial = '';
  }

  tail(n: number): string[] {
    return this.lines.slice(-Math.max(0, n));
  }

  private add(line: string): void {
    this.lines.push(line.replace(/\r$/, ''));
    if (this.lines.length > LOG_LINES_KEPT) this.lines.shift();
  }
}

/** Log lines indented for an error message. */
export function formatTail(lines: string[]): string {
  return lines.length === 0 ? '  (it logged nothing)' : lines.map((l) => `  ${l}`).join('\n');
}

/** A long-lived child process as rtp-bench runs its daemons (rtpengine, l7mp proxies). */
export interface Daemon {
  pid: number;
  /** Resolves when it has exited. */
  exited: Promise<void>;
  /** How it exited; null while it runs. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null;
  /** The last lines of its stdout and stderr, oldest first. */
  logTail(lines: number): string[];
  /** SIGTERM, then SIGKILL after 3 s; resolves once it has exited and its output is drained. Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Starts `argv` as a daemon: in its own process group (a Ctrl-C on the terminal reaches only rtp-bench, which must
 * still clean up through the daemon and then stops it by PID), SIGKILLed by the exit hook if rtp-bench exits first,
 * and with setpriv's parent-death signal if rtp-bench is killed outright. Every wrapper in front of the program
 * (setpriv, `ip netns exec`) execs, so `pid` is the program's own. Rejects with the spawn error (e.g. ENOENT).
 */
export async function spawnDaemon(argv: string[], o: { cwd?: string } = {}): Promise<Daemon> {
  const log = new LogRing();
  const [command, args] = withParentDeathSignal(argv);
  const child = spawn(command, args, { cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => {
      killOnExit(child);
      resolve();
    });
    child.once('error', reject);
  });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => log.push(d));
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve();
    });
  });
  // 'exit' can come before the pipes are drained; the log is complete only on 'close'.
  const closed = new Promise<void>((resolve) => child.once('close', () => (log.flush(), resolve())));
  await spawned;
  const pid = child.pid!;

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitInfo === null) {
        kill(pid, 'SIGTERM');
        const grace = setTimeout(() => kill(pid, 'SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(grace);
      }
      await closed;
    })();
    return stopping;
  };
  return { pid, exited, exitStatus: () => exitInfo, logTail: (lines) => log.tail(lines), stop };
}

/**
 * Runs a short command (a daemon's `--version`) to its end and returns its exit code and its stdout and stderr
 * together (rtpengine prints its version on stderr, redis-server on stdout). Rejects with the spawn error, whose
 * `code` says ENOENT for a program that is not installed.
 */
export async function commandOutput(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  return { code, output };
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}
