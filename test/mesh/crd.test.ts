import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crdKinds, labelKeyProblem, validateObject } from '../../src/mesh/crd.js';
import { callObjects, type L7mpObject, type Rule, type Target, type VirtualService } from '../../src/mesh/objects.js';
import type { MeshOptions } from '../../src/mesh/model.js';
import { testCall, testOptions } from './fixture.js';

function objects(more: Partial<MeshOptions> = {}): L7mpObject[] {
  return callObjects(testCall(), testOptions(more));
}

function first<K extends L7mpObject['kind']>(kind: K, more: Partial<MeshOptions> = {}): Extract<L7mpObject, { kind: K }> {
  const o = objects(more).find((x) => x.kind === kind);
  if (!o) throw new Error(`no ${kind}`);
  return structuredClone(o) as Extract<L7mpObject, { kind: K }>;
}

/** A JSON object to break in ways the types do not allow. */
function loose(o: L7mpObject): Record<string, any> {
  return structuredClone(o) as unknown as Record<string, any>;
}

const VS = 'VirtualService default/ingress-rtp-vsvc-call-1-tag-a';
const TARGET = 'Target default/ingress-rtp-target-call-1-tag-a';
const RULE = 'Rule default/worker-rtp-rule-call-1-tag-a';

test('the CRDs load: three namespaced kinds of l7mp.io/v1', () => {
  assert.deepEqual(crdKinds(), [
    { kind: 'VirtualService', apiVersion: 'l7mp.io/v1', plural: 'virtualservices' },
    { kind: 'Target', apiVersion: 'l7mp.io/v1', plural: 'targets' },
    { kind: 'Rule', apiVersion: 'l7mp.io/v1', plural: 'rules' },
  ]);
});

test('every object of a call is valid, in every layout', () => {
  const nasty = { ...testCall(), callId: 'Call/ID@Example.COM;' + 'x'.repeat(70), runId: 'Run #7' };
  let checked = 0;
  for (const compact of [false, true]) {
    for (const listenerMode of ['singleton', 'server'] as const) {
      for (const naming of ['operator', 'selflink'] as const) {
        const options = testOptions({ compact, listenerMode, naming });
        for (const o of [...callObjects(testCall(), options), ...callObjects(nasty, options)]) {
          assert.deepEqual(validateObject(o), [], `${o.kind} ${o.metadata.name}`);
          checked++;
        }
      }
    }
  }
  assert.equal(checked, 2 * 2 * 2 * (12 + 8));
});

test('schema errors name the object and the JSON path', () => {
  const vs = loose(first('VirtualService'));
  vs.spec.listener.spec.UDP.port = 70000;
  vs.spec.listener.spec.UDP.options.mode = 'connected';
  assert.deepEqual(validateObject(vs), [
    `${VS}: /spec/listener/spec/UDP/options/mode: should be equal to one of the allowed values: "server", "singleton"`,
    `${VS}: /spec/listener/spec/UDP/port: should be <= 65535`,
  ]);
});

test('a string rewrite value must be valueStr (value is an object in the CRD)', () => {
  const vs = loose(first('VirtualService'));
  vs.spec.listener.rules[0].action.rewrite[0] = { path: '/labels/callid', value: 'call-1' };
  assert.deepEqual(validateObject(vs), [`${VS}: /spec/listener/rules/0/action/rewrite/0/value: should be object`]);
  vs.spec.listener.rules[0].action.rewrite[0] = { path: '/labels/callid', value: { a: 1 }, valueStr: 'call-1' };
  assert.deepEqual(validateObject(vs), [
    `${VS}: /spec/listener/rules/0/action/rewrite/0: must match exactly one of {path, value, no valueStr} | {path, valueStr, no value}`,
  ]);
});

test('a route needs exactly one of destinationRef and destination', () => {
  const vs = loose(first('VirtualService'));
  const compact = first('VirtualService', { compact: true }) as VirtualService;
  const inline = 'rules' in compact.spec.listener ? compact.spec.listener.rules[0]?.action.route : undefined;
  assert.ok(inline && 'destination' in inline);
  vs.spec.listener.rules[0].action.route.destination = inline.destination;
  assert.deepEqual(validateObject(vs), [
    `${VS}: /spec/listener/rules/0/action/route: must match exactly one of {destinationRef, no destination} | {destination, no destinationRef}`,
  ]);
});

test('required fields, wrong types, two protocols in one spec', () => {
  const vs = loose(first('VirtualService'));
  delete vs.spec.selector;
  vs.spec.listener.spec.TCP = { port: 5 };
  assert.deepEqual(validateObject(vs), [
    `${VS}: /spec/listener/spec: should NOT have more than 1 properties`,
    `${VS}: /spec/selector: required`,
  ]);
  const rule = loose(first('Rule'));
  rule.spec.position = '0';
  delete rule.spec.rule.action.route.destination.spec.UDP.port;
  assert.deepEqual(validateObject(rule), [
    `${RULE}: /spec/position: should be integer`,
    `${RULE}: /spec/rule/action/route/destination/spec/UDP/port: required`,
  ]);
  const target = loose(first('Target'));
  delete target.spec.cluster;
  assert.deepEqual(validateObject(target), [
    `${TARGET}: /spec: must match exactly one of {cluster, no linkedVirtualService} | {linkedVirtualService, no cluster}`,
  ]);
});

