import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { decodeNgMessage, encodeNgMessage, NgProtocolError, type NgDict, type NgValue } from './message.js';

export { NgProtocolError, type NgDict, type NgValue } from './message.js';

export interface NgClientOptions {
  host: string;
  port: number;
  /** Overall time one request may take from its first send, retransmissions included, ms. Default 5000. */
  timeoutMs?: number;
  /** Wait before the first retransmission, ms; each further one waits twice as long. Default 500. */
  retransmitMs?: number;
  /** Requests sent and not yet answered; more wait in a queue. Default 64. */
  maxInFlight?: number;
}

/** rtpengine answered `result: error`. */
export class NgError extends Error {
  override readonly name = 'NgError';
  constructor(
    readonly command: string,
    /** rtpengine's `error-reason`, verbatim (e.g. "Ran out of ports"). */
    readonly reason: string,
    readonly endpoint: string,
    readonly reply: NgDict,
  ) {
    const hint = hintFor(reason);
    super(`rtpengine ${endpoint} refused ${command}: ${reason}${hint ? ` (${hint})` : ''}`);
  }
}

/** No reply within the overall timeout, retransmissions included. */
export class NgTimeoutError extends Error {
  override readonly name = 'NgTimeoutError';
  constructor(
    readonly command: string,
    readonly endpoint: string,
    readonly waitedMs: number,
    readonly sends: number,
  ) {
    super(
      `rtpengine ${endpoint} did not answer ${command} within ${Math.round(waitedMs)} ms (sent ${sends} times): ` +
        `check that rtpengine runs and listens for ng on ${endpoint} (its --listen-ng option) and is not overloaded`,
    );
  }
}

/** The kernel reported the ng address unreachable (on loopback: ICMP port unreachable, i.e. nothing listens there). */
export class NgUnreachableError extends Error {
  override readonly name = 'NgUnreachableError';
  constructor(
    readonly command: string,
    readonly endpoint: string,
    /** The socket error code, e.g. ECONNREFUSED. */
    readonly code: string,
  ) {
    super(
      code === 'ECONNREFUSED'
        ? `nothing is listening for ng on ${endpoint} (port unreachable while sending ${command}): ` +
            `start rtpengine with --listen-ng=${endpoint} or point rtp-bench at the address rtpengine listens on`
        : `cannot reach rtpengine ng at ${endpoint} while sending ${command} (${code}): check the address and the route to it`,
    );
  }
}

/** The client was closed while the request was queued or in flight. */
export class NgClientClosedError extends Error {
  override readonly name = 'NgClientClosedError';
  constructor(
    readonly command: string,
    readonly endpoint: string,
  ) {
    super(`the ng client for ${endpoint} was closed before rtpengine answered ${command}`);
  }
}

/** rtpengine's codec manipulation for one leg (the `codec` dictionary). */
export interface CodecParams {
  mask?: string[];
  transcode?: string[];
  strip?: string[];
  accept?: string[];
  set?: string[];
}

export interface OfferParams {
  callId: string;
  fromTag: string;
  sdp: string;
  flags?: string[];
  /** e.g. ["origin", "session connection"]. */
  replace?: string[];
  ice?: 'remove' | 'force' | 'default';
  codec?: CodecParams;
  ptime?: number;
  /** rtpengine sends its own RTCP SR/RR and consumes the clients' (`"generate RTCP": "on"`). */
  generateRtcp?: boolean;
  rtcpMux?: string[];
  label?: string;
  /** Any further ng keys, sent as given; they win over the keys above. */
  extra?: NgDict;
}

export interface AnswerParams extends OfferParams {
  toTag: string;
}

export interface DeleteParams {
  callId: string;
  /** rtpengine 10.5 puts the call's statistics in the reply only when the delete names the from-tag. */
  fromTag?: string;
  toTag?: string;
  /** Seconds rtpengine keeps the deleted call (and its ports); sent as "delete delay". */
  deleteDelay?: number;
}

export interface SdpReply {
  /** The SDP to hand to the other leg. */
  sdp: string;
  warning: string | null;
  raw: NgDict;
}

