/**
 * Local rtpengine daemons: started in the foreground as children of this process (optionally inside a network
 * namespace), ready once they answer an ng ping, stopped by PID. Their log stays in memory (the last lines only) so
 * a failure can show it (spawnDaemon, src/stack/daemon.ts).
 */
import { createSocket } from 'node:dgram';
import { createServer, isIPv6, type AddressInfo } from 'node:net';
import { NgClient, NgUnreachableError } from '../ng/client.js';
import { netnsExec, runNodeIn } from './netns.js';
import { DaemonStartError, LOG_LINES_SHOWN, commandOutput, formatTail, spawnDaemon, type Daemon } from './daemon.js';

export interface StartRtpengineOptions {
  /** Path or name on PATH. Default "rtpengine". */
  binary?: string;
  /** Loopback or local address: rtpengine's media interface and its ng address. */
  address: string;
  /** ng port; default: a free one. */
  ngPort?: number;
  /**
   * --listen-http (its Prometheus /metrics, and its web CLI): a TCP port, 'auto' for a free one, or absent for none.
   * Not in a namespace (this process could not tell whether the port is free there).
   */
  httpPort?: number | 'auto';
  portMin: number;
  portMax: number;
  /** -L: 5 (notice) by default; 7 makes the control plane about 4x slower. */
  logLevel?: number;
  extraArgs?: string[];
  /** Default 10000. */
  readyTimeoutMs?: number;
  /**
   * A network namespace to run it in (through `ip netns exec`, which execs it: the PID stays rtpengine's). `address`
   * and `ngPort` are then that namespace's, so `ngPort` is required, this process does not check whether it is free,
   * and readiness is an ng ping sent from inside the namespace.
   */
  namespace?: string;
}

export interface LocalRtpengine {
  address: string;
  ngPort: number;
  /** Where its Prometheus text is served (http://address:port/metrics); null without --listen-http. */
  metricsUrl: string | null;
  pid: number;
  /** The program it runs (as given: a name on PATH or a path). */
  binary: string;
  /** As the binary reports it, e.g. "10.5.3.5-1+deb12u1". */
  version: string;
  /** The command line it runs with, binary excluded. */
  args: string[];
  /** The network namespace it runs in; null: this process's. */
  namespace: string | null;
  portMin: number;
  portMax: number;
  /** The last lines it logged (at most LOG_LINES_KEPT), oldest first. */
  logTail(lines?: number): string[];
  /** SIGTERM, then SIGKILL after 3 s; resolves once it has exited. Safe to call more than once. */
  stop(): Promise<void>;
}

export class RtpengineNotInstalledError extends Error {
  override readonly name = 'RtpengineNotInstalledError';
  constructor(readonly binary: string) {
    super(
      `rtpengine is not installed (cannot run "${binary}"): on Debian/Ubuntu run ` +
        '`apt-get install -y --no-install-recommends rtpengine-daemon`, or give the path of the rtpengine binary',
    );
  }
}

/** rtpengine exited before it was ready, or was not ready in time. */
export class RtpengineStartError extends DaemonStartError {
  override readonly name = 'RtpengineStartError';
}

const DEFAULT_READY_TIMEOUT_MS = 10_000;
/** One ping attempt during start-up; a refused one comes back at once, so this only bounds a silent daemon. */
const READY_PING_TIMEOUT_MS = 200;
/** Pause after a refused ping: rtpengine opens its ng socket some milliseconds after exec. */
const READY_RETRY_MS = 10;

/** A UDP port nobody has bound on `address` right now (the kernel's choice of an ephemeral port). */
export async function freeUdpPort(address: string): Promise<number> {
  const socket = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => resolve());
    });
    return socket.address().port;
  } finally {
    socket.close();
  }
}

/** A TCP port nobody listens on at `address` right now (the kernel's choice). */
export async function freeTcpPort(address: string): Promise<number> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Whether a UDP port on `address` can be bound now (fails when another socket, e.g. an rtpengine, holds it). */
async function udpPortFree(address: string, port: number): Promise<boolean> {
  const socket = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    try {
      socket.close();
    } catch {
      // Never bound.
    }
  }
}

