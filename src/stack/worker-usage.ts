/**
 * What an rtpengine worker itself spends and counts: its process's CPU and memory (local daemons, from /proc) and
 * its own Prometheus counters (any worker started with --listen-http: rtpengine 10.5 serves them at /metrics).
 * The parsers are pure; the readers never throw (a figure that cannot be had is null).
 */
import { readFileSync } from 'node:fs';

/** The kernel's USER_HZ: /proc times are in these ticks (100 on every Linux ABI rtp-bench runs on). */
const TICKS_PER_SECOND = 100;

export interface ProcessUsage {
  /** User + system CPU of all its threads so far, ms. */
  cpuMs: number;
  /** Resident memory now, bytes. */
  rssBytes: number;
}

/** utime + stime (fields 14 and 15 of /proc/PID/stat) in ms; the command name may hold spaces and parentheses. */
export function cpuMsFromStat(stat: string): number | null {
  const end = stat.lastIndexOf(')');
  if (end < 0) return null;
  const fields = stat.slice(end + 2).trim().split(/\s+/);
  // After "pid (comm) ", fields[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return ((utime + stime) * 1000) / TICKS_PER_SECOND;
}

/** VmRSS of /proc/PID/status, bytes. */
export function rssBytesFromStatus(status: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

export function readProcessUsage(pid: number): ProcessUsage | null {
  try {
    const cpuMs = cpuMsFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const rssBytes = rssBytesFromStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return cpuMs === null || rssBytes === null ? null : { cpuMs, rssBytes };
  } catch {
    return null;
  }
}

/**
 * Prometheus text exposition -> value by series ("name" or "name{labels as written}"). Comments, blank lines and
 * lines that do not parse are skipped; a sample's optional timestamp is ignored.
 */
export function parsePrometheusText(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) continue;
    const value = Number(m[2]);
    if (!Number.isNaN(value)) out.set(m[1]!, value);
  }
  return out;
}

/** The counters of rtpengine 10.5's /metrics that a capacity planner reads. */
export interface RtpengineMetrics {
  sessionsOwn: number;
  sessionsForeign: number;
  transcodedMedia: number;
  /** Streams forwarded by the daemon itself, by the kernel module (offloaded), or mixed. */
  streamsUserspace: number;
  streamsKernel: number;
  streamsMixed: number;
  packetsUserspace: number;
  packetsKernel: number;
  packetErrors: number;
  portsUsed: number;
  portsFree: number;
}

/** Picks the counters; a series rtpengine did not serve reads 0 (port figures sum over its interfaces). */
export function rtpengineMetricsOf(series: ReadonlyMap<string, number>): RtpengineMetrics {
  const v = (name: string): number => series.get(name) ?? 0;
  const sum = (prefix: string): number => [...series.entries()].filter(([k]) => k.startsWith(prefix)).reduce((a, [, x]) => a + x, 0);
  return {
    sessionsOwn: v('rtpengine_sessions{type="own"}'),
    sessionsForeign: v('rtpengine_sessions{type="foreign"}'),
    transcodedMedia: v('rtpengine_transcoded_media'),
    streamsUserspace: v('rtpengine_mediastreams{type="userspace"}'),
    streamsKernel: v('rtpengine_mediastreams{type="kernel"}'),
    streamsMixed: v('rtpengine_mediastreams{type="mixed"}'),
    packetsUserspace: v('rtpengine_packets_total{type="userspace"}'),
    packetsKernel: v('rtpengine_packets_total{type="kernel"}'),
    packetErrors: v('rtpengine_packet_errors_total{type="userspace"}') + v('rtpengine_packet_errors_total{type="kernel"}'),
    portsUsed: sum('rtpengine_ports_used{'),
    portsFree: sum('rtpengine_ports_free{'),
  };
}

/** One scrape of a worker's /metrics; null when it does not answer in time or is not rtpengine's. */
export async function scrapeRtpengine(url: string, timeoutMs = 500): Promise<RtpengineMetrics | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return null;
    const series = parsePrometheusText(await res.text());
    return [...series.keys()].some((k) => k.startsWith('rtpengine_')) ? rtpengineMetricsOf(series) : null;
  } catch {
    return null;
  }
}
