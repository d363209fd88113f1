/**
 * Local l7mp proxies (@l7mp/l7mp 0.5.7): started from a config object (written as JSON to a file in a private
 * temporary folder, removed once the proxy runs), optionally inside a network namespace, with the REST controller
 * bound to one address (loopback unless the caller says otherwise), ready once the controller answers
 * GET /api/v1/config listing every configured listener, stopped by PID. Also the proxy configs of the mesh's two
 * roles (ingress gateway, worker sidecar): one template each, which a Kubernetes ConfigMap renders too.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isIP, isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_MESH_OPTIONS, type MeshOptions } from '../mesh/model.js';
import { netnsExec, run, runNodeIn, type CommandResult } from './netns.js';
import { DaemonStartError, LOG_LINES_SHOWN, formatTail, spawnDaemon, type Daemon } from './daemon.js';

/** The operator programs every proxy on this port (docs/l7mp-behaviour.md#running-a-proxy). */
export const L7MP_CONTROLLER_PORT = 1234;
/** rtpengine's ng port in a worker (pod or namespace), and where the worker proxy exposes it. */
export const RTPENGINE_NG_PORT = 22222;

/** An l7mp object (listener, cluster, rule list ...) as the static config and the REST API spell it. */
export type L7mpObject = { [key: string]: L7mpValue };
export type L7mpValue = string | number | boolean | null | L7mpValue[] | L7mpObject;

/** l7mp's static configuration (io.l7mp.api.v1.Config). */
export interface L7mpConfig {
  admin: { log_level?: string; log_file?: string; strict?: boolean };
  listeners?: L7mpObject[];
  clusters?: L7mpObject[];
  rulelists?: L7mpObject[];
  rules?: L7mpObject[];
  [key: string]: L7mpValue | undefined | L7mpConfig['admin'];
}

export type L7mpLogLevel = 'silly' | 'verbose' | 'info' | 'notice' | 'warn' | 'error';

/** An l7mp proxy exited before its controller answered, or did not answer in time. */
export class L7mpProxyStartError extends DaemonStartError {
  override readonly name = 'L7mpProxyStartError';
}

/**
 * The REST controller: HTTP on `port`, routed to the L7mpController. There is no address here: l7mp 0.5.7's HTTP
 * listener ignores one and listens on every address (docs/l7mp-behaviour.md#running-a-proxy); startL7mpProxy binds
 * it to `controllerAddress` instead. In Kubernetes it must listen on the pod IP, where the operator calls it.
 */
export function controllerListener(port = L7MP_CONTROLLER_PORT): L7mpObject {
  return {
    name: 'controller-listener',
    spec: { protocol: 'HTTP', port },
    rules: [{ action: { route: { destination: { name: 'l7mp-controller', spec: { protocol: 'L7mpController' } } } } }],
  };
}

/** The ingress gateway: the controller and nothing else (the per-call VirtualServices add its listeners). */
export function ingressProxyConfig(o: { controllerPort?: number } = {}): L7mpConfig {
  return { admin: { log_level: 'warn' }, listeners: [controllerListener(o.controllerPort)] };
}

export interface WorkerProxyConfigOptions {
  controllerPort?: number;
  /** JSONSocket (over UDP) listener ports and their rule lists; default the mesh model's (19000/19001). */
  ports?: MeshOptions['workerPorts'];
  rulelists?: MeshOptions['workerRulelists'];
  /**
   * The address the JSONSocket listeners bind; default: every address. Binding lets several workers share one
   * network namespace on the same ports (l7mp binds its UDP sockets with SO_REUSEADDR: two wildcard binds of one
   * port both succeed and the kernel delivers to either).
   */
  address?: string;
  /**
   * Exposes rtpengine's ng control port through the proxy: a UDP listener on `listen` routed to `rtpengine`
   * (default 127.0.0.1:22222, where rtpengine listens in the worker). `listen.address` binds it to one address
   * (locally the worker namespace's, so it cannot shadow rtpengine's own socket); null: no ng listener.
   */
  ng?: { listen: { address?: string; port: number }; rtpengine?: { address: string; port: number } } | null;
  /** `options.track` of the JSONSocket listeners: seconds an ended session stays listed; default: not tracked. */
  trackSeconds?: number;
}