/**
 * `count` consecutive UDP ports, starting at an even port, that are all free on `address` right now: a media
 * range for a daemon that other daemons on the machine (another test, another run) do not use. Picked at random
 * in [low, high) so that concurrent callers rarely collide. The default window lies above rtp-bench's own client
 * ports (20000-29999) and embedded workers (10000-19999) and below Linux's ephemeral ports (32768 up), which the
 * kernel hands to any socket bound to port 0.
 */
export async function freeUdpPortRange(address: string, count: number, low = 30000, high = 32768): Promise<{ min: number; max: number }> {
  if (!Number.isInteger(count) || count < 1 || high - low < count) throw new RangeError(`cannot fit ${count} ports into ${low}-${high - 1}`);
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = low + 2 * Math.floor((Math.random() * (high - low - count)) / 2);
    let free = true;
    for (let p = min; p < min + count && free; p++) free = await udpPortFree(address, p);
    if (free) return { min, max: min + count - 1 };
  }
  throw new Error(`found no ${count} free consecutive UDP ports on ${address} between ${low} and ${high - 1} in 50 tries`);
}

/** Runs `binary --version` (it prints "Version: 10.5.3.5-1+deb12u1" on stderr) and returns the version. */
export async function rtpengineVersion(binary = 'rtpengine'): Promise<string> {
  const { code, output: out } = await commandOutput(binary, ['--version']).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new RtpengineNotInstalledError(binary);
    if (err.code === 'EACCES') throw new Error(`"${binary}" is not executable: give the path of the rtpengine binary`);
    throw new Error(`cannot run "${binary} --version": ${err.message}`);
  });
  const m = /Version:\s*(\S+)/.exec(out);
  if (code !== 0 || !m) {
    throw new Error(`"${binary} --version" did not print an rtpengine version (exit code ${code}): is it rtpengine? It printed: ${out.trim().slice(0, 200) || 'nothing'}`);
  }
  return m[1]!;
}

function checkOptions(o: StartRtpengineOptions): void {
  const port = (what: string, p: number): void => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`${what} ${p} is not a UDP port (1-65535)`);
  };
  port('rtpengine media port-min', o.portMin);
  port('rtpengine media port-max', o.portMax);
  // rtpengine 10.5 starts with an inverted range and then fails every offer: refuse it here instead.
  if (o.portMin > o.portMax) throw new RangeError(`rtpengine media port range ${o.portMin}-${o.portMax} is inverted: port-min must not exceed port-max`);
  if (o.ngPort !== undefined) port('rtpengine ng port', o.ngPort);
  if (o.namespace !== undefined && o.ngPort === undefined) throw new RangeError('rtpengine in a network namespace needs an explicit ng port');
  if (o.ngPort !== undefined && o.ngPort >= o.portMin && o.ngPort <= o.portMax) {
    throw new RangeError(`rtpengine ng port ${o.ngPort} lies inside its media port range ${o.portMin}-${o.portMax}: choose another`);
  }
  const level = o.logLevel ?? 5;
  if (!Number.isInteger(level) || level < 0 || level > 7) throw new RangeError(`rtpengine log level ${level} must be 0-7`);
}

/** Tries with a new automatically chosen ng port when another socket took the one chosen before rtpengine bound it. */
const NG_PORT_ATTEMPTS = 3;

export async function startRtpengine(o: StartRtpengineOptions): Promise<LocalRtpengine> {
  if (o.ngPort !== undefined) return startRtpengineOnce(o);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRtpengineOnce(o);
    } catch (err) {
      // The port was free when picked (the kernel's ephemeral choice), but any socket may be given it next.
      const taken = err instanceof RtpengineStartError && err.logTail.some((l) => /NG control connection port .*Address already in use/.test(l));
      if (!taken || attempt >= NG_PORT_ATTEMPTS) throw err;
    }
  }
}

