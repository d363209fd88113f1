/**
 * The manifests in kubernetes/: every object valid against the real Kubernetes API schemas (kubernetes-models, plus
 * unknown fields found by a round trip through @kubernetes/client-node's typed models, since the API server drops or
 * rejects those), every file commented at the top with how to apply it, the workers' l7mp config identical to the
 * template the code renders, the workers' start script, and the Role in rbac.yaml equal to exactly what the
 * provisioner and the worker scaling call (statically: API_PERMISSIONS; and observed: a full lifecycle against the API
 * emulator).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { packageRoot } from '../../src/paths.js';
import { DEFAULT_MESH_OPTIONS } from '../../src/mesh/model.js';
import { callObjects } from '../../src/mesh/objects.js';
import { KubernetesProvisioner, workerConfigMapText } from '../../src/mesh/kubernetes/provisioner.js';
import { API_PERMISSIONS } from '../../src/mesh/kubernetes/permissions.js';
import { cleanupRun } from '../../src/mesh/kubernetes/cleanup.js';
import { KubernetesApi } from '../../src/mesh/kubernetes/api.js';
import { currentReplicas, scaleWorkers } from '../../src/mesh/kubernetes/workers-scale.js';
import { RTPENGINE_NG_PORT, workerProxyConfig } from '../../src/stack/l7mp-proxy.js';
import { parseCommandLine } from '../../src/cli.js';
import { K8sEmulator } from '../helpers/k8s-emulator.js';
import { testCall, testOptions } from './fixture.js';

type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

interface Model {
  validate(): void;
}
const MODELS: Record<string, new (data: never) => Model> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
};

const DIR = join(packageRoot(), 'kubernetes');
const MANIFEST_FILES = ['rtpengine-workers.yaml', 'redis.yaml', 'rbac.yaml', 'rtp-bench-job.yaml', 'rtp-bench-shards.yaml'];

function load(file: string): Manifest[] {
  const text = readFileSync(join(DIR, file), 'utf8');
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const out: Manifest[] = [];
  for (const doc of docs) {
    assert.deepEqual(doc.errors.map((e) => e.message), [], `${file}: YAML errors`);
    assert.deepEqual(doc.warnings.map((e) => e.message), [], `${file}: YAML warnings`);
    const value = doc.toJS() as Manifest | null;
    if (value !== null) out.push(value);
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Paths present in `raw` but not in `typed` (the typed model dropped them: the API server does not know them). */
function droppedFields(raw: unknown, typed: unknown, path = ''): string[] {
  if (Array.isArray(raw)) {
    return raw.flatMap((item, i) => droppedFields(item, Array.isArray(typed) ? typed[i] : undefined, `${path}[${i}]`));
  }
  if (!isRecord(raw)) return [];
  if (!isRecord(typed)) return [path || '/'];
  return Object.keys(raw).flatMap((k) => (k in typed ? droppedFields(raw[k], typed[k], `${path}.${k}`) : [`${path}.${k}`]));
}

/** Problems of one manifest object against the Kubernetes schemas, as messages. */
function schemaProblems(obj: Manifest): string[] {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const ModelClass = MODELS[key];
  if (!ModelClass) return [`${key}: no schema known to this test (add it to MODELS)`];
  const problems: string[] = [];
  try {
    new ModelClass(structuredClone(obj) as never).validate();
  } catch (err) {
    problems.push((err as Error).message);
  }
  const version = obj.apiVersion.split('/').pop()!;
  const type = `${version.charAt(0).toUpperCase()}${version.slice(1)}${obj.kind}`;
  const typed = ObjectSerializer.serialize(ObjectSerializer.deserialize(structuredClone(obj), type, ''), type, '') as unknown;
  problems.push(...droppedFields(obj, typed).map((p) => `${p}: unknown field`));
  return problems;
}