/**
 * The worker sidecar: the controller, JSONSocket listeners for RTP and RTCP whose (initially empty) rule lists the
 * per-call Rules are inserted into, and optionally rtpengine's ng port. The one template for the worker: a local
 * mesh starts it as it is, a Kubernetes ConfigMap carries renderL7mpConfigYaml(workerProxyConfig(...)).
 */
export function workerProxyConfig(o: WorkerProxyConfigOptions = {}): L7mpConfig {
  const ports = o.ports ?? DEFAULT_MESH_OPTIONS.workerPorts;
  const rulelists = o.rulelists ?? DEFAULT_MESH_OPTIONS.workerRulelists;
  const options: L7mpObject | null = o.trackSeconds === undefined ? null : { track: o.trackSeconds };
  const mediaListener = (kind: 'rtp' | 'rtcp'): L7mpObject => ({
    name: `worker-${kind}-listener`,
    spec: { protocol: 'JSONSocket', transport: { protocol: 'UDP', port: ports[kind], ...(o.address === undefined ? {} : { address: o.address }) } },
    rules: rulelists[kind],
    ...(options ? { options } : {}),
  });
  const config: L7mpConfig = {
    admin: { log_level: 'warn' },
    listeners: [controllerListener(o.controllerPort), mediaListener('rtp'), mediaListener('rtcp')],
    rulelists: [
      { name: rulelists.rtp, rules: [] },
      { name: rulelists.rtcp, rules: [] },
    ],
  };
  if (o.ng) {
    const target = o.ng.rtpengine ?? { address: '127.0.0.1', port: RTPENGINE_NG_PORT };
    config.clusters = [{ name: 'rtpengine-ng', spec: { protocol: 'UDP', port: target.port }, endpoints: [{ spec: { address: target.address } }] }];
    config.listeners!.push({
      name: 'worker-ng-listener',
      // server mode: one session per ng client socket, each with its own socket towards rtpengine.
      spec: { protocol: 'UDP', ...(o.ng.listen.address ? { address: o.ng.listen.address } : {}), port: o.ng.listen.port, options: { mode: 'server' } },
      rules: [{ action: { route: { destination: 'rtpengine-ng' } } }],
    });
  }
  return config;
}

/** JSON.stringify, except that a number JSON cannot carry (NaN, Infinity) is an error instead of a silent null. */
function configJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v === 'number' && !Number.isFinite(v)) throw new RangeError(`cannot write ${v} in an l7mp config`);
      return v;
    },
    indent,
  );
}

/**
 * The config as l7mp reads a file whose name does not end in .yaml (with JSON.parse): what startL7mpProxy writes.
 */
export function renderL7mpConfigJson(config: L7mpConfig): string {
  return `${configJson(config, 2)}\n`;
}

/**
 * The config as YAML that l7mp's YAML parser (yamljs, used for a `-c` file ending in .yaml) reads back to the same
 * object, for a Kubernetes ConfigMap: the top-level keys, then each value, or each item of a list, as one line of
 * JSON (JSON is YAML, and JSON.stringify does all the quoting). Not one multi-line JSON document: yamljs cannot read
 * JSON spread over several lines. `comment` lines go on top.
 */
export function renderL7mpConfigYaml(config: L7mpConfig, comment?: string): string {
  const out: string[] = comment ? comment.split('\n').map((l) => `# ${l}`.trimEnd()) : [];
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue;
    if (Array.isArray(value) && value.length > 0) out.push(`${configJson(key)}:`, ...value.map((item) => `  - ${configJson(item)}`));
    else out.push(`${configJson(key)}: ${configJson(value)}`);
  }
  return `${out.join('\n')}\n`;
}

/** The port of the config's L7mpController listener. */
export function controllerPortOf(config: L7mpConfig): number {
  for (const l of config.listeners ?? []) {
    if (JSON.stringify(l['rules'] ?? null).includes('"L7mpController"')) {
      const port = (l['spec'] as L7mpObject | undefined)?.['port'];
      if (typeof port === 'number') return port;
    }
  }
  throw new RangeError('the l7mp config has no controller listener (HTTP routed to L7mpController): the proxy could not be programmed');
}

/** The folder of the installed @l7mp/l7mp package: the proxy's working directory. */
export function l7mpPackageDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('@l7mp/l7mp/package.json'));
  } catch {
    throw new Error('the l7mp proxy is not installed (@l7mp/l7mp): run `npm install` in rtp-bench\'s folder');
  }
}

