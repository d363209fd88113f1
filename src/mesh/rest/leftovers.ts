/**
 * What a crashed (or killed) run left on the proxies, found and removed over REST. A run cleans up after itself; a
 * run that died has no provisioner left that knows what it made, so findLeftovers reads each proxy's
 * GET /api/v1/config for the names of rtp-bench's objects (parseObjectName), and removeLeftovers deletes them once
 * the leftover listeners' sessions have settled. For `rtp-bench cleanup --mesh rest` (and RestProvisioner).
 */
import { MeshError, type MeshCost } from '../provisioner.js';
import { INGRESS_RETRY_WINDOW_MS, type L7mpKind } from '../objects.js';
import type { MeshProxy, RestRequest, ToleratedAnswer } from './operator.js';
import { combined, RestClient, runSequences, type ProxyRef, type RestClientOptions, type Sequence } from './client.js';
import { DEFAULT_READY_POLL_INTERVAL_MS, pollUntilSettled } from './sessions.js';

/** An object on a proxy that belongs to an rtp-bench call (by its name). */
export interface Leftover {
  /** MeshProxy.name. */
  proxy: string;
  restUrl: string;
  /** Where it is in GET /api/v1/config. */
  type: 'listener' | 'cluster' | 'rule';
  /** Its name on the proxy. */
  name: string;
  /** The l7mp.io object it was made for: a listener is a VirtualService, a cluster a Target or a compact
   * VirtualService's inline cluster (`<listener>/cluster`), a rule a Rule. */
  kind: L7mpKind;
  /** That object's namespace and name (objects.ts objectName: `<role>-<rtp|rtcp>-<what>-<call>-<tag>`). */
  namespace: string;
  object: string;
  /** Rules: the rule lists that hold it (removed from them first). */
  rulelists: string[];
}

const SEGMENT = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?';
const OBJECT_NAME = `(?:ingress-(?:rtp|rtcp)-(?:vsvc|target)|worker-(?:rtp|rtcp)-rule)-${SEGMENT}`;
const OPERATOR_NAME = new RegExp(`^/l7mp\\.io/v1/(VirtualService|Target|Rule)/(${SEGMENT})/(${OBJECT_NAME})(/cluster)?$`);
const SELFLINK_NAME = new RegExp(`^/apis/l7mp\\.io/v1/namespaces/(${SEGMENT})/(virtualservices|targets|rules)/(${OBJECT_NAME})(/cluster)?$`);
const PLURAL_KIND: Record<string, L7mpKind> = { virtualservices: 'VirtualService', targets: 'Target', rules: 'Rule' };
const OBJECT_KIND: Record<string, L7mpKind> = { vsvc: 'VirtualService', target: 'Target', rule: 'Rule' };

/**
 * What a name on a proxy stands for, when it is one of rtp-bench's (either naming form): the object's kind, namespace
 * and name, and whether it is a compact listener's inline cluster. Null for anything else, including the objects
 * l7mp derives from ours (`<listener>-RuleList-<n>`, `...-Rule-<n>`, routes: they go with their owner).
 */
export function parseObjectName(name: string): { kind: L7mpKind; namespace: string; object: string; inlineCluster: boolean } | null {
  let kind: L7mpKind;
  let namespace: string;
  let object: string;
  let suffix: string | undefined;
  const op = OPERATOR_NAME.exec(name);
  if (op) {
    kind = op[1] as L7mpKind;
    namespace = op[2]!;
    object = op[3]!;
    suffix = op[4];
  } else {
    const sl = SELFLINK_NAME.exec(name);
    if (!sl) return null;
    kind = PLURAL_KIND[sl[2]!]!;
    namespace = sl[1]!;
    object = sl[3]!;
    suffix = sl[4];
  }
  // The object name's own kind must agree (ingress-rtp-vsvc-... is a VirtualService).
  const what = /^(?:ingress|worker)-(?:rtp|rtcp)-(vsvc|target|rule)-/.exec(object)?.[1];
  if (what === undefined || OBJECT_KIND[what] !== kind) return null;
  if (suffix !== undefined && kind !== 'VirtualService') return null;
  return { kind, namespace, object, inlineCluster: suffix !== undefined };
}

/**
 * The start that the call part of a run's object names has: call-ids are `<runId>-<n>` (call.ts), and the name
 * segment keeps a call-id's cleaned, lowercased form (objects.ts safeNameSegment) as long as the run id is shorter
 * than 50 characters.
 */
export function runNamePrefix(runId: string): string {
  return `${runId.toLowerCase().replace(/[^-a-z0-9]+/g, '-').replace(/^-+/, '')}-`;
}

