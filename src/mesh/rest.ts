/**
 * The REST provisioner: programs already-running l7mp proxies directly, with the requests the l7mp Kubernetes operator
 * would send them (operator.ts: addRequests, and restDeleteRequests for removal), no Kubernetes involved.
 *
 * provision(call):
 * - The call's objects (objects.ts callObjects) are created kind by kind in creation order: every Rule, then every
 *   Target, then every VirtualService; a kind starts only once every request of the previous kind was answered
 *   (that order is what makes singleton listeners lossless, facts/l7mp.md). Within a kind the objects go out in
 *   parallel; the requests of one object for one proxy are sent one after the other (a Target's cluster before its
 *   endpoint), those for different proxies in parallel.
 * - Every request waits for one of `concurrency` slots shared by all calls (the bound on requests in flight towards
 *   the proxies). A connection error, a timeout or a 5xx is retried with exponential backoff; any other answer that
 *   isAccepted refuses (l7mp answers 400 to semantic errors: a missing rule list, a bad name...) fails at once.
 * - acceptedMs: from the start of provision() until every request was answered (including waits for a slot).
 * - Singleton listeners connect to the worker by themselves once created: readiness is when each ingress proxy lists,
 *   in GET /api/v1/sessions, a session of each of the call's listeners with status CONNECTED and destination status
 *   READY. One poller per ingress proxy serves every call waiting (one GET at a time per ingress, whatever the
 *   number of calls provisioning). readyMs: from the start of provision() to the poll answer that showed it ready.
 *   Server listeners make their session on the first packet only: readyMs null.
 * - With singleton listeners, at most maxSessionSetups calls are between creating their listeners and being seen
 *   ready; the others wait before their VirtualServices (a burst of session setups makes l7mp 0.5.7 workers exit).
 * - Any failure (a refusal, a proxy that does not answer, readiness not reached by the deadline, the run being
 *   released meanwhile) rolls back what the call created (deletes in deletion order) and throws a MeshError that
 *   names the proxy, the request and the proxy's answer, and says what the rollback did.
 *
 * release(call) deletes the call's objects kind by kind in deletion order (VirtualServices, Targets, Rules) with
 * restDeleteRequests (a compact listener's inline cluster goes first: l7mp 0.5.7 crashes on the operator's own
 * delete of a listener with a live session). Objects already gone are not an error. A listener whose session is
 * still connecting or retrying is deleted only once that session has settled (sessionSettled: l7mp 0.5.7 exits
 * otherwise); see settleCheck for when this is checked. releaseRun(runId) releases
 * every call of the run that this provisioner created and has not released. findLeftovers/removeLeftovers (functions
 * of their own) read the proxies' configuration to find and remove what a crashed run left.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { MeshCall, MeshOptions } from './model.js';
import { MeshError, type MeshCost, type MeshProvisioner, type ProvisionTiming } from './provisioner.js';
import { callObjects, deletionOrder, INGRESS_RETRY_WINDOW_MS, proxyNameOf, type L7mpKind, type L7mpObject } from './objects.js';
import { addRequests, isAccepted, matchingProxies, restDeleteRequests, type MeshProxy, type RestRequest, type ToleratedAnswer } from './operator.js';

export const DEFAULT_REST_CONCURRENCY = 16;
export const DEFAULT_REST_REQUEST_TIMEOUT_MS = 5000;
export const DEFAULT_REST_RETRIES = 3;
export const DEFAULT_REST_RETRY_BACKOFF_MS = 100;
export const DEFAULT_READY_TIMEOUT_MS = 5000;
export const DEFAULT_READY_POLL_INTERVAL_MS = 25;
export const DEFAULT_MAX_SESSION_SETUPS = 8;

export interface RestClientOptions {
  /** Requests in flight towards all proxies together (readiness polls not counted: at most one per ingress). */
  concurrency?: number;
  /** Per attempt, ms. */
  requestTimeoutMs?: number;
  /** Further attempts after a connection error, a timeout or a 5xx answer. */
  retries?: number;
  /** Wait before the first retry, ms; doubled for each further one. */
  retryBackoffMs?: number;
}

export interface RestProvisionerOptions extends RestClientOptions {
  /** The ingress gateway proxies and the workers' sidecars, with their labels (selectors pick among them). */
  proxies: readonly MeshProxy[];
  mesh: MeshOptions;
  /** Singleton listeners: how long provision() waits for the ingress to show the call's sessions connected, ms. */
  readyTimeoutMs?: number;
  /**
   * Singleton listeners: how many calls may have their sessions being set up at once (from their first listener's
   * creation until their sessions are seen connected); the others wait before creating their listeners. Every new
   * session sends a JSONSocket request to the worker, which must answer within the route's retry timeout (250 ms by
   * default): in a burst, a busy worker answers late, the ingress has already retried from a new socket, the late
   * answer draws an ICMP error, and l7mp 0.5.7 leaves one such error unhandled and exits (seen with 50 calls, 200
   * sessions, provisioned at once on a 2-core box). Default DEFAULT_MAX_SESSION_SETUPS; Infinity: unbounded.
   */
  maxSessionSetups?: number;
  /** Pause between two polls of GET /api/v1/sessions of one ingress, ms. */
  pollIntervalMs?: number;
  /**
   * Before deleting listeners, wait until none of their sessions is still connecting or retrying (sessionSettled:
   * deleting such a listener crashes l7mp 0.5.7). 'unready' (default): for calls whose sessions were not seen
   * connected (server listeners, a failed provision's rollback, calls this provisioner did not make); 'always': for
   * every call (a session seen connected goes back to retrying when its worker stops answering); 'never'.
   * Each check waits for one poll of the ingress's sessions, shared by all calls waiting.
   */
  settleCheck?: 'unready' | 'always' | 'never';
  /** How long to wait for sessions to settle, ms; default: the ingress route's whole retry budget
   * (2 x timeout x (num_retries + 1), plus 2 s). Listeners whose sessions have not settled by then are not deleted. */
  settleTimeoutMs?: number;
}

