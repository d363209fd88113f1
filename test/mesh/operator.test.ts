import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callObjects, deletionOrder, type L7mpObject, type Target } from '../../src/mesh/objects.js';
import {
  addRequests,
  deleteRequests,
  endpointMoveRequests,
  isAccepted,
  matchingProxies,
  requestCount,
  restDeleteRequests,
  selectorMatches,
  type MeshProxy,
  type RestRequest,
} from '../../src/mesh/rest/operator.js';
import type { MeshOptions } from '../../src/mesh/model.js';
import { INGRESS, OTHER_WORKER, WORKER, testCall, testOptions } from './fixture.js';

const LABELS_HEADER = [{ path: { from: '/labels', to: '/labels' } }];
const HASH_ON_CALLID = { policy: 'ConsistentHash', key: '/labels/callid' };
/** One ingress, the call's worker and another worker: the pinned objects must leave worker-1 alone. */
const PROXIES: MeshProxy[] = [INGRESS, WORKER, OTHER_WORKER];

function adds(objects: L7mpObject[], options: MeshOptions, proxies = PROXIES): RestRequest[] {
  return objects.flatMap((o) => addRequests(o, proxies, options));
}

function deletes(objects: L7mpObject[], options: MeshOptions, proxies = PROXIES): RestRequest[] {
  return deletionOrder(objects).flatMap((o) => deleteRequests(o, proxies, options));
}

type BareRequest = Omit<RestRequest, 'okStatuses' | 'tolerated'>;

function bare(requests: RestRequest[]): BareRequest[] {
  return requests.map(({ okStatuses: _o, tolerated: _t, ...rest }) => rest);
}

// ---- The expected requests, one builder per shape: every name, path and value is spelled out where they are used.

/**
 * A Rule's add on the call's worker (position 0 of its rule list; 5 retries of 250 ms): it matches the call-id and the
 * leg's tag, and sends to rtpengine on 127.0.0.1 (`spec`: its port, and the client's port bound).
 */
function ruleAdd(path: string, name: string, tag: string, spec: Record<string, unknown>): BareRequest {
  return {
    proxy: 'worker-0',
    method: 'POST',
    path,
    body: {
      rule: {
        action: {
          route: {
            destination: {
              spec,
              endpoints: [{ spec: { address: '127.0.0.1' } }],
            },
            retry: { retry_on: 'always', num_retries: 5, timeout: 250 },
          },
        },
        match: {
          op: 'and',
          apply: [
            { op: 'test', path: '/JSONSocket/labels/callid', value: 'call-1' },
            { op: 'test', path: '/JSONSocket/labels/tag', value: tag },
          ],
        },
        name,
      },
    },
  };
}

/** A Target's two adds on the ingress: its JSONSocket cluster to the worker's `workerPort` (no endpoints), then the
 * call's worker (10.0.1.7) as its endpoint, at `endpointsPath`. */
function targetAdds(cluster: string, workerPort: number, endpointsPath: string): BareRequest[] {
  return [
    {
      proxy: 'ingress-0',
      method: 'POST',
      path: '/api/v1/clusters',
      body: {
        cluster: {
          spec: {
            protocol: 'JSONSocket',
            transport: { protocol: 'UDP', port: workerPort },
            header: LABELS_HEADER,
          },
          endpoints: [],
          loadbalancer: HASH_ON_CALLID,
          name: cluster,
        },
      },
    },
    {
      proxy: 'ingress-0',
      method: 'POST',
      path: endpointsPath,
      body: {
        endpoint: {
          name: `${cluster}/10.0.1.7`,
          spec: { address: '10.0.1.7' },
        },
      },
    },
  ];
}

/** A VirtualService's add on the ingress: the listener (`spec`), setting the call-id and the leg's tag labels, routed
 * to `destination` (classic: the Target's cluster by name; compact: the cluster inline) with 120 retries of 250 ms. */
function listenerAdd(name: string, spec: Record<string, unknown>, tag: string, destination: unknown): BareRequest {
  return {
    proxy: 'ingress-0',
    method: 'POST',
    path: '/api/v1/listeners',
    body: {
      listener: {
        name,
        spec,
        rules: [
          {
            action: {
              rewrite: [{ path: '/labels/callid', value: 'call-1' }, { path: '/labels/tag', value: tag }],
              route: {
                destination,
                retry: { retry_on: 'always', num_retries: 120, timeout: 250 },
              },
            },
          },
        ],
      },
    },
  };
}

