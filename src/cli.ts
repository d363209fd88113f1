#!/usr/bin/env node
/**
 * The rtp-bench executable: parse the command line (src/command-line.ts), then hand over to the command's module in
 * src/commands/. Each command is loaded only when chosen: --help or a rejected command line pays for none of them.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { hideBin } from 'yargs/helpers';
import { PlanError } from './plan.js';
import { INTERNAL_PLAN_FLAG, type InternalPlan } from './mesh/local/internal-plan.js';
import { InfoRequested, parseInvocation, type Invocation } from './command-line.js';

export { InfoRequested, parseCommandLine, parseInvocation, type Invocation } from './command-line.js';
export { closestName } from './closest.js';

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  // The benchmark half of --mesh local, started by rtp-bench itself inside the client namespace with a plan that was
  // validated before the mesh was built (src/mesh/local/run.ts). Not a user flag.
  if (argv[0] === INTERNAL_PLAN_FLAG && argv[1] !== undefined) {
    const internal = JSON.parse(readFileSync(argv[1], 'utf8')) as InternalPlan;
    if (internal.capacity !== undefined) {
      const { runCapacity } = await import('./commands/capacity.js');
      process.exitCode = await runCapacity(internal.plan, internal.capacity, undefined, internal.runId);
      return;
    }
    const { run } = await import('./commands/run.js');
    process.exitCode = await run(internal.plan, undefined, internal.runId);
    return;
  }
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv);
  } catch (err) {
    if (err instanceof InfoRequested) {
      process.stdout.write(err.text.endsWith('\n') ? err.text : `${err.text}\n`);
      return;
    }
    if (err instanceof PlanError) {
      process.stderr.write(`rtp-bench: ${err.message}\nRun rtp-bench --help for the flags and examples.\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  if (invocation.command === 'report') {
    const { runReport } = await import('./commands/report.js');
    process.exitCode = await runReport(invocation.files, invocation.html);
    return;
  }
  if (invocation.command === 'merge') {
    const { runMerge } = await import('./commands/merge.js');
    process.exitCode = await runMerge(invocation.request);
    return;
  }
  if (invocation.command === 'cleanup') {
    const { runCleanup } = await import('./commands/cleanup.js');
    process.exitCode = await runCleanup(invocation.request);
    return;
  }
  if (invocation.command === 'scale') {
    const { runScale } = await import('./commands/scale.js');
    process.exitCode = await runScale(invocation.scale);
    return;
  }
  if (invocation.command === 'capacity') {
    const { runCapacity } = await import('./commands/capacity.js');
    process.exitCode = await runCapacity(invocation.plan, invocation.capacity);
    return;
  }
  // Loaded only now: the coordinator pulls in piscina, the Kubernetes client and the rest, none of which --help or a
  // rejected command line should pay for or be able to break.
  const { run } = await import('./commands/run.js');
  process.exitCode = await run(invocation.plan);
}

/** npx and npm's bin links reach this file through a symlink, and import.meta.url is always the real path. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((err: unknown) => {
    process.stderr.write(`rtp-bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 3;
  });
}
