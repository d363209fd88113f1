import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { NgClient, NgError } from '../../src/ng/client.js';
import { buildAudioSdp, parseAudioSdp, type SdpCodec } from '../../src/sdp.js';
import {
  freeUdpPort,
  freeUdpPortRange,
  rtpengineVersion,
  RtpengineNotInstalledError,
  RtpengineStartError,
  startRtpengine,
  type LocalRtpengine,
  type StartRtpengineOptions,
} from '../../src/stack/rtpengine.js';
import { alive, gone } from '../helpers/process.js';
import { removeTempDirs, tempDir } from '../helpers/temp.js';

const started: LocalRtpengine[] = [];
const clients: NgClient[] = [];

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(started.map((r) => r.stop()));
  await removeTempDirs();
});

async function start(address: string, ports: number, more: Partial<StartRtpengineOptions> = {}): Promise<{ r: LocalRtpengine; ng: NgClient }> {
  const range = await freeUdpPortRange(address, ports);
  const r = await startRtpengine({ address, portMin: range.min, portMax: range.max, ...more });
  started.push(r);
  const ng = await NgClient.open({ host: address, port: r.ngPort });
  clients.push(ng);
  return { r, ng };
}

const PCMU: SdpCodec = { payloadType: 0, encoding: 'PCMU', clockRate: 8000 };
const OPUS: SdpCodec = { payloadType: 111, encoding: 'opus', clockRate: 48000, channels: 2, fmtp: 'minptime=10;useinbandfec=1' };

function sdp(address: string, port: number, codec: SdpCodec): string {
  return buildAudioSdp({ sessionId: String(port), address, port, rtcpPort: port + 1, codecs: [codec], ptimeMs: 20 });
}

test('rtpengineVersion reads the installed daemon', async () => {
  assert.match(await rtpengineVersion(), /^10\.5\./);
});

test('a started rtpengine answers pings and carries a PCMU call from offer to delete', async () => {
  const { r, ng } = await start('127.0.0.1', 40);
  assert.match(r.version, /^\d+\.\d+/);
  assert.ok(alive(r.pid));
  assert.ok(r.args.includes('--config-file=none') && r.args.includes('--table=-1') && r.args.includes('--delete-delay=0'));
  assert.ok(r.args.includes(`--listen-ng=127.0.0.1:${r.ngPort}`));
  assert.ok((await ng.ping()) < 1000);

  const callId = `pcmu-${Date.now()}`;
  const offer = await ng.offer({ callId, fromTag: 'a', sdp: sdp('127.0.0.1', 20000, PCMU), ice: 'remove', replace: ['origin', 'session connection'] });
  const towardB = parseAudioSdp(offer.sdp);
  assert.equal(towardB.address, '127.0.0.1');
  assert.ok(towardB.port >= r.portMin && towardB.port <= r.portMax, `port ${towardB.port} in ${r.portMin}-${r.portMax}`);
  assert.equal(towardB.rtcpPort, towardB.port + 1);
  assert.deepEqual(towardB.codecs, [{ ...PCMU, fmtp: null }]);

  const answer = await ng.answer({ callId, fromTag: 'a', toTag: 'b', sdp: sdp('127.0.0.1', 20002, PCMU), ice: 'remove' });
  const towardA = parseAudioSdp(answer.sdp);
  assert.notEqual(towardA.port, towardB.port);
  assert.deepEqual(towardA.codecs, [{ ...PCMU, fmtp: null }]);

  const q = await ng.query(callId);
  assert.deepEqual(Object.keys(q.tags).sort(), ['a', 'b']);
  assert.equal(q.tags.a!.medias[0]!.streams.find((s) => s.rtp)!.localPort, towardA.port);
  assert.equal(q.tags.b!.medias[0]!.streams.find((s) => s.rtp)!.localPort, towardB.port);
  assert.deepEqual(await ng.list(), [callId]);

  const del = await ng.delete({ callId, fromTag: 'a' });
  assert.equal(del.warning, null);
  assert.deepEqual(del.stats?.totals.RTP, { packets: 0, bytes: 0, errors: 0 });
  assert.deepEqual(await ng.list(), []);
});

