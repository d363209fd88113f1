/**
 * The floor the generator is measured against: the least a Node program can do to move the same packets.
 * Connected UDP socket pairs on 127.0.0.1, one 1 ms interval sending every due 172-byte packet, a receive handler
 * that only counts. No tracking, no RTCP, no worker thread. Prints one JSON line.
 *
 *   node dist/bench/bare-loop.js CALLS SECONDS [FIRST_PORT]
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';

const calls = Number(process.argv[2] ?? 300);
const seconds = Number(process.argv[3] ?? 10);
const firstPort = Number(process.argv[4] ?? 40000);
const PTIME_MS = 20;

interface Sender {
  socket: dgram.Socket;
  packet: Buffer;
  nextMs: number;
}

async function open(port: number, peer: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => socket.connect(peer, '127.0.0.1', resolve));
  return socket;
}

let received = 0;
let sent = 0;
const senders: Sender[] = [];
const start = performance.now();
for (let i = 0; i < calls; i++) {
  const a = firstPort + 4 * i;
  const b = a + 2;
  for (const [port, peer] of [[a, b], [b, a]] as const) {
    const socket = await open(port, peer);
    socket.on('message', () => received++);
    senders.push({ socket, packet: Buffer.alloc(172), nextMs: start + (i % PTIME_MS) });
  }
}
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
console.log(
  JSON.stringify({
    calls,
    sent,
    received,
    usPerPacketOp: cpuUs / (sent + received),
    cpuPct: cpuUs / 10 / (performance.now() - t0),
    latenessP99Ms: lateness[Math.floor(lateness.length * 0.99)] ?? null,
  }),
);
