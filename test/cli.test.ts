import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InfoRequested, closestName, parseCommandLine } from '../src/cli.js';
import { PlanError } from '../src/plan.js';
import { packageRoot, packageVersion } from '../src/paths.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const HINT = 'Run rtp-bench --help for the flags and examples.';

function cli(args: string[], script = CLI): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 20_000, cwd: packageRoot() });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function planError(args: string[], message: string): void {
  assert.throws(
    () => parseCommandLine(args),
    (err: unknown) => {
      assert.ok(err instanceof PlanError, `expected a PlanError for ${args.join(' ')}, got ${String(err)}`);
      assert.equal(err.message, message);
      return true;
    },
  );
}

/**
 * A stand-in rtpengine that leaves a file behind if anything ever runs it: proof that a rejected command line
 * started nothing (the coordinator would start --rtpengine-bin first).
 */
function fakeRtpengine(dir: string): { bin: string; marker: string } {
  const bin = join(dir, 'fake-rtpengine');
  const marker = join(dir, 'started');
  writeFileSync(bin, `#!/bin/sh\ntouch '${marker}'\nsleep 30\n`);
  chmodSync(bin, 0o755);
  return { bin, marker };
}

test('importing cli.js does not run main()', () => {
  // The test runner's own argv would be a bad command line and set exit code 2 if main() had run on import.
  assert.equal(process.exitCode, undefined);
});

test('--help: exit 0, the flags and the examples on stdout', () => {
  const { status, stdout, stderr } = cli(['--help']);
  assert.equal(status, 0);
  assert.equal(stderr, '');
  assert.match(stdout, /^Examples:$/m);
  assert.ok(stdout.includes('rtp-bench --calls 50 --ramp 10/s --hold 20s --codec-pair opus:pcmu'), stdout);
  assert.ok(stdout.includes('--rtpengine 10.0.0.5:2223,10.0.0.6:2223'), stdout);
  assert.ok(stdout.includes('rtp-bench calibrate --calls 2000'), stdout);
  for (const flag of ['--calls', '--codec-pair', '--rtpengine-ports', '--local-ports', '--max-loss', '--ng-in-flight', '--quiet', '--redis']) {
    assert.ok(stdout.includes(flag), `--help lists ${flag}`);
  }
});

test('--version prints the package version', () => {
  const { status, stdout } = cli(['--version']);
  assert.equal(status, 0);
  assert.equal(stdout, `${packageVersion()}\n`);
});

