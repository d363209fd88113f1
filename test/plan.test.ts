import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlanError, buildPlan, flagFor, type CliOptions, type Command, type HostFacts } from '../src/plan.js';
import { codecPair } from '../src/profile.js';
import type { RunPlan } from '../src/run-plan.js';

/** A made-up machine, so the --local-ip and --threads expectations do not depend on where the tests run. */
const HOST: HostFacts = { addresses: ['127.0.0.1', '::1', '10.1.2.3', 'fd00::7'], parallelism: 8, isRoot: true };

function plan(options: CliOptions, command: Command = 'run', host: HostFacts = HOST): RunPlan {
  return buildPlan(command, options, host);
}

function rejects(options: CliOptions, message: string, command: Command = 'run'): void {
  assert.throws(
    () => plan(options, command),
    (err: unknown) => {
      assert.ok(err instanceof PlanError, `expected a PlanError, got ${String(err)}`);
      assert.equal(err.message, message);
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    },
  );
}

test('the main job maps onto every RunPlan field, defaults filled in', () => {
  const pair = codecPair('opus', 'pcmu');
  assert.ok(pair);
  const expected: RunPlan = {
    calls: 50,
    rampPerSec: 10,
    holdMs: 20_000,
    churn: null,
    codecPair: pair,
    target: { kind: 'embedded', workers: 1, binary: 'rtpengine', portRange: null, logLevel: 5, cpuCores: null, threads: null, redis: null },
    threads: 1,
    io: 'auto',
    mediaPriority: 'normal',
    localIp: '127.0.0.1',
    localPorts: { min: 20000, max: 29999 },
    localPortsExplicit: false,
    rtcp: 'on',
    output: null,
    csv: null,
    json: false,
    progress: 'auto',
    // A failed call fails the run unless --max-failed allows some (as SIPp).
    slo: { maxFailedPct: 0 },
    ngTimeoutMs: 5_000,
    ngInFlight: 64,
    audioCheckShare: 0.2,
    mesh: null,
    headStartMs: { a: 0, b: 0 },
    faults: [],
    runId: null,
    startAtEpochMs: null,
    shard: null,
    hgrm: null,
    callsCsv: null,
    metricsListen: null,
  };
  const actual = plan({ calls: '50', ramp: '10/s', hold: '20s', codecPair: 'opus:pcmu' });
  assert.deepEqual(actual, expected);
  assert.equal(actual.codecPair.a.name, 'opus');
  assert.equal(actual.codecPair.b.name, 'pcmu');
  assert.equal(actual.codecPair.transcoded, true);
});

test('every flag given maps onto the plan (remote target, SLOs, output)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-plan-'));
  try {
    mkdirSync(join(dir, 'runs'));
    const actual = plan({
      calls: '1000',
      ramp: '600/min',
      hold: '1m30s',
      codecPair: 'PCMA:pcma',
      rtpengine: '10.0.0.5:2223,[::1]:22222',
      threads: '2',
      localIp: '10.1.2.3',
      localPorts: '40000-49999',
      rtcp: 'generate',
      output: join(dir, 'runs', 'a.json'),
      json: true,
      quiet: true,
      maxLoss: '0.5%',
      maxJitter: '30',
      maxLatency: '0.05s',
      maxSetup: '200ms',
      minMos: '4',
      maxFailed: '1',
      ngTimeout: '2s',
      ngInFlight: '16',
      audioCheckShare: '50%',
    });
    assert.deepEqual(actual.target, {
      kind: 'remote',
      endpoints: [
        { host: '10.0.0.5', port: 2223 },
        { host: '::1', port: 22222 },
      ],
      metricsUrls: null,
    });
    assert.equal(actual.calls, 1000);
    assert.equal(actual.rampPerSec, 10);
    assert.equal(actual.holdMs, 90_000);
    assert.equal(actual.codecPair.a.name, 'pcma');
    assert.equal(actual.codecPair.transcoded, false);
    assert.equal(actual.threads, 2);
    assert.equal(actual.localIp, '10.1.2.3');
    assert.deepEqual(actual.localPorts, { min: 40000, max: 49999 });
    assert.equal(actual.rtcp, 'generate');
    assert.equal(actual.output, join(dir, 'runs', 'a.json'));
    assert.equal(actual.json, true);
    assert.equal(actual.progress, 'off');
    assert.deepEqual(actual.slo, {
      maxLossPct: 0.5,
      maxJitterMs: 30,
      maxLatencyMs: 50,
      maxSetupMs: 200,
      minMos: 4,
      maxFailedPct: 1,
    });
    assert.equal(actual.ngTimeoutMs, 2_000);
    assert.equal(actual.ngInFlight, 16);
    assert.equal(actual.audioCheckShare, 0.5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the embedded rtpengine flags reach the target; --hold 0 is allowed', () => {
  const actual = plan({
    calls: '100',
    hold: '0',
    workers: '4',
    rtpenginePorts: '30000-39999',
    rtpengineBin: '/usr/bin/rtpengine',
    rtpengineLogLevel: '7',
  });
  assert.equal(actual.holdMs, 0);
  assert.deepEqual(actual.target, {
    kind: 'embedded',
    workers: 4,
    binary: '/usr/bin/rtpengine',
    portRange: { min: 30000, max: 39999 },
    logLevel: 7,
    cpuCores: null,
    threads: null,
    redis: null,
  });
});