export interface StartL7mpProxyOptions {
  /** For messages and the config file's name, e.g. "ingress", "w1". */
  name: string;
  config: L7mpConfig;
  /** A network namespace to run in (through `ip netns exec`, which execs: the PID is the proxy's). */
  namespace?: string;
  /** -s: validate every REST request against l7mp's OpenAPI schema. Default true. */
  strict?: boolean;
  /** -l; default "warn". */
  logLevel?: L7mpLogLevel;
  /** Default 30000 (schema compilation alone takes 4-6 s). */
  readyTimeoutMs?: number;
  /** Default: l7mpPackageDir(). */
  packageDir?: string;
  /**
   * The one address the REST controller listens on; default 127.0.0.1 (whoever reaches the controller can program
   * the proxy). "0.0.0.0" or "::": every address. l7mp 0.5.7 would listen on every address whatever its config says:
   * the proxy is started with a preload (controllerBindPreload) that passes this address to that one listen call.
   */
  controllerAddress?: string;
}

export interface L7mpProxy {
  name: string;
  pid: number;
  namespace: string | null;
  controllerPort: number;
  /** The address the controller listens on (see StartL7mpProxyOptions.controllerAddress). */
  controllerAddress: string;
  /** The config file it was started from: removed once it was ready (it has read it by then). */
  configFile: string;
  /** From spawn until the controller answered with every listener in place, ms. */
  startMs: number;
  /** The last lines it logged, oldest first. */
  logTail(lines?: number): string[];
  /** Resolves when it has exited (stopped, or on its own). */
  exited: Promise<void>;
  /** How it exited; null while it runs. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null;
  /** SIGTERM, then SIGKILL after 3 s; resolves once it has exited and its output is drained. Safe to call more than once. */
  stop(): Promise<void>;
}

const DEFAULT_READY_TIMEOUT_MS = 30_000;

/**
 * Polls GET <url> (http, no keep-alive) until it answers 200 with a JSON body whose `listeners` include every
 * expected name, or the deadline passes; runs as its own Node process so that it can run inside a namespace.
 */
const READY_PROBE = `
  import { get } from 'node:http';
  const url = process.argv[1];
  const expected = JSON.parse(process.argv[2]);
  const deadline = performance.now() + Number(process.argv[3]);
  const attempt = () => new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => {
        if (res.statusCode !== 200) return resolve('HTTP ' + res.statusCode + ': ' + body.slice(0, 300));
        try {
          const have = new Set((JSON.parse(body).listeners ?? []).map((l) => l.name));
          const missing = expected.filter((n) => !have.has(n));
          resolve(missing.length === 0 ? null : 'listeners not there yet: ' + missing.join(', '));
        } catch (err) { resolve('unreadable answer: ' + err.message); }
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
    req.on('error', (err) => resolve(err.code ?? err.message));
  });
  for (;;) {
    const problem = await attempt();
    if (problem === null) break;
    if (performance.now() >= deadline) { process.stderr.write(problem); process.exitCode = 1; break; }
    // Connection refused comes back at once: pause briefly between attempts.
    await new Promise((r) => setTimeout(r, 50));
  }
`;

/** Runs READY_PROBE (in `namespace`, or here); resolves once ready, rejects with the last problem, or when `giveUp` resolves. */
async function waitControllerReady(namespace: string | undefined, url: string, listeners: string[], timeoutMs: number, giveUp: Promise<void>): Promise<void> {
  const stopProbe = new AbortController();
  let gaveUp = false;
  void giveUp.then(() => {
    gaveUp = true;
    stopProbe.abort();
  });
  const args = [url, JSON.stringify(listeners), String(timeoutMs)];
  const o = { timeoutMs: timeoutMs + 5000, signal: stopProbe.signal };
  const r: CommandResult =
    namespace === undefined
      ? await run(process.execPath, ['--input-type=module', '-e', READY_PROBE, '--', ...args], o)
      : await runNodeIn(namespace, READY_PROBE, args, o);
  if (gaveUp) throw new Error('exited');
  if (r.code !== 0) throw new Error(r.stderr.trim() || (r.signal ? `the readiness probe was killed by ${r.signal}` : `the readiness probe exited with code ${r.code}`));
}