test('opus offered with mask opus + transcode PCMU: leg B sees only PCMU, leg A keeps opus', async () => {
  const { ng } = await start('127.0.0.1', 40);
  const callId = `tc-${Date.now()}`;
  const offer = await ng.offer({ callId, fromTag: 'a', sdp: sdp('127.0.0.1', 20000, OPUS), ice: 'remove', codec: { mask: ['opus'], transcode: ['PCMU'] } });
  assert.deepEqual(parseAudioSdp(offer.sdp).codecs.map((c) => c.payloadType), [0]);
  const answer = await ng.answer({ callId, fromTag: 'a', toTag: 'b', sdp: sdp('127.0.0.1', 20002, PCMU), ice: 'remove' });
  assert.deepEqual(parseAudioSdp(answer.sdp).codecs, [OPUS]);
  await ng.delete({ callId, fromTag: 'a' });
});

test('two daemons side by side on 127.0.0.1 and 127.0.0.2 keep their own addresses and ports', async () => {
  const [one, two] = await Promise.all([start('127.0.0.1', 20), start('127.0.0.2', 20)]);
  assert.notEqual(one.r.pid, two.r.pid);
  for (const { r, ng } of [one, two]) {
    assert.equal(ng.endpoint, `${r.address}:${r.ngPort}`);
    const callId = `side-${r.address}-${Date.now()}`;
    const offer = parseAudioSdp((await ng.offer({ callId, fromTag: 'a', sdp: sdp(r.address, 20000, PCMU), replace: ['origin', 'session connection'] })).sdp);
    assert.equal(offer.address, r.address);
    assert.ok(offer.port >= r.portMin && offer.port <= r.portMax);
    assert.deepEqual(await ng.list(), [callId]);
    await ng.delete({ callId });
  }
});

test('a 4-port range holds one call: the second offer fails with "Ran out of ports"', async () => {
  const { ng } = await start('127.0.0.1', 4);
  await ng.offer({ callId: `first-${Date.now()}`, fromTag: 'a', sdp: sdp('127.0.0.1', 20000, PCMU) });
  await assert.rejects(ng.offer({ callId: `second-${Date.now()}`, fromTag: 'a', sdp: sdp('127.0.0.1', 20004, PCMU) }), (err: unknown) => {
    assert.ok(err instanceof NgError);
    assert.match(err.reason, /Ran out of ports/);
    assert.match(err.message, /refused offer: Ran out of ports.*widen the range/);
    return true;
  });
});

test('a binary that does not exist: RtpengineNotInstalledError says how to install it', async () => {
  await assert.rejects(startRtpengine({ binary: '/nonexistent/rtpengine', address: '127.0.0.1', portMin: 20000, portMax: 20099 }), (err: unknown) => {
    assert.ok(err instanceof RtpengineNotInstalledError);
    assert.match(err.message, /apt-get install -y --no-install-recommends rtpengine-daemon/);
    return true;
  });
});

test('an option rtpengine does not know: it exits at once, and the error says with which code', async () => {
  const range = await freeUdpPortRange('127.0.0.1', 4);
  await assert.rejects(
    startRtpengine({ address: '127.0.0.1', portMin: range.min, portMax: range.max, extraArgs: ['--no-such-option'] }),
    (err: unknown) => {
      assert.ok(err instanceof RtpengineStartError);
      assert.equal(err.exitCode, 255);
      assert.match(err.message, /exited with code 255 before answering an ng ping.*unknown command-line option/s);
      return true;
    },
  );
});

