import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InfoRequested, parseCommandLine, parseInvocation } from '../../src/cli.js';
import { PlanError } from '../../src/plan.js';
import { packageRoot } from '../../src/paths.js';
import { fileText, fixtureResults } from './fixture.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000, cwd: packageRoot() });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-cli-report-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('report with a file that does not exist: exit 2, one line naming it', () => {
  withDir((dir) => {
    const missing = join(dir, 'missing.json');
    const { status, stdout, stderr } = cli(['report', missing]);
    assert.equal(status, 2);
    assert.equal(stdout, '');
    assert.equal(stderr, `rtp-bench: ${missing}: no such file\n`);
  });
});

test('report with JSON that is not a results file: exit 2, one line naming it', () => {
  withDir((dir) => {
    const other = join(dir, 'package.json');
    writeFileSync(other, '{"name": "something-else", "version": "1.0.0"}\n');
    const { status, stdout, stderr } = cli(['report', other, '--html', join(dir, 'page.html')]);
    assert.equal(status, 2);
    assert.equal(stdout, '');
    assert.equal(stderr, `rtp-bench: ${other}: is not an rtp-bench results file: it has no "format" field\n`);
    assert.equal(existsSync(join(dir, 'page.html')), false);
  });
});

test('report with two results files: the comparison on stdout, the page with --html, exit 0', () => {
  withDir((dir) => {
    const one = join(dir, 'one.json');
    const two = join(dir, 'two.json');
    writeFileSync(one, fileText(fixtureResults({ runId: '20260101-120000-aaaa' })));
    writeFileSync(two, fileText(fixtureResults({ runId: '20260101-121000-bbbb', workers: 2 })));
    const page = join(dir, 'compare.html');
    const { status, stdout, stderr } = cli(['report', one, two, '--html', page]);
    assert.equal(stderr, '');
    assert.equal(status, 0);
    assert.ok(stdout.includes('1: 20260101-120000-aaaa') && stdout.includes('2: 20260101-121000-bbbb') && stdout.includes('2 / 1'), stdout);
    assert.ok(readFileSync(page, 'utf8').includes('20260101-121000-bbbb'));
  });
});

test('parseInvocation: report takes files and --html; the run commands are unchanged', () => {
  assert.deepEqual(parseInvocation(['report', 'a.json', 'b.json', '--html', 'out.html']), { command: 'report', files: ['a.json', 'b.json'], html: 'out.html' });
  assert.deepEqual(parseInvocation(['report', 'a.json']), { command: 'report', files: ['a.json'], html: undefined });
  // File names are never read as numbers.
  assert.deepEqual(parseInvocation(['report', '0012']), { command: 'report', files: ['0012'], html: undefined });
  const run = parseInvocation(['--calls', '5']);
  assert.equal(run.command, 'run');
  assert.equal(parseCommandLine(['calibrate', '--calls', '5']).command, 'calibrate');

  const rejects = (args: string[], message: string): void => {
    assert.throws(() => parseInvocation(args), (err: unknown) => err instanceof PlanError && err.message === message);
  };
  rejects(['report'], 'report needs at least one results file: e.g. rtp-bench report results/<run id>.json');
  rejects(['report', 'a.json', '--html'], '--html needs a value');
  rejects(['report', 'a.json', '--html', 'x', '--html', 'y'], '--html is given twice (x, y): give it once');
  rejects(['report', 'a.json', '--calls', '5'], '--calls does not apply to report: it takes results files and --html');
  rejects(['reprot', 'a.json'], 'unexpected argument reprot: did you mean report?');
  assert.throws(() => parseCommandLine(['report', 'a.json']), PlanError);
});

test('--help shows the report command and an example; report --help its own flags', () => {
  assert.throws(
    () => parseInvocation(['--help']),
    (err: unknown) => err instanceof InfoRequested && err.text.includes('rtp-bench report results/RUN1.json results/RUN2.json --html compare.html'),
  );
  assert.throws(
    () => parseInvocation(['report', '--help']),
    (err: unknown) => err instanceof InfoRequested && err.text.startsWith('rtp-bench report') && err.text.includes('--html') && !err.text.includes('--calls'),
  );
});