export interface PacketCounters {
  packets: number;
  /** Including the 12-byte RTP header. */
  bytes: number;
  errors: number;
}

export interface NgEndpoint {
  family: string;
  address: string;
  port: number;
}

/** One socket of a media: RTP, RTCP, or both when muxed. */
export interface CallStatsStream {
  localAddress: string;
  localPort: number;
  /** Where rtpengine sends to and expects packets from (learned from the first packet). */
  endpoint: NgEndpoint | null;
  /** What the SDP announced. */
  advertisedEndpoint: NgEndpoint | null;
  rtp: boolean;
  rtcp: boolean;
  flags: string[];
  /** The SSRC last seen arriving on this socket. */
  ssrc: number | null;
  /** Unix time of the last packet in, ms (rtpengine reports whole seconds). */
  lastPacket: number | null;
  /** What arrived on this socket from the endpoint: rtpengine counts ingress only. */
  ingress: PacketCounters;
}

export interface CallStatsMedia {
  index: number;
  type: string;
  protocol: string;
  /** e.g. "PCMU/8000"; null before the media was negotiated. */
  codec: string | null;
  flags: string[];
  streams: CallStatsStream[];
}

/** One side (monologue) of the call, named by its SIP tag. */
export interface CallStatsTag {
  tag: string;
  label: string | null;
  /** Unix time, ms (whole seconds). */
  created: number;
  /** Tags this side's media goes to. */
  subscribers: string[];
  medias: CallStatsMedia[];
}

/** One quality sample rtpengine computed from an RTCP receiver report. */
export interface RtcpQuality {
  /** Real MOS, 1.0-4.5: rtpengine sends MOS x 10 as an integer (43 = 4.3); this is that value divided by 10. */
  mos: number;
  /** Round trip through rtpengine to both endpoints, microseconds. */
  roundTripUs: number;
  /** Round trip of this leg only (rtpengine to the reporting endpoint), microseconds. */
  roundTripLegUs: number;
  /** Interarrival jitter the endpoint reported, ms. */
  jitterMs: number;
  /** Fraction lost the endpoint reported, percent. */
  packetLossPct: number;
  /** Unix time, ms (whole seconds); null for the average. */
  reportedAt: number | null;
}

/**
 * Quality rtpengine derived from the RTCP receiver reports of one endpoint, keyed by that endpoint's (the reporter's)
 * SSRC: it describes the stream that endpoint receives. Built only from RR blocks the clients send; absent without
 * client RTCP.
 */
export interface SsrcStats {
  ssrc: number;
  /** Cumulative number of packets lost, from the last report. */
  cumulativeLoss: number;
  average: (RtcpQuality & { samples: number }) | null;
  lowest: RtcpQuality | null;
  highest: RtcpQuality | null;
  /** About 10 samples spread over the call. */
  progression: RtcpQuality[];
}

/** What `query` and `delete` report about a call. */
export interface CallStats {
  /** Unix time, ms (rtpengine's created + created_us). */
  created: number;
  /** Unix time of the last signalling command, ms (whole seconds). */
  lastSignal: number;
  /** Keyed by tag, in rtpengine's order. */
  tags: Record<string, CallStatsTag>;
  /** Ingress counters summed over all streams of the call. */
  totals: { RTP: PacketCounters; RTCP: PacketCounters };
  ssrc: SsrcStats[];
}

export interface CallStatsReply extends CallStats {
  warning: string | null;
  raw: NgDict;
}

export interface DeleteReply {
  /** e.g. "Call-ID not found or tags didn't match" when rtpengine no longer knew the call. */
  warning: string | null;
  /** null when the reply carries none: an unknown call, or a delete without fromTag. */
  stats: CallStats | null;
  raw: NgDict;
}

/**
 * Where a request's time went, filled in when it settles: the wait in this client's own queue (more requests than
 * maxInFlight) is the tool's, not rtpengine's, and must not be reported as rtpengine's round trip.
 */
