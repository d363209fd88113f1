/**
 * The HTTP client the REST provisioner and the leftover cleanup talk to l7mp proxies with: keep-alive connections, a
 * bound of `concurrency` requests in flight shared by all calls, per-attempt timeouts, retries, and l7mp's answers
 * read and worded for the user. A connection error, a timeout or a 5xx is retried with exponential backoff; any other
 * answer that isAccepted refuses (l7mp answers 400 to semantic errors: a missing rule list, a bad name...) fails at
 * once with a MeshError naming the proxy, the request and the answer. Also runs request sequences: one object's
 * requests for one proxy go out one after the other, sequences for different proxies in parallel.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshError } from '../provisioner.js';
import { isAccepted, type MeshProxy, type RestRequest } from './operator.js';
import { ConcurrencyLimit } from '../rate-limit.js';

export const DEFAULT_REST_CONCURRENCY = 16;
export const DEFAULT_REST_REQUEST_TIMEOUT_MS = 5000;
export const DEFAULT_REST_RETRIES = 3;
export const DEFAULT_REST_RETRY_BACKOFF_MS = 100;

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

export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

export function shorten(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max)}...`;
}

/** The part of a MeshProxy that a request needs. */
export type ProxyRef = Pick<MeshProxy, 'name' | 'restUrl'>;

/** Context for messages: which object of which call a request is for. */
interface RequestContext {
  what: string;
}

/** An HTTP client for l7mp REST APIs: keep-alive, a bound on requests in flight, per-attempt timeouts, retries. */
export class RestClient {
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;
  private readonly slots: ConcurrencyLimit;
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
    this.slots = new ConcurrencyLimit(this.concurrency);
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
      const release = await this.slots.acquire();
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
        release();
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
export interface Sequence {
  proxy: string;
  what: string;
  requests: RestRequest[];
  /** Called before the first request is sent. */
  onStart?: () => void;
}

/** Groups one object's requests by proxy (order kept): one sequence each. */
export function sequencesOf(requests: readonly RestRequest[], what: string, onStart?: () => void): Sequence[] {
  const byProxy = new Map<string, RestRequest[]>();
  for (const r of requests) {
    const list = byProxy.get(r.proxy);
    if (list) list.push(r);
    else byProxy.set(r.proxy, [r]);
  }
  return [...byProxy].map(([proxy, reqs]) => ({ proxy, what, requests: reqs, ...(onStart ? { onStart } : {}) }));
}

/** Runs the sequences in parallel (each one in order, stopping at its first failure); resolves with the failures. */
export async function runSequences(client: RestClient, sequences: readonly Sequence[], count: (n: number) => void): Promise<MeshError[]> {
  const results = await Promise.allSettled(
    sequences.map(async (s) => {
      s.onStart?.();
      for (const req of s.requests) await client.send(req, { what: s.what }, count);
    }),
  );
  return results.flatMap((r) => (r.status === 'rejected' ? [r.reason instanceof MeshError ? r.reason : new MeshError(errorText(r.reason), null, { cause: r.reason })] : []));
}

/** One error out of several: the first one's message (and status), plus how many more there were. */
/** Characters of the second failure a combined error quotes. */
const COMBINED_GLIMPSE = 160;

export function combined(errors: readonly MeshError[], prefix = ''): MeshError {
  const first = errors[0]!;
  // One failure in full and a glimpse of the next: combined errors nest (requests, objects, calls), and listing
  // several at each level made one message of tens of kilobytes out of one dead proxy.
  const next = errors[1]?.message ?? '';
  const glimpse = next.length > COMBINED_GLIMPSE ? `${next.slice(0, COMBINED_GLIMPSE)}...` : next;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more failure${errors.length > 2 ? 's' : ''}, the next: ${glimpse})` : '';
  return new MeshError(`${prefix}${first.message}${more}`, first.status, errors.length > 1 ? { cause: new AggregateError(errors) } : { cause: first });
}
