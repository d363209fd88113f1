/**
 * A tiny Redis client: RESP2 over one TCP connection, for the handful of commands rtp-bench sends to the Redis its
 * rtpengine workers replicate their calls through (PING, CONFIG GET/SET, SELECT, SCAN, KEYS, DEL, DBSIZE, INFO).
 * Written here rather than taken from npm: it is about 200 lines, and the project pins every dependency it has.
 * Commands are pipelined on the connection and answered in order (Redis' own rule for RESP2), each with a timeout.
 * The encoder and the parser are pure and exported, so their bytes can be tested against literal vectors.
 */
import { createConnection, type Socket } from 'node:net';

/** A RESP2 reply: simple and bulk strings as text, integers, nil (null), arrays, and error replies inside arrays. */
export type RespValue = string | number | null | RespError | RespValue[];

/** An error reply ("-ERR ..."): a value inside an array, thrown (as RedisCommandError) when it is a command's reply. */
export class RespError {
  constructor(readonly message: string) {}
}

/** The bytes of a command as a RESP array of bulk strings (what redis-cli sends). */
export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(String(arg), 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export class RespProtocolError extends Error {
  override readonly name = 'RespProtocolError';
}

/**
 * Incremental RESP2 parser: push() the bytes as they arrive, get back every reply they completed. A reply split
 * over any number of chunks (a large KEYS or INFO) is kept until its last byte is in.
 */
export class RespParser {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): RespValue[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: RespValue[] = [];
    for (;;) {
      const parsed = parseValue(this.buffer, 0);
      if (parsed === null) return out;
      out.push(parsed.value);
      this.buffer = this.buffer.subarray(parsed.next);
    }
  }
}

/** One value at `at`, or null when the buffer ends before it does. */
function parseValue(buf: Buffer, at: number): { value: RespValue; next: number } | null {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[at]!);
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: new RespError(line), next };
    case ':':
      return { value: integer(line), next };
    case '$': {
      const length = integer(line);
      if (length === -1) return { value: null, next };
      if (length < 0) throw new RespProtocolError(`bulk string of length ${length}`);
      if (buf.length < next + length + 2) return null;
      if (buf[next + length] !== 0x0d || buf[next + length + 1] !== 0x0a) throw new RespProtocolError('bulk string not followed by CRLF');
      return { value: buf.toString('utf8', next, next + length), next: next + length + 2 };
    }
    case '*': {
      const count = integer(line);
      if (count === -1) return { value: null, next };
      if (count < 0) throw new RespProtocolError(`array of length ${count}`);
      const items: RespValue[] = [];
      let pos = next;
      for (let i = 0; i < count; i++) {
        const item = parseValue(buf, pos);
        if (item === null) return null;
        items.push(item.value);
        pos = item.next;
      }
      return { value: items, next: pos };
    }
    default:
      throw new RespProtocolError(`unknown reply type byte 0x${buf[at]!.toString(16).padStart(2, '0')}`);
  }
}

function integer(text: string): number {
  if (!/^-?\d+$/.test(text)) throw new RespProtocolError(`"${text}" is not an integer`);
  return Number(text);
}

/** `INFO keyspace` -> keys and keys with a TTL per DB ("db1:keys=3,expires=3,avg_ttl=86399000"). */
export function parseKeyspaceInfo(info: string): Map<number, { keys: number; expires: number }> {
  const out = new Map<number, { keys: number; expires: number }>();
  for (const m of info.matchAll(/^db(\d+):keys=(\d+),expires=(\d+)/gm)) out.set(Number(m[1]), { keys: Number(m[2]), expires: Number(m[3]) });
  return out;
}

/** One field of an INFO section ("redis_version:7.0.15"), or null. */
export function infoField(info: string, name: string): string | null {
  const m = new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info);
  return m ? m[1]! : null;
}

/** Nothing accepted the connection, or it broke: the message names the address. */
export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError';
}

/** Redis answered a command with an error reply (e.g. CONFIG disabled, a DB index out of range). */
export class RedisCommandError extends Error {
  override readonly name = 'RedisCommandError';
  constructor(
    readonly command: string,
    /** Redis' error text, verbatim ("ERR DB index is out of range"). */
    readonly reply: string,
    readonly address: string,
  ) {
    super(`Redis ${address} refused ${command}: ${reply}`);
  }
}

export class RedisTimeoutError extends Error {
  override readonly name = 'RedisTimeoutError';
}

export interface RedisClientOptions {
  host: string;
  port: number;
  /** Connecting, and each command, ms. Default 2000. */
  timeoutMs?: number;
}