/** A stand-in binary that reports a version and then misbehaves: lets the start-up failure paths run for real. */
async function fakeRtpengine(body: string): Promise<string> {
  const path = join(await tempDir('rtp-bench-fake-'), 'rtpengine');
  await writeFile(path, `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Version: 0.0-fake" >&2; exit 0; fi\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

test('a daemon that dies during start-up: the error has its exit code and its last log lines', async () => {
  const binary = await fakeRtpengine('echo "ERR: [core] Failed to open something important" >&2\nexit 3');
  await assert.rejects(startRtpengine({ binary, address: '127.0.0.1', portMin: 20000, portMax: 20099 }), (err: unknown) => {
    assert.ok(err instanceof RtpengineStartError);
    assert.equal(err.exitCode, 3);
    assert.deepEqual(err.logTail, ['ERR: [core] Failed to open something important']);
    assert.match(err.message, /exited with code 3 before answering an ng ping; its last log lines:\n {2}ERR: \[core\] Failed to open/);
    return true;
  });
});

test('an ng port taken by someone else between its choice and the bind: a new port is chosen, up to three times', async () => {
  const dir = await tempDir('rtp-bench-race-');
  const tries = join(dir, 'tries');
  // Fails like rtpengine 10.5 does when its ng port is taken, the first two times; then is the real daemon.
  const binary = await fakeRtpengine(
    `echo x >> ${tries}\nif [ $(wc -l < ${tries}) -le 2 ]; then\n` +
      `  echo "[1.0] CRIT: [core] Fatal error: Failed to open UDP NG control connection port (127.0.0.1:1): Address already in use" >&2\n  exit 255\nfi\n` +
      'exec rtpengine "$@"',
  );
  const engine = await startRtpengine({ binary, address: '127.0.0.1', portMin: 30600, portMax: 30619 });
  try {
    assert.equal((await readFile(tries, 'utf8')).trim().split('\n').length, 3);
    const ng = await NgClient.open({ host: '127.0.0.1', port: engine.ngPort });
    await ng.ping();
    await ng.close();
  } finally {
    await engine.stop();
  }
  // Taken every time: it gives up after three ports, with rtpengine's own words.
  await writeFile(tries, '');
  const always = await fakeRtpengine(`echo x >> ${tries}\necho "[1.0] CRIT: [core] Fatal error: Failed to open UDP NG control connection port (127.0.0.1:1): Address already in use" >&2\nexit 255`);
  await assert.rejects(startRtpengine({ binary: always, address: '127.0.0.1', portMin: 30600, portMax: 30619 }), /Address already in use/);
  assert.equal((await readFile(tries, 'utf8')).trim().split('\n').length, 3);
});

test('a daemon that never answers: killed at the deadline, the error shows its log', async () => {
  const pidFile = join(await tempDir('rtp-bench-pid-'), 'pid');
  const binary = await fakeRtpengine(`echo $$ > ${pidFile}\necho "NOTICE: still thinking" >&2\nexec sleep 60`);
  const t0 = performance.now();
  await assert.rejects(startRtpengine({ binary, address: '127.0.0.1', portMin: 20000, portMax: 20099, readyTimeoutMs: 500 }), (err: unknown) => {
    assert.ok(err instanceof RtpengineStartError);
    assert.match(err.message, /did not answer an ng ping within 500 ms .* and was stopped; its last log lines:\n {2}NOTICE: still thinking/s);
    return true;
  });
  assert.ok(performance.now() - t0 < 5000);
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  assert.ok(await gone(pid), 'the daemon was stopped');
});

test('an ng port that another process holds is refused before rtpengine would share it', async () => {
  const holder = createSocket('udp4');
  holder.bind(0, '127.0.0.1');
  await once(holder, 'listening');
  try {
    await assert.rejects(
      startRtpengine({ address: '127.0.0.1', ngPort: holder.address().port, portMin: 20000, portMax: 20099 }),
      /ng port 127\.0\.0\.1:\d+ is already in use/,
    );
  } finally {
    holder.close();
  }
});

test('nonsense ranges are refused with a message', async () => {
  await assert.rejects(startRtpengine({ address: '127.0.0.1', portMin: 30000, portMax: 29000 }), /inverted/);
  await assert.rejects(startRtpengine({ address: '127.0.0.1', portMin: 30000, portMax: 30010, ngPort: 30004 }), /inside its media port range/);
  await assert.rejects(startRtpengine({ address: '127.0.0.1', portMin: 30000, portMax: 30010, logLevel: 9 }), /log level/);
});

test('stop ends the daemon by PID, is idempotent, and an ng client then hears nothing listening', async () => {
  const { r } = await start('127.0.0.1', 4);
  const ngPort = r.ngPort;
  await Promise.all([r.stop(), r.stop()]);
  assert.equal(alive(r.pid), false);
  await r.stop();
  const ng = await NgClient.open({ host: '127.0.0.1', port: ngPort });
  clients.push(ng);
  await assert.rejects(ng.ping(), /nothing is listening for ng on 127\.0\.0\.1:\d+/);
});

test('a run that crashes leaves no daemon behind', async () => {
  const modulePath = fileURLToPath(new URL('../../src/stack/rtpengine.js', import.meta.url));
  const range = await freeUdpPortRange('127.0.0.1', 4);
  const script = `
    import { startRtpengine } from ${JSON.stringify(modulePath)};
    const r = await startRtpengine({ address: '127.0.0.1', portMin: ${range.min}, portMax: ${range.max} });
    process.stdout.write(String(r.pid));
    throw new Error('crash on purpose');
  `;
  const { pid, code } = await new Promise<{ pid: number; code: number | null }>((resolve) => {
    const child = execFile(process.execPath, ['--input-type=module', '-e', script], (err, stdout) => {
      resolve({ pid: Number(stdout), code: err ? (typeof err.code === 'number' ? err.code : null) : 0 });
    });
    void child;
  });
  assert.equal(code, 1, 'the run crashed');
  assert.ok(pid > 0, 'the daemon had started');
  assert.ok(await gone(pid), `rtpengine ${pid} outlived the crashed run`);
});

test('a run killed outright (SIGKILL, no exit hook runs) still leaves no daemon behind', async () => {
  const modulePath = fileURLToPath(new URL('../../src/stack/rtpengine.js', import.meta.url));
  const range = await freeUdpPortRange('127.0.0.1', 4);
  const script = `
    import { startRtpengine } from ${JSON.stringify(modulePath)};
    const r = await startRtpengine({ address: '127.0.0.1', portMin: ${range.min}, portMax: ${range.max} });
    process.stdout.write(String(r.pid));
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const pid = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString())));
      child.once('exit', (code) => reject(new Error(`the run exited (${code}) before starting rtpengine`)));
    });
    assert.ok(alive(pid), 'the daemon runs while the run does');
    child.kill('SIGKILL');
    assert.ok(await gone(pid), `rtpengine ${pid} outlived the killed run`);
  } finally {
    child.kill('SIGKILL');
  }
});

test('freeUdpPort: a port on the given address that is free again once it returns; an address not on this host is an error', async () => {
  // startRtpengine takes its ng port from here: the port must be one rtpengine can bind on its address right after.
  for (const address of ['127.0.0.1', '127.0.0.2']) {
    const port = await freeUdpPort(address);
    assert.ok(Number.isInteger(port) && port >= 1024 && port <= 65535, `port ${port}`);
    const s = createSocket('udp4');
    try {
      s.bind(port, address);
      await once(s, 'listening');
      assert.deepEqual({ address: s.address().address, port: s.address().port }, { address, port });
    } finally {
      s.close();
    }
  }
  // An address this host does not have (TEST-NET-1, nothing is sent): rejected, not a port that nobody can use.
  await assert.rejects(freeUdpPort('192.0.2.1'), { code: 'EADDRNOTAVAIL' });
});
