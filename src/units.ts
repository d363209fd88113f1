/**
 * Pure parsers for the values people type on the command line: durations, rates, port ranges, endpoints, percents.
 * Each throws UnitError carrying the offending text, what is wrong with it and what was expected, so plan.ts can put
 * the flag name in front and still produce one line.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Endpoint, PortRange } from './addresses.js';

export class UnitError extends Error {
  override readonly name = 'UnitError';

  constructor(
    /** The text at fault: the whole value, or the one item of a list that is wrong. */
    readonly value: string,
    /** What is wrong, phrased to follow the value: `has no unit`, `is out of range`. */
    readonly problem: string,
    /** What would have been accepted, phrased to follow `expected`. */
    readonly expected: string,
  ) {
    super(`${quoteValue(value)} ${problem}: expected ${expected}`);
  }
}

/** Values are printed bare unless they would be invisible or ambiguous in a one-line message. */
export function quoteValue(value: string): string {
  return value === '' || /[\s"'`]/.test(value) ? JSON.stringify(value) : value;
}

/**
 * Plain decimals only: Number() would also accept '', ' 5', '0x10', '1e3' and 'Infinity', all of which are more
 * likely typos than intent on a command line.
 */
const DECIMAL = /^-?(?:\d+(?:\.\d*)?|\.\d+)$/;

export function parseDecimal(text: string): number | undefined {
  return DECIMAL.test(text) ? Number(text) : undefined;
}

const DURATION_EXAMPLES = 'a duration like 20s, 2m, 1h, 500ms or 1m30s';
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
const UNIT_ORDER = ['h', 'm', 's', 'ms'];

/**
 * "20s", "2m", "1h", "500ms", "1m30s", "1.5s" -> milliseconds. A bare number is refused because "--hold 20" could
 * mean seconds or milliseconds; only 0 is the same in every unit, so it is the one bare number let through.
 */
export function parseDurationMs(text: string): number {
  const value = text.trim().toLowerCase();
  if (value === '') throw new UnitError(text, 'is empty', DURATION_EXAMPLES);
  if (DECIMAL.test(value)) {
    if (Number(value) === 0) return 0;
    throw new UnitError(text, 'has no unit', `${DURATION_EXAMPLES} (did you mean ${value}s?)`);
  }
  if (value.startsWith('-')) throw new UnitError(text, 'is negative', DURATION_EXAMPLES);
  const part = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;
  let total = 0;
  let lastUnit = -1;
  let at = 0;
  while (at < value.length) {
    part.lastIndex = at;
    const match = part.exec(value);
    if (!match) throw new UnitError(text, 'is not a duration', DURATION_EXAMPLES);
    const [whole, amount = '', unit = ''] = match;
    const rank = UNIT_ORDER.indexOf(unit);
    if (rank <= lastUnit) throw new UnitError(text, 'repeats a unit or has them out of order', `largest unit first, e.g. 1h30m or 1m30s`);
    lastUnit = rank;
    total += Number(amount) * (UNIT_MS[unit] ?? 0);
    at += whole.length;
  }
  // 1.5s is fine, 0.5ms is not: timers work in whole milliseconds, and rounding would silently change the value.
  const rounded = Math.round(total);
  if (Math.abs(total - rounded) > 1e-6) throw new UnitError(text, 'is not a whole number of milliseconds', DURATION_EXAMPLES);
  return rounded;
}

const RATE_EXAMPLES = 'calls per second like 10/s, 600/min or 10 (a bare number is per second)';
const RATE_PER: Record<string, number> = { s: 1, sec: 1, m: 60, min: 60, h: 3600 };

/** "10/s", "600/min", "10" -> calls per second. */
export function parseRate(text: string): number {
  const value = text.trim().toLowerCase();
  const match = /^([^/]*)(?:\/(.*))?$/.exec(value);
  const amount = parseDecimal(match?.[1] ?? '');
  const unit = match?.[2];
  if (amount === undefined) throw new UnitError(text, 'is not a rate', RATE_EXAMPLES);
  let per = 1;
  if (unit !== undefined) {
    const seconds = RATE_PER[unit];
    if (seconds === undefined) throw new UnitError(text, `has an unknown unit /${unit}`, `${RATE_EXAMPLES}; units: /s, /min, /h`);
    per = seconds;
  }
  if (!(amount > 0)) throw new UnitError(text, 'is not more than 0', RATE_EXAMPLES);
  return amount / per;
}

const PORT_RANGE_EXAMPLE = 'LO-HI with ports from 1 to 65535, e.g. 20000-29999';

/** "20000-29999" -> {min, max}, both inclusive. Whether the first port must be even is the caller's rule. */
export function parsePortRange(text: string): PortRange {
  const match = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
  if (!match) throw new UnitError(text, 'is not a port range', PORT_RANGE_EXAMPLE);
  const min = Number(match[1]);
  const max = Number(match[2]);
  for (const port of [min, max]) {
    if (port < 1 || port > 65535) throw new UnitError(text, `has port ${port}, out of range`, PORT_RANGE_EXAMPLE);
  }
  if (min > max) throw new UnitError(text, 'runs backwards (LO is above HI)', PORT_RANGE_EXAMPLE);
  return { min, max };
}

const ENDPOINT_EXAMPLE = 'HOST:PORT[,HOST:PORT...] with an IPv4 address, a host name or [IPv6], e.g. 127.0.0.1:22222 or [::1]:22222';
const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

function isHostName(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.replace(/\.$/, '').split('.');
  // All-digit dotted names are malformed IPv4 literals (999.1.1.1), never host names a resolver would accept.
  if (labels.every((label) => /^\d+$/.test(label))) return false;
  return labels.every((label) => HOST_LABEL.test(label));
}

function parseEndpoint(item: string): Endpoint {
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(item);
  if (bracketed) {
    host = bracketed[1] ?? '';
    if (bracketed[2] === undefined) throw new UnitError(item, 'has no port', ENDPOINT_EXAMPLE);
    portText = bracketed[2];
    if (!isIPv6(host)) throw new UnitError(item, `has ${host} in brackets, which is not an IPv6 address`, ENDPOINT_EXAMPLE);
  } else {
    const colon = item.lastIndexOf(':');
    if (colon < 0) throw new UnitError(item, 'has no port', ENDPOINT_EXAMPLE);
    host = item.slice(0, colon);
    portText = item.slice(colon + 1);
    if (host.includes(':')) throw new UnitError(item, 'looks like an IPv6 address without brackets', `[ADDRESS]:PORT, e.g. [::1]:22222`);
    if (host === '') throw new UnitError(item, 'has no host', ENDPOINT_EXAMPLE);
    if (!isIPv4(host) && !isHostName(host)) {
      const what = /^[\d.]+$/.test(host) ? 'not a valid IPv4 address' : 'not a valid host name';
      throw new UnitError(item, `has host ${host}, ${what}`, ENDPOINT_EXAMPLE);
    }
  }
  if (!/^\d+$/.test(portText)) throw new UnitError(item, `has port ${quoteValue(portText)}, not a number`, ENDPOINT_EXAMPLE);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new UnitError(item, `has port ${port}, out of range`, ENDPOINT_EXAMPLE);
  return { host, port };
}

/** "127.0.0.1:22222,[::1]:2223,rtpengine-0:22222" -> endpoints; IPv6 hosts come back without brackets. */
export function parseEndpoints(text: string): Endpoint[] {
  const items = text.split(',').map((item) => item.trim());
  if (items.every((item) => item === '')) throw new UnitError(text, 'is empty', ENDPOINT_EXAMPLE);
  const endpoints: Endpoint[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    if (item === '') throw new UnitError(text, 'has an empty item', ENDPOINT_EXAMPLE);
    const endpoint = parseEndpoint(item);
    const key = `${endpoint.host.toLowerCase()}|${endpoint.port}`;
    // Listing one instance twice would double its share of calls while looking like two workers in the report.
    if (seen.has(key)) throw new UnitError(item, 'is listed twice', 'each rtpengine instance once');
    seen.add(key);
    endpoints.push(endpoint);
  }
  return endpoints;
}

const PERCENT_EXAMPLE = 'a percentage from 0 to 100, e.g. 0.5 or 0.5%';

/** "0.5" or "0.5%" -> 0.5 (a percentage, not a fraction). */
export function parsePercent(text: string): number {
  const value = text.trim();
  const amount = parseDecimal(value.endsWith('%') ? value.slice(0, -1).trim() : value);
  if (amount === undefined) throw new UnitError(text, 'is not a number', PERCENT_EXAMPLE);
  if (amount < 0 || amount > 100) throw new UnitError(text, 'is out of range', PERCENT_EXAMPLE);
  return amount;
}