test('--worker-cpu and --worker-threads reach the embedded target; only as root, only for workers rtp-bench starts', () => {
  const t = plan({ calls: '10', workers: '2', workerCpu: '0.4', workerThreads: '2' }).target;
  assert.deepEqual(t.kind === 'embedded' && [t.cpuCores, t.threads], [0.4, 2]);
  assert.throws(() => plan({ calls: '10', workerCpu: '0.4' }, 'run', { ...HOST, isRoot: false }), /^PlanError: --worker-cpu needs root \(it makes a cgroup per rtpengine worker\): run as root, or drop it$/);
  rejects({ calls: '10', workerCpu: '0' }, '--worker-cpu 0 is out of range: expected the CPU each rtpengine may use, in cores, from 0.01 to 256, e.g. 0.5');
  rejects(
    { calls: '10', rtpengine: '127.0.0.1:2223', workerCpu: '0.4' },
    '--worker-cpu only applies to the rtpengine that rtp-bench starts itself, but --rtpengine 127.0.0.1:2223 names running instances: drop --worker-cpu or --rtpengine',
  );
});

test('--redis: alone, an own Redis; IPV4:PORT[/DB] a running one (DB 1 by default); only for the workers rtp-bench starts', () => {
  const redis = (value: string): unknown => {
    const t = plan({ calls: '10', workers: '2', redis: value }).target;
    return t.kind === 'embedded' ? t.redis : t.kind;
  };
  assert.deepEqual(redis(''), { kind: 'own' });
  assert.deepEqual(redis(' '), { kind: 'own' });
  assert.deepEqual(redis('127.0.0.1:6379'), { kind: 'external', host: '127.0.0.1', port: 6379, db: 1 });
  assert.deepEqual(redis('10.1.2.3:7000/0'), { kind: 'external', host: '10.1.2.3', port: 7000, db: 0 });
  assert.deepEqual(redis(' 127.0.0.1:6379/12 '), { kind: 'external', host: '127.0.0.1', port: 6379, db: 12 });
  const expected = 'expected nothing (rtp-bench starts a Redis of its own), or a running Redis as IPV4:PORT[/DB], e.g. 127.0.0.1:6379 or 127.0.0.1:6379/4';
  rejects({ calls: '10', redis: 'localhost' }, `--redis localhost is not IPV4:PORT[/DB]: ${expected}`);
  rejects({ calls: '10', redis: '127.0.0.1' }, `--redis 127.0.0.1 is not IPV4:PORT[/DB]: ${expected}`);
  rejects({ calls: '10', redis: 'redis:6379' }, `--redis redis:6379 has redis, not an IPv4 address: ${expected}`);
  rejects({ calls: '10', redis: '127.0.0.1:0' }, `--redis 127.0.0.1:0 has port 0, not a TCP port (1-65535): ${expected}`);
  rejects({ calls: '10', redis: '127.0.0.1:6379/x' }, `--redis 127.0.0.1:6379/x has DB x, not a DB number (0-1000000): ${expected}`);
  rejects({ calls: '10', redis: '127.0.0.1:6379/' }, `--redis 127.0.0.1:6379/ has DB "", not a DB number (0-1000000): ${expected}`);
  rejects(
    { calls: '10', redis: '', rtpengine: '127.0.0.1:2223' },
    "--redis does not apply to --rtpengine 127.0.0.1:2223: rtp-bench does not start those workers, so it cannot give them Redis; start each with --redis=IP:PORT/DB (a DB of its own) and --subscribe-keyspace=<the other workers' DBs>, and drop --redis here",
  );
  // --mesh local: a Redis of the mesh's own, inside it.
  const local = plan({ calls: '10', redis: '', mesh: 'local' });
  assert.deepEqual(local.target.kind === 'embedded' ? local.target.redis : null, { kind: 'own' });
  rejects(
    { calls: '10', redis: '127.0.0.1:6379', mesh: 'local' },
    '--redis 127.0.0.1:6379 does not apply to --mesh local: its workers live in network namespaces of their own, which reach no address of this machine; give --redis alone (the mesh starts a Redis of its own, inside it)',
  );
  rejects({ calls: '10', redis: '', mesh: 'kubernetes' }, '--redis does not apply to --mesh kubernetes: the rtpengine workers are the mesh\'s (the worker pods in the cluster)');
});