/** compact's cluster inside a listener's route: named after the listener, the call's worker as a static endpoint. */
function inlineCluster(name: string, workerPort: number): Record<string, unknown> {
  return {
    spec: {
      protocol: 'JSONSocket',
      transport: { protocol: 'UDP', port: workerPort },
      header: LABELS_HEADER,
    },
    name,
    // Named as the operator names a pod's endpoint, so that a failover can remove it.
    endpoints: [{ name: `${name}/10.0.1.7`, spec: { address: '10.0.1.7' } }],
    loadbalancer: HASH_ON_CALLID,
  };
}

function del(proxy: string, path: string): BareRequest {
  return { proxy, method: 'DELETE', path };
}

/** The call's 4 Rule adds, classic and compact alike. */
const RULE_ADDS: BareRequest[] = [
  ruleAdd('/api/v1/rulelists/worker-rtp-rulelist/rules/0', '/l7mp.io/v1/Rule/default/worker-rtp-rule-call-1-tag-a', 'tag-a', {
    protocol: 'UDP', port: 30000, bind: { address: '127.0.0.1', port: 40000 },
  }),
  ruleAdd('/api/v1/rulelists/worker-rtcp-rulelist/rules/0', '/l7mp.io/v1/Rule/default/worker-rtcp-rule-call-1-tag-a', 'tag-a', {
    protocol: 'UDP', port: 30001, bind: { address: '127.0.0.1', port: 40001 },
  }),
  ruleAdd('/api/v1/rulelists/worker-rtp-rulelist/rules/0', '/l7mp.io/v1/Rule/default/worker-rtp-rule-call-1-tag-b', 'tag-b', {
    protocol: 'UDP', port: 30002, bind: { address: '127.0.0.1', port: 40002 },
  }),
  ruleAdd('/api/v1/rulelists/worker-rtcp-rulelist/rules/0', '/l7mp.io/v1/Rule/default/worker-rtcp-rule-call-1-tag-b', 'tag-b', {
    protocol: 'UDP', port: 30003, bind: { address: '127.0.0.1', port: 40003 },
  }),
];

/** The call's 4 listener deletes, classic and compact alike. */
const LISTENER_DELETES: BareRequest[] = [
  del('ingress-0', '/api/v1/listeners/%2Fl7mp.io%2Fv1%2FVirtualService%2Fdefault%2Fingress-rtp-vsvc-call-1-tag-a?recursive=true'),
  del('ingress-0', '/api/v1/listeners/%2Fl7mp.io%2Fv1%2FVirtualService%2Fdefault%2Fingress-rtcp-vsvc-call-1-tag-a?recursive=true'),
  del('ingress-0', '/api/v1/listeners/%2Fl7mp.io%2Fv1%2FVirtualService%2Fdefault%2Fingress-rtp-vsvc-call-1-tag-b?recursive=true'),
  del('ingress-0', '/api/v1/listeners/%2Fl7mp.io%2Fv1%2FVirtualService%2Fdefault%2Fingress-rtcp-vsvc-call-1-tag-b?recursive=true'),
];

/** The call's 8 Rule deletes (each from its rule list, then itself), classic and compact alike. */
const RULE_DELETES: BareRequest[] = [
  del('worker-0', '/api/v1/rulelists/worker-rtp-rulelist/rules/%2Fl7mp.io%2Fv1%2FRule%2Fdefault%2Fworker-rtp-rule-call-1-tag-a?recursive=true'),
  del('worker-0', '/api/v1/rules/%2Fl7mp.io%2Fv1%2FRule%2Fdefault%2Fworker-rtp-rule-call-1-tag-a'),
  del('worker-0', '/api/v1/rulelists/worker-rtcp-rulelist/rules/%2Fl7mp.io%2Fv1%2FRule%2Fdefault%2Fworker-rtcp-rule-call-1-tag-a?recursive=true'),
  del('worker-0', '/api/v1/rules/%2Fl7mp.io%2Fv1%2FRule%2Fdefault%2Fworker-rtcp-rule-call-1-tag-a'),
  del('worker-0', '/api/v1/rulelists/worker-rtp-rulelist/rules/%2Fl7mp.io%2Fv1%2FRule%2Fdefault%2Fworker-rtp-rule-call-1-tag-b?recursive=true'),
  del('worker-0', '/api/v1/rules/%2Fl7mp.io%2Fv1%2FRule%2Fdefault%2Fworker-rtp-rule-call-1-tag-b'),
  del('worker-0', '/api/v1/rulelists/worker-rtcp-rulelist/rules/%2Fl7mp.io%2Fv1%2FRule%2Fdefault%2Fworker-rtcp-rule-call-1-tag-b?recursive=true'),
  del('worker-0', '/api/v1/rules/%2Fl7mp.io%2Fv1%2FRule%2Fdefault%2Fworker-rtcp-rule-call-1-tag-b'),
];

