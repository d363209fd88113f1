/**
 * Network namespaces for a local mesh: one namespace per member (client, ingress, w1, w2, ...), all plugged into a
 * bridge that lives in a namespace of its own, on a private /24 chosen per run. Nothing is added to the root
 * namespace: no veth end, no address, no route. Every name starts with `rtpb-<short run id>-`, so a crashed run's
 * namespaces can be found (listLeftovers) and removed (removeLeftovers).
 *
 * Layout (for members client, ingress, w1):
 *
 *     rtpb-<id>-br:      br0 ── v-client, v-ingress, v-w1       (the bridge side of each veth pair; no address)
 *     rtpb-<id>-client:  lo, eth0 10.R.S.1/24
 *     rtpb-<id>-ingress: lo, eth0 10.R.S.2/24
 *     rtpb-<id>-w1:      lo, eth0 10.R.S.3/24
 *
 * Commands run inside a namespace through `ip netns exec <ns> <command>`, which execs the command (no fork): the PID
 * of the spawned child is the command's own, so it can be signalled directly.
 */
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';

export const NETNS_PREFIX = 'rtpb-';
const IP = 'ip';
/** A member's end of its veth pair, inside the member's namespace. */
const MEMBER_IFACE = 'eth0';
const BRIDGE_IFACE = 'br0';
/** One `ip` command; they take milliseconds, so this only bounds a wedged one. */
const IP_TIMEOUT_MS = 10_000;
/** Linux interface names hold at most 15 characters; the bridge side is named `v-<member>`. */
const IFNAMSIZ = 15;

export class NetnsError extends Error {
  override readonly name = 'NetnsError';
}

export const NOT_ROOT_MESSAGE = '--mesh local needs root (network namespaces): run as root or use --mesh rest/kubernetes';

/** Throws the one-line NOT_ROOT_MESSAGE unless this process runs as root; call it before creating anything. */
export function requireRoot(): void {
  if (typeof process.geteuid === 'function' && process.geteuid() !== 0) throw new NetnsError(NOT_ROOT_MESSAGE);
}

/** The part of a run id that goes into namespace names: its last 6 letters or digits, lower case. */
export function shortRunId(runId: string): string {
  const id = runId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(-6);
  if (id.length === 0) throw new NetnsError(`run id "${runId}" has no letters or digits to name its network namespaces after`);
  return id;
}

/** `rtpb-<short run id>`: every namespace of the run starts with this and a dash. */
export function runPrefix(runId: string): string {
  return `${NETNS_PREFIX}${shortRunId(runId)}`;
}

/** The command prefix that runs a command inside `namespace` (it execs the command: same PID). */
export function netnsExec(namespace: string): string[] {
  return [IP, 'netns', 'exec', namespace];
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Kills the command (SIGKILL) after this long; default 10000 ms. */
  timeoutMs?: number;
  /** Kills the command (SIGKILL) when aborted; the result then says signal SIGKILL. */
  signal?: AbortSignal;
}