test('--threads defaults to one per 200 calls, at most one per core', () => {
  assert.equal(plan({ calls: '1' }).threads, 1);
  assert.equal(plan({ calls: '200' }).threads, 1);
  assert.equal(plan({ calls: '201' }).threads, 2);
  assert.equal(plan({ calls: '500', localPorts: '20000-29999' }).threads, 3);
  assert.equal(plan({ calls: '5000', localPorts: '20000-39999' }, 'run', { ...HOST, parallelism: 4 }).threads, 4);
});

test('calibrate targets the legs directly', () => {
  const actual = plan({ calls: '20', codecPair: 'opus:opus', rtcp: 'off' }, 'calibrate');
  assert.deepEqual(actual.target, { kind: 'direct' });
  assert.equal(actual.rtcp, 'off');
  assert.equal(actual.codecPair.transcoded, false);
});

test('--calls: missing, not a number, not whole, out of range', () => {
  const expected = 'expected concurrent calls, a whole number from 1 to 100000';
  rejects({}, '--calls is required: expected the number of concurrent calls, from 1 to 100000, e.g. --calls 50 (or churn: --rate 2/s --call-duration 30s, calls arriving and ending)');
  rejects({ calls: 'abc' }, `--calls abc is not a number: ${expected}`);
  rejects({ calls: '' }, `--calls "" is not a number: ${expected}`);
  rejects({ calls: '1e3' }, `--calls 1e3 is not a number: ${expected}`);
  rejects({ calls: '1.5' }, `--calls 1.5 is not a whole number: ${expected}`);
  rejects({ calls: '0' }, `--calls 0 is out of range: ${expected}`);
  rejects({ calls: '-5' }, `--calls -5 is out of range: ${expected}`);
  rejects({ calls: '100001' }, `--calls 100001 is out of range: ${expected}`);
});

test('other integer flags: --threads, --workers, --rtpengine-log-level, --ng-in-flight', () => {
  rejects({ calls: '50', threads: '0' }, '--threads 0 is out of range: expected media worker threads, a whole number from 1 to 256');
  rejects({ calls: '50', workers: '17' }, '--workers 17 is out of range: expected rtpengine instances to start, a whole number from 1 to 16');
  rejects({ calls: '50', rtpengineLogLevel: '8' }, '--rtpengine-log-level 8 is out of range: expected a syslog level, a whole number from 0 to 7');
  rejects({ calls: '50', ngInFlight: 'many' }, '--ng-in-flight many is not a number: expected ng requests in flight, a whole number from 1 to 10000');
});