test('classic: the 16 add requests of one call, literally (rules, clusters each with its worker endpoint, listeners)', () => {
  const options = testOptions();
  assert.deepEqual(bare(adds(callObjects(testCall(), options), options)), [
    ...RULE_ADDS,
    ...targetAdds('/l7mp.io/v1/Target/default/ingress-rtp-target-call-1-tag-a', 19000,
      '/api/v1/clusters/%2Fl7mp.io%2Fv1%2FTarget%2Fdefault%2Fingress-rtp-target-call-1-tag-a/endpoints'),
    ...targetAdds('/l7mp.io/v1/Target/default/ingress-rtcp-target-call-1-tag-a', 19001,
      '/api/v1/clusters/%2Fl7mp.io%2Fv1%2FTarget%2Fdefault%2Fingress-rtcp-target-call-1-tag-a/endpoints'),
    ...targetAdds('/l7mp.io/v1/Target/default/ingress-rtp-target-call-1-tag-b', 19000,
      '/api/v1/clusters/%2Fl7mp.io%2Fv1%2FTarget%2Fdefault%2Fingress-rtp-target-call-1-tag-b/endpoints'),
    ...targetAdds('/l7mp.io/v1/Target/default/ingress-rtcp-target-call-1-tag-b', 19001,
      '/api/v1/clusters/%2Fl7mp.io%2Fv1%2FTarget%2Fdefault%2Fingress-rtcp-target-call-1-tag-b/endpoints'),
    listenerAdd(
      '/l7mp.io/v1/VirtualService/default/ingress-rtp-vsvc-call-1-tag-a',
      { protocol: 'UDP', port: 30000, connect: { address: '10.0.0.1', port: 40000 }, options: { mode: 'singleton' } },
      'tag-a',
      '/l7mp.io/v1/Target/default/ingress-rtp-target-call-1-tag-a',
    ),
    listenerAdd(
      '/l7mp.io/v1/VirtualService/default/ingress-rtcp-vsvc-call-1-tag-a',
      { protocol: 'UDP', port: 30001, connect: { address: '10.0.0.1', port: 40001 }, options: { mode: 'singleton' } },
      'tag-a',
      '/l7mp.io/v1/Target/default/ingress-rtcp-target-call-1-tag-a',
    ),
    listenerAdd(
      '/l7mp.io/v1/VirtualService/default/ingress-rtp-vsvc-call-1-tag-b',
      { protocol: 'UDP', port: 30002, connect: { address: '10.0.0.2', port: 40002 }, options: { mode: 'singleton' } },
      'tag-b',
      '/l7mp.io/v1/Target/default/ingress-rtp-target-call-1-tag-b',
    ),
    listenerAdd(
      '/l7mp.io/v1/VirtualService/default/ingress-rtcp-vsvc-call-1-tag-b',
      { protocol: 'UDP', port: 30003, connect: { address: '10.0.0.2', port: 40003 }, options: { mode: 'singleton' } },
      'tag-b',
      '/l7mp.io/v1/Target/default/ingress-rtcp-target-call-1-tag-b',
    ),
  ]);
});

test('classic: the 16 delete requests of one call, literally (listeners, clusters, then each rule twice, in order)', () => {
  const options = testOptions();
  assert.deepEqual(bare(deletes(callObjects(testCall(), options), options)), [
    ...LISTENER_DELETES,
    del('ingress-0', '/api/v1/clusters/%2Fl7mp.io%2Fv1%2FTarget%2Fdefault%2Fingress-rtp-target-call-1-tag-a?recursive=true'),
    del('ingress-0', '/api/v1/clusters/%2Fl7mp.io%2Fv1%2FTarget%2Fdefault%2Fingress-rtcp-target-call-1-tag-a?recursive=true'),
    del('ingress-0', '/api/v1/clusters/%2Fl7mp.io%2Fv1%2FTarget%2Fdefault%2Fingress-rtp-target-call-1-tag-b?recursive=true'),
    del('ingress-0', '/api/v1/clusters/%2Fl7mp.io%2Fv1%2FTarget%2Fdefault%2Fingress-rtcp-target-call-1-tag-b?recursive=true'),
    ...RULE_DELETES,
  ]);
});