export interface RequestTiming {
  /** From the call to request() until its first datagram left (0 unless the client was at maxInFlight). */
  queuedMs: number;
  /** From the first datagram until the reply (or the failure), retransmissions included; NaN if never sent. */
  roundTripMs: number;
}

interface Request {
  cookie: string;
  timing: RequestTiming | null;
  createdAt: number;
  command: string;
  bytes: Buffer;
  resolve: (reply: NgDict) => void;
  reject: (err: Error) => void;
  firstSentAt: number;
  deadline: number;
  nextGapMs: number;
  sends: number;
  timer: NodeJS.Timeout | null;
  /** The pending timer is the one armed for the deadline: when it fires, the request has timed out. */
  finalTimer: boolean;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_RETRANSMIT_MS = 500;
const DEFAULT_MAX_IN_FLIGHT = 64;
const NG_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);

/**
 * An ng control client for one rtpengine over one connected UDP socket. Connecting the socket makes the kernel
 * deliver only rtpengine's datagrams to it and report an ICMP port unreachable as ECONNREFUSED within a
 * millisecond on loopback, so "nothing listens there" fails fast instead of after the timeout.
 */
export class NgClient {
  readonly endpoint: string;
  private readonly inFlightByCookie = new Map<string, Request>();
  private readonly waiting: Request[] = [];
  private waitingHead = 0;
  /** rtpengine caches replies by cookie alone for 30-60 s: a random prefix keeps cookies unique across runs too. */
  private readonly cookiePrefix = randomBytes(6).toString('base64url');
  private counter = 0;
  private stray = 0;
  private retransmitted = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  /** closeWhenIdle: resolves the promise it returned once the client has closed; null: not asked. */
  private onDrained: (() => void) | null = null;
  private drained: Promise<void> | null = null;

  private constructor(
    private readonly socket: Socket,
    host: string,
    port: number,
    private readonly timeoutMs: number,
    private readonly retransmitMs: number,
    private readonly maxInFlight: number,
  ) {
    this.endpoint = isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
    socket.on('message', (msg) => this.onDatagram(msg));
    socket.on('error', (err) => this.onSocketError(err));
  }

