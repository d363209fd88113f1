/**
 * `--mesh local` for real: namespaces, an l7mp ingress, two workers (rtpengine + l7mp sidecar), everything reached
 * from the client namespace the way the benchmark will reach it, and nothing left after stop().
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { localMeshPortRanges, runInClientNamespace, startLocalMesh, type LocalMesh, type LocalMeshDescription } from '../../src/mesh/local/mesh.js';
import { listLeftovers, listNamespaces, netnsExec, NOT_ROOT_MESSAGE, runPrefix } from '../../src/stack/netns.js';
import { namespaceOf, newRunId, rootSnapshot } from '../helpers/netns.js';
import { alive } from '../helpers/process.js';
import { removeTempDirs, tempDir } from '../helpers/temp.js';

const meshes: LocalMesh[] = [];
after(async () => {
  for (const m of meshes) await m.stop().catch(() => undefined);
  await removeTempDirs();
});

/** PIDs of running l7mp proxies (l7mp sets its process title to "l7mp"). */
function l7mpProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').startsWith('l7mp') && alive(Number(entry))) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids.sort((a, b) => a - b);
}

test('port ranges: one range is split between the workers; overlaps and the proxies\' ports are refused', () => {
  assert.deepEqual(localMeshPortRanges(2, { min: 40000, max: 40999 }), [
    { min: 40000, max: 40499 },
    { min: 40500, max: 40999 },
  ]);
  const two = [
    { min: 30000, max: 30099 },
    { min: 31000, max: 31099 },
  ];
  assert.deepEqual(localMeshPortRanges(2, two), two);
  assert.throws(() => localMeshPortRanges(3, two), /3 workers need 3 rtpengine port ranges, not 2/);
  assert.throws(
    () =>
      localMeshPortRanges(2, [
        { min: 30000, max: 30099 },
        { min: 30050, max: 30199 },
      ]),
    /overlap: the ingress listens on every worker's media ports/,
  );
  assert.throws(() => localMeshPortRanges(1, { min: 18000, max: 19999 }), /contains port 19000, which the worker proxy's RTP JSONSocket listener uses/);
  assert.throws(() => localMeshPortRanges(1, { min: 22000, max: 22999 }), /contains port 22222, which rtpengine's ng port uses/);
  assert.throws(() => localMeshPortRanges(1, { min: 1000, max: 1999 }), /contains port 1234, which the l7mp controller uses/);
});

/**
 * What the benchmark inside the client namespace will do first: read the mesh description, reach every controller
 * (GET /api/v1/config), ping every worker's rtpengine through its proxy (NgClient), and send a datagram to the
 * ingress. Then it waits for a forwarded signal.
 */
const CLIENT_PROBE = `
  import { readFileSync } from 'node:fs';
  import { createSocket } from 'node:dgram';
  import { NgClient } from ${JSON.stringify(new URL('../../src/ng/client.js', import.meta.url).href)};
  const mesh = JSON.parse(readFileSync(process.argv[1], 'utf8'));
  const udpPort = Number(process.argv[2]);
  const controllers = {};
  for (const [name, url] of [['ingress', mesh.ingress.restUrl], ...mesh.workers.map((w) => [w.name, w.restUrl])]) {
    const res = await fetch(url + '/api/v1/config');
    const body = await res.json();
    controllers[name] = { status: res.status, listeners: body.listeners.map((l) => l.name).sort() };
  }
  const pings = {};
  for (const w of mesh.workers) {
    const ng = await NgClient.open({ host: w.ng.host, port: w.ng.port, timeoutMs: 3000 });
    try { pings[w.name] = await ng.ping(); } catch (err) { pings[w.name] = err.message; }
    await ng.close();
  }
  const s = createSocket('udp4');
  await new Promise((resolve) => s.bind(0, mesh.clientAddress, resolve));
  s.send('hello ingress', udpPort, mesh.ingress.address);
  process.on('SIGUSR2', () => { process.stdout.write('forwarded SIGUSR2\\n'); s.close(); process.exitCode = 42; });
  process.stdout.write(JSON.stringify({ controllers, pings }) + '\\n');
`;

test('a local mesh with 2 workers: everything reachable from the client namespace, nothing in the root namespace, nothing left after stop()', async () => {
  const rootBefore = rootSnapshot();
  const nsBefore = await listNamespaces();
  const runId = newRunId();
  const status: string[] = [];
  const mesh = await startLocalMesh({ runId, workers: 2, rtpenginePortRange: { min: 40000, max: 40999 }, rtpengineLogLevel: 5, onStatus: (l) => status.push(l) });
  meshes.push(mesh);
  const prefix = runPrefix(runId);
  console.log(`# local mesh (ingress + 2 workers) started in ${Math.round(mesh.startMs)} ms (proxies ready after ${[mesh.ingress.proxy, ...mesh.workers.map((w) => w.proxy)].map((p) => `${p.name} ${Math.round(p.startMs)}`).join(', ')} ms)`);
  assert.ok(status.some((l) => l.includes(`local mesh ${prefix} ready`)), status.join('\n'));

  // The shape the provisioner relies on.
  assert.equal(mesh.clientNamespace, `${prefix}-client`);
  assert.equal(mesh.ingress.namespace, `${prefix}-ingress`);
  assert.deepEqual(mesh.ingress.labels, { app: 'l7mp-ingress' });
  assert.equal(mesh.ingress.restUrl, `http://${mesh.ingress.address}:1234`);
  assert.deepEqual(
    mesh.workers.map((w) => [w.name, w.namespace, w.labels, w.restUrl, w.ng]),
    mesh.workers.map((w, i) => [
      `w${i + 1}`,
      `${prefix}-w${i + 1}`,
      { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': `w${i + 1}` },
      `http://${w.address}:1234`,
      { host: w.address, port: 22222 },
    ]),
  );
  const addresses = [mesh.clientAddress, mesh.ingress.address, ...mesh.workers.map((w) => w.address)];
  assert.equal(new Set(addresses).size, 4);
  for (const a of addresses) assert.ok(a.startsWith('10.'), a);
  assert.deepEqual(
    mesh.workers.map((w) => [w.rtpengine.portMin, w.rtpengine.portMax, w.rtpengine.address, w.rtpengine.ngPort]),
    [
      [40000, 40499, '127.0.0.1', 22222],
      [40500, 40999, '127.0.0.1', 22222],
    ],
  );

  // Every daemon runs in its namespace, by its own PID.
  const pids = [mesh.ingress.proxy.pid, ...mesh.workers.flatMap((w) => [w.proxy.pid, w.rtpengine.pid])];
  assert.equal(namespaceOf(mesh.ingress.proxy.pid), mesh.ingress.namespace);
  for (const w of mesh.workers) {
    assert.equal(namespaceOf(w.proxy.pid), w.namespace);
    assert.equal(namespaceOf(w.rtpengine.pid), w.namespace);
    assert.equal(readFileSync(`/proc/${w.rtpengine.pid}/comm`, 'utf8').trim(), 'rtpengine');
    assert.ok(w.rtpengine.args.includes('--interface=127.0.0.1'));
    assert.ok(w.rtpengine.args.includes('--listen-ng=127.0.0.1:22222'));
    for (const a of ['--config-file=none', '--table=-1', '--delete-delay=0']) assert.ok(w.rtpengine.args.includes(a), a);
  }
  assert.deepEqual(rootSnapshot(), rootBefore);

  // A datagram receiver in the ingress namespace (on every address, like the ingress's per-call listeners).
  const udpPort = 40010;
  const [ip, ...prefixArgs] = netnsExec(mesh.ingress.namespace);
  const receiver = spawn(
    ip!,
    [
      ...prefixArgs,
      process.execPath,
      '--input-type=module',
      '-e',
      `import { createSocket } from 'node:dgram';
       const s = createSocket('udp4');
       s.on('message', (m, r) => { process.stdout.write(JSON.stringify({ text: m.toString(), from: r.address }) + '\\n'); s.close(); });
       s.bind(${udpPort}, '0.0.0.0', () => process.stdout.write('ready\\n'));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let received = '';
  const receiverReady = new Promise<void>((resolve) => receiver.stdout!.setEncoding('utf8').on('data', (d: string) => ((received += d), received.includes('ready') && resolve())));
  const receiverDone = new Promise<void>((resolve) => receiver.once('close', () => resolve()));
  await receiverReady;

  // The prototype of `--mesh local`: the benchmark as a child in the client namespace, given the description file.
  const descriptionFile = join(await tempDir('rtp-bench-mesh-'), 'mesh.json');
  writeFileSync(descriptionFile, JSON.stringify(mesh.describe()));
  const child = runInClientNamespace([...netnsExec(mesh.clientNamespace), process.execPath, '--input-type=module', '-e', CLIENT_PROBE, '--', descriptionFile, String(udpPort)], {
    signals: ['SIGUSR2'],
    stdio: 'pipe',
  });
  // The probe prints its findings, then waits for the signal its parent (this process) forwards.
  const deadline = performance.now() + 20_000;
  while (!child.stdout().includes('\n')) {
    assert.ok(performance.now() < deadline, `no answer from the client namespace: ${child.stderr()}`);
    await Promise.race([new Promise((r) => setTimeout(r, 20)), child.done]);
  }
  assert.equal(namespaceOf(child.pid), mesh.clientNamespace);
  process.kill(process.pid, 'SIGUSR2');
  const { code } = await child.done;
  const [found, forwarded] = child.stdout().trim().split('\n');
  assert.equal(forwarded, 'forwarded SIGUSR2');
  assert.equal(code, 42, child.stderr());
  const { controllers, pings } = JSON.parse(found!) as {
    controllers: Record<string, { status: number; listeners: string[] }>;
    pings: Record<string, number | string>;
  };
  assert.deepEqual(controllers['ingress'], { status: 200, listeners: ['controller-listener'] });
  for (const w of mesh.workers) {
    assert.deepEqual(controllers[w.name], { status: 200, listeners: ['controller-listener', 'worker-ng-listener', 'worker-rtcp-listener', 'worker-rtp-listener'] });
    assert.equal(typeof pings[w.name], 'number', `ng ping of ${w.name} via ${w.ng.host}:${w.ng.port}: ${pings[w.name]}`);
  }
  await receiverDone;
  assert.deepEqual(JSON.parse(received.split('\n')[1]!), { text: 'hello ingress', from: mesh.clientAddress });

  const description = JSON.parse(readFileSync(descriptionFile, 'utf8')) as LocalMeshDescription;
  assert.equal(description.workers[1]!.rtpengineVersion, mesh.workers[1]!.rtpengine.version);

  const t = performance.now();
  const stopping = mesh.stop();
  assert.equal(mesh.stop(), stopping);
  await stopping;
  console.log(`# local mesh stopped in ${Math.round(performance.now() - t)} ms`);
  for (const pid of pids) assert.ok(!alive(pid), `process ${pid} survived stop()`);
  assert.deepEqual(await listLeftovers(prefix), []);
  assert.deepEqual(await listNamespaces(), nsBefore);
  assert.deepEqual(rootSnapshot(), rootBefore);
});

test('a mesh that cannot start (no rtpengine binary) stops what it started and removes its namespaces', async () => {
  const nsBefore = await listNamespaces();
  const runId = newRunId();
  const t = performance.now();
  await assert.rejects(startLocalMesh({ runId, workers: 1, rtpenginePortRange: { min: 40000, max: 40099 }, rtpengineBinary: '/nonexistent/rtpengine' }), (err: Error) => {
    assert.match(err.message, /the local mesh did not start: rtpengine is not installed \(cannot run "\/nonexistent\/rtpengine"\)/);
    return true;
  });
  const tookMs = performance.now() - t;
  console.log(`# failed mesh start cleaned up after ${Math.round(tookMs)} ms`);
  // It does not wait for the proxies' seconds of start-up once rtpengine has failed.
  assert.ok(tookMs < 3000, `took ${tookMs} ms`);
  assert.deepEqual(await listLeftovers(runPrefix(runId)), []);
  assert.deepEqual(await listNamespaces(), nsBefore);
  // The proxies it was starting in parallel (killed with their namespaces at the first failure) are gone too. Other
  // tests' proxies may run meanwhile, in the root namespace or in a namespace of their own; a proxy left in a
  // removed namespace would be in neither.
  const rootNs = readlinkSync('/proc/self/ns/net');
  for (const pid of l7mpProcesses()) {
    let where: string;
    try {
      where = readlinkSync(`/proc/${pid}/ns/net`) === rootNs ? 'root' : namespaceOf(pid);
    } catch {
      continue; // exited meanwhile
    }
    assert.ok(where !== '' && !where.startsWith(runPrefix(runId)), `l7mp proxy ${pid} survived, in ${where || 'a removed namespace'}`);
  }
});

test('aborting the start (Ctrl-C while the proxies start) rejects at once and leaves nothing', async () => {
  const nsBefore = await listNamespaces();
  const runId = newRunId();
  const abort = new AbortController();
  const t = performance.now();
  const starting = startLocalMesh({ runId, workers: 1, rtpenginePortRange: { min: 40000, max: 40099 }, signal: abort.signal });
  // Once the namespaces exist the daemons are starting (the proxies take seconds).
  while ((await listLeftovers(runPrefix(runId))).length < 4) assert.ok(performance.now() - t < 10_000, 'no namespaces');
  const abortedAt = performance.now();
  abort.abort();
  await assert.rejects(starting, /the local mesh start was interrupted/);
  const tookMs = performance.now() - abortedAt;
  console.log(`# aborted mesh start rejected ${Math.round(tookMs)} ms after the abort`);
  assert.ok(tookMs < 3000, `took ${tookMs} ms`);
  assert.deepEqual(await listLeftovers(runPrefix(runId)), []);
  assert.deepEqual(await listNamespaces(), nsBefore);
});

test('not root: startLocalMesh fails with one clear line before creating anything', async () => {
  const before = await listNamespaces();
  const source = `
    import { startLocalMesh } from ${JSON.stringify(new URL('../../src/mesh/local/mesh.js', import.meta.url).href)};
    try { await startLocalMesh({ runId: 'nonroot-2', workers: 1, rtpenginePortRange: { min: 40000, max: 40099 } }); process.stdout.write('started'); }
    catch (err) { process.stdout.write(err.message); }
  `;
  const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', source], { encoding: 'utf8' });
  assert.equal(out, NOT_ROOT_MESSAGE);
  assert.deepEqual(await listNamespaces(), before);
});