test('compact: the 8 add requests of one call, literally (rules, then listeners with the cluster inline)', () => {
  const options = testOptions({ compact: true });
  assert.deepEqual(bare(adds(callObjects(testCall(), options), options)), [
    ...RULE_ADDS,
    listenerAdd(
      '/l7mp.io/v1/VirtualService/default/ingress-rtp-vsvc-call-1-tag-a',
      { protocol: 'UDP', port: 30000, connect: { address: '10.0.0.1', port: 40000 }, options: { mode: 'singleton' } },
      'tag-a',
      inlineCluster('/l7mp.io/v1/VirtualService/default/ingress-rtp-vsvc-call-1-tag-a/cluster', 19000),
    ),
    listenerAdd(
      '/l7mp.io/v1/VirtualService/default/ingress-rtcp-vsvc-call-1-tag-a',
      { protocol: 'UDP', port: 30001, connect: { address: '10.0.0.1', port: 40001 }, options: { mode: 'singleton' } },
      'tag-a',
      inlineCluster('/l7mp.io/v1/VirtualService/default/ingress-rtcp-vsvc-call-1-tag-a/cluster', 19001),
    ),
    listenerAdd(
      '/l7mp.io/v1/VirtualService/default/ingress-rtp-vsvc-call-1-tag-b',
      { protocol: 'UDP', port: 30002, connect: { address: '10.0.0.2', port: 40002 }, options: { mode: 'singleton' } },
      'tag-b',
      inlineCluster('/l7mp.io/v1/VirtualService/default/ingress-rtp-vsvc-call-1-tag-b/cluster', 19000),
    ),
    listenerAdd(
      '/l7mp.io/v1/VirtualService/default/ingress-rtcp-vsvc-call-1-tag-b',
      { protocol: 'UDP', port: 30003, connect: { address: '10.0.0.2', port: 40003 }, options: { mode: 'singleton' } },
      'tag-b',
      inlineCluster('/l7mp.io/v1/VirtualService/default/ingress-rtcp-vsvc-call-1-tag-b/cluster', 19001),
    ),
  ]);
});

test('compact: the 12 delete requests of one call, literally', () => {
  const options = testOptions({ compact: true });
  assert.deepEqual(bare(deletes(callObjects(testCall(), options), options)), [...LISTENER_DELETES, ...RULE_DELETES]);
});

test('requests per call (one ingress, one worker): classic 16 add / 16 delete, compact 8 add / 12 operator deletes / 16 REST deletes', () => {
  const oneEach = [INGRESS, WORKER];
  for (const [compact, add, del, restDelete] of [[false, 16, 16, 16], [true, 8, 12, 16]] as const) {
    const options = testOptions({ compact });
    const objects = callObjects(testCall(), options);
    assert.deepEqual(requestCount(objects, oneEach, options), { add, delete: del, restDelete });
    // A second worker changes nothing: everything worker-side is pinned to the call's worker.
    assert.deepEqual(requestCount(objects, [...oneEach, OTHER_WORKER], options), { add, delete: del, restDelete });
  }
  // Two ingress pods: every listener and cluster twice (and each cluster gets the worker endpoint on both).
  const ingress1: MeshProxy = { ...INGRESS, name: 'ingress-1', address: '10.0.1.3' };
  assert.deepEqual(requestCount(callObjects(testCall(), testOptions()), [INGRESS, ingress1, WORKER], testOptions()), {
    add: 28,
    delete: 24,
    restDelete: 24,
  });
  const compact = testOptions({ compact: true });
  assert.deepEqual(requestCount(callObjects(testCall(), compact), [INGRESS, ingress1, WORKER], compact), { add: 12, delete: 16, restDelete: 24 });
});

