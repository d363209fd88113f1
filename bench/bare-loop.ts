/**
 * The floor the generator is measured against: the least a Node program can do to move the same packets.
 * Connected UDP socket pairs on 127.0.0.1, one 1 ms interval sending every due 172-byte packet, a receive handler
 * that only counts. No tracking, no RTCP, no worker thread. Prints one JSON line.
 *
 *   node dist/bench/bare-loop.js CALLS SECONDS [FIRST_PORT]
 */
import { performance } from 'node:perf_hooks';
import { openDgramPairs } from './lib.js';

const calls = Number(process.argv[2] ?? 300);
const seconds = Number(process.argv[3] ?? 10);
const firstPort = Number(process.argv[4] ?? 40000);
const PTIME_MS = 20;

let sent = 0;
const { senders, received } = await openDgramPairs(calls, firstPort, 172, PTIME_MS);
const lateness: number[] = [];
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const now = performance.now();
    for (const s of senders) {
      while (s.nextMs <= now) {
        lateness.push(performance.now() - s.nextMs);
        s.packet.writeUInt16BE(sent & 0xffff, 2);
        s.socket.send(s.packet);
        sent++;
        s.nextMs += PTIME_MS;
      }
    }
    if (now - t0 >= seconds * 1000) {
      clearInterval(timer);
      setTimeout(resolve, 200);
    }
  }, 1);
});
const cpu = process.cpuUsage(cpu0);
const cpuUs = cpu.user + cpu.system;
lateness.sort((x, y) => x - y);
for (const s of senders) s.socket.close();
const got = received();
console.log(
  JSON.stringify({
    calls,
    sent,
    received: got,
    usPerPacketOp: cpuUs / (sent + got),
    cpuPct: cpuUs / 10 / (performance.now() - t0),
    latenessP99Ms: lateness[Math.floor(lateness.length * 0.99)] ?? null,
  }),
);