test('a bad value: exit 2, two lines on stderr, nothing started', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-cli-'));
  try {
    const { bin, marker } = fakeRtpengine(dir);
    const { status, stdout, stderr } = cli(['--calls', 'abc', '--rtpengine-bin', bin]);
    assert.equal(status, 2);
    assert.equal(stdout, '');
    const lines = stderr.split('\n');
    assert.equal(lines.pop(), '', 'stderr ends with a newline');
    assert.deepEqual(lines, [
      'rtp-bench: --calls abc is not a number: expected concurrent calls, a whole number from 1 to 100000',
      HINT,
    ]);
    assert.equal(existsSync(marker), false, 'no rtpengine was started');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unknown flag: exit 2, nothing started, even when the rest would run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-cli-'));
  try {
    const { bin, marker } = fakeRtpengine(dir);
    const { status, stdout, stderr } = cli(['--calls', '1', '--hold', '1s', '--rtpengine-bin', bin, '--frobnicate', '1']);
    assert.equal(status, 2);
    assert.equal(stdout, '');
    assert.equal(stderr, `rtp-bench: unknown option --frobnicate\n${HINT}\n`);
    assert.equal(existsSync(marker), false, 'no rtpengine was started');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a misspelt flag gets the closest known one', () => {
  const { status, stderr } = cli(['--calls', '1', '--codecpair', 'opus:pcmu']);
  assert.equal(status, 2);
  assert.equal(stderr, `rtp-bench: unknown option --codecpair: did you mean --codec-pair?\n${HINT}\n`);
});

test('cleanup without --mesh says what it can clean, instead of trying a Kubernetes cluster', () => {
  const { status, stdout, stderr } = cli(['cleanup']);
  assert.equal(status, 2);
  assert.equal(stdout, '');
  assert.match(stderr, /^rtp-bench: cleanup removes what a crashed run left; say where: --mesh local .*--mesh rest --mesh-config FILE .*--mesh kubernetes/);
});

test('--help states the exit codes the README states', () => {
  const help = cli(['--help']).stdout.replace(/\s+/g, ' ');
  const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8').replace(/\s+/g, ' ');
  for (const [code, words] of [['1', 'a call failed'], ['2', 'bad command line'], ['3', 'could not start'], ['4', 'the generator limited the run'], ['130', 'interrupted']] as const) {
    assert.match(help, new RegExp(`${code} [^;]*${words}`), `--help on exit ${code}`);
    assert.match(readme, new RegExp(`${code} [^;]*${words}`), `README on exit ${code}`);
  }
});

test('the bin runs as a program through a symlink, as npx and node_modules/.bin reach it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-cli-'));
  try {
    const link = join(dir, 'rtp-bench');
    symlinkSync(CLI, link);
    // Executed directly, not through node: needs the shebang and the executable bit that `npm run build` sets.
    const { status, stdout, stderr, error } = spawnSync(link, ['--version'], { encoding: 'utf8', timeout: 20_000, cwd: packageRoot() });
    assert.equal(error, undefined, `running ${link}: ${String(error)}`);
    assert.equal(status, 0, stderr);
    assert.equal(stdout, `${packageVersion()}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parseCommandLine: the main job and calibrate', () => {
  const main = parseCommandLine(['--calls', '50', '--ramp', '10/s', '--hold', '20s', '--codec-pair', 'opus:pcmu']);
  assert.equal(main.command, 'run');
  assert.equal(main.plan.calls, 50);
  assert.equal(main.plan.rampPerSec, 10);
  assert.equal(main.plan.holdMs, 20_000);
  assert.equal(main.plan.codecPair.a.name, 'opus');
  assert.equal(main.plan.codecPair.b.name, 'pcmu');
  assert.equal(main.plan.target.kind, 'embedded');

  const calibrate = parseCommandLine(['calibrate', '--calls=20', '--codec-pair', 'opus:opus', '--json']);
  assert.equal(calibrate.command, 'calibrate');
  assert.deepEqual(calibrate.plan.target, { kind: 'direct' });
  assert.equal(calibrate.plan.json, true);
});

test('parseCommandLine: --rtpengine may be repeated, like commas', () => {
  const { plan } = parseCommandLine(['--calls', '5', '--rtpengine', '10.0.0.5:2223', '--rtpengine', '10.0.0.6:2223']);
  assert.deepEqual(plan.target, {
    kind: 'remote',
    endpoints: [
      { host: '10.0.0.5', port: 2223 },
      { host: '10.0.0.6', port: 2223 },
    ],
    metricsUrls: null,
  });
});

test('parseCommandLine: --redis takes a value or none, wherever it stands', () => {
  const target = (args: string[]): unknown => {
    const t = parseCommandLine(['--calls', '5', '--workers', '2', ...args]).plan.target;
    return t.kind === 'embedded' ? t.redis : t.kind;
  };
  assert.deepEqual(target(['--redis']), { kind: 'own' });
  assert.deepEqual(target(['--redis', '--json']), { kind: 'own' });
  assert.deepEqual(target(['--redis=']), { kind: 'own' });
  assert.deepEqual(target(['--redis', '127.0.0.1:6379']), { kind: 'external', host: '127.0.0.1', port: 6379, db: 1 });
  assert.deepEqual(target(['--redis=127.0.0.1:6379/4']), { kind: 'external', host: '127.0.0.1', port: 6379, db: 4 });
  assert.equal(target([]), null);
  planError(['--calls', '5', '--redis', '--redis'], '--redis is given twice (no value, no value): give it once');
  planError(
    ['calibrate', '--calls', '5', '--redis'],
    '--redis does not apply to calibrate (its legs send straight to each other, no rtpengine): drop it, or leave out calibrate to benchmark rtpengine',
  );
});

test('parseCommandLine: yargs failures become one-line PlanErrors', () => {
  planError(['--frobnicate', '1'], 'unknown option --frobnicate');
  planError(['--calls', '5', '--call', '6'], 'unknown option --call: did you mean --calls?');
  planError(['--calls', '5', '--localip', '127.0.0.1'], 'unknown option --localip: did you mean --local-ip?');
  planError(['--calls', '5', '--codec', 'opus:opus'], 'unknown option --codec: did you mean --codec-pair?');
  planError(['--calls', '5', '--no-json'], 'unknown option --no-json: did you mean --json?');
  planError(['-x'], 'unknown option -x');
  planError(['--calls'], '--calls needs a value: expected N, a whole number from 1 to 100000');
  planError(['--calls', '5', '--hold'], '--hold needs a value: expected a duration like 20s, 2m or 1m30s');
  planError(
    ['--calls', '5', '--max-jitter', '-x'],
    '--max-jitter needs a value: expected milliseconds, e.g. 30 (-x looks like a flag: write --max-jitter=-x if it is the value)',
  );
  planError(['--calls', '5', '--calls', '6'], '--calls is given twice (5, 6): give it once');
  planError(['--calls', '5', '--json=yes'], '--json takes no value but was given --json=yes: write --json alone');
  planError(['calibrat', '--calls', '5'], 'unexpected argument calibrat: did you mean calibrate?');
  planError(['50'], 'unexpected argument 50: did you mean --calls 50?');
  planError(['go', '--calls', '5'], 'unexpected argument go: rtp-bench takes flags after its command (calibrate, capacity, report, cleanup, or none)');
  planError(['--calls', '5', '--', 'go'], 'unexpected argument go: rtp-bench takes flags after its command (calibrate, capacity, report, cleanup, or none)');
  planError(['calibrate', 'calibrate', '--calls', '5'], 'unexpected argument calibrate: calibrate is a command, given once before the flags');
});

test('parseCommandLine: calibrate names the rtpengine flag it cannot use', () => {
  planError(
    ['calibrate', '--calls', '5', '--workers', '2'],
    '--workers does not apply to calibrate (its legs send straight to each other, no rtpengine): drop it, or leave out calibrate to benchmark rtpengine',
  );
});

test('parseCommandLine: --help and --version come back as InfoRequested, not printed', () => {
  assert.throws(
    () => parseCommandLine(['--help']),
    (err: unknown) => err instanceof InfoRequested && err.text.includes('Examples:') && err.text.includes('--codec-pair'),
  );
  assert.throws(
    () => parseCommandLine(['calibrate', '--help']),
    (err: unknown) => err instanceof InfoRequested && err.text.startsWith('rtp-bench calibrate') && !err.text.includes('--workers'),
  );
  assert.throws(
    () => parseCommandLine(['--version']),
    (err: unknown) => err instanceof InfoRequested && err.text === packageVersion(),
  );
});

test('closestName: case and dashes, unique prefixes, small typos, nothing for strangers', () => {
  const known = ['calls', 'codec-pair', 'local-ip', 'local-ports', 'max-loss', 'max-latency'];
  const cases: ReadonlyArray<readonly [string, string | undefined]> = [
    ['call', 'calls'],
    ['CALLS', 'calls'],
    ['localIp', 'local-ip'],
    ['local_ports', 'local-ports'],
    ['codec', 'codec-pair'],
    ['max-los', 'max-loss'],
    ['max', undefined],
    ['frobnicate', undefined],
    ['', undefined],
  ];
  for (const [typed, expected] of cases) assert.equal(closestName(typed, known), expected, typed);
});
