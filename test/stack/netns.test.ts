/**
 * Network namespaces for the local mesh, made for real (the tests run as root): layout, reachability over the
 * bridge, nothing added to the root namespace, removal (also after a failure halfway and after a crash).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import {
  chooseSubnet,
  createNetwork,
  listLeftovers,
  listNamespaces,
  netnsExec,
  NOT_ROOT_MESSAGE,
  removeLeftovers,
  runIn,
  runNodeIn,
  runPrefix,
  shortRunId,
  type NetnsNetwork,
} from '../../src/stack/netns.js';
import { namespaceOf, newRunId, rootSnapshot } from '../helpers/netns.js';
import { alive, gone } from '../helpers/process.js';

const networks: NetnsNetwork[] = [];
const strays: string[] = [];
after(async () => {
  for (const n of networks) await n.remove().catch(() => undefined);
  for (const ns of strays) execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
});

const ECHO_PORT = 7007;

/** A UDP echo server inside `namespace`, on `address`; resolves once it is bound. */
async function startEcho(namespace: string, address: string): Promise<ChildProcess> {
  const source = `
    import { createSocket } from 'node:dgram';
    const s = createSocket('udp4');
    s.on('message', (m, r) => s.send(m, r.port, r.address));
    s.bind(${ECHO_PORT}, process.argv[1], () => process.stdout.write('ready\\n'));
  `;
  const [ip, ...prefix] = netnsExec(namespace);
  const child = spawn(ip!, [...prefix, process.execPath, '--input-type=module', '-e', source, '--', address], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`echo server in ${namespace} exited with ${code}`)));
  });
  return child;
}