export interface RestRequestStats {
  /** HTTP requests sent (retries included, polls not). */
  sent: number;
  /** Of which retries. */
  retried: number;
  inFlight: number;
  /** The most requests in flight at once since start (or resetMaxInFlight). */
  maxInFlight: number;
  /** GET /api/v1/sessions sent by the readiness pollers. */
  polls: number;
  /** Calls between creating their (singleton) listeners and being seen ready, now and at most (see maxSessionSetups). */
  sessionSetups: number;
  maxSessionSetups: number;
}

// ---- HTTP -------------------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  /** The whole answer parsed (GET answers are the data itself), or the text when it is not JSON. */
  json: unknown;
  /** The `content` of l7mp's JSON status answer `{status, message, content?}` (what isAccepted matches), or the
   * text when not JSON. */
  content: unknown;
  /** For messages: content, else message, else the raw text (shortened). */
  said: string;
}

function answerOf(status: number, text: string): Answer {
  try {
    const json = JSON.parse(text) as unknown;
    if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
      const o = json as { content?: unknown; message?: unknown };
      const c = typeof o.content === 'string' ? o.content : o.content === undefined ? undefined : JSON.stringify(o.content);
      return { status, json, content: o.content, said: shorten(c ?? (typeof o.message === 'string' ? o.message : text)) };
    }
    return { status, json, content: json, said: shorten(text) };
  } catch {
    return { status, json: text, content: text, said: shorten(text) };
  }
}

class Semaphore {
  private free: number;
  private readonly queue: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.queue.push(resolve));
  }
  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.free++;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

