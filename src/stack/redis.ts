/**
 * The Redis the embedded rtpengine workers replicate their calls through (--redis): a redis-server rtp-bench starts
 * on the run's loopback /24 (no persistence, stopped by PID like rtpengine), or one the user gives. Either way it is
 * checked before any worker starts: it answers, it has the DBs, and it notifies key sets and deletes, which
 * rtpengine's replication needs and never sets up itself (docs/rtpengine-redis.md). At the end the run's keys are
 * swept: a correct run leaves none, so any found are a warning.
 */
import { tmpdir } from 'node:os';
import { DaemonStartError, LOG_LINES_SHOWN, commandOutput, formatTail, spawnDaemon, type Daemon } from './daemon.js';
import { freeTcpPort } from './rtpengine.js';
import { RedisClient, RedisCommandError, infoField } from './redis-client.js';
import { isCallIdOf } from '../call-id.js';
import { netnsExec, runIn } from './netns.js';

/**
 * The keyspace notifications rtpengine's subscribers need: K (keyspace channel), g (DEL) and $ (SET). Without any,
 * a subscriber learns nothing and nothing says so; without g, calls deleted on their owner stay on the others.
 */
export const REDIS_KEYSPACE_EVENTS = 'Kg$';

export interface LocalRedis {
  address: string;
  port: number;
  pid: number;
  /** As the binary reports it, e.g. "7.0.15". */
  version: string;
  /** Its command line, binary excluded. */
  args: string[];
  logTail(lines?: number): string[];
  /** SIGTERM, then SIGKILL after 3 s; resolves once it has exited. Safe to call more than once. */
  stop(): Promise<void>;
}

export class RedisNotInstalledError extends Error {
  override readonly name = 'RedisNotInstalledError';
  constructor(readonly binary: string) {
    super(
      `redis-server is not installed (cannot run "${binary}"), and --redis without an address starts one: on Debian/Ubuntu run ` +
        '`apt-get install -y --no-install-recommends redis-server` (npm run setup does), or give --redis HOST:PORT of a running Redis',
    );
  }
}

export class RedisStartError extends DaemonStartError {
  override readonly name = 'RedisStartError';
}

/** The Redis cannot serve the run: unreachable, too few DBs, DBs in use, notifications that cannot be set. */
export class RedisSetupError extends Error {
  override readonly name = 'RedisSetupError';
}

const DEFAULT_READY_TIMEOUT_MS = 10_000;
/** One connection attempt while it starts; a refused one comes back at once. */
const READY_CONNECT_TIMEOUT_MS = 200;
/** Pause after a refused connection: redis-server opens its socket some milliseconds after exec. */
const READY_RETRY_MS = 10;
const PORT_ATTEMPTS = 3;

export interface StartRedisOptions {
  /** The address it listens on (only this one). */
  address: string;
  /** How many DBs it has (Redis' default is 16, DBs 0-15). */
  databases: number;
  /** Default "redis-server". */
  binary?: string;
  readyTimeoutMs?: number;
  /** More settings as `--name value` pairs, after rtp-bench's own (the tests disable CONFIG with rename-command). */
  extraArgs?: string[];
  /**
   * A network namespace to run it in (--mesh local: the workers reach it across the mesh's bridge). `address` is
   * that namespace's, the port is `port` (default 6379: the namespace is the run's own, nothing else listens there),
   * and readiness is a PING sent from inside it.
   */
  namespace?: string;
  port?: number;
}

/** redis-server's usual port: used inside a namespace of the run's own, where nothing else can hold it. */
export const REDIS_DEFAULT_PORT = 6379;

/** `redis-server --version` -> "7.0.15". */
export async function redisServerVersion(binary = 'redis-server'): Promise<string> {
  const { code, output: out } = await commandOutput(binary, ['--version']).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new RedisNotInstalledError(binary) : new Error(`cannot run "${binary} --version": ${err.message}`);
  });
  const m = /\bv=(\S+)/.exec(out);
  if (code !== 0 || !m) throw new Error(`"${binary} --version" did not print a Redis version (exit code ${code}): ${out.trim().slice(0, 200) || 'nothing'}`);
  return m[1]!;
}

/**
 * Starts redis-server on `address` and a free TCP port, without persistence (nothing is written to disk: the
 * state lives only as long as the run) and with keyspace notifications on; ready once it answers PING.
 */
