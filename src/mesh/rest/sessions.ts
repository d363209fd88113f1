/**
 * The ingress's sessions (GET /api/v1/sessions of an l7mp proxy), read and waited on: readiness (every singleton
 * listener of a call has a connected session) and, before a listener is deleted, that none of its sessions is still
 * connecting or retrying (deleting such a listener makes l7mp 0.5.7 exit). One SessionPoller per ingress serves every
 * call waiting on it, one GET at a time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshError } from '../provisioner.js';
import { errorText, shorten, type RestClient } from './client.js';

export const DEFAULT_READY_POLL_INTERVAL_MS = 25;

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

export interface Waiter {
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
export class SessionPoller {
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
export function allConnected(listeners: readonly string[]): (mine: readonly SessionView[]) => boolean {
  return (mine) => listeners.every((l) => mine.some((s) => s.listener === l && sessionConnected(s)));
}

/** Before a delete: no session of the listeners is still connecting or retrying. */
export function allSettled(mine: readonly SessionView[]): boolean {
  return mine.every(sessionSettled);
}

export function describeNotReady(w: Waiter): string {
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

export function describeUnsettled(w: Waiter): string {
  const unsettled = (w.seen ?? []).filter((s) => !sessionSettled(s));
  const parts = w.seen === null ? ['the sessions were never seen'] : unsettled.map((s) => `listener ${s.listener}: ${describeSession(s)}`);
  if (w.pollError !== null) parts.push(`the last poll failed: ${w.pollError}`);
  return parts.join('; ');
}

/** Polls the proxy's sessions until those of `listeners` have all settled; null then, else what was last seen. */
export async function pollUntilSettled(client: RestClient, proxy: string, listeners: ReadonlySet<string>, timeoutMs: number, intervalMs: number): Promise<string | null> {
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
