/**
 * The kernel's table of this network namespace's UDP sockets (/proc/net/udp), for what Node's dgram cannot tell:
 * how many datagrams the kernel dropped at one of our sockets because its receive queue was full. Those are the
 * generator's own drops, not the system under test's loss. The native I/O asks each socket directly
 * (SO_MEMINFO); this is the dgram path's way, read once per batch of closing sockets, never per packet.
 */
import { readFileSync } from 'node:fs';

export interface UdpSocketRow {
  /** Dotted IPv4 local address. */
  localAddress: string;
  localPort: number;
  /** Datagrams the kernel dropped at this socket (receive queue full, and the few other reasons sk_drops counts). */
  drops: number;
}

/**
 * Parses /proc/net/udp text. Rows that do not have the expected shape are skipped, not fatal: the file's format
 * has been stable for decades, and a figure this module cannot read is reported as unknown by the caller.
 * Addresses are printed as the kernel's __be32 in host byte order (little-endian here): 0100007F is 127.0.0.1.
 */
export function parseProcNetUdp(text: string): UdpSocketRow[] {
  const rows: UdpSocketRow[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (fields.length < 13) continue;
    const local = /^([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})$/.exec(fields[1]!);
    const drops = Number(fields[fields.length - 1]);
    if (local === null || !Number.isInteger(drops)) continue;
    const raw = Number.parseInt(local[1]!, 16);
    const address = [raw & 0xff, (raw >>> 8) & 0xff, (raw >>> 16) & 0xff, raw >>> 24].join('.');
    rows.push({ localAddress: address, localPort: Number.parseInt(local[2]!, 16), drops });
  }
  return rows;
}

/** Reads of the table younger than this are reused: the sockets of calls that end together close together. */
const SNAPSHOT_MAX_AGE_MS = 20;

let snapshot: { atMs: number; drops: Map<string, number> } | null = null;

/**
 * Drops counted so far at the socket bound to address:port in this namespace, or null when the table cannot be
 * read or does not list it. A socket bound to 0.0.0.0 is found under that address.
 */
export function udpReceiveDrops(address: string, port: number, nowMs: number, file = '/proc/net/udp'): number | null {
  if (snapshot === null || nowMs - snapshot.atMs > SNAPSHOT_MAX_AGE_MS) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return null;
    }
    const drops = new Map<string, number>();
    for (const row of parseProcNetUdp(text)) drops.set(`${row.localAddress}:${row.localPort}`, row.drops);
    snapshot = { atMs: nowMs, drops };
  }
  return snapshot.drops.get(`${address}:${port}`) ?? null;
}

/** Forgets the cached table (tests, and a caller that knows sockets changed since). */
export function forgetUdpTable(): void {
  snapshot = null;
}

/**
 * UDP ports bound in this namespace where a socket on `address` would collide: on that address or on the wildcard
 * (0.0.0.0, or :: for a dual-stack IPv6 socket). Empty when the tables cannot be read.
 */
export function boundUdpPorts(address: string, files: { udp: string; udp6: string } = { udp: '/proc/net/udp', udp6: '/proc/net/udp6' }): Set<number> {
  const ports = new Set<number>();
  for (const file of [files.udp, files.udp6]) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (file === files.udp) {
      for (const row of parseProcNetUdp(text)) if (row.localAddress === address || row.localAddress === '0.0.0.0') ports.add(row.localPort);
      continue;
    }
    // udp6 addresses are 32 hex digits; only the all-zero wildcard can collide with an IPv4 bind.
    for (const line of text.split('\n').slice(1)) {
      const m = /^\s*\d+:\s+0{32}:([0-9A-Fa-f]{4})\s/.exec(line);
      if (m) ports.add(Number.parseInt(m[1]!, 16));
    }
  }
  return ports;
}