  static async open(options: NgClientOptions): Promise<NgClient> {
    const { host, port } = options;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const retransmitMs = options.retransmitMs ?? DEFAULT_RETRANSMIT_MS;
    const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`ng port ${port} is not a UDP port (1-65535)`);
    if (!(timeoutMs > 0)) throw new RangeError(`ng timeout ${timeoutMs} ms must be above 0`);
    if (!(retransmitMs > 0)) throw new RangeError(`ng retransmission interval ${retransmitMs} ms must be above 0`);
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`ng requests in flight ${maxInFlight} must be a whole number of at least 1`);
    const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(new Error(`cannot open an ng socket to rtpengine at ${host}:${port}: ${err.message}`));
      };
      socket.once('error', onError);
      socket.connect(port, host, () => {
        socket.off('error', onError);
        resolve();
      });
    });
    // Delete replies carry a call's full statistics (several KB each) and a run ends by deleting every call at
    // once: the default 208 KB receive buffer overflows, and each lost reply costs a retransmission interval. The
    // kernel caps this at net.core.rmem_max without complaint.
    socket.setRecvBufferSize(NG_RECEIVE_BUFFER_BYTES);
    // Pending requests hold timers that keep the process alive; an idle client must not.
    socket.unref();
    return new NgClient(socket, host, port, timeoutMs, retransmitMs, maxInFlight);
  }

  get inFlight(): number {
    return this.inFlightByCookie.size;
  }

  get queued(): number {
    return this.waiting.length - this.waitingHead;
  }

  /** Requests sent again because no reply came in time: each one is a datagram lost one way or the other. */
  get retransmissions(): number {
    return this.retransmitted;
  }

  /** Datagrams that matched no request in flight (late duplicates of retransmitted requests too) or did not decode. */
  get strayReplies(): number {
    return this.stray;
  }

  /** Sends one ng command; resolves with the whole reply for `ok` (and `pong`), rejects with NgError for `error`. */
  request(command: string, params: NgDict = {}, timing: RequestTiming | null = null): Promise<NgDict> {
    if (this.closed || this.drained !== null) return Promise.reject(new NgClientClosedError(command, this.endpoint));
    const cookie = `${this.cookiePrefix}_${(++this.counter).toString(36)}`;
    let bytes: Buffer;
    try {
      bytes = encodeNgMessage(cookie, { ...params, command });
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<NgDict>((resolve, reject) => {
      const req: Request = { cookie, timing, createdAt: performance.now(), command, bytes, resolve, reject, firstSentAt: 0, deadline: 0, nextGapMs: this.retransmitMs, sends: 0, timer: null, finalTimer: false };
      if (this.inFlightByCookie.size < this.maxInFlight) this.start(req);
      else this.waiting.push(req);
    });
  }

  /** Round-trip time of one ng ping, ms (queueing included when the client is busy). */
  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.request('ping');
    return performance.now() - t0;
  }

  async offer(p: OfferParams, timing: RequestTiming | null = null): Promise<SdpReply> {
    return this.sdpReply('offer', await this.request('offer', sdpParams(p), timing));
  }

  async answer(p: AnswerParams, timing: RequestTiming | null = null): Promise<SdpReply> {
    return this.sdpReply('answer', await this.request('answer', { ...sdpParams(p), 'to-tag': p.toTag }, timing));
  }

  async delete(p: DeleteParams, timing: RequestTiming | null = null): Promise<DeleteReply> {
    const params: NgDict = { 'call-id': p.callId };
    if (p.fromTag !== undefined) params['from-tag'] = p.fromTag;
    if (p.toTag !== undefined) params['to-tag'] = p.toTag;
    if (p.deleteDelay !== undefined) params['delete delay'] = p.deleteDelay;
    const raw = await this.request('delete', params, timing);
    return { warning: warningOf(raw), stats: 'tags' in raw || 'totals' in raw ? callStats(raw) : null, raw };
  }

  async query(callId: string): Promise<CallStatsReply> {
    const raw = await this.request('query', { 'call-id': callId });
    return { ...callStats(raw), warning: warningOf(raw), raw };
  }

  /** Call-IDs rtpengine holds (it lists 32 when no limit is given). */
  async list(limit?: number): Promise<string[]> {
    const raw = await this.request('list', limit === undefined ? {} : { limit });
    // Only text (or a number, read as its digits) names a call: String() of a dictionary is "[object Object]", and
    // throws a TypeError when the dictionary has a key named toString.
    return asList(raw.calls)
      .filter((c): c is string | number => typeof c === 'string' || typeof c === 'number')
      .map(String);
  }

  /** rtpengine's `statistics` dictionary: currentstatistics, totalstatistics, intervalstatistics. */
  async statistics(): Promise<NgDict> {
    const raw = await this.request('statistics');
    return asDict(raw.statistics) ?? raw;
  }

  /** Rejects every queued and in-flight request with NgClientClosedError and closes the socket. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    for (const req of this.inFlightByCookie.values()) this.settle(req, new NgClientClosedError(req.command, this.endpoint));
    this.rejectWaiting((req) => new NgClientClosedError(req.command, this.endpoint));
    this.closing = new Promise<void>((resolve) => this.socket.close(() => resolve()));
    if (this.onDrained !== null) void this.closing.then(this.onDrained);
    this.onDrained = null;
    return this.closing;
  }

  /**
   * Takes no more requests and closes once those sent or queued have settled (answered, refused or timed out): a
   * client replaced by another (a worker pod made again at a new address) lets its requests end as they would have.
   */
  closeWhenIdle(): Promise<void> {
    if (this.closing) return this.closing;
    this.drained ??= new Promise<void>((resolve) => {
      this.onDrained = resolve;
    });
    this.closeIfDrained();
    return this.drained;
  }

  private closeIfDrained(): void {
    if (this.onDrained !== null && !this.closed && this.inFlightByCookie.size === 0 && this.queued === 0) void this.close();
  }

  private start(req: Request): void {
    req.firstSentAt = performance.now();
    req.deadline = req.firstSentAt + this.timeoutMs;
    this.inFlightByCookie.set(req.cookie, req);
    this.transmit(req);
    req.finalTimer = req.nextGapMs >= this.timeoutMs;
    req.timer = setTimeout(() => this.onTimer(req), Math.min(req.nextGapMs, this.timeoutMs));
  }

  private transmit(req: Request): void {
    req.sends++;
    if (req.sends > 1) this.retransmitted++;
    this.socket.send(req.bytes, (err) => {
      if (err) this.onSendError(req, err);
    });
  }

  private onTimer(req: Request): void {
    req.timer = null;
    const now = performance.now();
    // The timer armed for the deadline itself ends the request, even if it fires a little early (libuv rounds to
    // whole milliseconds): one more send then could not be answered in time anyway.
    if (req.finalTimer || now >= req.deadline - 1) {
      this.settle(req, new NgTimeoutError(req.command, this.endpoint, now - req.firstSentAt, req.sends));
      return;
    }
    // The same bytes with the same cookie: rtpengine answers a duplicate from its reply cache, never twice over.
    this.transmit(req);
    req.nextGapMs *= 2;
    req.finalTimer = req.nextGapMs >= req.deadline - now;
    req.timer = setTimeout(() => this.onTimer(req), Math.min(req.nextGapMs, req.deadline - now));
  }

  private onDatagram(msg: Buffer): void {
    let decoded: { cookie: string; body: NgDict };
    try {
      decoded = decodeNgMessage(msg);
    } catch {
      this.stray++;
      return;
    }
    const req = this.inFlightByCookie.get(decoded.cookie);
    if (!req) {
      this.stray++;
      return;
    }
    const body = decoded.body;
    const result = body.result;
    if (result === 'ok' || result === 'pong') {
      this.settle(req, null, body);
    } else if (result === 'error') {
      const reason = typeof body['error-reason'] === 'string' ? body['error-reason'] : 'no error-reason given';
      this.settle(req, new NgError(req.command, reason, this.endpoint, body));
    } else {
      const what = result === undefined ? 'no result' : `result ${JSON.stringify(result)}`;
      this.settle(req, new NgError(req.command, `unexpected reply with ${what}`, this.endpoint, body));
    }
  }

  private onSendError(req: Request, err: NodeJS.ErrnoException): void {
    if (!this.inFlightByCookie.has(req.cookie)) return;
    const code = err.code ?? 'EIO';
    this.settle(req, UNREACHABLE_CODES.has(code) ? new NgUnreachableError(req.command, this.endpoint, code) : sendFailed(req, this.endpoint, err));
  }

  /**
   * A connected UDP socket reports ICMP errors on the next receive, without saying which datagram caused them.
   * All requests went to the same address, so every one in flight or waiting fails the same way.
   */
  private onSocketError(err: NodeJS.ErrnoException): void {
    if (this.closed) return;
    const code = err.code ?? 'EIO';
    const make = (req: Request): Error =>
      UNREACHABLE_CODES.has(code) ? new NgUnreachableError(req.command, this.endpoint, code) : sendFailed(req, this.endpoint, err);
    for (const req of [...this.inFlightByCookie.values()]) this.settle(req, make(req), undefined, false);
    this.rejectWaiting(make);
    this.closeIfDrained();
  }

  private settle(req: Request, err: Error | null, reply?: NgDict, pump = true): void {
    if (req.timing !== null) {
      const now = performance.now();
      const sent = req.sends > 0;
      req.timing.queuedMs = (sent ? req.firstSentAt : now) - req.createdAt;
      req.timing.roundTripMs = sent ? now - req.firstSentAt : Number.NaN;
    }
    if (req.timer) clearTimeout(req.timer);
    req.timer = null;
    this.inFlightByCookie.delete(req.cookie);
    if (err) req.reject(err);
    else req.resolve(reply ?? {});
    if (pump) this.pump();
    this.closeIfDrained();
  }

  /** A request that never left the queue: its timing still says how long it waited. */
  private settleQueued(req: Request, err: Error): void {
    if (req.timing !== null) {
      req.timing.queuedMs = performance.now() - req.createdAt;
      req.timing.roundTripMs = Number.NaN;
    }
    req.reject(err);
  }

  private pump(): void {
    while (!this.closed && this.inFlightByCookie.size < this.maxInFlight && this.waitingHead < this.waiting.length) {
      const req = this.waiting[this.waitingHead]!;
      this.waitingHead++;
      this.start(req);
    }
    // Compact now and then instead of shift()ing: shift is O(n) on a long queue.
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
  }

  private rejectWaiting(make: (req: Request) => Error): void {
    const rest = this.waiting.splice(this.waitingHead);
    this.waiting.length = 0;
    this.waitingHead = 0;
    for (const req of rest) this.settleQueued(req, make(req));
  }

  private sdpReply(command: string, raw: NgDict): SdpReply {
    if (typeof raw.sdp !== 'string' || raw.sdp.length === 0) {
      throw new NgProtocolError(`rtpengine ${this.endpoint} answered ${command} with ok but without an SDP body`);
    }
    return { sdp: raw.sdp, warning: warningOf(raw), raw };
  }
}

