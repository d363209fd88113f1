/**
 * The l7mp proxies of the local mesh (@l7mp/l7mp 0.5.7, started for real): configs rendered as l7mp reads them,
 * the worker config valid in strict mode, readiness, start failures, stop by PID inside a namespace.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import {
  controllerPortOf,
  ingressProxyConfig,
  L7mpProxyStartError,
  renderL7mpConfigJson,
  renderL7mpConfigYaml,
  startL7mpProxy,
  workerProxyConfig,
  type L7mpConfig,
  type L7mpProxy,
} from '../../src/stack/l7mp-proxy.js';
import { createNetwork, runNodeIn, type NetnsNetwork } from '../../src/stack/netns.js';
import { namespaceOf } from '../helpers/netns.js';
import { alive } from '../helpers/process.js';

const yamljs = createRequire(import.meta.url)('yamljs') as { parse(text: string): unknown };

let net: NetnsNetwork;
const proxies: L7mpProxy[] = [];
before(async () => {
  net = await createNetwork({ runId: `proxy-${randomBytes(3).toString('hex')}`, roles: ['a', 'b'] });
});
after(async () => {
  await Promise.all(proxies.map((p) => p.stop()));
  await net?.remove();
});

/** GET <url> from inside `namespace`; the parsed JSON body. */
async function getJsonIn(namespace: string, url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await runNodeIn(namespace, `const r = await fetch(process.argv[1]); process.stdout.write(JSON.stringify({ status: r.status, body: await r.json() }));`, [url]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: number; body: Record<string, unknown> };
}

test('configs render as JSON (local proxies) and as YAML (a ConfigMap) that l7mp\'s own parsers read back unchanged', () => {
  const tricky = {
    admin: { log_level: 'warn' },
    listeners: [{ name: 'x: y', spec: { protocol: 'UDP', address: '10.1.2.3', port: 5 }, rules: [] }],
    clusters: [{ name: 'yes', spec: { protocol: 'on' }, endpoints: [{ spec: { address: 'say "hi"\\ \u00e9 # no comment' } }], nested: [[1, 'a'], [], {}] }],
    rulelists: [{ name: 'r', rules: ['a-b', '1.5', 'null', 'true', '', '- x', '{a}', '#'] }],
  } as unknown as L7mpConfig;
  for (const config of [ingressProxyConfig(), workerProxyConfig(), workerProxyConfig({ ng: { listen: { address: '10.9.8.7', port: 22222 } }, trackSeconds: 60 }), tricky]) {
    const expected = JSON.parse(JSON.stringify(config)) as unknown;
    // l7mp reads a -c file whose name does not end in .yaml with JSON.parse.
    assert.deepEqual(JSON.parse(renderL7mpConfigJson(config)), expected);
    const text = renderL7mpConfigYaml(config, 'a comment\nover two lines');
    assert.ok(text.startsWith('# a comment\n# over two lines\n'));
    assert.deepEqual(yamljs.parse(text), expected, text);
  }
  // JSON.stringify alone would write null.
  const notANumber: L7mpConfig = { admin: {}, listeners: [{ name: 'c', spec: { protocol: 'HTTP', port: Number.NaN }, rules: [] }] };
  assert.throws(() => renderL7mpConfigJson(notANumber), /cannot write NaN/);
  assert.throws(() => renderL7mpConfigYaml(notANumber), /cannot write NaN/);
});

test('the worker config: controller 1234, JSONSocket 19000/19001 with empty rule lists, optional ng listener', () => {
  const plain = workerProxyConfig();
  assert.equal(controllerPortOf(plain), 1234);
  assert.deepEqual(
    plain.listeners!.map((l) => [l['name'], l['rules']]),
    [
      ['controller-listener', plain.listeners![0]!['rules']],
      ['worker-rtp-listener', 'worker-rtp-rulelist'],
      ['worker-rtcp-listener', 'worker-rtcp-rulelist'],
    ],
  );
  assert.deepEqual(plain.listeners![1]!['spec'], { protocol: 'JSONSocket', transport: { protocol: 'UDP', port: 19000 } });
  assert.deepEqual(plain.rulelists, [
    { name: 'worker-rtp-rulelist', rules: [] },
    { name: 'worker-rtcp-rulelist', rules: [] },
  ]);
  assert.equal(plain.clusters, undefined);
  const withNg = workerProxyConfig({ ng: { listen: { address: '10.0.0.3', port: 22222 } } });
  assert.deepEqual(withNg.listeners![3]!['spec'], { protocol: 'UDP', address: '10.0.0.3', port: 22222, options: { mode: 'server' } });
  assert.deepEqual(withNg.clusters, [{ name: 'rtpengine-ng', spec: { protocol: 'UDP', port: 22222 }, endpoints: [{ spec: { address: '127.0.0.1' } }] }]);
  assert.throws(() => controllerPortOf({ admin: {}, listeners: [] }), /no controller listener/);
});