/**
 * A module for node's --import, run in the proxy before l7mp: its HTTP listener calls server.listen(port, callback),
 * which listens on every address; this adds `address` to the call that listens on `port` (the controller's), and
 * leaves every other listen call alone. A data: URL, so there is no file to ship or to leave behind.
 */
export function controllerBindPreload(port: number, address: string): string {
  const code = `import http from 'node:http';
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  if (args[0] === ${port} && typeof args[1] !== 'string') return listen.call(this, args[0], ${JSON.stringify(address)}, ...args.slice(1));
  return listen.apply(this, args);
};`;
  return `data:text/javascript,${encodeURIComponent(code)}`;
}

/** Where a client reaches a controller listening on `address` (a wildcard is reached over loopback). */
function controllerUrlHost(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '[::1]';
  return isIPv6(address) ? `[${address}]` : address;
}

export async function startL7mpProxy(o: StartL7mpProxyOptions): Promise<L7mpProxy> {
  const controllerPort = controllerPortOf(o.config);
  const packageDir = o.packageDir ?? l7mpPackageDir();
  const strict = o.strict ?? true;
  const logLevel = o.logLevel ?? 'warn';
  const controllerAddress = o.controllerAddress ?? '127.0.0.1';
  if (!isIP(controllerAddress)) throw new RangeError(`the l7mp controller address must be an IP address, not "${controllerAddress}"`);
  const text = renderL7mpConfigJson(o.config);
  // A folder only this user can read (mkdtemp: unpredictable name, mode 0700). The name must not end in .yaml:
  // l7mp reads such a file with its YAML parser, anything else with JSON.parse.
  const dir = await mkdtemp(join(tmpdir(), 'rtp-bench-l7mp-'));
  const configFile = join(dir, `${o.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
  const removeConfig = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await writeFile(configFile, text, { mode: 0o600 });
  } catch (err) {
    await removeConfig();
    throw err;
  }

  const argv = [
    ...(o.namespace === undefined ? [] : netnsExec(o.namespace)),
    process.execPath,
    `--import=${controllerBindPreload(controllerPort, controllerAddress)}`,
    'l7mp-proxy.js',
    '-c',
    configFile,
    '-l',
    logLevel,
    ...(strict ? ['-s'] : []),
  ];
  const t0 = performance.now();
  let daemon: Daemon;
  try {
    daemon = await spawnDaemon(argv, { cwd: packageDir });
  } catch (err) {
    await removeConfig();
    throw new L7mpProxyStartError(`cannot start the l7mp proxy "${o.name}": ${(err as Error).message}`, null, null, []);
  }
  const { pid, exited, stop } = daemon;

  const readyTimeoutMs = o.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const where = o.namespace === undefined ? '' : ` in network namespace ${o.namespace}`;
  const what = `the l7mp proxy "${o.name}" (pid ${pid}${where}, controller port ${controllerPort})`;
  const listeners = (o.config.listeners ?? []).map((l) => String(l['name']));
  try {
    await waitControllerReady(o.namespace, `http://${controllerUrlHost(controllerAddress)}:${controllerPort}/api/v1/config`, listeners, readyTimeoutMs, exited);
  } catch (err) {
    const failedExit = daemon.exitStatus();
    await stop();
    await removeConfig();
    const tail = daemon.logTail(LOG_LINES_SHOWN);
    if (failedExit !== null) {
      const { code, signal } = failedExit;
      throw new L7mpProxyStartError(
        `${what} ${signal ? `was killed by ${signal}` : `exited with code ${code}`} before its controller answered; its last log lines:\n${formatTail(tail)}`,
        code,
        signal,
        tail,
      );
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new L7mpProxyStartError(`${what} was not ready within ${readyTimeoutMs} ms (${why}) and was stopped; its last log lines:\n${formatTail(tail)}`, null, null, tail);
  }
  // It has read its config (and every listener runs): the file is no longer needed.
  await removeConfig();
  return {
    name: o.name,
    pid,
    namespace: o.namespace ?? null,
    controllerPort,
    controllerAddress,
    configFile,
    startMs: performance.now() - t0,
    logTail: (lines = LOG_LINES_SHOWN) => daemon.logTail(lines),
    exited,
    exitStatus: () => daemon.exitStatus(),
    stop,
  };
}