test('bad units: --hold without a unit, --ramp in words, --ng-timeout 0', () => {
  rejects(
    { calls: '50', hold: '20' },
    '--hold 20 has no unit: expected a duration like 20s, 2m, 1h, 500ms or 1m30s (did you mean 20s?)',
  );
  rejects(
    { calls: '50', ramp: 'fast' },
    '--ramp fast is not a rate: expected calls per second like 10/s, 600/min or 10 (a bare number is per second)',
  );
  rejects({ calls: '50', hold: '25h' }, '--hold 25h is out of range: expected a duration from 0 to 24h, e.g. 20s, 2m or 1m30s');
  rejects({ calls: '50', ngTimeout: '0s' }, '--ng-timeout 0s is out of range: expected a duration from 1ms to 10m, e.g. 5s');
});

test('--codec-pair: unknown codec, with the known ones listed', () => {
  rejects(
    { calls: '50', codecPair: 'opus:g729' },
    '--codec-pair opus:g729 names an unknown codec g729: expected A:B with known codecs: pcmu, pcma, opus',
  );
  rejects(
    { calls: '50', codecPair: 'amr:amr' },
    '--codec-pair amr:amr names an unknown codec amr: expected A:B with known codecs: pcmu, pcma, opus',
  );
});

test('--codec-pair: malformed pairs', () => {
  const expected = "expected A:B (leg A's codec : leg B's codec), e.g. opus:pcmu; known codecs: pcmu, pcma, opus";
  rejects({ calls: '50', codecPair: 'opus' }, `--codec-pair opus is not a codec pair: ${expected}`);
  rejects({ calls: '50', codecPair: 'opus:' }, `--codec-pair opus: is not a codec pair: ${expected}`);
  rejects({ calls: '50', codecPair: 'a:b:c' }, `--codec-pair a:b:c is not a codec pair: ${expected}`);
});

test('--rtpengine: bad endpoints name the item at fault', () => {
  const expected =
    'expected HOST:PORT[,HOST:PORT...] with an IPv4 address, a host name or [IPv6], e.g. 127.0.0.1:22222 or [::1]:22222';
  rejects({ calls: '50', rtpengine: '127.0.0.1' }, `--rtpengine 127.0.0.1 has no port: ${expected}`);
  rejects(
    { calls: '50', rtpengine: '127.0.0.1:22222,10.0.0.5:99999' },
    `--rtpengine 127.0.0.1:22222,10.0.0.5:99999: 10.0.0.5:99999 has port 99999, out of range: ${expected}`,
  );
});

test('--media-priority: auto is realtime only where rtpengine does not share this machine; explicit choices win', () => {
  assert.equal(plan({ calls: '20' }).mediaPriority, 'normal', 'embedded rtpengine');
  assert.equal(plan({ calls: '20' }, 'calibrate').mediaPriority, 'realtime', 'calibrate: nothing else to measure');
  assert.equal(plan({ calls: '20', rtpengine: '10.0.0.5:2223' }).mediaPriority, 'realtime', 'remote rtpengine');
  assert.equal(plan({ calls: '20', mesh: 'local' }).mediaPriority, 'normal', 'local mesh: proxies and rtpengine here');
  assert.equal(plan({ calls: '20', mediaPriority: 'realtime' }).mediaPriority, 'realtime');
  assert.equal(plan({ calls: '20', mediaPriority: 'normal' }, 'calibrate').mediaPriority, 'normal');
  rejects({ calls: '20', mediaPriority: 'high' }, '--media-priority high is not a known mode: expected one of auto, realtime, normal');
});

test('--rtcp and --progress must be one of their modes', () => {
  rejects({ calls: '50', rtcp: 'yes' }, '--rtcp yes is not a known mode: expected one of on, off, generate');
  rejects({ calls: '50', progress: 'always' }, '--progress always is not a known mode: expected one of auto, on, off');
});