export async function startRedis(o: StartRedisOptions): Promise<LocalRedis> {
  const binary = o.binary ?? 'redis-server';
  const version = await redisServerVersion(binary);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOnce(o, binary, version);
    } catch (err) {
      // The port was free when picked, but any socket may be given it before redis-server binds it.
      const taken = err instanceof RedisStartError && err.logTail.some((l) => /listening socket .*Address already in use/.test(l));
      if (!taken || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

async function startRedisOnce(o: StartRedisOptions, binary: string, version: string): Promise<LocalRedis> {
  const port = o.namespace === undefined ? (o.port ?? (await freeTcpPort(o.address))) : (o.port ?? REDIS_DEFAULT_PORT);
  const args = [
    '--bind', o.address,
    '--port', String(port),
    // No RDB snapshots, no append-only file: a benchmark's call state must not outlive it, nor cost disk writes.
    '--save', '',
    '--appendonly', 'no',
    '--databases', String(o.databases),
    '--notify-keyspace-events', REDIS_KEYSPACE_EVENTS,
    // Debian's build would otherwise look for nothing else, but say it: no config file, stay in the foreground.
    '--daemonize', 'no',
    // In a namespace it must answer on the mesh's bridge, which protected mode refuses without a password; the
    // namespace is the run's own and nothing outside the mesh reaches it.
    ...(o.namespace === undefined ? [] : ['--protected-mode', 'no']),
    ...(o.extraArgs ?? []),
  ];
  let daemon: Daemon;
  try {
    // Its working directory is where it would write a dump if asked to (SAVE): never the user's folder.
    daemon = await spawnDaemon([...(o.namespace === undefined ? [] : netnsExec(o.namespace)), binary, ...args], { cwd: tmpdir() });
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? new RedisNotInstalledError(binary) : new Error(`cannot start "${binary}": ${(err as Error).message}`, { cause: err });
  }
  const what = `redis-server (pid ${daemon.pid}) on ${o.address}:${port}${o.namespace === undefined ? '' : ` in network namespace ${o.namespace}`}`;
  const timeoutMs = o.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  try {
    if (o.namespace === undefined) await waitRedisReady(o.address, port, timeoutMs, daemon);
    else await waitRedisReadyIn(o.namespace, o.address, port, timeoutMs, daemon);
  } catch (err) {
    const exit = daemon.exitStatus();
    await daemon.stop();
    const tail = daemon.logTail(LOG_LINES_SHOWN);
    if (exit !== null) {
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      throw new RedisStartError(`${what} ${how} before answering PING; its last log lines:\n${formatTail(tail)}`, exit.code, exit.signal, tail);
    }
    throw new RedisStartError(`${what} did not answer PING within ${timeoutMs} ms (${(err as Error).message}) and was stopped; its last log lines:\n${formatTail(tail)}`, null, null, tail);
  }
  return { address: o.address, port, pid: daemon.pid, version, args, logTail: (lines = LOG_LINES_SHOWN) => daemon.logTail(lines), stop: daemon.stop };
}

/**
 * What one readiness probe found: null when the server answered PING; otherwise the problem, and whether asking
 * again can help (a refused connection while it starts can; a server that answered and refused cannot).
 */
type ProbeResult = null | { problem: string; final: boolean };

/** Probes until the server answers, the daemon exits, a probe says it never will, or the deadline passes (no fixed sleep). */
async function waitUntilAnswered(probe: (leftMs: number) => Promise<ProbeResult>, timeoutMs: number, daemon: Daemon): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let exited = false;
  void daemon.exited.then(() => (exited = true));
  let last = 'no answer yet';
  for (;;) {
    if (exited) throw new Error('exited');
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(last);
    const found = await probe(left);
    if (found === null) return;
    last = found.problem;
    if (found.final) throw new Error(last);
    // Refused at once while it is still starting: pause briefly (or until it dies) before the next try.
    await Promise.race([new Promise((resolve) => setTimeout(resolve, Math.min(READY_RETRY_MS, left))), daemon.exited]);
  }
}

/** Connects and pings from this process. */
function waitRedisReady(host: string, port: number, timeoutMs: number, daemon: Daemon): Promise<void> {
  return waitUntilAnswered(async (left) => {
    try {
      const client = await RedisClient.connect({ host, port, timeoutMs: Math.min(READY_CONNECT_TIMEOUT_MS, left) });
      try {
        await client.ping();
        return null;
      } finally {
        await client.close();
      }
    } catch (err) {
      return { problem: (err as Error).message, final: false };
    }
  }, timeoutMs, daemon);
}

/**
 * The same inside a network namespace, where this process has no socket: redis-cli (Debian's redis-tools, a
 * dependency of redis-server) pings from in there.
 */
function waitRedisReadyIn(namespace: string, host: string, port: number, timeoutMs: number, daemon: Daemon): Promise<void> {
  return waitUntilAnswered(async (left) => {
    const r = await runIn(namespace, 'redis-cli', ['-h', host, '-p', String(port), 'ping'], { timeoutMs: Math.max(READY_CONNECT_TIMEOUT_MS, Math.min(2000, left)) });
    if (r.code === 0 && r.stdout.trim() === 'PONG') return null;
    const problem = (r.stderr.trim() || r.stdout.trim() || `redis-cli exited with code ${r.code}`).split('\n')[0]!;
    // It answered, and refused (protected mode, a password): no point asking again.
    return { problem, final: /^(DENIED|NOAUTH|ERR)/.test(problem) };
  }, timeoutMs, daemon);
}

/** Whether notify-keyspace-events `flags` (as CONFIG GET prints them) include K, g and $ (A stands for g$lshzxetd). */
export function notifiesSetAndDel(flags: string): boolean {
  return flags.includes('K') && (flags.includes('A') || (flags.includes('g') && flags.includes('$')));
}

/** `flags` with what notifiesSetAndDel needs added to whatever else it has (other users of the server may rely on those). */
export function withSetAndDel(flags: string): string {
  if (notifiesSetAndDel(flags)) return flags;
  const needed = flags.includes('A') ? ['K'] : ['K', 'g', '$'];
  return flags + needed.filter((c) => !flags.includes(c)).join('');
}

export interface RedisReadiness {
  version: string | null;
  /** notify-keyspace-events as found, and as it is now (the same unless rtp-bench added K, g or $). */
  keyspaceEventsBefore: string;
  keyspaceEvents: string;
}

/**
 * Makes sure `client`'s server can carry the run: it answers PING, has every DB of `dbs`, each of them empty when
 * `requireEmpty` (an external server: rtpengine restores whatever a DB holds as calls when it starts, and DELs the
 * keys it cannot parse), and notifies SET and DEL (set here if not; refused with the reason if it cannot be set).
 */
export async function prepareRedis(client: RedisClient, dbs: readonly number[], o: { requireEmpty: boolean }): Promise<RedisReadiness> {
  const where = `Redis ${client.address}`;
  try {
    await client.ping();
  } catch (err) {
    if (err instanceof RedisCommandError && /^NOAUTH/.test(err.reply)) {
      throw new RedisSetupError(`${where} asks for a password (${err.reply}): rtp-bench's --redis takes none yet; give a Redis without one`);
    }
    throw err;
  }
  for (const db of dbs) {
    try {
      await client.select(db);
    } catch (err) {
      if (!(err instanceof RedisCommandError)) throw err;
      const count = await client.configGet('databases').catch(() => null);
      throw new RedisSetupError(
        `${where} has no DB ${db} (${err.reply}${count === null ? '' : `; it has ${count}, 0-${Number(count) - 1}`}): ` +
          `each rtpengine worker needs a DB of its own, DBs ${dbs[0]}-${dbs[dbs.length - 1]} here: give a lower /DB, fewer --workers, or a server with more databases`,
      );
    }
    if (o.requireEmpty) {
      const size = await client.dbsize(db);
      if (size > 0) {
        const [example] = await client.scan(db, '*');
        throw new RedisSetupError(
          `DB ${db} of ${where} holds ${size} key(s)${example === undefined ? '' : ` (e.g. "${example}")`}: an rtpengine worker restores whatever its DB ` +
            `and the DBs it follows hold as calls when it starts, and deletes the keys it cannot read; give --redis ${client.address}/N with DBs ` +
            `N to N+${dbs.length - 1} empty, or empty this one (redis-cli -h ${client.address.replace(/:(\d+)$/, ' -p $1')} -n ${db} FLUSHDB)`,
        );
      }
    }
  }
  let before: string | null;
  try {
    before = await client.configGet('notify-keyspace-events');
  } catch (err) {
    if (!(err instanceof RedisCommandError)) throw err;
    throw new RedisSetupError(
      `cannot read notify-keyspace-events on ${where} (${err.reply}): rtpengine's replication needs "${REDIS_KEYSPACE_EVENTS}" there and does not set it itself; ` +
        `set "notify-keyspace-events ${REDIS_KEYSPACE_EVENTS}" in that server's configuration and allow CONFIG, or use --redis without an address (rtp-bench starts its own)`,
    );
  }
  if (before === null) throw new RedisSetupError(`${where} has no notify-keyspace-events setting: is it Redis 2.8 or later?`);
  let now = before;
  if (!notifiesSetAndDel(before)) {
    const wanted = withSetAndDel(before);
    try {
      await client.configSet('notify-keyspace-events', wanted);
    } catch (err) {
      if (!(err instanceof RedisCommandError)) throw err;
      throw new RedisSetupError(
        `${where} has notify-keyspace-events "${before}" and refused to set "${wanted}" (${err.reply}): without K, g and $ no rtpengine worker learns ` +
          `another's calls, and nothing says so; set it in that server's configuration, or use --redis without an address`,
      );
    }
    now = (await client.configGet('notify-keyspace-events')) ?? '';
    if (!notifiesSetAndDel(now)) throw new RedisSetupError(`${where} took notify-keyspace-events "${wanted}" but now reports "${now}"`);
  }
  const version = infoField(await client.info('server'), 'redis_version');
  return { version, keyspaceEventsBefore: before, keyspaceEvents: now };
}

/**
 * Deletes every key in `dbs` whose name is one of run `runId`'s call-ids (rtpengine keys a call by its bare
 * call-id); returns how many. Nothing else is touched: an external server may hold other data.
 */
export async function removeRunKeys(client: RedisClient, dbs: readonly number[], runId: string): Promise<number> {
  let removed = 0;
  const pattern = `${runId.replace(/[*?[\]\\]/g, '\\$&')}-*`;
  for (const db of dbs) {
    const keys = (await client.scan(db, pattern)).filter((k) => isCallIdOf(runId, k));
    removed += await client.del(db, keys);
  }
  return removed;
}
