import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LABEL_CALL, LABEL_RUN } from '../../src/mesh/model.js';
import {
  callObjects,
  deletionOrder,
  ingressNumRetries,
  objectCount,
  objectName,
  proxyName,
  safeLabelValue,
  safeNameSegment,
  type Cluster,
  type L7mpObject,
  type UdpClusterSpec,
  type UdpListenerSpec,
  type VirtualService,
} from '../../src/mesh/objects.js';
import { isDns1123Label, isDns1123Subdomain, labelValueProblem } from '../../src/mesh/crd.js';
import { testCall, testOptions } from './fixture.js';

const LABELS = { 'app.kubernetes.io/part-of': 'rtp-bench', 'rtp-bench.l7mp.io/run': 'run-1', 'rtp-bench.l7mp.io/call': 'call-1' };
const WORKER_PIN = { matchLabels: { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': 'worker-0' } };
const LABELS_HEADER = [{ path: { from: '/labels', to: '/labels' } }];

/**
 * The worker's Rule for one stream, with the defaults (position 0 in its rule list, 5 retries of 250 ms): it matches
 * the call-id and the leg's tag, and sends to rtpengine on 127.0.0.1 (`udp`: its port, and the client's port bound).
 */
function rule(name: string, rulelist: string, tag: string, udp: UdpClusterSpec): L7mpObject {
  return {
    apiVersion: 'l7mp.io/v1',
    kind: 'Rule',
    metadata: { name, namespace: 'default', labels: LABELS },
    spec: {
      selector: WORKER_PIN,
      position: 0,
      rulelist,
      rule: {
        match: {
          op: 'and',
          apply: [
            { op: 'test', path: '/JSONSocket/labels/callid', value: 'call-1' },
            { op: 'test', path: '/JSONSocket/labels/tag', value: tag },
          ],
        },
        action: {
          route: {
            destination: {
              spec: { UDP: udp },
              endpoints: [{ spec: { address: '127.0.0.1' } }],
            },
            retry: { retry_on: 'always', num_retries: 5, timeout: 250 },
          },
        },
      },
    },
  };
}

/** The ingress's Target for one stream: a JSONSocket cluster to the worker's `workerPort`, pinned to the call's worker. */
function target(name: string, workerPort: number): L7mpObject {
  return {
    apiVersion: 'l7mp.io/v1',
    kind: 'Target',
    metadata: { name, namespace: 'default', labels: LABELS },
    spec: {
      selector: { matchLabels: { app: 'l7mp-ingress' } },
      cluster: {
        spec: {
          JSONSocket: { transport: { UDP: { port: workerPort } }, header: LABELS_HEADER },
        },
        endpoints: [
          { selector: WORKER_PIN },
        ],
        loadbalancer: { policy: 'ConsistentHash', key: '/labels/callid' },
      },
    },
  };
}

/**
 * The ingress's VirtualService for one stream, with the defaults (singleton listener, tracked 600 s, 120 retries of
 * 250 ms): a listener on rtpengine's port connected to the client (`udp`), setting the call-id and the leg's tag
 * labels, routed to `to` (classic: the Target by name; compact: the cluster inline).
 */
function virtualService(name: string, udp: UdpListenerSpec, tag: string, to: { destinationRef: string } | { destination: Cluster }): L7mpObject {
  return {
    apiVersion: 'l7mp.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: 'default', labels: LABELS },
    spec: {
      selector: { matchLabels: { app: 'l7mp-ingress' } },
      listener: {
        spec: { UDP: { ...udp, options: { mode: 'singleton' } } },
        rules: [
          {
            action: {
              rewrite: [{ path: '/labels/callid', valueStr: 'call-1' }, { path: '/labels/tag', valueStr: tag }],
              route: {
                ...to,
                retry: { retry_on: 'always', num_retries: 120, timeout: 250 },
              },
            },
          },
        ],
        options: { track: 600 },
      },
      updateOwners: true,
    },
  };
}

/** compact's cluster inside a VirtualService's route: the Target's cluster, named after the listener, with the call's
 * worker as a static endpoint. */
function inlineCluster(name: string, workerPort: number): Cluster {
  return {
    name,
    spec: {
      JSONSocket: { transport: { UDP: { port: workerPort } }, header: LABELS_HEADER },
    },
    // Named as the operator names a pod's endpoint, so that a failover can remove it.
    endpoints: [{ name: `${name}/10.0.1.7`, spec: { address: '10.0.1.7' } }],
    loadbalancer: { policy: 'ConsistentHash', key: '/labels/callid' },
  };
}

/** The call's 4 Rules, classic and compact alike, in the order of its streams (a/rtp, a/rtcp, b/rtp, b/rtcp). */
const RULES: L7mpObject[] = [
  rule('worker-rtp-rule-call-1-tag-a', 'worker-rtp-rulelist', 'tag-a', { port: 30000, bind: { address: '127.0.0.1', port: 40000 } }),
  rule('worker-rtcp-rule-call-1-tag-a', 'worker-rtcp-rulelist', 'tag-a', { port: 30001, bind: { address: '127.0.0.1', port: 40001 } }),
  rule('worker-rtp-rule-call-1-tag-b', 'worker-rtp-rulelist', 'tag-b', { port: 30002, bind: { address: '127.0.0.1', port: 40002 } }),
  rule('worker-rtcp-rule-call-1-tag-b', 'worker-rtcp-rulelist', 'tag-b', { port: 30003, bind: { address: '127.0.0.1', port: 40003 } }),
];

/** The suite's 12 objects with the defaults (singleton listeners, 250 ms retry timeout, operator naming): Rules,
 * Targets, VirtualServices, each in the order of the call's streams (a/rtp, a/rtcp, b/rtp, b/rtcp). */
const CLASSIC: L7mpObject[] = [
  ...RULES,
  target('ingress-rtp-target-call-1-tag-a', 19000),
  target('ingress-rtcp-target-call-1-tag-a', 19001),
  target('ingress-rtp-target-call-1-tag-b', 19000),
  target('ingress-rtcp-target-call-1-tag-b', 19001),
  virtualService('ingress-rtp-vsvc-call-1-tag-a', { port: 30000, connect: { address: '10.0.0.1', port: 40000 } }, 'tag-a', {
    destinationRef: '/l7mp.io/v1/Target/default/ingress-rtp-target-call-1-tag-a',
  }),
  virtualService('ingress-rtcp-vsvc-call-1-tag-a', { port: 30001, connect: { address: '10.0.0.1', port: 40001 } }, 'tag-a', {
    destinationRef: '/l7mp.io/v1/Target/default/ingress-rtcp-target-call-1-tag-a',
  }),
  virtualService('ingress-rtp-vsvc-call-1-tag-b', { port: 30002, connect: { address: '10.0.0.2', port: 40002 } }, 'tag-b', {
    destinationRef: '/l7mp.io/v1/Target/default/ingress-rtp-target-call-1-tag-b',
  }),
  virtualService('ingress-rtcp-vsvc-call-1-tag-b', { port: 30003, connect: { address: '10.0.0.2', port: 40003 } }, 'tag-b', {
    destinationRef: '/l7mp.io/v1/Target/default/ingress-rtcp-target-call-1-tag-b',
  }),
];

/** compact: no Targets; each VirtualService's route carries the JSONSocket cluster inline, named after the listener,
 * the call's worker as a static endpoint. */
const COMPACT: L7mpObject[] = [
  ...RULES,
  virtualService('ingress-rtp-vsvc-call-1-tag-a', { port: 30000, connect: { address: '10.0.0.1', port: 40000 } }, 'tag-a', {
    destination: inlineCluster('/l7mp.io/v1/VirtualService/default/ingress-rtp-vsvc-call-1-tag-a/cluster', 19000),
  }),
  virtualService('ingress-rtcp-vsvc-call-1-tag-a', { port: 30001, connect: { address: '10.0.0.1', port: 40001 } }, 'tag-a', {
    destination: inlineCluster('/l7mp.io/v1/VirtualService/default/ingress-rtcp-vsvc-call-1-tag-a/cluster', 19001),
  }),
  virtualService('ingress-rtp-vsvc-call-1-tag-b', { port: 30002, connect: { address: '10.0.0.2', port: 40002 } }, 'tag-b', {
    destination: inlineCluster('/l7mp.io/v1/VirtualService/default/ingress-rtp-vsvc-call-1-tag-b/cluster', 19000),
  }),
  virtualService('ingress-rtcp-vsvc-call-1-tag-b', { port: 30003, connect: { address: '10.0.0.2', port: 40003 } }, 'tag-b', {
    destination: inlineCluster('/l7mp.io/v1/VirtualService/default/ingress-rtcp-vsvc-call-1-tag-b/cluster', 19001),
  }),
];

test('one call, classic: the 12 objects, literally, Rules then Targets then VirtualServices', () => {
  assert.deepEqual(callObjects(testCall(), testOptions()), CLASSIC);
});

test('one call, compact: the 8 objects, literally, Rules then VirtualServices', () => {
  assert.deepEqual(callObjects(testCall(), testOptions({ compact: true })), COMPACT);
});

test('objectCount matches what callObjects makes', () => {
  assert.equal(objectCount({ compact: false }), 12);
  assert.equal(objectCount({ compact: true }), 8);
  assert.equal(callObjects(testCall(), testOptions()).length, objectCount(testOptions()));
  assert.equal(callObjects(testCall(), testOptions({ compact: true })).length, objectCount(testOptions({ compact: true })));
});

test('creation order: every Rule, then every Target, then every VirtualService', () => {
  for (const compact of [false, true]) {
    const kinds = callObjects(testCall(), testOptions({ compact })).map((o) => o.kind);
    const rank = { Rule: 0, Target: 1, VirtualService: 2 } as const;
    assert.deepEqual(kinds, [...kinds].sort((a, b) => rank[a] - rank[b]));
    assert.equal(kinds[0], 'Rule');
    assert.equal(kinds.at(-1), 'VirtualService');
  }
});

test('deletionOrder: VirtualServices, Targets, Rules, stable within a kind, input untouched', () => {
  const objects = callObjects(testCall(), testOptions());
  const before = objects.map((o) => o.metadata.name);
  const names = deletionOrder(objects).map((o) => `${o.kind} ${o.metadata.name}`);
  assert.deepEqual(names, [
    'VirtualService ingress-rtp-vsvc-call-1-tag-a',
    'VirtualService ingress-rtcp-vsvc-call-1-tag-a',
    'VirtualService ingress-rtp-vsvc-call-1-tag-b',
    'VirtualService ingress-rtcp-vsvc-call-1-tag-b',
    'Target ingress-rtp-target-call-1-tag-a',
    'Target ingress-rtcp-target-call-1-tag-a',
    'Target ingress-rtp-target-call-1-tag-b',
    'Target ingress-rtcp-target-call-1-tag-b',
    'Rule worker-rtp-rule-call-1-tag-a',
    'Rule worker-rtcp-rule-call-1-tag-a',
    'Rule worker-rtp-rule-call-1-tag-b',
    'Rule worker-rtcp-rule-call-1-tag-b',
  ]);
  assert.deepEqual(objects.map((o) => o.metadata.name), before);
});

function services(objects: L7mpObject[]): VirtualService[] {
  return objects.filter((o): o is VirtualService => o.kind === 'VirtualService');
}

test('server mode: the suite\'s listener (connect + mode server), everything else the same', () => {
  const singleton = callObjects(testCall(), testOptions());
  const server = callObjects(testCall(), testOptions({ listenerMode: 'server' }));
  for (const vs of services(server)) {
    assert.ok('UDP' in vs.spec.listener.spec);
    if ('UDP' in vs.spec.listener.spec) assert.deepEqual(vs.spec.listener.spec.UDP.options, { mode: 'server' });
  }
  const back = structuredClone(server);
  for (const vs of services(back)) if ('UDP' in vs.spec.listener.spec) vs.spec.listener.spec.UDP.options = { mode: 'singleton' };
  assert.deepEqual(back, singleton);
});

test('selflink naming: destinationRef in the old operator\'s form', () => {
  const vs = services(callObjects(testCall(), testOptions({ naming: 'selflink', namespace: 'media' })));
  const refs = vs.map((v) => {
    const r = v.spec.listener;
    return 'rules' in r && r.rules[0]?.action.route && 'destinationRef' in r.rules[0].action.route ? r.rules[0].action.route.destinationRef : null;
  });
  assert.deepEqual(refs, [
    '/apis/l7mp.io/v1/namespaces/media/targets/ingress-rtp-target-call-1-tag-a',
    '/apis/l7mp.io/v1/namespaces/media/targets/ingress-rtcp-target-call-1-tag-a',
    '/apis/l7mp.io/v1/namespaces/media/targets/ingress-rtp-target-call-1-tag-b',
    '/apis/l7mp.io/v1/namespaces/media/targets/ingress-rtcp-target-call-1-tag-b',
  ]);
  assert.equal(proxyName('Rule', 'media', 'x', 'operator'), '/l7mp.io/v1/Rule/media/x');
  assert.equal(proxyName('VirtualService', 'media', 'x', 'selflink'), '/apis/l7mp.io/v1/namespaces/media/virtualservices/x');
});

test('retry: timeout from the options, ingress retries for about 30 s, the worker 5 times', () => {
  assert.equal(ingressNumRetries(250), 120);
  assert.equal(ingressNumRetries(2000), 15);
  assert.equal(ingressNumRetries(60_000), 1);
  const objects = callObjects(testCall(), testOptions({ retryTimeoutMs: 400 }));
  for (const o of objects) {
    const route = o.kind === 'Rule' ? o.spec.rule.action.route : o.kind === 'VirtualService' && 'rules' in o.spec.listener ? o.spec.listener.rules[0]?.action.route : undefined;
    if (o.kind === 'Target') continue;
    assert.deepEqual(route?.retry, { retry_on: 'always', num_retries: o.kind === 'Rule' ? 5 : 75, timeout: 400 });
  }
});

test('worker ports and rule lists come from the options', () => {
  const objects = callObjects(testCall(), testOptions({ workerPorts: { rtp: 41000, rtcp: 41002 }, workerRulelists: { rtp: 'r1', rtcp: 'r2' } }));
  const ports = objects.flatMap((o) => (o.kind === 'Target' && 'JSONSocket' in o.spec.cluster.spec ? [o.spec.cluster.spec.JSONSocket.transport.UDP.port] : []));
  assert.deepEqual(ports, [41000, 41002, 41000, 41002]);
  assert.deepEqual(objects.flatMap((o) => (o.kind === 'Rule' ? [o.spec.rulelist] : [])), ['r1', 'r2', 'r1', 'r2']);
});

// A call-id with '@', '/', uppercase, 80 characters.
const NASTY_CALL_ID = 'A7F3c9e1-Bd42-4a8e-9F00-6c1d2e3f4a5b/Leg@Sip.Example.COM:5060;transport=udp_wxyz';

test('sanitising: a nasty call-id gives valid, deterministic, distinct names and labels', () => {
  assert.equal(NASTY_CALL_ID.length, 80);
  const call = { ...testCall(), callId: NASTY_CALL_ID, runId: 'Run 2025-06-01 12:00:00 / smoke@home' };
  const objects = callObjects(call, testOptions());
  const again = callObjects(call, testOptions());
  assert.deepEqual(objects, again, 'deterministic');
  for (const o of objects) {
    assert.ok(isDns1123Subdomain(o.metadata.name), o.metadata.name);
    for (const [k, v] of Object.entries(o.metadata.labels)) assert.equal(labelValueProblem(v), null, `${k}=${v}`);
  }
  const first = objects[0]!;
  // The suite's pattern stays recognisable: role-kind-what-<callid>-<tag>.
  // Lowercased, invalid runs replaced, cut to 50 characters, '-' and 12 hex digits of SHA-256 of the original.
  assert.equal(first.metadata.name, 'worker-rtp-rule-a7f3c9e1-bd42-4a8e-9f00-6c1d2e3f4a5b-leg-sip-examp-ad19cc941f92-tag-a');
  assert.deepEqual(
    objects.map((o) => o.metadata.name.replace('a7f3c9e1-bd42-4a8e-9f00-6c1d2e3f4a5b-leg-sip-examp-ad19cc941f92', '<c>')),
    [
      'worker-rtp-rule-<c>-tag-a', 'worker-rtcp-rule-<c>-tag-a', 'worker-rtp-rule-<c>-tag-b', 'worker-rtcp-rule-<c>-tag-b',
      'ingress-rtp-target-<c>-tag-a', 'ingress-rtcp-target-<c>-tag-a', 'ingress-rtp-target-<c>-tag-b', 'ingress-rtcp-target-<c>-tag-b',
      'ingress-rtp-vsvc-<c>-tag-a', 'ingress-rtcp-vsvc-<c>-tag-a', 'ingress-rtp-vsvc-<c>-tag-b', 'ingress-rtcp-vsvc-<c>-tag-b',
    ],
  );
  // Label values keep case, '_' and '.'.
  assert.equal(first.metadata.labels[LABEL_CALL], 'A7F3c9e1-Bd42-4a8e-9F00-6c1d2e3f4a5b_Leg_Sip.Examp-ad19cc941f92');
  assert.equal(first.metadata.labels[LABEL_RUN], 'Run_2025-06-01_12_00_00_smoke_home-65e053ebf576');
  // The proxies still match on the real call-id.
  if (first.kind === 'Rule') assert.equal(first.spec.rule.match?.apply?.[0]?.value, NASTY_CALL_ID);
  const vs = services(objects)[0]!;
  if ('rules' in vs.spec.listener) assert.deepEqual(vs.spec.listener.rules[0]?.action.rewrite?.[0], { path: '/labels/callid', valueStr: NASTY_CALL_ID });
});

test('sanitising: valid values are kept as they are, changed ones never collide', () => {
  assert.equal(safeLabelValue('call-1'), 'call-1');
  assert.equal(safeLabelValue('Call_1.x'), 'Call_1.x');
  assert.equal(safeLabelValue(''), '');
  assert.equal(safeNameSegment('call-1'), 'call-1');
  // Case matters to SIP, not to DNS names: both get a hash of the original.
  assert.notEqual(safeNameSegment('ABC'), safeNameSegment('abc'));
  assert.notEqual(safeNameSegment('ABC'), safeNameSegment('Abc'));
  assert.match(safeNameSegment('ABC'), /^abc-[0-9a-f]{12}$/);
  // Same sanitised text, different originals.
  assert.notEqual(safeLabelValue('a@b'), safeLabelValue('a/b'));
  assert.notEqual(safeNameSegment('a@b'), safeNameSegment('a.b'));
  // Nothing usable left: the hash alone.
  assert.match(safeNameSegment('@@@'), /^[0-9a-f]{12}$/);
  assert.match(safeLabelValue('///'), /^[0-9a-f]{12}$/);
  // Long but otherwise valid: shortened, with a hash.
  const long = 'x'.repeat(80);
  assert.equal(safeLabelValue(long).length, 63);
  assert.equal(safeNameSegment(long).length, 63);
  assert.notEqual(safeNameSegment(long), safeNameSegment('x'.repeat(81)));
  for (const raw of ['-a-', '.a.', '_a_', 'a'.repeat(63) + '@', 'ÄÖÜ', '🙂x', 'x🙂']) {
    assert.equal(labelValueProblem(safeLabelValue(raw)), null, raw);
    assert.ok(isDns1123Label(safeNameSegment(raw)), raw);
  }
  assert.equal(objectName('Target', { kind: 'rtcp', tag: 'T@g' }, 'C/1'), `ingress-rtcp-target-${safeNameSegment('C/1')}-${safeNameSegment('T@g')}`);
});

test('two streams with the same tag and kind are refused', () => {
  const call = testCall();
  call.streams[2] = { ...call.streams[2]!, tag: 'tag-a' };
  assert.throws(() => callObjects(call, testOptions()), /same Rule name worker-rtp-rule-call-1-tag-a/);
});