test('REST deletes: the operator\'s, with a compact listener\'s inline cluster deleted first (l7mp 0.5.7 dies otherwise)', () => {
  const options = testOptions({ compact: true });
  const objects = callObjects(testCall(), options);
  const vs = objects.find((o) => o.kind === 'VirtualService')!;
  assert.deepEqual(restDeleteRequests(vs, PROXIES, options), [
    {
      proxy: 'ingress-0',
      method: 'DELETE',
      path: '/api/v1/clusters/%2Fl7mp.io%2Fv1%2FVirtualService%2Fdefault%2Fingress-rtp-vsvc-call-1-tag-a%2Fcluster?recursive=true',
      okStatuses: [200],
      tolerated: [{ status: 400, content: '^Cannot delete cluster: Unknown cluster' }],
    },
    {
      proxy: 'ingress-0',
      method: 'DELETE',
      path: '/api/v1/listeners/%2Fl7mp.io%2Fv1%2FVirtualService%2Fdefault%2Fingress-rtp-vsvc-call-1-tag-a?recursive=true',
      okStatuses: [200],
      tolerated: [
        { status: 400, content: '^Cannot delete listener: Unknown listener' },
        { status: 400, content: '^Not running' },
      ],
    },
  ]);
  // Everything else is the operator's.
  for (const o of objects.filter((x) => x.kind !== 'VirtualService')) assert.deepEqual(restDeleteRequests(o, PROXIES, options), deleteRequests(o, PROXIES, options));
  const classic = testOptions();
  for (const o of callObjects(testCall(), classic)) assert.deepEqual(restDeleteRequests(o, PROXIES, classic), deleteRequests(o, PROXIES, classic));
});

test('what counts as success: 200; on adds also 400 "... already defined", never any 400', () => {
  const options = testOptions();
  const objects = callObjects(testCall(), options);
  for (const r of adds(objects, options)) {
    assert.deepEqual(r.okStatuses, [200]);
    assert.deepEqual(r.tolerated, [{ status: 400, content: ' already defined$' }]);
    assert.ok(isAccepted(r, 200, undefined));
    assert.ok(isAccepted(r, 400, 'Cannot add cluster: Cluster "x" already defined'));
    // A missing rule list answers 400 "Bad Request": a real failure.
    assert.ok(!isAccepted(r, 400, 'Bad Request'));
    assert.ok(!isAccepted(r, 422, [{ message: 'should be equal to one of the allowed values' }]));
  }
  const [vsDel, targetDel, ruleFromList, ruleItself] = [
    deleteRequests(objects[8]!, PROXIES, options)[0]!,
    deleteRequests(objects[4]!, PROXIES, options)[0]!,
    ...deleteRequests(objects[0]!, PROXIES, options),
  ];
  assert.ok(isAccepted(vsDel!, 400, 'Cannot delete listener: Unknown listener "x"'));
  assert.ok(isAccepted(targetDel!, 400, 'Cannot delete cluster: Unknown cluster "x"'));
  assert.ok(isAccepted(ruleFromList!, 400, 'No rule x on rulelist worker-rtp-rulelist'));
  assert.ok(!isAccepted(ruleFromList!, 400, 'Bad Request'));
  // The second request of a rule answers this whenever the first one worked.
  assert.ok(isAccepted(ruleItself!, 400, 'Cannot delete rule: Unknown rule "/l7mp.io/v1/Rule/default/worker-rtp-rule-call-1-tag-a"'));
  assert.ok(!isAccepted(ruleItself!, 500, 'Cannot delete rule: Unknown rule "x"'));
});

test('server mode and selflink naming change only the listener mode and the names', () => {
  const options = testOptions({ listenerMode: 'server', naming: 'selflink' });
  const objects = callObjects(testCall(), options);
  const vs = addRequests(objects[8]!, PROXIES, options);
  assert.deepEqual(bare(vs), [
    listenerAdd(
      '/apis/l7mp.io/v1/namespaces/default/virtualservices/ingress-rtp-vsvc-call-1-tag-a',
      { protocol: 'UDP', port: 30000, connect: { address: '10.0.0.1', port: 40000 }, options: { mode: 'server' } },
      'tag-a',
      '/apis/l7mp.io/v1/namespaces/default/targets/ingress-rtp-target-call-1-tag-a',
    ),
  ]);
  assert.deepEqual(
    addRequests(objects[4]!, PROXIES, options).map((r) => r.path),
    ['/api/v1/clusters', '/api/v1/clusters/%2Fapis%2Fl7mp.io%2Fv1%2Fnamespaces%2Fdefault%2Ftargets%2Fingress-rtp-target-call-1-tag-a/endpoints'],
  );
  assert.deepEqual(
    deleteRequests(objects[0]!, PROXIES, options).map((r) => r.path),
    [
      '/api/v1/rulelists/worker-rtp-rulelist/rules/%2Fapis%2Fl7mp.io%2Fv1%2Fnamespaces%2Fdefault%2Frules%2Fworker-rtp-rule-call-1-tag-a?recursive=true',
      '/api/v1/rules/%2Fapis%2Fl7mp.io%2Fv1%2Fnamespaces%2Fdefault%2Frules%2Fworker-rtp-rule-call-1-tag-a',
    ],
  );
});