/** From inside `namespace`: which of `targets` echo a datagram back (each within 2 s). */
async function echoedFrom(namespace: string, targets: string[]): Promise<Record<string, boolean>> {
  const source = `
    import { createSocket } from 'node:dgram';
    const targets = JSON.parse(process.argv[1]);
    const result = {};
    await Promise.all(targets.map((t) => new Promise((resolve) => {
      const s = createSocket('udp4');
      const timer = setTimeout(() => { result[t] = false; s.close(); resolve(); }, 2000);
      s.on('message', (m) => { if (m.toString() === t) { clearTimeout(timer); result[t] = true; s.close(); resolve(); } });
      s.send(t, ${ECHO_PORT}, t);
    })));
    process.stdout.write(JSON.stringify(result));
  `;
  const r = await runNodeIn(namespace, source, [JSON.stringify(targets)]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, boolean>;
}

test('shortRunId and runPrefix name namespaces after the run', () => {
  assert.equal(shortRunId('20250101-120000-ab12'), '00ab12');
  assert.equal(runPrefix('20250101-120000-AB12'), 'rtpb-00ab12');
  assert.throws(() => shortRunId('---'), /no letters or digits/);
});

test('chooseSubnet picks a 10.x.y /24 the root namespace does not use', async () => {
  const addrs = execFileSync('ip', ['-o', '-4', 'addr'], { encoding: 'utf8' });
  for (let i = 0; i < 20; i++) {
    const s = await chooseSubnet();
    assert.match(s, /^10\.\d{1,3}\.\d{1,3}$/);
    assert.ok(!addrs.includes(` ${s}.`), `${s} is in use: ${addrs}`);
  }
});

test('a network: namespaces, bridge, addresses, reachability between all members, nothing in the root namespace, clean removal', async () => {
  const before = rootSnapshot();
  const nsBefore = await listNamespaces();
  const runId = newRunId();
  const prefix = runPrefix(runId);
  const t0 = performance.now();
  const net = await createNetwork({ runId, roles: ['client', 'ingress', 'w1', 'w2'] });
  networks.push(net);
  const createMs = performance.now() - t0;

  assert.equal(net.bridgeNamespace, `${prefix}-br`);
  assert.deepEqual(
    net.members.map((m) => m.namespace),
    ['client', 'ingress', 'w1', 'w2'].map((r) => `${prefix}-${r}`),
  );
  const existing = await listNamespaces();
  for (const ns of [net.bridgeNamespace, ...net.members.map((m) => m.namespace)]) assert.ok(existing.includes(ns), `${ns} missing`);
  assert.deepEqual((await listLeftovers(prefix)).sort(), [net.bridgeNamespace, ...net.members.map((m) => m.namespace)].sort());

  // The bridge holds one veth end per member; members have lo up and their address on eth0.
  const brLinks = (await runIn(net.bridgeNamespace, 'ip', ['-o', 'link'])).stdout;
  for (const m of net.members) assert.match(brLinks, new RegExp(`v-${m.role}@\\S+: <[^>]*UP[^>]*>.* master br0`));
  for (const m of net.members) {
    const addr = (await runIn(m.namespace, 'ip', ['-o', '-4', 'addr'])).stdout;
    assert.match(addr, /\blo\s+inet 127\.0\.0\.1\/8/);
    assert.match(addr, new RegExp(`\\beth0\\s+inet ${m.address.replace(/\./g, '\\.')}/24`));
    const lo = (await runIn(m.namespace, 'ip', ['-o', 'link', 'show', 'lo'])).stdout;
    assert.match(lo, /<[^>]*\bUP\b/);
  }

  // The root namespace got nothing: no link, no address, no route.
  assert.deepEqual(rootSnapshot(), before);

  // Every member reaches every other member over the bridge (and itself).
  const echoes = await Promise.all(net.members.map((m) => startEcho(m.namespace, m.address)));
  const pids = echoes.map((c) => c.pid!);
  for (const m of net.members) {
    const reached = await echoedFrom(m.namespace, net.members.map((x) => x.address));
    for (const x of net.members) assert.equal(reached[x.address], true, `${m.role} cannot reach ${x.role} (${x.address})`);
  }
  // `ip netns exec` execs: the PID is node's own, and it lives in the member's namespace.
  for (const [i, m] of net.members.entries()) {
    assert.equal(readlinkSync(`/proc/${pids[i]}/exe`), process.execPath);
    assert.equal(namespaceOf(pids[i]!), m.namespace);
  }

  // Removal kills what still runs inside and leaves no namespace; twice is fine.
  const t1 = performance.now();
  await net.remove();
  const removeMs = performance.now() - t1;
  await net.remove();
  for (const pid of pids) assert.ok(await gone(pid), `process ${pid} survived the removal`);
  assert.deepEqual(await listLeftovers(prefix), []);
  assert.deepEqual(await listNamespaces(), nsBefore);
  assert.deepEqual(rootSnapshot(), before);
  console.log(`# network of 4 members + bridge: created in ${Math.round(createMs)} ms, removed in ${Math.round(removeMs)} ms`);
});

for (const [which, clash] of [
  ['the 3rd namespace (ingress)', 'ingress'],
  ['the last namespace (w2)', 'w2'],
  ['the first namespace (the bridge)', 'br'],
] as const) {
  test(`a failure halfway (${which} already exists) removes everything made so far, and only that`, async () => {
    const before = rootSnapshot();
    const runId = newRunId();
    const prefix = runPrefix(runId);
    const taken = `${prefix}-${clash}`;
    execFileSync('ip', ['netns', 'add', taken]);
    strays.push(taken);
    await assert.rejects(createNetwork({ runId, roles: ['client', 'ingress', 'w1', 'w2'] }), (err: Error) => {
      assert.match(err.message, new RegExp(`network namespace ${taken} already exists`));
      return true;
    });
    // Only the namespace the test made is left, untouched.
    assert.deepEqual(await listLeftovers(prefix), [taken]);
    assert.equal((await runIn(taken, 'ip', ['-o', 'link'])).stdout.split('\n').filter(Boolean).length, 1);
    assert.deepEqual(rootSnapshot(), before);
    execFileSync('ip', ['netns', 'delete', taken]);
    strays.splice(strays.indexOf(taken), 1);
  });
}

test('a crashed run\'s namespaces (and the processes in them) are found and removed by prefix', async () => {
  const runId = newRunId();
  const prefix = runPrefix(runId);
  // A run that creates its network, starts a daemon inside, and dies without cleaning up.
  const crashed = `
    import { createNetwork, netnsExec } from ${JSON.stringify(new URL('../../src/stack/netns.js', import.meta.url).href)};
    import { spawn } from 'node:child_process';
    const net = await createNetwork({ runId: ${JSON.stringify(runId)}, roles: ['client', 'w1'] });
    const [ip, ...prefix] = netnsExec(net.member('w1').namespace);
    const d = spawn(ip, [...prefix, 'sleep', '600'], { detached: true, stdio: 'ignore' });
    d.unref();
    process.stdout.write(String(d.pid));
    process.exit(0);
  `;
  const pid = Number(execFileSync(process.execPath, ['--input-type=module', '-e', crashed], { encoding: 'utf8' }));
  assert.ok(alive(pid));
  assert.deepEqual((await listLeftovers(prefix)).sort(), [`${prefix}-br`, `${prefix}-client`, `${prefix}-w1`]);
  assert.ok((await listLeftovers()).length >= 3);
  await assert.rejects(listLeftovers('foo'), /outside rtp-bench's own/);
  assert.deepEqual((await removeLeftovers(prefix)).sort(), [`${prefix}-br`, `${prefix}-client`, `${prefix}-w1`]);
  assert.deepEqual(await listLeftovers(prefix), []);
  assert.ok(await gone(pid), 'the leftover daemon still runs');
});

test('not root: one clear line, and nothing is created', async () => {
  const before = await listNamespaces();
  const source = `
    import { createNetwork } from ${JSON.stringify(new URL('../../src/stack/netns.js', import.meta.url).href)};
    try { await createNetwork({ runId: 'nonroot-1', roles: ['client'] }); process.stdout.write('created'); }
    catch (err) { process.stdout.write(err.message); }
  `;
  const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', source], { encoding: 'utf8' });
  assert.equal(out, NOT_ROOT_MESSAGE);
  assert.deepEqual(await listNamespaces(), before);
});
