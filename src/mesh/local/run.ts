/**
 * `--mesh local`: build a real l7mp mesh in network namespaces (src/mesh/local/mesh.ts), run the benchmark itself
 * inside the client namespace (the generator's sockets must live there, and Node cannot enter a namespace), then
 * remove everything. The benchmark child gets its plan ready-made: the same run, as a `rest` mesh over the local
 * proxies, from the client namespace's address. Signals reach this parent and are passed on once to the child,
 * which tears its calls down; the mesh comes down after it, also on failure.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants, tmpdir } from 'node:os';
import { packageRoot } from '../../paths.js';
import { startLocalMesh, localMeshPortRanges, runInClientNamespace } from './mesh.js';
import { fromLocalMesh } from '../config.js';
import { netnsExec } from '../../stack/netns.js';
import { embeddedPortRanges } from '../../stack/stack.js';
import { defaultResultsPath } from '../../report/output.js';
import type { RunPlan } from '../../run-plan.js';
import type { CapacityPlan } from '../../capacity/plan.js';
import { INTERNAL_PLAN_FLAG, type InternalPlan } from './internal-plan.js';
import { serveMeshFaults } from './control.js';

/** `capacity`: the child runs that capacity search over the mesh instead of one run. */
export async function runWithLocalMesh(plan: RunPlan, runId: string, status: (line: string) => void, err: NodeJS.WriteStream, capacity?: CapacityPlan): Promise<number> {
  const { mesh, target } = plan;
  if (mesh?.kind !== 'local' || target.kind !== 'embedded') throw new Error('runWithLocalMesh needs a --mesh local plan');
  const abort = new AbortController();
  // Until the child runs, a signal aborts the mesh's start; while it runs, runInClientNamespace passes it on and
  // this handler only keeps Node from exiting before the mesh is down.
  let childRunning = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!childRunning) {
      err.write(`\n${signal}: stopping the local mesh\n`);
      abort.abort();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let dir: string | null = null;
  let local: Awaited<ReturnType<typeof startLocalMesh>> | null = null;
  try {
    status(`building a local l7mp mesh: ingress, ${target.workers} worker(s) with rtpengine, in network namespaces`);
    local = await startLocalMesh({
      runId,
      workers: target.workers,
      rtpenginePortRange: localMeshPortRanges(target.workers, target.portRange ?? embeddedPortRanges(plan.calls, target.workers, null)),
      rtpengineLogLevel: target.logLevel,
      rtpengineBinary: target.binary,
      redis: target.redis !== null,
      onStatus: status,
      signal: abort.signal,
    });
    const childPlan: RunPlan = {
      ...plan,
      target: { kind: 'mesh' },
      mesh: { kind: 'rest', options: mesh.options, config: fromLocalMesh(local.describe()), local: { redis: local.describe().redis } },
      localIp: local.clientAddress,
      // The child writes where this run would have: resolved here, since its working directory is the same.
      output: plan.output ?? defaultResultsPath(runId),
    };
    dir = await mkdtemp(join(tmpdir(), 'rtp-bench-mesh-'));
    const file = join(dir, 'plan.json');
    const internal: InternalPlan = { runId, plan: childPlan, ...(capacity === undefined ? {} : { capacity }) };
    await writeFile(file, JSON.stringify(internal), { mode: 0o600 });
    childRunning = true;
    const child = runInClientNamespace([...netnsExec(local.clientNamespace), process.execPath, join(packageRoot(), 'dist', 'src', 'cli.js'), INTERNAL_PLAN_FLAG, file]);
    serveMeshFaults(child.process, local);
    const ended = await child.done;
    if (ended.code !== null) return ended.code;
    return 128 + (ended.signal ? (constants.signals[ended.signal] ?? 0) : 0);
  } catch (e) {
    err.write(`rtp-bench: ${(e as Error).message}\n`);
    return abort.signal.aborted ? 130 : 3;
  } finally {
    if (local !== null) {
      status('removing the local mesh');
      await local.stop();
    }
    if (dir !== null) await rm(dir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