test('a Target with the suite\'s unpinned endpoint selector gets an endpoint per worker pod; static endpoints stay in the cluster', () => {
  const options = testOptions();
  const target = structuredClone(callObjects(testCall(), options)[4]) as Target;
  target.spec.cluster.endpoints = [{ spec: { address: '192.0.2.1' } }, { selector: { matchLabels: { app: 'l7mp-worker' } } }];
  const requests = addRequests(target, PROXIES, options);
  assert.deepEqual(
    requests.map((r) => r.body),
    [
      {
        cluster: {
          name: '/l7mp.io/v1/Target/default/ingress-rtp-target-call-1-tag-a',
          spec: { protocol: 'JSONSocket', transport: { protocol: 'UDP', port: 19000 }, header: LABELS_HEADER },
          endpoints: [{ spec: { address: '192.0.2.1' } }],
          loadbalancer: HASH_ON_CALLID,
        },
      },
      { endpoint: { name: '/l7mp.io/v1/Target/default/ingress-rtp-target-call-1-tag-a/10.0.1.7', spec: { address: '10.0.1.7' } } },
      { endpoint: { name: '/l7mp.io/v1/Target/default/ingress-rtp-target-call-1-tag-a/10.0.1.8', spec: { address: '10.0.1.8' } } },
    ],
  );
});

test('selectors: matchLabels and matchExpressions as the operator evaluates them', () => {
  const labels = { app: 'l7mp-worker', zone: 'a' };
  assert.ok(selectorMatches({}, labels), 'an empty selector selects everything');
  assert.ok(selectorMatches({ matchLabels: { app: 'l7mp-worker' } }, labels));
  assert.ok(!selectorMatches({ matchLabels: { app: 'l7mp-worker', zone: 'b' } }, labels));
  assert.ok(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }, labels));
  assert.ok(!selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, labels));
  assert.ok(selectorMatches({ matchExpressions: [{ key: 'rack', operator: 'NotIn', values: ['a'] }] }, labels));
  assert.ok(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, labels));
  assert.ok(!selectorMatches({ matchExpressions: [{ key: 'rack', operator: 'Exists' }] }, labels));
  assert.throws(() => selectorMatches({ matchService: 'x' } as never, labels), /matchService is not supported/);
  assert.deepEqual(matchingProxies({ matchLabels: { app: 'l7mp-worker' } }, PROXIES).map((p) => p.name), ['worker-0', 'worker-1']);
});

test('a failover moves each cluster\'s endpoint, literally: the survivor added, then the dead worker\'s deleted with its sessions (classic Targets and compact inline clusters alike)', () => {
  const moved = { ...testCall(), worker: { name: OTHER_WORKER.name, address: OTHER_WORKER.address, labels: { ...OTHER_WORKER.labels } } };
  for (const compact of [false, true]) {
    const options = testOptions({ compact });
    const holders = callObjects(moved, options).filter((o) => o.kind === (compact ? 'VirtualService' : 'Target'));
    const requests = holders.flatMap((o) => endpointMoveRequests(o, WORKER, OTHER_WORKER, PROXIES, options));
    const cluster = (kind: 'rtp' | 'rtcp', leg: 'a' | 'b'): string =>
      compact ? `/l7mp.io/v1/VirtualService/default/ingress-${kind}-vsvc-call-1-tag-${leg}/cluster` : `/l7mp.io/v1/Target/default/ingress-${kind}-target-call-1-tag-${leg}`;
    const expected = (['a', 'b'] as const).flatMap((leg) =>
      (['rtp', 'rtcp'] as const).flatMap((kind): BareRequest[] => [
        {
          proxy: 'ingress-0',
          method: 'POST',
          path: `/api/v1/clusters/${encodeURIComponent(cluster(kind, leg))}/endpoints`,
          body: { endpoint: { name: `${cluster(kind, leg)}/10.0.1.8`, spec: { address: '10.0.1.8' } } },
        },
        { proxy: 'ingress-0', method: 'DELETE', path: `/api/v1/endpoints/${encodeURIComponent(`${cluster(kind, leg)}/10.0.1.7`)}?recursive=true` },
      ]),
    );
    assert.deepEqual(bare(requests), expected, compact ? 'compact' : 'classic');
    // An endpoint already gone (a repeated move) is not a failure; any other refusal is.
    const del = requests[1]!;
    assert.ok(isAccepted(del, 404, 'Cannot delete endpoint: Unknown endpoint "x"'));
    assert.ok(!isAccepted(del, 400, 'Bad Request'));
  }
});