function shorten(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max)}...`;
}

/** The part of a MeshProxy that a request needs. */
type ProxyRef = Pick<MeshProxy, 'name' | 'restUrl'>;

/** Context for messages: which object of which call a request is for. */
interface RequestContext {
  what: string;
}

/** An HTTP client for l7mp REST APIs: keep-alive, a bound on requests in flight, per-attempt timeouts, retries. */
class RestClient {
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;
  private readonly slots: Semaphore;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly backoffMs: number;
  readonly stats: RestRequestStats = { sent: 0, retried: 0, inFlight: 0, maxInFlight: 0, polls: 0, sessionSetups: 0, maxSessionSetups: 0 };
  private readonly byName = new Map<string, ProxyRef>();
  private closed = false;

  constructor(proxies: readonly ProxyRef[], o: RestClientOptions) {
    this.concurrency = o.concurrency ?? DEFAULT_REST_CONCURRENCY;
    this.timeoutMs = o.requestTimeoutMs ?? DEFAULT_REST_REQUEST_TIMEOUT_MS;
    this.retries = o.retries ?? DEFAULT_REST_RETRIES;
    this.backoffMs = o.retryBackoffMs ?? DEFAULT_REST_RETRY_BACKOFF_MS;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError(`concurrency must be a positive integer, is ${this.concurrency}`);
    if (!(this.timeoutMs > 0)) throw new RangeError(`requestTimeoutMs must be positive, is ${this.timeoutMs}`);
    if (!Number.isInteger(this.retries) || this.retries < 0) throw new RangeError(`retries must be a non-negative integer, is ${this.retries}`);
    if (!(this.backoffMs >= 0)) throw new RangeError(`retryBackoffMs must be >= 0, is ${this.backoffMs}`);
    for (const p of proxies) {
      if (this.byName.has(p.name)) throw new RangeError(`two proxies are named "${p.name}"`);
      let url: URL;
      try {
        url = new URL(p.restUrl);
      } catch {
        throw new RangeError(`proxy "${p.name}": restUrl ${JSON.stringify(p.restUrl)} is not a URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`proxy "${p.name}": restUrl ${p.restUrl} is not http(s)`);
      this.byName.set(p.name, p);
    }
    this.slots = new Semaphore(this.concurrency);
    // Sockets beyond the bound are never needed; a few spare ones for the pollers.
    const agentOptions = { keepAlive: true, maxSockets: this.concurrency + 2, maxFreeSockets: this.concurrency + 2 };
    this.httpAgent = new HttpAgent(agentOptions);
    this.httpsAgent = new HttpsAgent(agentOptions);
  }

  proxy(name: string): ProxyRef {
    const p = this.byName.get(name);
    if (!p) throw new MeshError(`no l7mp proxy named "${name}" is known to the REST provisioner`);
    return p;
  }

  /** One attempt, no slot, no retry. Rejects on a connection error or timeout. */
  private attempt(proxy: ProxyRef, method: string, path: string, body: unknown): Promise<Answer> {
    // `path` is /api/v1/...: appended to restUrl (keeping any base path it has).
    const base = new URL(proxy.restUrl);
    const fullPath = `${base.pathname.replace(/\/+$/, '')}${path}`;
    const https = base.protocol === 'https:';
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<Answer>((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(
        {
          protocol: base.protocol,
          hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: base.port,
          path: fullPath,
          method,
          agent: https ? this.httpsAgent : this.httpAgent,
          headers: {
            accept: 'application/json',
            ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}),
          },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => {
            clearTimeout(timer);
            reject(err);
          });
          res.on('end', () => {
            clearTimeout(timer);
            resolve(answerOf(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          });
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(data);
    });
  }

  /**
   * Sends `req` (waiting for a slot), retrying connection errors, timeouts and 5xx answers; resolves with the number
   * of attempts when the answer isAccepted, else rejects with a MeshError naming the proxy, the request and the answer.
   */
  async send(req: RestRequest, ctx: RequestContext, count: (attempts: number) => void): Promise<void> {
    const proxy = this.proxy(req.proxy);
    const what = `${req.method} ${decodeURIComponent(req.path)} (${ctx.what})`;
    let last = '';
    let lastStatus: number | null = null;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new MeshError(`the REST provisioner was closed before ${what} was sent to l7mp proxy "${proxy.name}"`);
      await this.slots.acquire();
      this.stats.sent++;
      if (attempt > 0) this.stats.retried++;
      this.stats.inFlight++;
      this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.stats.inFlight);
      count(1);
      let answer: Answer | null = null;
      try {
        answer = await this.attempt(proxy, req.method, req.path, req.body);
      } catch (err) {
        last = errorText(err);
        lastStatus = null;
      } finally {
        this.stats.inFlight--;
        this.slots.release();
      }
      if (answer !== null) {
        if (isAccepted(req, answer.status, answer.content)) return;
        lastStatus = answer.status;
        last = `HTTP ${answer.status}: ${answer.said}`;
        if (answer.status < 500) {
          throw new MeshError(`l7mp proxy "${proxy.name}" (${proxy.restUrl}) refused ${what}: ${last}${hintFor(req, answer)}`, answer.status);
        }
      }
      if (attempt >= this.retries) {
        const tries = attempt + 1;
        throw new MeshError(
          `l7mp proxy "${proxy.name}" (${proxy.restUrl}) did not accept ${what} in ${tries} attempt${tries === 1 ? '' : 's'}; the last one: ${last}`,
          lastStatus,
        );
      }
      await sleep(this.backoffMs * 2 ** attempt);
    }
  }

  /** GET `path`, parsed JSON; one attempt, no slot (readiness polls and config reads). */
  async getJson(proxyName: string, path: string): Promise<unknown> {
    const proxy = this.proxy(proxyName);
    if (path === '/api/v1/sessions') this.stats.polls++;
    const answer = await this.attempt(proxy, 'GET', path, undefined).catch((err: unknown) => {
      throw new MeshError(`l7mp proxy "${proxy.name}" (${proxy.restUrl}): GET ${path} failed: ${errorText(err)}`);
    });
    if (answer.status !== 200) throw new MeshError(`l7mp proxy "${proxy.name}" (${proxy.restUrl}): GET ${path} answered HTTP ${answer.status}: ${answer.said}`, answer.status);
    return answer.json;
  }

  resetMaxInFlight(): void {
    this.stats.maxInFlight = this.stats.inFlight;
    this.stats.maxSessionSetups = this.stats.sessionSetups;
  }

  close(): void {
    this.closed = true;
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function hintFor(req: RestRequest, answer: Answer): string {
  if (req.method === 'POST' && /^\/api\/v1\/rulelists\//.test(req.path) && answer.status === 400 && /^Bad Request$/.test(answer.said)) {
    const rulelist = decodeURIComponent(req.path.split('/')[4] ?? '');
    return ` (does the proxy have the rule list "${rulelist}"? The worker's l7mp config must define it, see MeshOptions.workerRulelists)`;
  }
  return '';
}

// ---- Running request sequences --------------------------------------------------------------------------------

/** Requests for one proxy that go out one after the other. */
interface Sequence {
  proxy: string;
  what: string;
  requests: RestRequest[];
  /** Called before the first request is sent. */
  onStart?: () => void;
}

/** Groups one object's requests by proxy (order kept): one sequence each. */
function sequencesOf(requests: readonly RestRequest[], what: string, onStart?: () => void): Sequence[] {
  const byProxy = new Map<string, RestRequest[]>();
  for (const r of requests) {
    const list = byProxy.get(r.proxy);
    if (list) list.push(r);
    else byProxy.set(r.proxy, [r]);
  }
  return [...byProxy].map(([proxy, reqs]) => ({ proxy, what, requests: reqs, ...(onStart ? { onStart } : {}) }));
}

/** Runs the sequences in parallel (each one in order, stopping at its first failure); resolves with the failures. */
async function runSequences(client: RestClient, sequences: readonly Sequence[], count: (n: number) => void): Promise<MeshError[]> {
  const results = await Promise.allSettled(
    sequences.map(async (s) => {
      s.onStart?.();
      for (const req of s.requests) await client.send(req, { what: s.what }, count);
    }),
  );
  return results.flatMap((r) => (r.status === 'rejected' ? [r.reason instanceof MeshError ? r.reason : new MeshError(errorText(r.reason), null, { cause: r.reason })] : []));
}

/** One error out of several: the first one's message (and status), plus how many more there were. */
function combined(errors: readonly MeshError[], prefix = ''): MeshError {
  const first = errors[0]!;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more failure${errors.length > 2 ? 's' : ''}: ${errors.slice(1, 4).map((e) => e.message).join('; ')}${errors.length > 4 ? '; ...' : ''})` : '';
  return new MeshError(`${prefix}${first.message}${more}`, first.status, errors.length > 1 ? { cause: new AggregateError(errors) } : { cause: first });
}

const CREATION_PHASES: readonly L7mpKind[] = ['Rule', 'Target', 'VirtualService'];
const DELETION_PHASES: readonly L7mpKind[] = ['VirtualService', 'Target', 'Rule'];

// ---- Readiness ------------------------------------------------------------------------------------------------

/** What the readiness check reads of one entry of GET /api/v1/sessions. */
export interface SessionView {
  name: string;
  status: string;
  /** source.origin: the listener's name. */
  listener: string;
  /** destination.origin: the cluster's name. */
  cluster: string | null;
  destinationStatus: string | null;
  lastEvent: string | null;
}

/**
 * The entries of l7mp 0.5.7's GET /api/v1/sessions answer: an array of
 * `{name, metadata, source: {origin: <listener>, listener, status}, destination: {origin: <cluster>, endpoint, status},
 * ingress, egress, status, events: [{event, timestamp, message, content}]}` (the REST request's own HTTP session
 * included, origin controller-listener). Anything else is refused.
 */
export function parseSessions(json: unknown): SessionView[] {
  if (!Array.isArray(json)) throw new MeshError(`GET /api/v1/sessions did not answer a list of sessions: ${shorten(JSON.stringify(json) ?? String(json))}`);
  const out: SessionView[] = [];
  for (const s of json as unknown[]) {
    if (s === null || typeof s !== 'object') continue;
    const o = s as { name?: unknown; status?: unknown; source?: { origin?: unknown }; destination?: { origin?: unknown; status?: unknown }; events?: unknown };
    const listener = o.source && typeof o.source.origin === 'string' ? o.source.origin : null;
    if (listener === null) continue;
    const events = Array.isArray(o.events) ? (o.events as { event?: unknown; message?: unknown }[]) : [];
    const e = events[events.length - 1];
    out.push({
      name: typeof o.name === 'string' ? o.name : '?',
      status: typeof o.status === 'string' ? o.status : '?',
      listener,
      cluster: o.destination && typeof o.destination.origin === 'string' ? o.destination.origin : null,
      destinationStatus: o.destination && typeof o.destination.status === 'string' ? o.destination.status : null,
      lastEvent: e ? `${String(e.event ?? '?')}${typeof e.message === 'string' ? `: ${e.message}` : ''}` : null,
    });
  }
  return out;
}

export function sessionConnected(s: SessionView): boolean {
  return s.status === 'CONNECTED' && s.destinationStatus === 'READY';
}

/**
 * Whether a session may be ended through the API without crashing l7mp 0.5.7: it is connected (destination READY),
 * or already ending. A session whose destination is still being connected (INIT, CONNECTED before READY) or retried
 * (RETRYING, DISCONNECTED) must not be: deleting its listener or cluster removes the session, the pending retry then
 * finds it gone ("Session removed while retrying"), ends it a second time, the second removal throws "Cannot delete
 * session: Unknown session" and l7mp-proxy.js exits on that error. Such a session settles when it connects, or when
 * its route's retries run out (num_retries x timeout, twice that when the worker does not even refuse).
 */
export function sessionSettled(s: SessionView): boolean {
  return s.status === 'DESTROYED' || s.status === 'FINALIZING' || s.destinationStatus === 'READY' || s.destinationStatus === 'END';
}

interface Waiter {
  listeners: readonly string[];
  /** Whether the listeners' sessions (of the latest poll) are what is waited for. */
  satisfied(mine: readonly SessionView[]): boolean;
  /** The last poll's view of the listeners' sessions, or why the poll failed. */
  seen: SessionView[] | null;
  pollError: string | null;
  polls: number;
  /** Polls that failed in a row. */
  failedPolls: number;
  done(at: number): void;
  fail(err: MeshError): void;
}

/** One per ingress proxy: polls GET /api/v1/sessions (one request at a time) while any call waits for it. */
class SessionPoller {
  readonly waiters = new Set<Waiter>();
  private running = false;
  private wake: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly client: RestClient,
    private readonly proxyName: string,
    private readonly intervalMs: number,
  ) {}

  add(w: Waiter): void {
    this.waiters.add(w);
    if (!this.running && !this.stopped) void this.loop();
  }

  remove(w: Waiter): void {
    this.waiters.delete(w);
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.waiters.size > 0 && !this.stopped) {
        let sessions: SessionView[] | null = null;
        let error: string | null = null;
        try {
          sessions = parseSessions(await this.client.getJson(this.proxyName, '/api/v1/sessions'));
        } catch (err) {
          error = errorText(err);
        }
        const at = performance.now();
        for (const w of [...this.waiters]) {
          w.polls++;
          if (sessions === null) {
            w.pollError = error;
            // The ingress does not answer (the poll is not retried otherwise): give up after as many polls as a
            // request gets attempts.
            if (++w.failedPolls > this.client.retries) {
              this.waiters.delete(w);
              w.fail(new MeshError(`the ingress l7mp proxy "${this.proxyName}" did not answer ${w.failedPolls} polls of GET /api/v1/sessions in a row: ${error}`));
            }
            continue;
          }
          w.failedPolls = 0;
          const mine = sessions.filter((s) => w.listeners.includes(s.listener));
          w.seen = mine;
          w.pollError = null;
          if (w.satisfied(mine)) {
            this.waiters.delete(w);
            w.done(at);
          }
        }
        if (this.waiters.size > 0 && !this.stopped) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, this.intervalMs);
            this.wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
          this.wake = null;
        }
      }
    } finally {
      this.running = false;
    }
  }
}

function describeSession(s: SessionView): string {
  return `session ${s.name} status ${s.status}, destination ${s.cluster ?? '?'} ${s.destinationStatus ?? 'absent'}${s.lastEvent ? `, last event ${s.lastEvent}` : ''}`;
}

/** Readiness: every listener has a connected session. */
function allConnected(listeners: readonly string[]): (mine: readonly SessionView[]) => boolean {
  return (mine) => listeners.every((l) => mine.some((s) => s.listener === l && sessionConnected(s)));
}

/** Before a delete: no session of the listeners is still connecting or retrying. */
function allSettled(mine: readonly SessionView[]): boolean {
  return mine.every(sessionSettled);
}

function describeNotReady(w: Waiter): string {
  const parts: string[] = [];
  for (const l of w.listeners) {
    const mine = (w.seen ?? []).filter((s) => s.listener === l);
    if (mine.some(sessionConnected)) continue;
    if (w.seen === null) parts.push(`listener ${l}: never seen`);
    else if (mine.length === 0) parts.push(`listener ${l}: no session`);
    else parts.push(`listener ${l}: ${mine.map(describeSession).join('; ')}`);
  }
  if (w.pollError !== null) parts.push(`the last poll failed: ${w.pollError}`);
  return parts.join('; ');
}

function describeUnsettled(w: Waiter): string {
  const unsettled = (w.seen ?? []).filter((s) => !sessionSettled(s));
  const parts = w.seen === null ? ['the sessions were never seen'] : unsettled.map((s) => `listener ${s.listener}: ${describeSession(s)}`);
  if (w.pollError !== null) parts.push(`the last poll failed: ${w.pollError}`);
  return parts.join('; ');
}

// ---- The provisioner ------------------------------------------------------------------------------------------

interface Tracked {
  call: MeshCall;
  /** Set while provision() runs. */
  provisioning: Promise<unknown> | null;
  /** Whether every session of the call was seen connected. */
  ready: boolean;
  waiters: Set<{ poller: SessionPoller; waiter: Waiter }>;
}

/** How long a session of these listeners can keep retrying (see RestProvisionerOptions.settleTimeoutMs). */
function retryBudgetMs(objects: readonly L7mpObject[]): number {
  let budget = 0;
  for (const o of objects) {
    if (o.kind !== 'VirtualService' || !('rules' in o.spec.listener)) continue;
    for (const r of o.spec.listener.rules) {
      const retry = r.action.route?.retry;
      if (retry) budget = Math.max(budget, 2 * (retry.timeout ?? 2000) * ((retry.num_retries ?? 1) + 1));
    }
  }
  return budget + 2000;
}

export class RestProvisioner implements MeshProvisioner {
  readonly kind = 'rest' as const;
  readonly proxies: readonly MeshProxy[];
  readonly mesh: MeshOptions;
  readonly readyTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly settleCheck: NonNullable<RestProvisionerOptions['settleCheck']>;
  private readonly settleTimeoutMs: number | undefined;
  private readonly client: RestClient;
  /** Calls whose singleton sessions are being set up (listeners created, not yet seen connected); null: unbounded. */
  private readonly setupSlots: Semaphore | null;
  private readonly pollers = new Map<string, SessionPoller>();
  /** runId -> callId -> what this provisioner created and has not released yet. */
  private readonly live = new Map<string, Map<string, Tracked>>();
  private readonly releasing = new Set<string>();
  private closed = false;

  constructor(o: RestProvisionerOptions) {
    this.proxies = o.proxies.map((p) => ({ ...p, labels: { ...p.labels } }));
    this.mesh = o.mesh;
    this.readyTimeoutMs = o.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.pollIntervalMs = o.pollIntervalMs ?? DEFAULT_READY_POLL_INTERVAL_MS;
    this.settleCheck = o.settleCheck ?? 'unready';
    this.settleTimeoutMs = o.settleTimeoutMs;
    if (!(this.readyTimeoutMs > 0)) throw new RangeError(`readyTimeoutMs must be positive, is ${this.readyTimeoutMs}`);
    if (!(this.pollIntervalMs >= 0)) throw new RangeError(`pollIntervalMs must be >= 0, is ${this.pollIntervalMs}`);
    if (this.settleTimeoutMs !== undefined && !(this.settleTimeoutMs > 0)) throw new RangeError(`settleTimeoutMs must be positive, is ${this.settleTimeoutMs}`);
    this.client = new RestClient(this.proxies, o);
    const setups = o.maxSessionSetups ?? DEFAULT_MAX_SESSION_SETUPS;
    if (!(setups >= 1)) throw new RangeError(`maxSessionSetups must be >= 1 (Infinity: unbounded), is ${setups}`);
    this.setupSlots = Number.isFinite(setups) ? new Semaphore(Math.floor(setups)) : null;
  }

  get concurrency(): number {
    return this.client.concurrency;
  }

  /** Requests sent so far, in flight now, and the most in flight at once. */
  requestStats(): RestRequestStats {
    return { ...this.client.stats };
  }

  resetMaxInFlight(): void {
    this.client.resetMaxInFlight();
  }

  /** Calls provisioned (or provisioning) and not released, per run. */
  liveCalls(runId?: string): MeshCall[] {
    const runs = runId === undefined ? [...this.live.values()] : [this.live.get(runId) ?? new Map<string, Tracked>()];
    return runs.flatMap((m) => [...m.values()].map((t) => t.call));
  }

  private assertOpen(): void {
    if (this.closed) throw new MeshError('the REST provisioner is closed');
  }

  private addRequestsOf(obj: L7mpObject): RestRequest[] {
    const requests = addRequests(obj, this.proxies, this.mesh);
    const name = proxyNameOf(obj, this.mesh.naming);
    if (requests.length === 0) {
      throw new MeshError(
        `no l7mp proxy matches the selector of ${obj.kind} ${name} (${JSON.stringify(obj.spec.selector)}); the proxies: ${this.proxies.map((p) => `${p.name} ${JSON.stringify(p.labels)}`).join(', ')}`,
      );
    }
    if (obj.kind === 'Target' && obj.spec.cluster.endpoints?.some((e) => 'selector' in e) && !requests.some((r) => r.path.endsWith('/endpoints'))) {
      const selectors = obj.spec.cluster.endpoints.flatMap((e) => ('selector' in e ? [JSON.stringify(e.selector)] : []));
      throw new MeshError(`no l7mp proxy matches the endpoint selector of Target ${name} (${selectors.join(', ')}): the cluster would have no endpoint`);
    }
    return requests;
  }

  private track(call: MeshCall): Tracked {
    let run = this.live.get(call.runId);
    if (!run) this.live.set(call.runId, (run = new Map()));
    const existing = run.get(call.callId);
    if (existing?.provisioning) throw new MeshError(`call ${call.callId} of run ${call.runId} is already being provisioned`);
    const t: Tracked = existing ?? { call, provisioning: null, ready: false, waiters: new Set() };
    t.call = call;
    t.ready = false;
    run.set(call.callId, t);
    return t;
  }

  private tracked(call: MeshCall): Tracked | undefined {
    return this.live.get(call.runId)?.get(call.callId);
  }

  private untrack(call: MeshCall): void {
    const run = this.live.get(call.runId);
    if (!run) return;
    run.delete(call.callId);
    if (run.size === 0) this.live.delete(call.runId);
  }

  private what(obj: L7mpObject, call: MeshCall): string {
    return `${obj.kind} ${proxyNameOf(obj, this.mesh.naming)} of call ${call.callId}`;
  }

  async provision(call: MeshCall): Promise<ProvisionTiming & MeshCost> {
    this.assertOpen();
    if (this.releasing.has(call.runId)) throw new MeshError(`run ${call.runId} is being released: call ${call.callId} is not provisioned`);
    const t0 = performance.now();
    const objects = callObjects(call, this.mesh);
    const plan = objects.map((obj) => ({ obj, requests: this.addRequestsOf(obj) }));
    const tracked = this.track(call);
    const cost: MeshCost = { objects: objects.length, requests: 0 };
    const count = (n: number): void => {
      cost.requests += n;
    };
    const attempted = new Set<L7mpObject>();
    const singleton = this.mesh.listenerMode === 'singleton';
    let holdsSetupSlot = false;
    let inSetup = false;
    const endSetup = (): void => {
      if (inSetup) this.client.stats.sessionSetups--;
      if (holdsSetupSlot) this.setupSlots?.release();
      inSetup = holdsSetupSlot = false;
    };
    const work = (async (): Promise<ProvisionTiming & MeshCost> => {
      try {
        for (const kind of CREATION_PHASES) {
          if (kind === 'VirtualService' && singleton && this.setupSlots) {
            // Singleton sessions start connecting as soon as their listener exists: bound how many calls do that at once.
            await this.setupSlots.acquire();
            holdsSetupSlot = true;
          }
          if (kind === 'VirtualService' && singleton) {
            inSetup = true;
            const st = this.client.stats;
            st.maxSessionSetups = Math.max(st.maxSessionSetups, ++st.sessionSetups);
          }
          if (this.releasing.has(call.runId) || this.closed) throw new MeshError(`run ${call.runId} was released while call ${call.callId} was being provisioned`);
          const sequences = plan
            .filter((p) => p.obj.kind === kind)
            .flatMap((p) => sequencesOf(p.requests, this.what(p.obj, call), () => attempted.add(p.obj)));
          const failures = await runSequences(this.client, sequences, count);
          if (failures.length > 0) throw combined(failures);
        }
        const acceptedMs = performance.now() - t0;
        let readyMs: number | null = null;
        if (singleton) {
          const at = await this.waitReady(call, objects, tracked);
          readyMs = at - t0;
          tracked.ready = true;
        }
        return { acceptedMs, readyMs, ...cost };
      } catch (err) {
        // A rollback may wait long for sessions to settle: it creates none, so it holds no setup slot.
        endSetup();
        const cause = err instanceof MeshError ? err : new MeshError(errorText(err), null, { cause: err });
        throw await this.rollback(call, objects.filter((o) => attempted.has(o)), cause);
      } finally {
        endSetup();
      }
    })();
    tracked.provisioning = work;
    try {
      return await work;
    } finally {
      tracked.provisioning = null;
    }
  }

  /** Deletes `created` (a failed provision's objects); the MeshError to throw, saying what the rollback did. */
  private async rollback(call: MeshCall, created: L7mpObject[], cause: MeshError): Promise<MeshError> {
    if (created.length === 0) {
      this.untrack(call);
      return new MeshError(`${cause.message} (call ${call.callId}: nothing was created)`, cause.status, { cause });
    }
    const failures = await this.deleteObjects(call, created, true, () => undefined);
    if (failures.length === 0) {
      this.untrack(call);
      return new MeshError(`${cause.message} (call ${call.callId}: rolled back, its ${created.length} object${created.length === 1 ? '' : 's'} removed again)`, cause.status, { cause });
    }
    // Left tracked: releaseRun tries again.
    const f = combined(failures);
    return new MeshError(`${cause.message} (call ${call.callId}: the rollback failed, objects may be left behind: ${f.message})`, cause.status, { cause });
  }

  /**
   * Registers a waiter with the ingress's poller: resolves with the time of the poll that satisfied it, rejects with
   * onTimeout's error after timeoutMs. cancel() withdraws it.
   */
  private watch(
    proxyName: string,
    listeners: readonly string[],
    satisfied: Waiter['satisfied'],
    timeoutMs: number,
    onTimeout: (w: Waiter) => MeshError,
    tracked: Tracked | undefined,
  ): { promise: Promise<number>; cancel: () => void } {
    let poller = this.pollers.get(proxyName);
    if (!poller) this.pollers.set(proxyName, (poller = new SessionPoller(this.client, proxyName, this.pollIntervalMs)));
    const p = poller;
    let timer: NodeJS.Timeout | undefined;
    let entry: { poller: SessionPoller; waiter: Waiter } | undefined;
    const promise = new Promise<number>((resolve, reject) => {
      const waiter: Waiter = {
        listeners,
        satisfied,
        seen: null,
        pollError: null,
        polls: 0,
        failedPolls: 0,
        done: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      timer = setTimeout(() => {
        p.remove(waiter);
        waiter.fail(onTimeout(waiter));
      }, timeoutMs);
      entry = { poller: p, waiter };
      tracked?.waiters.add(entry);
      p.add(waiter);
    });
    const cancel = (): void => {
      if (!entry) return;
      clearTimeout(timer);
      entry.poller.remove(entry.waiter);
      tracked?.waiters.delete(entry);
    };
    return { promise, cancel };
  }

  /** The call's listener names per ingress proxy that holds them. */
  private listenersByIngress(objects: readonly L7mpObject[]): Map<string, string[]> {
    const byIngress = new Map<string, string[]>();
    for (const o of objects) {
      if (o.kind !== 'VirtualService') continue;
      const name = proxyNameOf(o, this.mesh.naming);
      for (const p of matchingProxies(o.spec.selector, this.proxies)) {
        const list = byIngress.get(p.name);
        if (list) list.push(name);
        else byIngress.set(p.name, [name]);
      }
    }
    return byIngress;
  }

  /** Resolves with the time the last ingress was seen ready. */
  private async waitReady(call: MeshCall, objects: readonly L7mpObject[], tracked: Tracked): Promise<number> {
    const watches = [...this.listenersByIngress(objects)].map(([proxyName, listeners]) =>
      this.watch(
        proxyName,
        listeners,
        allConnected(listeners),
        this.readyTimeoutMs,
        (w) =>
          new MeshError(
            `call ${call.callId}: the ingress l7mp proxy "${proxyName}" did not show the call's sessions CONNECTED with destination READY within ${this.readyTimeoutMs} ms (${w.polls} polls of GET /api/v1/sessions): ${describeNotReady(w)}`,
          ),
        tracked,
      ),
    );
    try {
      return Math.max(...(await Promise.all(watches.map((w) => w.promise))));
    } finally {
      for (const w of watches) w.cancel();
    }
  }

  /**
   * Waits until the sessions of the listeners on each ingress have settled (sessionSettled); resolves with the
   * (proxy, listener) pairs that did not within the settle timeout, with the reason.
   */
  private async waitSettled(call: MeshCall, objects: readonly L7mpObject[]): Promise<{ unsettled: Set<string>; errors: MeshError[] }> {
    const timeoutMs = this.settleTimeoutMs ?? retryBudgetMs(objects);
    const unsettled = new Set<string>();
    const errors: MeshError[] = [];
    const tracked = this.tracked(call);
    await Promise.all(
      [...this.listenersByIngress(objects)].map(async ([proxyName, listeners]) => {
        const w = this.watch(
          proxyName,
          listeners,
          allSettled,
          timeoutMs,
          (waiter) =>
            new MeshError(
              `call ${call.callId}: listeners not deleted from the ingress l7mp proxy "${proxyName}": their sessions were still connecting or retrying after ${timeoutMs} ms, and l7mp 0.5.7 exits when such a session is deleted (${describeUnsettled(waiter)})`,
            ),
          tracked,
        );
        try {
          await w.promise;
        } catch (err) {
          for (const l of listeners) unsettled.add(`${proxyName}\n${l}`);
          errors.push(err instanceof MeshError ? err : new MeshError(errorText(err), null, { cause: err }));
        } finally {
          w.cancel();
        }
      }),
    );
    return { unsettled, errors };
  }

  /**
   * Deletes the objects kind by kind in deletion order; resolves with the failures (objects already gone are none).
   * With `settle`, listeners are deleted only once their sessions have settled (see settleCheck).
   */
  private async deleteObjects(call: MeshCall, objects: readonly L7mpObject[], settle: boolean, count: (n: number) => void): Promise<MeshError[]> {
    const failures: MeshError[] = [];
    const ordered = deletionOrder(objects);
    let unsettled = new Set<string>();
    if (settle && ordered.some((o) => o.kind === 'VirtualService')) {
      const r = await this.waitSettled(call, ordered);
      unsettled = r.unsettled;
      failures.push(...r.errors);
    }
    for (const kind of DELETION_PHASES) {
      const sequences = ordered
        .filter((o) => o.kind === kind)
        .flatMap((o) => {
          const name = proxyNameOf(o, this.mesh.naming);
          const seqs = sequencesOf(restDeleteRequests(o, this.proxies, this.mesh), this.what(o, call));
          // An unsettled listener stays, and so does a compact one's inline cluster (deleted in the same sequence).
          return o.kind === 'VirtualService' ? seqs.filter((seq) => !unsettled.has(`${seq.proxy}\n${name}`)) : seqs;
        });
      // Later kinds are deleted even when an earlier one failed: what can go, goes (all deletes are idempotent).
      failures.push(...(await runSequences(this.client, sequences, count)));
    }
    return failures;
  }

  async release(call: MeshCall): Promise<MeshCost> {
    this.assertOpen();
    const objects = callObjects(call, this.mesh);
    const cost: MeshCost = { objects: objects.length, requests: 0 };
    const tracked = this.tracked(call);
    const settle = this.settleCheck === 'always' || (this.settleCheck === 'unready' && !(tracked?.ready ?? false));
    const failures = await this.deleteObjects(call, objects, settle, (n) => {
      cost.requests += n;
    });
    if (failures.length > 0) {
      // Stays tracked: releaseRun tries again.
      throw combined(failures, `call ${call.callId} was not fully released: `);
    }
    this.untrack(call);
    return cost;
  }

  async releaseRun(runId: string): Promise<void> {
    this.assertOpen();
    this.releasing.add(runId);
    try {
      const run = this.live.get(runId);
      if (!run) return;
      // Calls still provisioning: stop waiting for their readiness (provision rolls them back), let them settle.
      for (const t of run.values()) {
        if (!t.provisioning) continue;
        for (const { poller, waiter } of [...t.waiters]) {
          poller.remove(waiter);
          waiter.fail(new MeshError(`run ${runId} was released while call ${t.call.callId} waited for its sessions`));
        }
      }
      await Promise.allSettled([...run.values()].flatMap((t) => (t.provisioning ? [t.provisioning] : [])));
      const left = [...(this.live.get(runId)?.values() ?? [])];
      const failures: MeshError[] = [];
      await Promise.all(
        left.map(async (t) => {
          try {
            await this.release(t.call);
          } catch (err) {
            failures.push(err instanceof MeshError ? err : new MeshError(errorText(err), null, { cause: err }));
          }
        }),
      );
      if (failures.length > 0) throw combined(failures, `run ${runId}: ${failures.length} of ${left.length} calls were not fully released: `);
    } finally {
      this.releasing.delete(runId);
    }
  }

  /** Leftovers of a run (or of every run) on this provisioner's proxies; see findLeftovers. */
  findLeftovers(runId?: string): Promise<Leftover[]> {
    this.assertOpen();
    return findLeftoversWith(this.client, this.proxies, runId);
  }

  /** Removes leftovers (see removeLeftovers). */
  removeLeftovers(leftovers: readonly Leftover[], o: Pick<LeftoverRemovalOptions, 'settleTimeoutMs'> = {}): Promise<MeshCost> {
    this.assertOpen();
    return removeLeftoversWith(this.client, leftovers, { pollIntervalMs: this.pollIntervalMs, ...o });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const run of this.live.values()) {
      for (const t of run.values()) {
        for (const { poller, waiter } of [...t.waiters]) {
          poller.remove(waiter);
          waiter.fail(new MeshError(`the REST provisioner was closed while call ${t.call.callId} waited for its sessions`));
        }
      }
    }
    // In-flight provisions roll back (their requests still go out) before the connections go.
    await Promise.allSettled([...this.live.values()].flatMap((run) => [...run.values()].flatMap((t) => (t.provisioning ? [t.provisioning] : []))));
    for (const p of this.pollers.values()) p.stop();
    this.client.close();
  }
}