test('--local-ip must be loopback or on one of this machine\'s interfaces', () => {
  const choices = "expected 127.0.0.1 (any 127.x.x.x) or one of this machine's addresses: 10.1.2.3";
  rejects({ calls: '50', localIp: '192.0.2.1' }, `--local-ip 192.0.2.1 is not an address of this machine: ${choices}`);
  rejects({ calls: '50', localIp: '0.0.0.0' }, `--local-ip 0.0.0.0 is not an address of this machine: ${choices}`);
  rejects({ calls: '50', localIp: 'localhost' }, `--local-ip localhost is not an IP address: ${choices}`);
  assert.equal(plan({ calls: '50', localIp: '127.4.5.6' }).localIp, '127.4.5.6');
  assert.equal(plan({ calls: '50', localIp: '10.1.2.3' }).localIp, '10.1.2.3');
  rejects({ calls: '50', localIp: 'fd00::7' }, `--local-ip fd00::7 is IPv6, which rtp-bench does not support yet: ${choices}`);
});

test('--local-ports too small for --calls, or starting on an odd port', () => {
  rejects(
    { calls: '50', localPorts: '20000-20099' },
    '--local-ports 20000-20099 holds 25 calls (4 ports each: RTP and RTCP for two legs) but --calls is 50: widen the range or lower --calls',
  );
  rejects(
    { calls: '2501' },
    '--local-ports 20000-29999 (the default) holds 2500 calls (4 ports each: RTP and RTCP for two legs) but --calls is 2501: widen the range or lower --calls',
  );
  rejects(
    { calls: '20000', localPorts: '2-65535' },
    '--local-ports 2-65535 holds 16383 calls (4 ports each: RTP and RTCP for two legs) but --calls is 20000, more than any range on one address holds (16383): lower --calls',
  );
  rejects(
    { calls: '50', localPorts: '20001-29999' },
    '--local-ports 20001-29999 starts on an odd port: expected an even first port (RTP is even, RTCP = RTP + 1), e.g. 20000-29999',
  );
  assert.deepEqual(plan({ calls: '25', localPorts: '20000-20099' }).localPorts, { min: 20000, max: 20099 });
});

test('--rtpengine-ports must be even-based, and may be too small on purpose (to run rtpengine out of ports)', () => {
  rejects(
    { calls: '50', rtpenginePorts: '30001-30999' },
    '--rtpengine-ports 30001-30999 starts on an odd port: expected an even first port (RTP is even, RTCP = RTP + 1), e.g. 30000-30999',
  );
  const target = plan({ calls: '101', workers: '2', rtpenginePorts: '30000-30199' }).target;
  assert.deepEqual(target.kind === 'embedded' && target.portRange, { min: 30000, max: 30199 });
});