function sendFailed(req: Request, endpoint: string, err: NodeJS.ErrnoException): Error {
  return new Error(`sending ${req.command} to rtpengine ng at ${endpoint} failed: ${err.message}`, { cause: err });
}

const HINTS: [RegExp, string][] = [
  [/ran out of ports/i, 'no free media ports left in its --port-min/--port-max range, 4 per call: widen the range or place fewer concurrent calls'],
  [/unknown call-id/i, 'rtpengine does not know this call: it was never offered here, was already deleted, or timed out'],
  [/session limit|load limit|cpu usage|bandwidth/i, 'rtpengine refuses new calls because of its --max-sessions, --max-load, --max-cpu or --max-bandwidth limit'],
  [/failed to parse sdp/i, 'the SDP sent was not valid'],
];

function hintFor(reason: string): string | null {
  for (const [re, hint] of HINTS) if (re.test(reason)) return hint;
  return null;
}

function sdpParams(p: OfferParams): NgDict {
  const d: NgDict = { 'call-id': p.callId, 'from-tag': p.fromTag, sdp: p.sdp };
  if (p.flags?.length) d.flags = p.flags;
  if (p.replace?.length) d.replace = p.replace;
  if (p.ice !== undefined) d.ICE = p.ice;
  if (p.codec) {
    const codec: NgDict = {};
    for (const key of ['mask', 'transcode', 'strip', 'accept', 'set'] as const) {
      const list = p.codec[key];
      if (list?.length) codec[key] = list;
    }
    if (Object.keys(codec).length > 0) d.codec = codec;
  }
  if (p.ptime !== undefined) d.ptime = p.ptime;
  if (p.generateRtcp) d['generate RTCP'] = 'on';
  if (p.rtcpMux?.length) d['rtcp-mux'] = p.rtcpMux;
  if (p.label !== undefined) d.label = p.label;
  return p.extra ? { ...d, ...p.extra } : d;
}