function belongsToRun(object: string, runId: string | undefined): boolean {
  if (runId === undefined) return true;
  const call = object.replace(/^(?:ingress|worker)-(?:rtp|rtcp)-(?:vsvc|target|rule)-/, '');
  return call.startsWith(runNamePrefix(runId));
}

interface ConfigView {
  listeners?: { name?: unknown }[];
  clusters?: { name?: unknown }[];
  rules?: { name?: unknown }[];
  rulelists?: { name?: unknown; rules?: unknown }[];
}

/** findLeftovers with a client of the caller's (RestProvisioner's). */
export async function findLeftoversWith(client: RestClient, proxies: readonly MeshProxy[], runId: string | undefined): Promise<Leftover[]> {
  const perProxy = await Promise.all(
    proxies.map(async (proxy) => {
      const config = (await client.getJson(proxy.name, '/api/v1/config')) as ConfigView | null;
      if (config === null || typeof config !== 'object') throw new MeshError(`l7mp proxy "${proxy.name}": GET /api/v1/config did not answer a configuration`);
      const out: Leftover[] = [];
      const add = (type: Leftover['type'], items: { name?: unknown }[] | undefined): void => {
        for (const item of items ?? []) {
          if (typeof item.name !== 'string') continue;
          const parsed = parseObjectName(item.name);
          if (!parsed || !belongsToRun(parsed.object, runId)) continue;
          const expected: L7mpKind[] = type === 'listener' ? ['VirtualService'] : type === 'cluster' ? ['Target', 'VirtualService'] : ['Rule'];
          if (!expected.includes(parsed.kind) || parsed.inlineCluster !== (type === 'cluster' && parsed.kind === 'VirtualService')) continue;
          const rulelists =
            type === 'rule'
              ? (config.rulelists ?? []).filter((l) => Array.isArray(l.rules) && (l.rules as unknown[]).includes(item.name)).flatMap((l) => (typeof l.name === 'string' ? [l.name] : []))
              : [];
          out.push({ proxy: proxy.name, restUrl: proxy.restUrl, type, name: item.name, kind: parsed.kind, namespace: parsed.namespace, object: parsed.object, rulelists });
        }
      };
      add('listener', config.listeners);
      add('cluster', config.clusters);
      add('rule', config.rules);
      return out;
    }),
  );
  return perProxy.flat();
}

/**
 * Listeners, clusters and rules on the proxies whose names are those of rtp-bench's objects (either naming form, any
 * namespace), of the run `runId` (see runNamePrefix) or, without it, of any run. Reads each proxy's
 * GET /api/v1/config: for the cleanup after a crashed run, whose provisioner no longer knows what it made.
 */
export async function findLeftovers(proxies: readonly MeshProxy[], runId?: string, options: RestClientOptions = {}): Promise<Leftover[]> {
  const client = new RestClient(proxies, options);
  try {
    return await findLeftoversWith(client, proxies, runId);
  } finally {
    client.close();
  }
}

function enc(name: string): string {
  return encodeURIComponent(name);
}

const OK = [200];
const UNKNOWN_LISTENER: ToleratedAnswer[] = [
  { status: 400, content: '^Cannot delete listener: Unknown listener' },
  { status: 400, content: '^Not running' },
];
const UNKNOWN_CLUSTER: ToleratedAnswer[] = [{ status: 400, content: '^Cannot delete cluster: Unknown cluster' }];
const UNKNOWN_RULE: ToleratedAnswer[] = [{ status: 400, content: '^Cannot delete rule: Unknown rule' }];
const NOT_IN_RULELIST: ToleratedAnswer[] = [
  { status: 400, content: '^No rule .* on rulelist ' },
  { status: 400, content: '^No such rule list: ' },
];

/** The removal of leftovers, per proxy in three phases: listeners (a compact one's inline cluster first, as
 * restDeleteRequests), other clusters, rules (out of their rule lists first). */