/** Runs a command to completion and collects its output (it never throws for a non-zero exit; see `check`). */
export function run(command: string, args: string[], o: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killIt = (): void => void child.kill('SIGKILL');
    const timer = setTimeout(killIt, o.timeoutMs ?? IP_TIMEOUT_MS);
    o.signal?.addEventListener('abort', killIt, { once: true });
    if (o.signal?.aborted) killIt();
    const done = (): void => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', killIt);
    };
    child.once('error', (err) => {
      done();
      reject(new NetnsError(`cannot run "${command}": ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      done();
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs `command` inside `namespace`. */
export function runIn(namespace: string, command: string, args: string[], o: RunOptions = {}): Promise<CommandResult> {
  const [ip, ...prefix] = netnsExec(namespace);
  return run(ip!, [...prefix, command, ...args], o);
}

/**
 * Runs a Node ES module given as source text inside `namespace` (`node --input-type=module -e`); `args` arrive as
 * process.argv.slice(1). The way to use a socket in another namespace: Node itself cannot switch namespaces.
 * Imports must be absolute `file://` URLs.
 */
export function runNodeIn(namespace: string, source: string, args: string[] = [], o: RunOptions = {}): Promise<CommandResult> {
  return runIn(namespace, process.execPath, ['--input-type=module', '-e', source, '--', ...args], o);
}

/** Throws with the command and its stderr unless it exited with 0. */
function check(what: string, r: CommandResult): CommandResult {
  if (r.code !== 0) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
    throw new NetnsError(`${what} ${how}: ${r.stderr.trim() || r.stdout.trim() || 'no output'}`);
  }
  return r;
}

async function ip(args: string[]): Promise<string> {
  return check(`"ip ${args.join(' ')}"`, await run(IP, args)).stdout;
}

/** The network namespaces that exist now (names only), from `ip netns list`. */
export async function listNamespaces(): Promise<string[]> {
  const out = await ip(['netns', 'list']);
  // Lines look like "name" or "name (id: 3)".
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

/**
 * rtp-bench's namespaces, e.g. those a crashed run left behind: with the default prefix every run's ("rtpb-..."),
 * with a run's prefix (runPrefix(runId), "rtpb-<id>") that run's only.
 */
export async function listLeftovers(prefix: string = NETNS_PREFIX): Promise<string[]> {
  if (!prefix.startsWith(NETNS_PREFIX)) throw new NetnsError(`refusing to look for namespaces outside rtp-bench's own ("${NETNS_PREFIX}..."): "${prefix}"`);
  const start = prefix === NETNS_PREFIX || prefix.endsWith('-') ? prefix : `${prefix}-`;
  return (await listNamespaces()).filter((n) => n.startsWith(start));
}

/** The PIDs of the processes inside `namespace` (`ip netns pids`). */
export async function namespacePids(namespace: string): Promise<number[]> {
  const r = await run(IP, ['netns', 'pids', namespace]);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => Number.parseInt(l, 10))
    .filter((p) => Number.isInteger(p) && p > 0);
}

/**
 * Deletes one namespace; first SIGKILLs any process still inside it (a crashed run's daemons, which would otherwise
 * keep the namespace and its sockets alive after its name is gone). Missing namespaces are fine.
 */
export async function deleteNamespace(namespace: string): Promise<void> {
  for (const pid of await namespacePids(namespace)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  const r = await run(IP, ['netns', 'delete', namespace]);
  if (r.code !== 0 && !/No such file or directory/.test(r.stderr)) check(`"ip netns delete ${namespace}"`, r);
}

/**
 * Removes the namespaces listLeftovers(prefix) finds, after SIGKILLing what runs inside; returns their names. With
 * the default prefix that includes the namespaces of runs still in progress: only for a machine where none runs.
 */
export async function removeLeftovers(prefix: string = NETNS_PREFIX): Promise<string[]> {
  const names = await listLeftovers(prefix);
  // Members before bridges: deleting a member also deletes the bridge side of its veth pair.
  names.sort((a, b) => Number(a.endsWith('-br')) - Number(b.endsWith('-br')));
  for (const n of names) await deleteNamespace(n);
  return names;
}

/** IPv4 networks in use in this (the root) namespace: its interface addresses and its routes. */
async function rootNetworks(): Promise<Array<{ base: number; bits: number }>> {
  const nets: Array<{ base: number; bits: number }> = [];
  const addrs = await ip(['-o', '-4', 'addr', 'show']);
  for (const m of addrs.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\/(\d+)/g)) nets.push({ base: ipv4ToInt(m[1]!), bits: Number(m[2]) });
  const routes = await ip(['-4', 'route', 'show', 'table', 'all']);
  for (const line of routes.split('\n')) {
    const m = /^(?:\S+\s+)?(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?\b/.exec(line.trim());
    if (m) nets.push({ base: ipv4ToInt(m[1]!), bits: m[2] === undefined ? 32 : Number(m[2]) });
  }
  return nets;
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function overlaps(a: { base: number; bits: number }, b: { base: number; bits: number }): boolean {
  const bits = Math.min(a.bits, b.bits);
  if (bits === 0) return false; // a default route overlaps everything and says nothing about addresses in use
  const mask = bits === 32 ? 0xffffffff : ~((1 << (32 - bits)) - 1) >>> 0;
  return ((a.base & mask) >>> 0) === ((b.base & mask) >>> 0);
}

/**
 * A random 10.R.S.0/24 that no address or route of the root namespace overlaps. The mesh's namespaces never see the
 * root namespace's routes, so this is not needed for correctness; it keeps addresses in logs and error messages
 * unambiguous on a machine that also uses 10/8.
 */
export async function chooseSubnet(): Promise<string> {
  const used = await rootNetworks();
  const bytes = new Uint8Array(2);
  for (let attempt = 0; attempt < 100; attempt++) {
    randomFillSync(bytes);
    const candidate = `10.${bytes[0]!}.${bytes[1]!}`;
    const net = { base: ipv4ToInt(`${candidate}.0`), bits: 24 };
    if (!used.some((u) => overlaps(u, net))) return candidate;
  }
  throw new NetnsError('found no unused 10.x.y.0/24 for the mesh in 100 tries: the root namespace seems to use all of 10/8');
}

export interface NetnsMember {
  /** The role: "client", "ingress", "w1", ... */
  role: string;
  namespace: string;
  /** Its address on the bridge (its eth0). */
  address: string;
}

export interface CreateNetworkOptions {
  runId: string;
  /** Member roles in order (they get .1, .2, ... of the subnet): e.g. ["client", "ingress", "w1", "w2"]. */
  roles: string[];
  /** The first three octets of the /24 ("10.R.S"); default: chooseSubnet(). */
  subnet?: string;
  onStatus?: (line: string) => void;
}

export interface NetnsNetwork {
  /** `rtpb-<short run id>`. */
  prefix: string;
  bridgeNamespace: string;
  /** "10.R.S.0/24". */
  subnet: string;
  members: NetnsMember[];
  member(role: string): NetnsMember;
  /** Everything this network made, in creation order (for diagnostics). */
  namespaces(): string[];
  /** Deletes every namespace it created (killing what still runs inside); idempotent, tolerates partial creation. */
  remove(): Promise<void>;
}

function checkRole(role: string): void {
  if (!/^[a-z][a-z0-9]*$/.test(role)) throw new NetnsError(`namespace role "${role}" must be lower-case letters and digits, starting with a letter`);
  if (role === 'br') throw new NetnsError('namespace role "br" is the bridge namespace\'s own');
  if (`v-${role}`.length > IFNAMSIZ) throw new NetnsError(`namespace role "${role}" is too long: the bridge's interface "v-${role}" exceeds ${IFNAMSIZ} characters`);
}

/**
 * Creates the bridge namespace and one namespace per role, each with loopback up and an address on the bridge.
 * On any failure everything made so far is removed and the error is thrown.
 */
export async function createNetwork(o: CreateNetworkOptions): Promise<NetnsNetwork> {
  requireRoot();
  const prefix = runPrefix(o.runId);
  if (o.roles.length === 0) throw new NetnsError('a network needs at least one member');
  if (o.roles.length > 253) throw new NetnsError(`a /24 holds at most 253 members, not ${o.roles.length}`);
  for (const r of o.roles) checkRole(r);
  if (new Set(o.roles).size !== o.roles.length) throw new NetnsError(`namespace roles must be distinct: ${o.roles.join(', ')}`);
  const subnet = o.subnet ?? (await chooseSubnet());
  if (!/^10\.\d{1,3}\.\d{1,3}$/.test(subnet) || subnet.split('.').some((x) => Number(x) > 255)) {
    throw new NetnsError(`subnet "${subnet}" must be the first three octets of a 10.x.y.0/24, e.g. "10.23.5"`);
  }
  const bridgeNamespace = `${prefix}-br`;
  const members: NetnsMember[] = o.roles.map((role, i) => ({ role, namespace: `${prefix}-${role}`, address: `${subnet}.${i + 1}` }));
  const created: string[] = [];
  let removing: Promise<void> | null = null;

  const network: NetnsNetwork = {
    prefix,
    bridgeNamespace,
    subnet: `${subnet}.0/24`,
    members,
    member(role: string): NetnsMember {
      const m = members.find((x) => x.role === role);
      if (!m) throw new NetnsError(`no namespace for "${role}" in ${prefix} (it has ${o.roles.join(', ')})`);
      return m;
    },
    namespaces: () => [...created],
    remove(): Promise<void> {
      removing ??= (async () => {
        const errors: unknown[] = [];
        // Members first (deleting one deletes its veth pair), the bridge last; each one whatever happened to the others.
        const bridge = created.filter((ns) => ns === bridgeNamespace);
        const others = created.filter((ns) => ns !== bridgeNamespace);
        for (const group of [others, bridge]) {
          const results = await Promise.allSettled(group.map((ns) => deleteNamespace(ns)));
          for (const r of results) if (r.status === 'rejected') errors.push(r.reason);
        }
        if (errors.length > 0) {
          throw new NetnsError(`could not remove every namespace of ${prefix}: ${errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')}`);
        }
      })();
      return removing;
    },
  };

  const add = async (ns: string): Promise<void> => {
    const r = await run(IP, ['netns', 'add', ns]);
    if (r.code !== 0) {
      const exists = /File exists/.test(r.stderr);
      throw new NetnsError(
        exists
          ? `network namespace ${ns} already exists (another run with the same id, or a crashed one: remove rtp-bench's leftovers with \`ip netns delete ${ns}\`)`
          : `"ip netns add ${ns}" failed: ${r.stderr.trim() || `exit code ${r.code}`}`,
      );
    }
    created.push(ns);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  };

  try {
    o.onStatus?.(`creating network namespaces ${prefix}-{br,${o.roles.join(',')}} on ${subnet}.0/24`);
    await add(bridgeNamespace);
    await ip(['-n', bridgeNamespace, 'link', 'add', BRIDGE_IFACE, 'type', 'bridge']);
    await ip(['-n', bridgeNamespace, 'link', 'set', BRIDGE_IFACE, 'up']);
    // Members in parallel (about 20 ms per `ip` command); all of them settle before a failure is acted on, so the
    // cleanup below sees every namespace that was made.
    const results = await Promise.allSettled(
      members.map(async (m) => {
        await add(m.namespace);
        const outer = `v-${m.role}`;
        // Both ends are made inside the namespaces: the pair never exists in the root namespace.
        await ip(['-n', bridgeNamespace, 'link', 'add', outer, 'type', 'veth', 'peer', 'name', MEMBER_IFACE, 'netns', m.namespace]);
        await ip(['-n', bridgeNamespace, 'link', 'set', outer, 'master', BRIDGE_IFACE, 'up']);
        await ip(['-n', m.namespace, 'addr', 'add', `${m.address}/24`, 'dev', MEMBER_IFACE]);
        await ip(['-n', m.namespace, 'link', 'set', MEMBER_IFACE, 'up']);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    try {
      await network.remove();
    } catch (cleanupErr) {
      throw new NetnsError(`${err instanceof Error ? err.message : String(err)}; and then the cleanup failed: ${(cleanupErr as Error).message}`, { cause: err });
    }
    throw err;
  }
  return network;
}