function warningOf(raw: NgDict): string | null {
  return typeof raw.warning === 'string' ? raw.warning : null;
}

// Reading replies: rtpengine's stats carry many optional fields, so every reader has a default instead of throwing.
// A delete has already happened when its reply is read; losing the call's numbers to a shape surprise helps nobody.

function asDict(v: NgValue | undefined): NgDict | null {
  return v !== undefined && typeof v === 'object' && !Array.isArray(v) ? v : null;
}

function asList(v: NgValue | undefined): NgValue[] {
  return Array.isArray(v) ? v : [];
}

function num(v: NgValue | undefined, fallback = 0): number {
  if (typeof v === 'number') return v;
  // Some counters come as decimal strings (e.g. "uptime").
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return fallback;
}

function numOrNull(v: NgValue | undefined): number | null {
  const n = num(v, Number.NaN);
  return Number.isNaN(n) ? null : n;
}

function str(v: NgValue | undefined): string | null {
  return typeof v === 'string' ? v : null;
}

function strings(v: NgValue | undefined): string[] {
  return asList(v).filter((x): x is string => typeof x === 'string');
}

function secondsToMs(v: NgValue | undefined): number | null {
  const s = numOrNull(v);
  return s === null ? null : s * 1000;
}

function counters(v: NgValue | undefined): PacketCounters {
  const d = asDict(v) ?? {};
  return { packets: num(d.packets), bytes: num(d.bytes), errors: num(d.errors) };
}