async function startRtpengineOnce(o: StartRtpengineOptions): Promise<LocalRtpengine> {
  checkOptions(o);
  const binary = o.binary ?? 'rtpengine';
  // Also proves the binary exists before anything is spawned for real.
  const version = await rtpengineVersion(binary);
  let ngPort = o.ngPort;
  if (ngPort === undefined) {
    do ngPort = await freeUdpPort(o.address);
    while (ngPort >= o.portMin && ngPort <= o.portMax);
  } else if (o.namespace === undefined && !(await udpPortFree(o.address, ngPort))) {
    // rtpengine binds its ng socket with address reuse, so it would start anyway and share the port with whoever
    // holds it, answering only some of the requests: refuse up front.
    throw new RtpengineStartError(
      `ng port ${o.address}:${ngPort} is already in use (another rtpengine?): stop that process or choose another port`,
      null,
      null,
      [],
    );
  }
  const hostPort = isIPv6(o.address) ? `[${o.address}]:${ngPort}` : `${o.address}:${ngPort}`;
  if (o.httpPort !== undefined && o.namespace !== undefined) throw new RangeError('rtpengine in a network namespace: no --listen-http from here');
  const httpPort = o.httpPort === 'auto' ? await freeTcpPort(o.address) : o.httpPort;
  const httpHostPort = httpPort === undefined ? null : isIPv6(o.address) ? `[${o.address}]:${httpPort}` : `${o.address}:${httpPort}`;
  const args = [
    '--config-file=none',
    `--interface=${o.address}`,
    `--listen-ng=${hostPort}`,
    '--foreground',
    '--log-stderr',
    '--table=-1',
    '--delete-delay=0',
    `--port-min=${o.portMin}`,
    `--port-max=${o.portMax}`,
    '-L',
    String(o.logLevel ?? 5),
    ...(httpHostPort === null ? [] : [`--listen-http=${httpHostPort}`]),
    ...(o.extraArgs ?? []),
  ];

  return launch({ binary, args, version, address: o.address, ngPort, hostPort, metricsUrl: httpHostPort === null ? null : `http://${httpHostPort}/metrics`, portMin: o.portMin, portMax: o.portMax, namespace: o.namespace ?? null, readyTimeoutMs: o.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS });
}

/**
 * Starts `old` again with its exact command line (the same addresses, ports, --redis and everything else): what a
 * supervisor does after a crash. Stops it first if it still runs. With --redis, the new process restores its own
 * calls from its DB at start (docs/rtpengine-redis.md). The old object stays stopped; use the one returned.
 */
export async function restartRtpengine(old: LocalRtpengine, o: { readyTimeoutMs?: number } = {}): Promise<LocalRtpengine> {
  await old.stop();
  const hostPort = isIPv6(old.address) ? `[${old.address}]:${old.ngPort}` : `${old.address}:${old.ngPort}`;
  return launch({ ...old, hostPort, readyTimeoutMs: o.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS });
}

interface Launch {
  binary: string;
  args: string[];
  version: string;
  address: string;
  ngPort: number;
  hostPort: string;
  metricsUrl: string | null;
  portMin: number;
  portMax: number;
  namespace: string | null;
  readyTimeoutMs: number;
}

