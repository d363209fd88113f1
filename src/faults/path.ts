/**
 * The two ways a run's control plane moves calls' media when a part of its path is replaced (MediaPathControl):
 * straight to rtpengine, the media threads re-point their legs from the dead worker's address to the survivor's
 * (same ports); through a local mesh, the calls' l7mp objects are moved to the survivor's sidecar, or made again on
 * a restarted ingress, through the REST provisioner.
 */
import type { MediaRepointer } from './repoint.js';
import type { MediaPathControl, PathChange } from './runtime.js';
import type { RestProvisioner, CallsMoved } from '../mesh/rest/provisioner.js';

/** Straight to rtpengine: `threads` media threads must each answer the re-point. */
export function threadRepointPath(repointer: MediaRepointer, threads: number): MediaPathControl {
  return {
    move: async (dead, survivor) => {
      if (dead.local === null || survivor.local === null) return { legs: 0, appliedEpochMs: null, problems: [`${dead.name} or ${survivor.name} has no address of its own to re-point between`] };
      const outcome = await repointer.repoint(dead.local.address, survivor.local.address, threads);
      return {
        legs: outcome.legs,
        appliedEpochMs: outcome.appliedEpochMs,
        problems: outcome.answered < outcome.asked ? [`only ${outcome.answered} of ${outcome.asked} media threads answered the re-point`] : [],
      };
    },
    restoreIngress: null,
    gone: () => undefined,
    close: () => repointer.close(),
  };
}

/** Through a mesh rtp-bench programs over REST (--mesh local): the calls' objects of run `runId`. */
export function meshPath(provisioner: RestProvisioner, runId: string): MediaPathControl {
  const change = (c: CallsMoved): PathChange => ({ legs: 2 * c.calls, appliedEpochMs: c.appliedEpochMs, problems: c.failed.length === 0 ? [] : [`${c.failed.length} call(s) not moved: ${c.failed.slice(0, 3).join('; ')}`] });
  return {
    move: async (dead, survivor) => {
      if (dead.mesh === null || survivor.mesh === null) return { legs: 0, appliedEpochMs: null, problems: [`${dead.name} or ${survivor.name} is not a worker of the mesh`] };
      return change(await provisioner.moveCalls(runId, dead.mesh, survivor.mesh));
    },
    restoreIngress: async () => change(await provisioner.restoreIngress(runId)),
    gone: (worker) => {
      if (worker.mesh !== null) provisioner.forgetProxy(worker.mesh.name);
    },
    close: () => undefined,
  };
}