test('a proxy in a namespace: ready when its controller answers (on loopback only), PID is the proxy itself, config file removed, stopped by PID', async () => {
  const ns = net.member('a').namespace;
  // Strict mode: also proves that the worker config (with the ng listener) passes l7mp's schema validation.
  const config = workerProxyConfig({ ng: { listen: { address: net.member('a').address, port: 22222 } } });
  const proxy = await startL7mpProxy({ name: 'worker-strict', namespace: ns, config, strict: true });
  proxies.push(proxy);
  console.log(`# l7mp proxy (strict) ready in ${Math.round(proxy.startMs)} ms`);
  assert.equal(proxy.namespace, ns);
  assert.equal(proxy.controllerPort, 1234);
  // The PID is node running the proxy inside the namespace (setpriv and ip netns exec both exec'd). l7mp sets
  // process.title = 'l7mp', which overwrites its command line: `pgrep -f l7mp-proxy.js` does not find it.
  assert.equal(readlinkSync(`/proc/${proxy.pid}/exe`), process.execPath);
  assert.match(readFileSync(`/proc/${proxy.pid}/cmdline`, 'utf8'), /^l7mp\b/);
  assert.equal(namespaceOf(proxy.pid), ns);
  // JSON in a folder of its own with a name nobody can guess (mkdtemp), gone with its folder.
  assert.match(proxy.configFile, /\/rtp-bench-l7mp-[A-Za-z0-9]{6}\/worker-strict\.json$/);
  assert.ok(!existsSync(dirname(proxy.configFile)), `${dirname(proxy.configFile)} was not removed`);

  const { status, body } = await getJsonIn(ns, 'http://127.0.0.1:1234/api/v1/config');
  assert.equal(status, 200);
  const names = (body['listeners'] as Array<{ name: string }>).map((l) => l.name).sort();
  assert.deepEqual(names, ['controller-listener', 'worker-ng-listener', 'worker-rtcp-listener', 'worker-rtp-listener']);
  // Inline rules get rule lists of their own ("<listener>-RuleList-<n>"); the per-call rule lists start empty.
  const rulelists = body['rulelists'] as Array<{ name: string; rules: unknown[] }>;
  for (const name of ['worker-rtp-rulelist', 'worker-rtcp-rulelist']) assert.deepEqual(rulelists.find((r) => r.name === name)?.rules, [], name);
  // The controller listens on loopback only (the default): not on the namespace's own address.
  assert.equal(proxy.controllerAddress, '127.0.0.1');
  const outside = await runNodeIn(ns, `await fetch(process.argv[1]).then(() => process.stdout.write('answered'), (e) => process.stdout.write(String(e.cause?.code)));`, [
    `http://${net.member('a').address}:1234/api/v1/config`,
  ]);
  assert.equal(outside.stdout, 'ECONNREFUSED', outside.stderr);

  await proxy.stop();
  await proxy.stop();
  assert.ok(!alive(proxy.pid));
});

test("a controller address given: the controller listens there and not on loopback (the local mesh's case)", async () => {
  const b = net.member('b');
  const proxy = await startL7mpProxy({ name: 'ingress-at-address', namespace: b.namespace, controllerAddress: b.address, config: ingressProxyConfig(), strict: true });
  proxies.push(proxy);
  assert.equal(proxy.controllerAddress, b.address);
  // From the other namespace, as the provisioner in the client namespace calls it.
  const { status } = await getJsonIn(net.member('a').namespace, `http://${b.address}:1234/api/v1/config`);
  assert.equal(status, 200);
  const loopback = await runNodeIn(b.namespace, `await fetch(process.argv[1]).then(() => process.stdout.write('answered'), (e) => process.stdout.write(String(e.cause?.code)));`, [
    'http://127.0.0.1:1234/api/v1/config',
  ]);
  assert.equal(loopback.stdout, 'ECONNREFUSED', loopback.stderr);
  await proxy.stop();
});

test('a controller address that is not an IP address is refused before anything starts', async () => {
  await assert.rejects(startL7mpProxy({ name: 'named', controllerAddress: 'localhost', config: ingressProxyConfig() }), /must be an IP address, not "localhost"/);
});

test('a proxy that dies at start: a start error with its exit code and last log lines, nothing left behind', async () => {
  const ns = net.member('b').namespace;
  // A UDP listener on an address the namespace does not have: l7mp logs the bind error and exits.
  const config: L7mpConfig = { ...ingressProxyConfig(), listeners: [...ingressProxyConfig().listeners!, { name: 'bad', spec: { protocol: 'UDP', address: '192.0.2.77', port: 5000 }, rules: [] }] };
  const err = await startL7mpProxy({ name: 'broken', namespace: ns, config, strict: false }).then(
    () => assert.fail('started'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof L7mpProxyStartError, String(err));
  assert.equal(err.exitCode, 1);
  assert.match(err.message, /the l7mp proxy "broken" \(pid \d+ in network namespace \S+, controller port 1234\) exited with code 1 before its controller answered/);
  assert.ok(err.logTail.some((l) => /Could not bind to 192\.0\.2\.77:5000/.test(l)), err.logTail.join('\n'));
  const pid = Number(/pid (\d+)/.exec(err.message)![1]);
  assert.ok(!alive(pid));
});

test('a proxy that is not ready in time is stopped and reported', async () => {
  const err = await startL7mpProxy({ name: 'slow', namespace: net.member('b').namespace, config: ingressProxyConfig(), strict: true, readyTimeoutMs: 300 }).then(
    () => assert.fail('ready within 300 ms'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof L7mpProxyStartError, String(err));
  assert.match(err.message, /was not ready within 300 ms \(ECONNREFUSED\) and was stopped/);
  const pid = Number(/pid (\d+)/.exec(err.message)![1]);
  assert.ok(!alive(pid));
});