/** Spawns the daemon with its final command line and waits for its first ng pong; on failure, stops it and throws with its log. */
async function launch(l: Launch): Promise<LocalRtpengine> {
  const { binary, args, hostPort } = l;
  // In a namespace: setpriv execs ip, which execs rtpengine (one PID throughout).
  let daemon: Daemon;
  try {
    daemon = await spawnDaemon([...(l.namespace === null ? [] : netnsExec(l.namespace)), binary, ...args]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw code === 'ENOENT' ? new RtpengineNotInstalledError(binary) : new Error(`cannot start "${binary}": ${(err as Error).message}`, { cause: err });
  }
  const { pid, exited, stop } = daemon;

  const readyTimeoutMs = l.readyTimeoutMs;
  const what = `rtpengine (${binary}, pid ${pid}) on ${hostPort}${l.namespace === null ? '' : ` in network namespace ${l.namespace}`}`;
  try {
    if (l.namespace === null) await waitNgReady(l.address, l.ngPort, readyTimeoutMs, () => daemon.exitStatus() !== null, exited);
    else await waitNgReadyIn(l.namespace, l.address, l.ngPort, readyTimeoutMs, exited);
  } catch (err) {
    const failedExit = daemon.exitStatus();
    await stop();
    const tail = daemon.logTail(LOG_LINES_SHOWN);
    if (failedExit !== null) {
      const { code, signal } = failedExit;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      // 10.5 exits with 255 and prints nothing for an unknown option.
      const hint = code === 255 && tail.length === 0 ? ' (rtpengine 10.5 does this silently for an unknown command-line option: check extraArgs)' : '';
      throw new RtpengineStartError(`${what} ${how} before answering an ng ping${hint}; its last log lines:\n${formatTail(tail)}`, code, signal, tail);
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new RtpengineStartError(
      `${what} did not answer an ng ping within ${readyTimeoutMs} ms (${why}) and was stopped; its last log lines:\n${formatTail(tail)}`,
      null,
      null,
      tail,
    );
  }

  return {
    address: l.address,
    ngPort: l.ngPort,
    metricsUrl: l.metricsUrl,
    pid,
    binary,
    version: l.version,
    args,
    portMin: l.portMin,
    portMax: l.portMax,
    namespace: l.namespace,
    logTail: (lines = LOG_LINES_SHOWN) => daemon.logTail(lines),
    stop,
  };
}

/** Pings until one is answered, the daemon exits, or the deadline passes (bounded, never a fixed sleep). */
export async function waitNgReady(address: string, port: number, timeoutMs: number, hasExited: () => boolean, exited: Promise<void>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const client = await NgClient.open({ host: address, port, timeoutMs: READY_PING_TIMEOUT_MS, retransmitMs: READY_PING_TIMEOUT_MS / 4, maxInFlight: 1 });
  let lastError: Error = new Error('no reply yet');
  try {
    for (;;) {
      if (hasExited()) throw new Error('exited');
      const left = deadline - performance.now();
      if (left <= 0) throw lastError;
      const ping = client.ping().then(
        () => null,
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      );
      const failure = await Promise.race([ping, exited.then(() => new Error('exited'))]);
      if (failure === null) return;
      lastError = failure;
      // A refused ping comes back at once: pause briefly (or until the daemon dies) before the next one.
      if (failure instanceof NgUnreachableError) {
        await Promise.race([new Promise((r) => setTimeout(r, Math.min(READY_RETRY_MS, left))), exited]);
      }
    }
  } finally {
    await client.close();
  }
}

/**
 * waitNgReady for a daemon inside `namespace`: a Node child in the namespace runs it (Node cannot enter a namespace
 * itself). Rejects with its last error; `giveUp` (the daemon died) kills the child and rejects with "exited".
 */
async function waitNgReadyIn(namespace: string, host: string, port: number, timeoutMs: number, giveUp?: Promise<void>): Promise<void> {
  const source = `
    import { waitNgReady } from ${JSON.stringify(import.meta.url)};
    const [host, port, timeoutMs] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
    try {
      await waitNgReady(host, port, timeoutMs, () => false, new Promise(() => {}));
    } catch (err) {
      process.stderr.write(err.message);
      process.exitCode = 1;
    }
  `;
  // The child's own deadline ends it; the kill timeout only bounds a wedged one. `giveUp` (the daemon died) kills it.
  const stopProbe = new AbortController();
  let gaveUp = false;
  void giveUp?.then(() => {
    gaveUp = true;
    stopProbe.abort();
  });
  const r = await runNodeIn(namespace, source, [host, String(port), String(timeoutMs)], { timeoutMs: timeoutMs + 5000, signal: stopProbe.signal });
  if (gaveUp) throw new Error('exited');
  if (r.code !== 0) throw new Error(r.stderr.trim() || `the ng ping from namespace ${namespace} ${r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`}`);
}
