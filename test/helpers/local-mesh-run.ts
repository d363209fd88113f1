/**
 * A `--mesh local` run as the tests watch it: the CLI in a child process, and the namespaces and processes of its
 * own mesh, sampled once the benchmark inside it has started, so that the test can check they are all gone after.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startCli, waitFor, type CliRun } from './run-cli.js';
import { alive } from './process.js';

export function meshNamespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith('rtpb-'));
}

/** This run's own mesh: the namespaces that appeared since `before`, and every process inside them. */
function meshOfRun(before: string[]): { namespaces: string[]; pids: number[] } {
  const namespaces = meshNamespaces().filter((ns) => !before.includes(ns));
  const pids = namespaces.flatMap((ns) =>
    execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number),
  );
  return { namespaces, pids };
}

/**
 * Runs the CLI with status lines on stderr and samples the run's mesh once the benchmark inside it has started
 * (its "rtp-bench run <id>:" line comes after the whole mesh is up), and, when asked, once `calls` calls are up.
 */
export async function runAndSampleMesh(args: string[], callsUp?: number, started = /rtp-bench run \S+:/): Promise<{ run: CliRun; mesh: { namespaces: string[]; pids: number[] } }> {
  const before = meshNamespaces();
  const run = startCli([...args, '--progress', 'on']);
  let stderr = '';
  run.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor('the benchmark to start inside the mesh', () => started.test(stderr), 60_000);
  const mesh = meshOfRun(before);
  if (callsUp !== undefined) await waitFor(`${callsUp} calls up`, () => new RegExp(`calls up ${callsUp}/${callsUp}`).test(stderr), 30_000);
  return { run, mesh };
}

export function assertGone(mesh: { namespaces: string[]; pids: number[] }): void {
  assert.ok(mesh.namespaces.length >= 3, `the run's namespaces were seen: ${mesh.namespaces.join(', ')}`);
  assert.ok(mesh.pids.length >= 3, 'its daemons were seen (ingress, worker proxy, rtpengine, benchmark)');
  const left = meshNamespaces().filter((ns) => mesh.namespaces.includes(ns));
  assert.deepEqual(left, [], 'no namespace of the run left');
  assert.deepEqual(mesh.pids.filter(alive), [], 'no process of the run left');
}