test('--output: the folder must exist and take a file; a folder, a file where a folder should be, /proc, a read-only folder are refused before the run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-plan-'));
  try {
    mkdirSync(join(dir, 'results'));
    writeFileSync(join(dir, 'file'), '');
    const folder = join(dir, 'results');
    rejects({ calls: '50', output: folder }, `--output ${folder}: ${folder} is a folder: give a file name in it, e.g. ${folder}/run.json`);
    const underFile = join(dir, 'file', 'run.json');
    rejects({ calls: '50', output: underFile }, `--output ${underFile}: ${join(dir, 'file')} is not a folder`);
    const missing = join(dir, 'new', 'deeper', 'run.json');
    rejects({ calls: '50', output: missing }, `--output ${missing}: folder ${join(dir, 'new', 'deeper')} does not exist: create it first, or write to an existing folder`);
    assert.equal(existsSync(join(dir, 'new')), false, 'nothing is created for --output');
    rejects({ calls: '50', output: `${folder}/` }, `--output ${folder}/ ends in a slash, so it names a folder: expected a file name in it, e.g. ${folder}/run.json`);
    rejects({ calls: '50', output: '' }, '--output "" is empty: expected a file name whose folder exists, e.g. results/run.json');
    // Node's recursive mkdir never returns under /proc; a check that tried it would hang here.
    rejects({ calls: '50', output: '/proc/no-such-dir/x.json' }, '--output /proc/no-such-dir/x.json: folder /proc/no-such-dir does not exist: create it first, or write to an existing folder');
    assert.throws(() => plan({ calls: '50', output: '/proc/x.json' }), /--output \/proc\/x\.json: results file \/proc\/x\.json: cannot create a file in \/proc: E[A-Z]+/);
    // A read-only bind mount: permission bits say writable to root, the file system says no.
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    if (mountReadOnly(ro)) {
      try {
        assert.throws(() => plan({ calls: '50', output: join(ro, 'x.json') }), new RegExp(`cannot create a file in ${ro}: EROFS \\(read-only file system\\)`));
      } finally {
        execFileSync('umount', [ro]);
      }
    }
    assert.equal(plan({ calls: '50', output: join(folder, 'run.json') }).output, join(folder, 'run.json'));
    assert.deepEqual(readdirSync(folder), [], 'the probe file is removed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no --output: results/ in the current folder is made if need be; a file there, or an unwritable folder, is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-cwd-'));
  const before = process.cwd();
  try {
    process.chdir(dir);
    assert.equal(plan({ calls: '5' }).output, null);
    assert.ok(statSync(join(dir, 'results')).isDirectory(), 'results/ made in the current folder');
    assert.deepEqual(readdirSync(join(dir, 'results')), []);
    rmSync(join(dir, 'results'), { recursive: true });
    writeFileSync(join(dir, 'results'), '');
    rejects({ calls: '5' }, `results go to ${join(dir, 'results')} by default, but that is a file, not a folder: give --output FILE`);
  } finally {
    process.chdir(before);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A read-only bind mount of `dir` onto itself (root only); false where mounting is not allowed. */
function mountReadOnly(dir: string): boolean {
  try {
    execFileSync('mount', ['--bind', '-o', 'ro', dir, dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('conflicting flags: embedded-only flags with --rtpengine, --quiet with --progress on', () => {
  for (const [key, value] of [
    ['workers', '2'],
    ['rtpenginePorts', '30000-39999'],
    ['rtpengineBin', '/opt/rtpengine'],
    ['rtpengineLogLevel', '6'],
  ] as const) {
    const flag = flagFor(key);
    rejects(
      { calls: '50', rtpengine: '10.0.0.5:2223', [key]: value },
      `--${flag} only applies to the rtpengine that rtp-bench starts itself, but --rtpengine 10.0.0.5:2223 names running instances: drop --${flag} or --rtpengine`,
    );
  }
  rejects({ calls: '50', quiet: true, progress: 'on' }, '--quiet turns progress off but --progress on asks for it: give only one of them');
  assert.equal(plan({ calls: '50', quiet: true, progress: 'off' }).progress, 'off');
});

test('calibrate rejects rtpengine flags, --rtcp generate and transcoding pairs', () => {
  const drop = 'does not apply to calibrate (its legs send straight to each other, no rtpengine): drop it, or leave out calibrate to benchmark rtpengine';
  rejects({ calls: '50', rtpengine: '10.0.0.5:2223' }, `--rtpengine ${drop}`, 'calibrate');
  rejects({ calls: '50', workers: '2' }, `--workers ${drop}`, 'calibrate');
  rejects({ calls: '50', rtpengineBin: 'rtpengine' }, `--rtpengine-bin ${drop}`, 'calibrate');
  rejects(
    { calls: '50', rtcp: 'generate' },
    '--rtcp generate makes rtpengine generate RTCP, but calibrate has no rtpengine: expected on or off',
    'calibrate',
  );
  rejects(
    { calls: '50', codecPair: 'opus:pcmu' },
    '--codec-pair opus:pcmu needs transcoding, which calibrate cannot do with no rtpengine between the legs: expected the same codec on both legs, e.g. opus:opus',
    'calibrate',
  );
});

test('SLO values out of range', () => {
  const pct = 'expected a percentage from 0 to 100, e.g. 0.5 or 0.5%';
  rejects({ calls: '50', maxLoss: '120' }, `--max-loss 120 is out of range: ${pct}`);
  rejects({ calls: '50', maxFailed: 'none' }, `--max-failed none is not a number: ${pct}`);
  rejects({ calls: '50', minMos: '6' }, "--min-mos 6 is out of range: expected a MOS from 1 to 4.5 (the E-model's best), e.g. 3.5");
  rejects({ calls: '50', minMos: 'good' }, "--min-mos good is not a number: expected a MOS from 1 to 4.5 (the E-model's best), e.g. 3.5");
  rejects({ calls: '50', maxJitter: '-1' }, '--max-jitter -1 is negative: expected milliseconds, 0 or more, e.g. 30 or 30ms or 0.5s');
  rejects(
    { calls: '50', audioCheckShare: '1.5' },
    '--audio-check-share 1.5 is out of range: expected a share of calls from 0 to 1, e.g. 0.2 (or a percentage, 20%)',
  );
});

test('churn: --rate and --call-duration replace --calls, --ramp and --hold; sized for the calls it can have up at once', () => {
  const p = plan({ rate: '4/s', callDuration: '3s' });
  assert.equal(p.churn?.ratePerSec, 4);
  assert.equal(p.churn?.callDurationMs, 3000);
  assert.equal(p.churn?.distribution, 'fixed');
  assert.equal(p.churn?.arrivalsMs, 6000, 'arrivals last two holding times by default');
  assert.equal(p.calls, 13);
  assert.equal(p.rampPerSec, 4);
  assert.equal(p.holdMs, 0);
  const e = plan({ rate: '2/s', callDuration: '30s', callDurationDist: 'Exponential', duration: '10m' });
  assert.equal(e.churn?.distribution, 'exponential');
  assert.equal(e.churn?.arrivalsMs, 600_000);
  assert.equal(e.calls, Math.ceil(60 + 5 * Math.sqrt(60)) + 1);
  assert.equal(plan({ rate: '2/s', callDuration: '30s', callDurationDist: 'exponential' }).churn?.arrivalsMs, 120_000, 'four means by default');
  assert.equal(plan({ calls: '10' }).churn, null);
});

test('churn: each bad combination says what to give instead', () => {
  rejects({ callDuration: '30s' }, '--call-duration belongs to churn, which needs --rate too: e.g. --rate 2/s --call-duration 30s');
  rejects({ rate: '2/s' }, '--rate (churn) needs --call-duration: how long each call is held, e.g. --call-duration 30s');
  rejects({ rate: '2/s', callDuration: '30s', calls: '50' }, '--calls does not apply to churn (--rate): the calls up follow from --rate x --call-duration; drop --calls, or drop the churn flags to ramp up and hold');
  rejects({ rate: '2/s', callDuration: '30s', hold: '1m' }, '--hold does not apply to churn (--rate): each call is held --call-duration; drop --hold, or drop the churn flags to ramp up and hold');
  rejects({ rate: '2/s', callDuration: '1s' }, '--call-duration 1s is out of range: expected a duration from 2s to 24h, e.g. 30s or 3m');
  rejects({ rate: '2/s', callDuration: '30s', callDurationDist: 'poisson' }, '--call-duration-dist poisson is not a known mode: expected one of fixed, exponential');
  rejects({ rate: '200/s', callDuration: '30s', duration: '10m' }, '--rate 200/s for 600 s places 120000 calls, more than one run numbers (100000): shorten --duration or lower --rate');
  rejects({ rate: '2/s', callDuration: '30s', duration: '1h', localPorts: '20000-20099' }, '--local-ports 20000-20099 holds 25 calls (4 ports each: RTP and RTCP for two legs) but churn may have 61 calls up at once (--rate x --call-duration, with room for chance): widen the range or lower --rate or --call-duration');
});

test('--rtpengine-metrics: one page per --rtpengine instance, in order; /metrics when no path is given', () => {
  const p = plan({ calls: '5', rtpengine: '10.0.0.5:2223,10.0.0.6:2223', rtpengineMetrics: 'http://10.0.0.5:2225, http://10.0.0.6:9000/prom' });
  assert.deepEqual(p.target.kind === 'remote' ? p.target.metricsUrls : undefined, ['http://10.0.0.5:2225/metrics', 'http://10.0.0.6:9000/prom']);
  rejects({ calls: '5', rtpengine: '10.0.0.5:2223,10.0.0.6:2223', rtpengineMetrics: 'http://10.0.0.5:2225' }, '--rtpengine-metrics http://10.0.0.5:2225 names 1 page(s) for 2 --rtpengine instance(s): expected one URL per instance, in the same order, e.g. http://10.0.0.5:2225/metrics');
  rejects({ calls: '5', rtpengine: '10.0.0.5:2223', rtpengineMetrics: '10.0.0.5:2225' }, '--rtpengine-metrics 10.0.0.5:2225 has 10.0.0.5:2225, which is not a URL: expected http://HOST:PORT/metrics (rtpengine --listen-http)');
  rejects({ calls: '5', rtpengine: '10.0.0.5:2223', rtpengineMetrics: 'ftp://10.0.0.5/metrics' }, '--rtpengine-metrics ftp://10.0.0.5/metrics has ftp://10.0.0.5/metrics, which is not http or https: expected http://HOST:PORT/metrics');
  rejects({ calls: '5', rtpengine: '10.0.0.5:2223', rtpengineMetrics: 'metrics' }, '--rtpengine-metrics metrics has metrics, which is not a URL: expected http://HOST:PORT/metrics (rtpengine --listen-http)');
  rejects(
    { calls: '5', rtpengineMetrics: 'http://10.0.0.5:2225' },
    '--rtpengine-metrics names the /metrics pages of instances given with --rtpengine, one each; the rtpengine rtp-bench starts is scraped anyway: drop --rtpengine-metrics or add --rtpengine',
  );
});

test('--fault: the run\'s length and workers bound it; remote workers, churn\'s arrivals and calibrate too', () => {
  // 10 calls at 10/s (1 s of ramp) then 5 s of hold: the run lasts 6 s from its start.
  const base: CliOptions = { calls: '10', ramp: '10/s', hold: '5s', workers: '2' };
  assert.deepEqual(plan({ ...base, fault: 'kill-worker=2@3s,pause-worker=1@2s:1s' }).faults, [
    { kind: 'pause-worker', worker: 1, atMs: 2000, durationMs: 1000, text: 'pause-worker=1@2s:1s' },
    { kind: 'kill-worker', worker: 2, atMs: 3000, durationMs: null, text: 'kill-worker=2@3s' },
  ]);
  assert.deepEqual(plan(base).faults, []);
  rejects({ ...base, fault: 'kill-worker=1@6s' }, "--fault kill-worker=1@6s starts at 6 s, after the run's end (6 s after its start: the ramp plus --hold, or churn's --duration): expected a fault inside the run: an earlier time, or a longer --hold");
  rejects({ ...base, fault: 'kill-worker=3@1s' }, '--fault kill-worker=3@1s names worker 3, but the run has 2 worker(s): expected a worker number from 1 to 2 (--workers 2)');
  rejects(
    { calls: '10', rtpengine: '127.0.0.1:2223', fault: 'pause-worker=1@1s:1s' },
    "--fault pause-worker=1@1s:1s needs a worker rtp-bench started: --rtpengine names instances that are not rtp-bench's to kill or pause; drop --rtpengine to use embedded workers",
  );
  assert.equal(plan({ rate: '2/s', callDuration: '10s', duration: '20s', fault: 'kill-worker=1@19s' }).faults.length, 1);
  rejects({ rate: '2/s', callDuration: '10s', duration: '20s', fault: 'kill-worker=1@21s' }, "--fault kill-worker=1@21s starts at 21 s, after the run's end (20 s after its start: the ramp plus --hold, or churn's --duration): expected a fault inside the run: an earlier time, or a longer --hold");
  rejects({ calls: '10', fault: 'kill-worker=1@1s' }, '--fault kill-worker=1@1s cannot apply to calibrate: it has no rtpengine and no media path but its own sockets', 'calibrate');
});