interface Pending {
  command: string;
  resolve: (v: RespValue) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class RedisClient {
  private readonly pending: Pending[] = [];
  private readonly parser = new RespParser();
  private closed = false;
  /** The DB the connection has SELECTed (0 until told otherwise). */
  private db = 0;

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => {
      let replies: RespValue[];
      try {
        replies = this.parser.push(chunk);
      } catch (err) {
        this.fail(new RedisUnreachableError(`Redis ${address} sent a reply rtp-bench cannot read (${(err as Error).message}): is it Redis?`));
        return;
      }
      for (const reply of replies) {
        const p = this.pending.shift();
        if (p === undefined) continue;
        clearTimeout(p.timer);
        if (reply instanceof RespError) p.reject(new RedisCommandError(p.command, reply.message, address));
        else p.resolve(reply);
      }
    });
    socket.on('error', (err) => this.fail(new RedisUnreachableError(`lost the connection to Redis ${address}: ${err.message}`)));
    socket.on('close', () => this.fail(new RedisUnreachableError(`Redis ${address} closed the connection`)));
  }

  /** Connects; rejects with RedisUnreachableError (naming the address) when nothing accepts in time. */
  static connect(o: RedisClientOptions): Promise<RedisClient> {
    const timeoutMs = o.timeoutMs ?? 2000;
    const address = `${o.host}:${o.port}`;
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: o.host, port: o.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RedisUnreachableError(`Redis ${address} did not accept a connection within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        const why = err.code === 'ECONNREFUSED' ? 'nothing listens there (connection refused)' : err.message;
        reject(new RedisUnreachableError(`cannot reach Redis at ${address}: ${why}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RedisClient(socket, address, timeoutMs));
      });
    });
  }

  /** Sends one command; resolves with its reply, rejects with RedisCommandError for an error reply. */
  command(...args: (string | number)[]): Promise<RespValue> {
    const name = String(args[0] ?? '').toUpperCase();
    if (this.closed) return Promise.reject(new RedisUnreachableError(`the connection to Redis ${this.address} is closed`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Replies come in order: after a lost one, every later reply would be matched to the wrong command.
        this.fail(new RedisTimeoutError(`Redis ${this.address} did not answer ${name} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.push({ command: name, resolve, reject, timer });
      this.socket.write(encodeCommand(args));
    });
  }

  async ping(): Promise<void> {
    const reply = await this.command('PING');
    if (reply !== 'PONG') throw new RedisUnreachableError(`Redis ${this.address} answered PING with ${JSON.stringify(reply)}, not PONG: is it Redis?`);
  }

  /** A server setting (CONFIG GET), or null when the server has no such setting. */
  async configGet(name: string): Promise<string | null> {
    const reply = await this.command('CONFIG', 'GET', name);
    if (!Array.isArray(reply) || reply.length < 2) return null;
    const value = reply[1];
    return typeof value === 'string' ? value : null;
  }

  async configSet(name: string, value: string): Promise<void> {
    await this.command('CONFIG', 'SET', name, value);
  }

  async select(db: number): Promise<void> {
    if (this.db === db) return;
    await this.command('SELECT', db);
    this.db = db;
  }

  async dbsize(db: number): Promise<number> {
    await this.select(db);
    return asInteger(await this.command('DBSIZE'), 'DBSIZE');
  }

  /** Every key of `db` matching the glob `pattern`, through SCAN (KEYS would block the server on a large DB). */
  async scan(db: number, pattern: string): Promise<string[]> {
    await this.select(db);
    const keys = new Set<string>();
    let cursor = '0';
    do {
      const reply = await this.command('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1])) throw new RespProtocolError(`SCAN answered ${JSON.stringify(reply)}`);
      cursor = reply[0];
      // SCAN may return a key more than once while the DB changes; the set keeps each once.
      for (const k of reply[1]) if (typeof k === 'string') keys.add(k);
    } while (cursor !== '0');
    return [...keys];
  }

  /** KEYS: for small DBs and tests only (it blocks the server while it walks every key). */
  async keys(db: number, pattern: string): Promise<string[]> {
    await this.select(db);
    const reply = await this.command('KEYS', pattern);
    return Array.isArray(reply) ? reply.filter((k): k is string => typeof k === 'string') : [];
  }

  /** Deletes `keys` in `db`; returns how many existed. */
  async del(db: number, keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    await this.select(db);
    return asInteger(await this.command('DEL', ...keys), 'DEL');
  }

  /** INFO `section` as Redis prints it (lines "name:value"). */
  async info(section: string): Promise<string> {
    const reply = await this.command('INFO', section);
    if (typeof reply !== 'string') throw new RespProtocolError(`INFO answered ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Closes the connection; commands still waiting are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    const ended = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.fail(new RedisUnreachableError(`the connection to Redis ${this.address} was closed`));
    await ended;
  }

  private fail(err: Error): void {
    const wasOpen = !this.closed;
    this.closed = true;
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    if (wasOpen) this.socket.destroy();
  }
}

function asInteger(reply: RespValue, command: string): number {
  if (typeof reply !== 'number') throw new RespProtocolError(`${command} answered ${JSON.stringify(reply)}, not an integer`);
  return reply;
}
