/**
 * `rtp-bench cleanup`: what a run that crashed (or was killed) left behind. A run cleans up after itself, also on
 * Ctrl-C; this is for the rest: l7mp objects in a cluster (by the run label), objects on running proxies (by the
 * run's object names), network namespaces of a local mesh (by the run's name prefix) with what runs inside them.
 */
import { cleanupRun } from '../mesh/kubernetes/cleanup.js';
import { findLeftovers, removeLeftovers } from '../mesh/rest/leftovers.js';
import { readMeshConfig, meshProxies, MeshConfigError } from '../mesh/config.js';
import { DEFAULT_MESH_OPTIONS } from '../mesh/model.js';
import { NETNS_PREFIX, removeLeftovers as removeNamespaces, requireRoot, runPrefix } from '../stack/netns.js';
import type { CleanupRequest } from '../run-plan.js';

/** Returns the exit code: 0 done (also when there was nothing to remove), 3 it could not finish. */
export async function runCleanup(request: CleanupRequest, print: (line: string) => void = (line) => void process.stdout.write(`${line}\n`)): Promise<number> {
  const what = request.runId === null ? 'every run' : `run ${request.runId}`;
  try {
    if (request.mesh === 'kubernetes') {
      const result = await cleanupRun({ runId: request.runId, namespace: request.namespace, kubeconfig: request.kubeconfig, context: request.context, print });
      if (result.removed.length === 0) print(`nothing of ${what} left in namespace ${result.namespace}`);
      return 0;
    }
    if (request.mesh === 'rest') {
      const config = readMeshConfig(request.meshConfig!, DEFAULT_MESH_OPTIONS.workerPinLabel);
      const proxies = meshProxies(config);
      const leftovers = await findLeftovers(proxies, request.runId ?? undefined);
      for (const l of leftovers) print(`removing ${l.type} ${l.name} from ${l.proxy}`);
      if (leftovers.length > 0) await removeLeftovers(leftovers);
      print(leftovers.length === 0 ? `nothing of ${what} left on ${proxies.length} proxies` : `removed ${leftovers.length} objects of ${what}`);
      return 0;
    }
    requireRoot();
    const removed = await removeNamespaces(request.runId === null ? NETNS_PREFIX : runPrefix(request.runId));
    for (const ns of removed) print(`removed network namespace ${ns} and what ran in it`);
    if (removed.length === 0) print(`no network namespace of ${what} left`);
    return 0;
  } catch (err) {
    const message = err instanceof MeshConfigError ? err.message : (err as Error).message;
    process.stderr.write(`rtp-bench cleanup: ${message}\n`);
    return 3;
  }
}