function endpointOf(v: NgValue | undefined): NgEndpoint | null {
  const d = asDict(v);
  if (!d) return null;
  return { family: str(d.family) ?? '', address: str(d.address) ?? '', port: num(d.port) };
}

function streamOf(v: NgValue): CallStatsStream {
  const d = asDict(v) ?? {};
  const flags = strings(d.flags);
  return {
    localAddress: str(d['local address']) ?? '',
    localPort: num(d['local port']),
    endpoint: endpointOf(d.endpoint),
    advertisedEndpoint: endpointOf(d['advertised endpoint']),
    rtp: flags.includes('RTP'),
    rtcp: flags.includes('RTCP'),
    flags,
    ssrc: numOrNull(d.SSRC),
    lastPacket: secondsToMs(d['last packet']),
    ingress: counters(d.stats),
  };
}

function mediaOf(v: NgValue): CallStatsMedia {
  const d = asDict(v) ?? {};
  return {
    index: num(d.index),
    type: str(d.type) ?? '',
    protocol: str(d.protocol) ?? '',
    codec: str(d.codec),
    flags: strings(d.flags),
    streams: asList(d.streams).map(streamOf),
  };
}

function tagOf(key: string, v: NgValue): CallStatsTag {
  const d = asDict(v) ?? {};
  return {
    tag: str(d.tag) ?? key,
    label: str(d.label),
    created: secondsToMs(d.created) ?? 0,
    subscribers: asList(d.subscribers).map((s) => str(asDict(s)?.tag) ?? ''),
    medias: asList(d.medias).map(mediaOf),
  };
}

function qualityOf(v: NgValue | undefined): RtcpQuality | null {
  const d = asDict(v);
  if (!d) return null;
  return {
    mos: num(d.MOS) / 10,
    roundTripUs: num(d['round-trip time']),
    roundTripLegUs: num(d['round-trip time leg']),
    jitterMs: num(d.jitter),
    packetLossPct: num(d['packet loss']),
    reportedAt: secondsToMs(d['reported at']),
  };
}

function ssrcOf(key: string, v: NgValue): SsrcStats {
  const d = asDict(v) ?? {};
  const avg = asDict(d['average MOS']);
  const average = avg ? { ...qualityOf(avg)!, samples: num(avg.samples) } : null;
  return {
    ssrc: num(key),
    cumulativeLoss: num(d['cumulative loss']),
    average,
    lowest: qualityOf(d['lowest MOS']),
    highest: qualityOf(d['highest MOS']),
    progression: asList(asDict(d['MOS progression'])?.entries)
      .map((e) => qualityOf(e))
      .filter((q): q is RtcpQuality => q !== null),
  };
}

/** Types a query or delete reply (rtpengine 10.5 shape; a captured sample is in test/ng/stats.test.ts). */
export function callStats(raw: NgDict): CallStats {
  const createdS = num(raw.created);
  const totals = asDict(raw.totals) ?? {};
  return {
    created: createdS * 1000 + num(raw.created_us) / 1000,
    lastSignal: secondsToMs(raw['last signal']) ?? createdS * 1000,
    tags: Object.fromEntries(Object.entries(asDict(raw.tags) ?? {}).map(([k, v]) => [k, tagOf(k, v)])),
    totals: { RTP: counters(totals.RTP), RTCP: counters(totals.RTCP) },
    ssrc: Object.entries(asDict(raw.SSRC) ?? {}).map(([k, v]) => ssrcOf(k, v)),
  };
}
