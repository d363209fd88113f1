/** Free ports for the proxies the tests start on loopback. */
import { once } from 'node:events';
import { createServer } from 'node:net';
import { freeUdpPortRange } from '../../src/stack/rtpengine.js';

/** A TCP port nobody listens on at 127.0.0.1 right now (e.g. for an l7mp controller). */
export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  return address.port;
}

const taken = new Set<number>();

/**
 * `count` UDP ports free on the wildcard address (so on every address: l7mp binds 0.0.0.0), none handed out before
 * by this process, from 20000-32767: below the ephemeral range (32768-60999), so that no socket bound to port 0 (the
 * ingress's JSONSocket cluster sockets) can take one before its owner binds it.
 */
export async function freeUdpPorts(count: number): Promise<number[]> {
  for (let tries = 0; tries < 100; tries++) {
    const { min } = await freeUdpPortRange('0.0.0.0', count, 20000, 32768);
    const ports = Array.from({ length: count }, (_, i) => min + i);
    if (ports.some((p) => taken.has(p))) continue;
    for (const p of ports) taken.add(p);
    return ports;
  }
  throw new Error(`no ${count} free UDP ports in 20000-32767 that this process has not handed out yet`);
}