test('fields the CRD does not know are reported (the API server would prune them): updateOwners exists on VirtualService and Rule only', () => {
  const target = loose(first('Target'));
  target.spec.updateOwners = true;
  target.spec.cluster.spec.JSONSocket.transport.UDP.connect = { address: '1.2.3.4' };
  target.extra = 1;
  assert.deepEqual(validateObject(target), [
    `${TARGET}: /spec/cluster/spec/JSONSocket/transport/UDP/connect: unknown field (not in the Target CRD schema: the API server drops it, or rejects the object with fieldValidation=Strict)`,
    `${TARGET}: /spec/updateOwners: unknown field (not in the Target CRD schema: the API server drops it, or rejects the object with fieldValidation=Strict)`,
    `${TARGET}: /extra: unknown field (not in the Target CRD schema: the API server drops it, or rejects the object with fieldValidation=Strict)`,
  ]);
  const rule = first('Rule') as Rule;
  rule.spec.updateOwners = true;
  assert.deepEqual(validateObject(rule), []);
  // Where the CRD preserves unknown fields (a rule's match, matchLabels) anything goes.
  const r2 = loose(first('Rule'));
  r2.spec.rule.match = { op: 'whatever', deep: { x: [1, 2] } };
  assert.deepEqual(validateObject(r2), []);
});

test('the CRDs spell the selector operator DoesNotexist: DoesNotExist is refused', () => {
  const target = loose(first('Target'));
  target.spec.selector = { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] };
  assert.deepEqual(validateObject(target), [
    `${TARGET}: /spec/selector/matchExpressions/0/operator: should be equal to one of the allowed values: "In", "NotIn", "Exists", "DoesNotexist"`,
  ]);
});

test('Kubernetes basics: apiVersion, kind, name, namespace, labels', () => {
  const vs = loose(first('VirtualService'));
  vs.apiVersion = 'l7mp.io/v2';
  vs.metadata.name = 'Ingress_RTP';
  vs.metadata.namespace = 'Media';
  vs.metadata.labels = { 'rtp-bench.l7mp.io/call': 'a@b', 'bad key!': 'x', 'x/y/z': 'ok', long: 'v'.repeat(64) };
  assert.deepEqual(validateObject(vs), [
    'VirtualService Media/Ingress_RTP: /apiVersion: "l7mp.io/v2" must be "l7mp.io/v1"',
    'VirtualService Media/Ingress_RTP: /metadata/name: "Ingress_RTP" is not a DNS-1123 subdomain (at most 253 lowercase alphanumerics, "-" and ".", alphanumeric at both ends)',
    'VirtualService Media/Ingress_RTP: /metadata/namespace: "Media" is not a DNS-1123 label',
    'VirtualService Media/Ingress_RTP: /metadata/labels/rtp-bench.l7mp.io~1call: invalid label value "a@b": must be empty or alphanumerics, "-", "_" or ".", beginning and ending with an alphanumeric',
    'VirtualService Media/Ingress_RTP: /metadata/labels/bad key!: invalid label key: name part must be alphanumerics, "-", "_" or ".", beginning and ending with an alphanumeric',
    'VirtualService Media/Ingress_RTP: /metadata/labels/x~1y~1z: invalid label key: prefix "x/y" is not a DNS-1123 subdomain',
    'VirtualService Media/Ingress_RTP: /metadata/labels/long: invalid label value "' + 'v'.repeat(64) + '": must be at most 63 characters (has 64)',
  ]);
  const long = loose(first('Rule'));
  long.metadata.name = 'a'.repeat(254);
  assert.equal(validateObject(long).length, 1);
  assert.match(validateObject(long)[0]!, /\/metadata\/name: "a+" is not a DNS-1123 subdomain/);
  assert.deepEqual(validateObject({ apiVersion: 'l7mp.io/v1', kind: 'Listener', metadata: { name: 'x' } }), [
    'Listener x: /kind: "Listener" is not an l7mp kind (VirtualService, Target, Rule)',
  ]);
  assert.deepEqual(validateObject('nope'), ['object: /: must be an object']);
  assert.deepEqual(validateObject({ apiVersion: 'l7mp.io/v1', kind: 'Rule', spec: {} }), ['Rule (no name): /metadata: required object']);
});

test('label keys', () => {
  assert.equal(labelKeyProblem('app'), null);
  assert.equal(labelKeyProblem('rtp-bench.l7mp.io/call'), null);
  assert.equal(labelKeyProblem('statefulset.kubernetes.io/pod-name'), null);
  assert.match(labelKeyProblem('')!, /1-63/);
  assert.match(labelKeyProblem('a/' + 'x'.repeat(64))!, /1-63/);
  assert.match(labelKeyProblem('Bad.Prefix/x')!, /prefix/);
});

test('a valid object stays valid through JSON (what the Kubernetes API stores)', () => {
  for (const o of objects({ compact: true })) assert.deepEqual(validateObject(JSON.parse(JSON.stringify(o)) as Target), []);
});