// ---- Leftovers of crashed runs --------------------------------------------------------------------------------

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

async function findLeftoversWith(client: RestClient, proxies: readonly MeshProxy[], runId: string | undefined): Promise<Leftover[]> {
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

/** Polls the proxy's sessions until those of `listeners` have all settled; null then, else what was last seen. */
async function waitSettledDirect(client: RestClient, proxy: string, listeners: ReadonlySet<string>, timeoutMs: number, intervalMs: number): Promise<string | null> {
  const deadline = performance.now() + timeoutMs;
  let last = 'the sessions were never seen';
  for (;;) {
    try {
      const unsettled = parseSessions(await client.getJson(proxy, '/api/v1/sessions')).filter((s) => listeners.has(s.listener) && !sessionSettled(s));
      if (unsettled.length === 0) return null;
      last = unsettled.map((s) => `listener ${s.listener}: ${describeSession(s)}`).join('; ');
    } catch (err) {
      last = `the last poll failed: ${errorText(err)}`;
    }
    if (performance.now() >= deadline) return last;
    await sleep(Math.max(intervalMs, 50));
  }
}

async function removeLeftoversWith(client: RestClient, leftovers: readonly Leftover[], o: Pick<LeftoverRemovalOptions, 'settleTimeoutMs' | 'pollIntervalMs'>): Promise<MeshCost> {
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
      const problem = await waitSettledDirect(client, proxy, listeners, timeoutMs, o.pollIntervalMs ?? DEFAULT_READY_POLL_INTERVAL_MS);
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