interface ShardsJob extends Manifest {
  spec: {
    completionMode?: string;
    completions?: number;
    parallelism?: number;
    backoffLimit?: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        serviceAccountName: string;
        restartPolicy: string;
        affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: { podAffinityTerm: { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } } }[] } };
        containers: (Container & { args: string[]; securityContext?: unknown; resources: { requests: Record<string, string>; limits: Record<string, string> } })[];
      };
    };
  };
}

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
}

function rtpengineContainer(objects: Manifest[]): Container {
  const sts = objects.find((o) => o.kind === 'StatefulSet') as Manifest & { spec: { template: { spec: { containers: Container[] } } } };
  return sts.spec.template.spec.containers.find((x) => x.name === 'rtpengine')!;
}

function envOf(c: Container): Record<string, string> {
  return Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
}

/** Kubernetes' expansion of command/args: $(VAR) -> its value when defined, $$ -> $. */
function expandArgs(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => (m === '$$' ? '$' : name !== undefined && name in env ? env[name]! : m));
}

/** The container's start script as Kubernetes expands it, run by sh for pod l7mp-worker-<ordinal>, rtpengine echoed. */
function runWorkerScript(c: Container, ordinal: number, override: Record<string, string> = {}): string {
  const env = { ...envOf(c), ...override };
  const script = expandArgs(c.args![0]!, env).replace('exec /usr/bin/rtpengine', 'exec echo rtpengine');
  try {
    return execFileSync('/bin/sh', ['-c', script], { env: { ...env, POD_NAME: `l7mp-worker-${ordinal}`, PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`worker ${ordinal}: ${String((err as { stderr?: unknown }).stderr ?? (err as Error).message)}`);
  }
}

/** The arguments rtpengine got: the echoed command line's words. */
function rtpengineArgs(output: string): string[] {
  const line = output.split('\n').find((l) => l.startsWith('rtpengine --'));
  assert.ok(line, `rtpengine's command line in:\n${output}`);
  return line.split(' ').slice(1);
}

function flag(args: string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

describe('kubernetes/ manifests', () => {
  test('every file has a comment on top that says what it is and how to apply it', () => {
    for (const file of [...MANIFEST_FILES, 'kustomization.yaml', 'redis/kustomization.yaml']) {
      const head = readFileSync(join(DIR, file), 'utf8').split('\n');
      assert.match(head[0]!, /^# \S/, `${file} starts with a comment`);
      const comment = head.slice(0, head.findIndex((l) => !l.startsWith('#'))).join('\n');
      // Directly, or (rtp-bench-shards.yaml) through kubectl set env --local ... -f kubernetes/<file> | kubectl apply.
      assert.match(comment, /kubectl (apply|set env --local -o yaml)( -n \S+)? -[fk] kubernetes\//, `${file}: says how to apply it`);
    }
    assert.ok(readFileSync(join(DIR, 'README.md'), 'utf8').includes('not been run end to end'));
  });

  test('every object is valid against the Kubernetes API schemas, with no unknown fields', () => {
    let count = 0;
    for (const file of MANIFEST_FILES) {
      for (const obj of load(file)) {
        assert.deepEqual(schemaProblems(obj), [], `${file}: ${obj.kind} ${obj.metadata?.name}`);
        assert.equal(obj.metadata.namespace, undefined, `${file}: ${obj.kind} ${obj.metadata.name} takes its namespace from kubectl -n`);
        count++;
      }
    }
    assert.equal(count, 10);
    // The CRDs too (JSON files).
    for (const file of readdirSync(join(DIR, 'crds'))) {
      const crd = JSON.parse(readFileSync(join(DIR, 'crds', file), 'utf8')) as Manifest;
      assert.deepEqual(schemaProblems(crd), [], file);
    }
  });

  test('the schema check catches what it should (a typo, a wrong type)', () => {
    const [configMap, service, sts] = load('rtpengine-workers.yaml') as [Manifest, Manifest, Manifest];
    void configMap;
    const typo = structuredClone(sts) as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } } & Manifest;
    typo.spec.template.spec.containers[0]!['imagePullPolicyy'] = 'Always';
    assert.deepEqual(schemaProblems(typo), ['.spec.template.spec.containers[0].imagePullPolicyy: unknown field']);
    const wrong = structuredClone(service) as { spec: { ports: Record<string, unknown>[] } } & Manifest;
    wrong.spec.ports[0]!['port'] = 'twelve';
    assert.match(schemaProblems(wrong).join('\n'), /port must be integer/);
  });

  test("the workers' l7mp config is exactly what the code renders (one source), and reads back as workerProxyConfig", () => {
    const cm = load('rtpengine-workers.yaml').find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'l7mp-worker-config');
    assert.ok(cm, 'ConfigMap l7mp-worker-config');
    const text = (cm['data'] as Record<string, string>)['l7mp-worker.yaml'];
    const expected = workerConfigMapText();
    assert.equal(text, expected, `kubernetes/rtpengine-workers.yaml's l7mp-worker.yaml must be, indented under it:\n${expected}`);
    assert.deepEqual(parseYaml(text!), JSON.parse(JSON.stringify(workerProxyConfig({ ng: { listen: { port: RTPENGINE_NG_PORT } } }))));
  });

  test('the StatefulSet fits the mesh model: labels, ports, pin label, config mount, images, rtpengine flags', () => {
    const objects = load('rtpengine-workers.yaml');
    const sts = objects.find((o) => o.kind === 'StatefulSet') as Manifest & {
      spec: {
        serviceName: string;
        selector: { matchLabels: Record<string, string> };
        template: {
          metadata: { labels: Record<string, string> };
          spec: {
            volumes: { name: string; configMap?: { name: string } }[];
            containers: { name: string; image: string; command?: string[]; args?: string[]; env?: { name: string; value?: string }[]; ports?: { containerPort: number; protocol?: string }[]; volumeMounts?: { name: string; mountPath: string }[] }[];
          };
        };
      };
    };
    const svc = objects.find((o) => o.kind === 'Service') as Manifest & { spec: { clusterIP?: string; selector: Record<string, string> } };
    assert.equal(sts.spec.serviceName, svc.metadata.name);
    assert.equal(svc.spec.clusterIP, 'None', 'headless');
    const labels = sts.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(DEFAULT_MESH_OPTIONS.workerSelector)) {
      assert.equal(labels[k], v, `pods carry ${k}=${v} (the worker selector)`);
      assert.equal(sts.spec.selector.matchLabels[k], v);
      assert.equal(svc.spec.selector[k], v);
    }
    // The pin label is the one the StatefulSet controller adds by itself.
    assert.equal(DEFAULT_MESH_OPTIONS.workerPinLabel, 'statefulset.kubernetes.io/pod-name');

    const [rtpengine, l7mp] = ['rtpengine', 'l7mp'].map((n) => sts.spec.template.spec.containers.find((c) => c.name === n)!);
    assert.ok(rtpengine && l7mp);
    assert.equal(l7mp.image, 'l7mp/l7mp:0.5.7');
    const udp = (l7mp.ports ?? []).filter((p) => p.protocol === 'UDP').map((p) => p.containerPort).sort();
    assert.deepEqual(udp, [DEFAULT_MESH_OPTIONS.workerPorts.rtp, DEFAULT_MESH_OPTIONS.workerPorts.rtcp, RTPENGINE_NG_PORT].sort());
    assert.ok((l7mp.ports ?? []).some((p) => p.containerPort === 1234 && p.protocol === 'TCP'), 'the controller port the operator uses');
    const configArg = l7mp.args![l7mp.args!.indexOf('-c') + 1]!;
    const mount = l7mp.volumeMounts!.find((m) => `/app/${configArg}`.startsWith(`${m.mountPath}/`))!;
    assert.ok(mount, `-c ${configArg} is under a mounted volume (workdir /app)`);
    const volume = sts.spec.template.spec.volumes.find((v) => v.name === mount.name)!;
    assert.equal(volume.configMap?.name, 'l7mp-worker-config');
    assert.equal(configArg.split('/').pop(), 'l7mp-worker.yaml', 'the ConfigMap key');

    const script = rtpengine.args!.join('\n');
    for (const flag of ['--config-file=none', '--interface=127.0.0.1', `--listen-ng=127.0.0.1:${RTPENGINE_NG_PORT}`, '--table=-1', '--delete-delay=0', '--foreground']) {
      assert.ok(script.includes(flag), `rtpengine runs with ${flag}`);
    }
  });

  test("the rtpengine start script gives each worker its own port range (as Kubernetes expands it, run by sh)", () => {
    const c = rtpengineContainer(load('rtpengine-workers.yaml'));
    assert.deepEqual(c.command, ['/bin/sh', '-c']);
    const ranges = [0, 3].map((ordinal) => runWorkerScript(c, ordinal));
    assert.match(ranges[0]!, /--port-min=40000 --port-max=40999/);
    assert.match(ranges[1]!, /--port-min=43000 --port-max=43999/);
    assert.match(ranges[1]!, /^rtpengine worker l7mp-worker-3: media ports 43000-43999$/m);
    // The default apply: no Redis, so none of its flags.
    assert.equal(envOf(c)['RTPENGINE_REDIS'], '');
    assert.doesNotMatch(ranges.join('\n'), /--redis|--subscribe-keyspace|--active-switchover/);
  });

  test('with RTPENGINE_REDIS the script gives each ordinal its own DB, follows every other, and keeps port ranges disjoint', () => {
    const c = rtpengineContainer(load('rtpengine-workers.yaml'));
    const max = Number(envOf(c)['RTPENGINE_MAX_WORKERS']);
    assert.equal(max, 15, 'Redis has 16 DBs; DB 0 stays unused');
    // localhost: a name, resolved by the script as rtpengine-redis would be in the cluster (getent, no DNS needed).
    const workers = [0, 1, 2, 3].map((ordinal) => rtpengineArgs(runWorkerScript(c, ordinal, { RTPENGINE_REDIS: 'localhost' })));
    const dbs = workers.map((args, ordinal) => {
      const redis = args.filter((a) => a.startsWith('--redis='));
      assert.equal(redis.length, 1, `worker ${ordinal}: one --redis`);
      const m = /^--redis=127\.0\.0\.1:6379\/(\d+)$/.exec(redis[0]!);
      assert.ok(m, `worker ${ordinal}: --redis=<address>:6379/<db>, the name resolved: ${redis[0]}`);
      const db = Number(m[1]);
      assert.equal(db, ordinal + 1);
      const followed = args.filter((a) => a.startsWith('--subscribe-keyspace=')).map((a) => Number(a.split('=')[1]));
      assert.deepEqual(followed, Array.from({ length: max }, (_, i) => i + 1).filter((d) => d !== db), `worker ${ordinal} follows every other worker's DB up to the maximum`);
      assert.ok(args.includes('--active-switchover'), `worker ${ordinal}: --active-switchover`);
      return db;
    });
    assert.equal(new Set(dbs).size, dbs.length, 'a distinct DB per worker');
    assert.ok(!dbs.includes(0));
    const ranges = workers.map((args) => ({ min: Number(flag(args, '--port-min')), max: Number(flag(args, '--port-max')) }));
    for (const [i, a] of ranges.entries()) {
      assert.ok(a.min <= a.max && a.max <= 65535);
      for (const b of ranges.slice(i + 1)) assert.ok(a.max < b.min || b.max < a.min, `port ranges ${a.min}-${a.max} and ${b.min}-${b.max} are disjoint`);
    }
    // An address is taken as it is; an ordinal without a DB of its own refuses to start instead of sharing one.
    assert.match(runWorkerScript(c, 0, { RTPENGINE_REDIS: '10.96.0.12' }), /--redis=10\.96\.0\.12:6379\/1 /);
    assert.throws(() => runWorkerScript(c, max, { RTPENGINE_REDIS: 'localhost' }), /beyond RTPENGINE_MAX_WORKERS=15/);
    assert.throws(() => runWorkerScript(c, 0, { RTPENGINE_REDIS: 'no-such-host.invalid' }), /cannot resolve no-such-host\.invalid/);
  });

  test('redis.yaml: keyspace notifications Kg$ (as Kubernetes expands the args), no persistence, the DBs the workers use', () => {
    const deployment = load('redis.yaml').find((o) => o.kind === 'Deployment') as Manifest & { spec: { template: { spec: { containers: { name: string; args?: string[] }[] } } } };
    const args = deployment.spec.template.spec.containers.find((x) => x.name === 'redis')!.args!.map((a) => expandArgs(a, {}));
    const value = (name: string): string | undefined => args[args.indexOf(name) + 1];
    assert.equal(value('--notify-keyspace-events'), 'Kg$');
    assert.equal(value('--save'), '');
    assert.equal(value('--appendonly'), 'no');
    assert.ok(Number(value('--databases')) > Number(envOf(rtpengineContainer(load('rtpengine-workers.yaml')))['RTPENGINE_MAX_WORKERS']), 'a DB per worker, DB 0 unused');
  });

  test('the redis component (kubectl kustomize): valid objects, the workers wired to the Redis Service', (t) => {
    try {
      execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    } catch {
      t.skip('kubectl is not installed: its kustomize renders the component');
      return;
    }
    // kubernetes/kustomization.yaml with its Redis lines uncommented, as kubernetes/README.md says.
    const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-kustomize-'));
    try {
      cpSync(DIR, dir, { recursive: true });
      const k = readFileSync(join(dir, 'kustomization.yaml'), 'utf8');
      const on = k.replace(/^# {0,2}- redis\.yaml$/m, '  - redis.yaml').replace(/^# components:$/m, 'components:').replace(/^# {1,3}- redis$/m, '  - redis');
      assert.notEqual(on, k);
      writeFileSync(join(dir, 'kustomization.yaml'), on);
      const objects = parseAllDocuments(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })).map((d) => d.toJS() as Manifest);
      assert.deepEqual(objects.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'Role', 'RoleBinding', 'Service', 'Service', 'ServiceAccount', 'StatefulSet']);
      for (const obj of objects) assert.deepEqual(schemaProblems(obj), [], `${obj.kind} ${obj.metadata.name}`);
      const c = rtpengineContainer(objects);
      const redisService = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'rtpengine-redis');
      assert.ok(redisService);
      assert.equal(envOf(c)['RTPENGINE_REDIS'], redisService.metadata.name);
      assert.match(runWorkerScript(c, 2, { RTPENGINE_REDIS: 'localhost' }), /--redis=127\.0\.0\.1:6379\/3 .*--active-switchover/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the Job runs rtp-bench with --mesh kubernetes as the rtp-bench service account, once, with args the CLI accepts', () => {
    const job = load('rtp-bench-job.yaml')[0] as Manifest & {
      spec: {
        backoffLimit: number;
        template: {
          spec: {
            serviceAccountName: string;
            restartPolicy: string;
            containers: { args: string[]; securityContext?: { capabilities?: { add?: string[] } } }[];
          };
        };
      };
    };
    const sa = load('rbac.yaml').find((o) => o.kind === 'ServiceAccount')!;
    assert.equal(job.spec.template.spec.serviceAccountName, sa.metadata.name);
    assert.equal(job.spec.template.spec.restartPolicy, 'Never');
    assert.equal(job.spec.backoffLimit, 0);
    const args = job.spec.template.spec.containers[0]!.args;
    const invocation = parseCommandLine(args);
    assert.equal(invocation.plan.mesh?.kind, 'kubernetes');
    // Through a remote mesh the media threads ask for real-time scheduling, which a container gets only with SYS_NICE.
    assert.equal(invocation.plan.mediaPriority, 'realtime');
    assert.deepEqual(job.spec.template.spec.containers[0]!.securityContext?.capabilities?.add, ['SYS_NICE']);
  });

  test('the shards Job is Indexed: completions = parallelism = RTP_BENCH_SHARDS, every pod a shard of one plan and one run id', () => {
    const objects = load('rtp-bench-shards.yaml');
    assert.equal(objects.length, 1);
    const job = objects[0] as ShardsJob;
    assert.deepEqual(schemaProblems(job), [], 'batch/v1 Job');
    new Job(structuredClone(job) as never).validate();
    assert.equal(job.spec.completionMode, 'Indexed');
    const c = job.spec.template.spec.containers[0]!;
    const env = envOf(c);
    const shards = Number(env['RTP_BENCH_SHARDS']);
    assert.ok(Number.isInteger(shards) && shards > 1, `RTP_BENCH_SHARDS ${env['RTP_BENCH_SHARDS']}`);
    assert.equal(job.spec.completions, shards, 'completions = RTP_BENCH_SHARDS');
    assert.equal(job.spec.parallelism, shards, 'parallelism = RTP_BENCH_SHARDS: all shards at once');
    assert.equal(env['RTP_BENCH_START_AT'], '', 'set per run when applying');
    assert.equal(job.spec.backoffLimit, 0);
    assert.equal(job.spec.template.spec.restartPolicy, 'Never');
    assert.equal(job.spec.template.spec.serviceAccountName, load('rbac.yaml').find((o) => o.kind === 'ServiceAccount')!.metadata.name);
    assert.deepEqual(c.securityContext, { runAsUser: 0, capabilities: { add: ['SYS_NICE'] } });
    assert.ok(c.resources.requests['cpu'] && c.resources.requests['memory']);
    assert.deepEqual(c.resources.limits, c.resources.requests, 'Guaranteed QoS');
    const [term] = job.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution;
    assert.equal(term!.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    for (const [k, v] of Object.entries(term!.podAffinityTerm.labelSelector.matchLabels)) assert.equal(job.spec.template.metadata.labels[k], v, 'the anti-affinity selects the shard pods');

    // The load, after the script and its $0: no --shard (the Indexed Job's environment makes the shards); the script
    // adds --start-at and --output, so the load must not carry them.
    assert.deepEqual(c.command, ['/bin/sh', '-c']);
    assert.equal(c.args[1], 'rtp-bench');
    const load_ = c.args.slice(2);
    for (const f of ['--shard', '--start-at', '--run-id', '--output', '--json']) assert.ok(!load_.includes(f), `the load has no ${f}`);
    // Every pod as Kubernetes starts it: JOB_COMPLETION_INDEX 0..N-1 with the manifest's env and one start time.
    const at = new Date(Date.now() + 120_000).toISOString().slice(0, 19) + 'Z';
    const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-shards-'));
    const saved = { JOB_COMPLETION_INDEX: process.env['JOB_COMPLETION_INDEX'], RTP_BENCH_SHARDS: process.env['RTP_BENCH_SHARDS'] };
    try {
      const plans = Array.from({ length: shards }, (_, i) => {
        process.env['JOB_COMPLETION_INDEX'] = String(i);
        process.env['RTP_BENCH_SHARDS'] = env['RTP_BENCH_SHARDS'];
        return parseCommandLine([...load_, '--start-at', at, '--output', join(dir, 'rtp-bench-shard.json')]).plan;
      });
      assert.deepEqual(plans.map((p) => [p.shard?.index, p.shard?.count, p.shard?.source]), plans.map((_, i) => [i + 1, shards, 'environment']));
      assert.equal(new Set(plans.map((p) => p.runId)).size, 1, 'one run id in every pod, derived from the start');
      assert.ok(plans.every((p) => p.startAtEpochMs === Date.parse(at)));
      assert.equal(plans.reduce((n, p) => n + p.calls, 0), plans[0]!.shard!.totalCalls, "the shares add up to the plan's --calls");
      assert.ok(plans.every((p) => p.mesh?.kind === 'kubernetes' && p.mediaPriority === 'realtime'));
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("each shard pod prints its results file on one log line, and kubernetes/README.md's collect pipeline gets the file back", () => {
    const job = load('rtp-bench-shards.yaml')[0] as ShardsJob;
    const c = job.spec.template.spec.containers[0]!;
    const collect = "sed -n 's/^rtp-bench-results //p' | base64 -d | gunzip";
    assert.ok(readFileSync(join(DIR, 'README.md'), 'utf8').includes(collect), `kubernetes/README.md collects with: ${collect}`);
    const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-pod-'));
    try {
      // A stand-in rtp-bench on PATH: records its arguments, writes a results file (long, to cross the 16 KiB at
      // which container runtimes split a log line) unless told not to, and exits with FAKE_RC.
      const results = JSON.stringify({ runId: 'x', calls: Array.from({ length: 2000 }, (_, i) => ({ callId: `x-s1-${i}`, mos: 4.3 })) });
      writeFileSync(join(dir, 'results.json'), results);
      writeFileSync(join(dir, 'rtp-bench'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/argv"\necho "summary table"; echo "a warning" >&2\nprev=""\nfor a in "$@"; do [ "$prev" = --output ] && [ -z "$FAKE_NO_RESULTS" ] && cp "${dir}/results.json" "$a"; prev="$a"; done\nexit "$FAKE_RC"\n`, { mode: 0o755 });
      const script = expandArgs(c.args[0]!, envOf(c));
      const pod = (extra: Record<string, string>): { status: number; log: string } => {
        const r = spawnSync('/bin/sh', ['-c', script, ...c.args.slice(1)], {
          env: { PATH: `${dir}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, TMPDIR: dir, ...envOf(c), ...extra },
          encoding: 'utf8',
        });
        return { status: r.status ?? -1, log: r.stdout + r.stderr };
      };
      const at = '2026-12-07T11:40:00Z';
      // The shard missed an SLO (exit 1) but has results: printed, and the pod succeeds so the Job keeps the others.
      const ok = pod({ RTP_BENCH_START_AT: at, FAKE_RC: '1' });
      assert.equal(ok.status, 0, ok.log);
      assert.deepEqual(readFileSync(join(dir, 'argv'), 'utf8').trimEnd().split('\n'), [...c.args.slice(2), '--start-at', at, '--output', join(dir, 'rtp-bench-shard.json')]);
      const back = execFileSync('/bin/sh', ['-c', collect], { input: ok.log, encoding: 'utf8' });
      assert.equal(back, results);
      // No results (a refused plan, a crash): rtp-bench's exit code, nothing framed.
      // (A pod's container starts without one; the first case's is removed.)
      rmSync(join(dir, 'rtp-bench-shard.json'));
      const none = pod({ RTP_BENCH_START_AT: at, FAKE_RC: '2', FAKE_NO_RESULTS: '1' });
      assert.equal(none.status, 2);
      assert.doesNotMatch(none.log, /^rtp-bench-results /m);
      // No start time: refused before rtp-bench runs.
      rmSync(join(dir, 'argv'));
      const unset = pod({ FAKE_RC: '0' });
      assert.equal(unset.status, 2);
      assert.match(unset.log, /RTP_BENCH_START_AT is empty/);
      assert.throws(() => readFileSync(join(dir, 'argv')), /ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('kustomization.yaml lists existing manifests', () => {
    const k = parseYaml(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as { kind: string; resources: string[] };
    assert.equal(k.kind, 'Kustomization');
    for (const r of k.resources) assert.ok(MANIFEST_FILES.includes(r), r);
  });
});

/** `group|resource|verb` for each pair an RBAC rule list grants. */
function grants(rules: { apiGroups?: string[]; apiGroup?: string; resources: string[]; verbs: string[] }[]): string[] {
  const out = new Set<string>();
  for (const r of rules) {
    for (const g of r.apiGroups ?? [r.apiGroup ?? '']) for (const res of r.resources) for (const v of r.verbs) out.add(`${g}|${res}|${v}`);
  }
  return [...out].sort();
}

describe('RBAC', () => {
  let emulator: K8sEmulator;
  before(async () => {
    emulator = await K8sEmulator.start();
  });
  after(async () => {
    await emulator.close();
  });

  test('the Role grants exactly what the provisioner and scale call: verbs x resources used == granted', async () => {
    const rbac = load('rbac.yaml');
    const role = rbac.find((o) => o.kind === 'Role') as Manifest & { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
    const binding = rbac.find((o) => o.kind === 'RoleBinding') as Manifest & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string }[] };
    const sa = rbac.find((o) => o.kind === 'ServiceAccount')!;
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    assert.deepEqual(binding.subjects.map((s) => [s.kind, s.name]), [['ServiceAccount', sa.metadata.name]]);
    const granted = grants(role.rules);
    assert.deepEqual(grants([...API_PERMISSIONS]), granted, 'API_PERMISSIONS (what the code declares) == the Role');

    // Every path through the code that talks to the API server, against the emulator: what it really calls.
    emulator.addPod({ name: 'l7mp-worker-0', labels: { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': 'l7mp-worker-0' }, podIP: '10.244.0.5' });
    emulator.addPod({ name: 'l7mp-ingress-x', labels: { app: 'l7mp-ingress' }, podIP: '172.18.0.2' });
    const p = new KubernetesProvisioner({ mesh: testOptions(), kubeConfig: emulator.kubeConfig(), ratePerSec: 100_000 });
    await p.listWorkers('default', DEFAULT_MESH_OPTIONS.workerSelector, DEFAULT_MESH_OPTIONS.workerPinLabel);
    await p.ingressAddress('default', DEFAULT_MESH_OPTIONS.ingressSelector);
    const call = testCall();
    // A 409 for this run's own objects (one of each kind): get.
    for (const kind of ['Rule', 'Target', 'VirtualService']) emulator.put(callObjects(call, testOptions()).find((o) => o.kind === kind)!);
    await p.provision(call);
    await p.release(call);
    await p.provision(call);
    await p.releaseRun(call.runId);
    emulator.put(callObjects({ ...call, runId: 'crashed' }, testOptions())[0]!);
    await cleanupRun({ runId: 'crashed', kubeConfig: emulator.kubeConfig(), print: () => {} });
    await cleanupRun({ kubeConfig: emulator.kubeConfig(), print: () => {} });
    await p.close();
    // rtp-bench scale --mesh kubernetes: the worker StatefulSet scaled and waited for.
    // (A StatefulSet of its own: the worker pod added above would be selected alongside, which scaleWorkers refuses.)
    emulator.addStatefulSet({ name: 'scaled-worker', replicas: 1, labels: { app: 'scaled-worker' }, startup: 'ready' });
    const api = new KubernetesApi(emulator.kubeConfig(), { ratePerSec: 100_000 });
    const replicas = await currentReplicas(api, 'default', 'scaled-worker');
    await scaleWorkers(api, { namespace: 'default', statefulSet: 'scaled-worker', replicas: replicas + 1, pinLabel: DEFAULT_MESH_OPTIONS.workerPinLabel, workerSelector: { app: 'scaled-worker' }, pollMs: 5 });
    // --fault kill-worker with --mesh kubernetes: the worker pod read (its uid, then until its replacement is Ready) and deleted.
    await api.readPod('default', 'scaled-worker-0');
    await api.deletePod('default', 'scaled-worker-0');
    api.close();

    assert.deepEqual(emulator.requests.filter((r) => r.verb === 'unknown').map((r) => `${r.method} ${r.path}`), [], 'only endpoints the emulator knows');
    const used = [...new Set(emulator.requests.map((r) => `${r.apiGroup}|${r.resource}|${r.verb}`))].sort();
    assert.deepEqual(used, granted, 'verbs x resources the code called == verbs x resources the Role grants');
  });
});
