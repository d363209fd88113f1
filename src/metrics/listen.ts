/**
 * --metrics-listen [HOST:PORT]: where the run serves its live Prometheus metrics (src/metrics/server.ts). Pure: the
 * text -> an address, or why not; src/plan.ts turns the "why not" into its one-line error.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** 9464 is the OpenTelemetry Prometheus exporter's default port: where a scrape config for a load generator's metrics looks first. */
export const DEFAULT_METRICS_LISTEN = { host: '127.0.0.1', port: 9464 } as const;

export interface MetricsListen {
  host: string;
  port: number;
  /** 127.0.0.0/8 or ::1: only this machine can read the metrics. Anything else is allowed, with a warning (no authentication). */
  loopback: boolean;
}

export const METRICS_LISTEN_EXPECTED = 'HOST:PORT with an IP address and a TCP port from 1 to 65535, e.g. 127.0.0.1:9464 ([::1]:9464 for IPv6), a port alone (on 127.0.0.1), or nothing for 127.0.0.1:9464';

/** '' (the flag alone) -> the default; 'PORT' -> loopback on that port; 'HOST:PORT' or '[V6]:PORT'. A string: what is wrong. */
export function parseMetricsListen(text: string): MetricsListen | string {
  const t = text.trim();
  if (t === '') return { ...DEFAULT_METRICS_LISTEN, loopback: true };
  let host: string = DEFAULT_METRICS_LISTEN.host;
  let portText = t;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(t);
  if (v6 !== null) {
    host = v6[1]!;
    portText = v6[2]!;
    if (!isIPv6(host)) return `has ${host === '' ? 'an empty address' : `"${host}"`} in brackets, not an IPv6 address`;
  } else if (t.includes(':')) {
    const at = t.lastIndexOf(':');
    host = t.slice(0, at);
    portText = t.slice(at + 1);
    if (isIPv6(t)) return 'is an IPv6 address without a port';
    if (!isIPv4(host)) return `has "${host}", not an IPv4 address (a host name could resolve to several)`;
  }
  if (!/^\d{1,5}$/.test(portText)) return `has port "${portText}", not a number`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `has port ${port}, out of range`;
  return { host, port, loopback: isLoopback(host) };
}

export function isLoopback(host: string): boolean {
  return (isIPv4(host) && host.startsWith('127.')) || host === '::1';
}

/** The URL the metrics are served at, for status lines and scrape configs. */
export function metricsUrl(listen: Pick<MetricsListen, 'host' | 'port'>): string {
  const host = isIPv6(listen.host) ? `[${listen.host}]` : listen.host;
  return `http://${host}:${listen.port}/metrics`;
}