function leftoverPhases(leftovers: readonly Leftover[]): Sequence[][] {
  const listeners: Sequence[] = [];
  const clusters: Sequence[] = [];
  const rules: Sequence[] = [];
  const del = (proxy: string, path: string, tolerated: ToleratedAnswer[]): RestRequest => ({ proxy, method: 'DELETE', path, okStatuses: OK, tolerated });
  const inlineDone = new Set<string>();
  for (const l of leftovers) {
    const what = `leftover ${l.type} ${l.name}`;
    if (l.type === 'listener') {
      const inline = leftovers.find((c) => c.proxy === l.proxy && c.type === 'cluster' && c.name === `${l.name}/cluster`);
      const requests: RestRequest[] = [];
      if (inline) {
        requests.push(del(l.proxy, `/api/v1/clusters/${enc(inline.name)}?recursive=true`, UNKNOWN_CLUSTER));
        inlineDone.add(`${l.proxy}\n${inline.name}`);
      }
      requests.push(del(l.proxy, `/api/v1/listeners/${enc(l.name)}?recursive=true`, UNKNOWN_LISTENER));
      listeners.push({ proxy: l.proxy, what, requests });
    }
  }
  for (const l of leftovers) {
    const what = `leftover ${l.type} ${l.name}`;
    if (l.type === 'cluster' && !inlineDone.has(`${l.proxy}\n${l.name}`)) {
      clusters.push({ proxy: l.proxy, what, requests: [del(l.proxy, `/api/v1/clusters/${enc(l.name)}?recursive=true`, UNKNOWN_CLUSTER)] });
    } else if (l.type === 'rule') {
      const requests = l.rulelists.map((rl) => del(l.proxy, `/api/v1/rulelists/${enc(rl)}/rules/${enc(l.name)}?recursive=true`, NOT_IN_RULELIST));
      // Out of a rule list, the recursive removal already deleted it ("Unknown rule"); in none, this deletes it.
      requests.push(del(l.proxy, `/api/v1/rules/${enc(l.name)}?recursive=true`, UNKNOWN_RULE));
      rules.push({ proxy: l.proxy, what, requests });
    }
  }
  return [listeners, clusters, rules];
}

export interface LeftoverRemovalOptions extends RestClientOptions {
  /** How long to wait for the leftover listeners' sessions to settle before deleting them (see sessionSettled), ms;
   * default DEFAULT_LEFTOVER_SETTLE_MS. Listeners whose sessions have not settled by then are not deleted. */
  settleTimeoutMs?: number;
  pollIntervalMs?: number;
}

/** The default ingress route's whole retry budget (INGRESS_RETRY_WINDOW_MS of attempts, each waiting up to its
 * timeout for an answer), plus margin: what a crashed run's retrying sessions may take to settle. */
export const DEFAULT_LEFTOVER_SETTLE_MS = 2 * (INGRESS_RETRY_WINDOW_MS + 2000) + 2000;

/** removeLeftovers with a client of the caller's (RestProvisioner's). */
export async function removeLeftoversWith(client: RestClient, leftovers: readonly Leftover[], o: Pick<LeftoverRemovalOptions, 'settleTimeoutMs' | 'pollIntervalMs'>): Promise<MeshCost> {
  const cost: MeshCost = { objects: leftovers.length, requests: 0 };
  const failures: MeshError[] = [];
  // Listeners whose sessions are still connecting or retrying must not be deleted (l7mp 0.5.7 would exit).
  const keep = new Set<string>();
  const listenersByProxy = new Map<string, Set<string>>();
  for (const l of leftovers) {
    if (l.type !== 'listener') continue;
    const set = listenersByProxy.get(l.proxy);
    if (set) set.add(l.name);
    else listenersByProxy.set(l.proxy, new Set([l.name]));
  }
  const timeoutMs = o.settleTimeoutMs ?? DEFAULT_LEFTOVER_SETTLE_MS;
  await Promise.all(
    [...listenersByProxy].map(async ([proxy, listeners]) => {
      const problem = await pollUntilSettled(client, proxy, listeners, timeoutMs, o.pollIntervalMs ?? DEFAULT_READY_POLL_INTERVAL_MS);
      if (problem === null) return;
      for (const l of listeners) keep.add(`${proxy}\n${l}`);
      failures.push(
        new MeshError(`leftover listeners not deleted from l7mp proxy "${proxy}": their sessions were still connecting or retrying after ${timeoutMs} ms, and l7mp 0.5.7 exits when such a session is deleted (${problem})`),
      );
    }),
  );
  const removable = leftovers.filter(
    (l) => !keep.has(`${l.proxy}\n${l.name}`) && !(l.type === 'cluster' && l.kind === 'VirtualService' && keep.has(`${l.proxy}\n${l.name.replace(/\/cluster$/, '')}`)),
  );
  for (const phase of leftoverPhases(removable)) {
    failures.push(...(await runSequences(client, phase, (n) => (cost.requests += n))));
  }
  if (failures.length > 0) throw combined(failures, 'leftovers were not all removed: ');
  return cost;
}

/**
 * Removes what findLeftovers found (objects gone meanwhile are not an error), once the leftover listeners' sessions
 * have settled; objects and requests it took.
 */
export async function removeLeftovers(leftovers: readonly Leftover[], options: LeftoverRemovalOptions = {}): Promise<MeshCost> {
  const proxies = new Map<string, ProxyRef>();
  for (const l of leftovers) proxies.set(l.proxy, { name: l.proxy, restUrl: l.restUrl });
  const client = new RestClient([...proxies.values()], options);
  try {
    return await removeLeftoversWith(client, leftovers, options);
  } finally {
    client.close();
  }
}
