/**
 * What the call flow needs from a mesh, whichever way its objects are made: Kubernetes custom resources that the l7mp
 * operator turns into proxy configuration, or REST requests straight to the proxies.
 */
import type { MeshCall } from './model.js';

export interface ProvisionTiming {
  /** Until every object was accepted (Kubernetes: created; REST: every request answered), ms, without the time the
   * requests waited for rtp-bench's own rate and concurrency limits (throttledMs). */
  acceptedMs: number;
  /** Time the call's requests waited for rtp-bench's own limits before leaving (not the mesh's doing), ms. */
  throttledMs: number;
  /** Until the mesh was seen ready to carry the call's media (REST: the ingress lists the sessions as connected;
   * Kubernetes: null, readiness is not observable through the API), ms. */
  readyMs: number | null;
}

/** Objects and API requests one call cost: the figures to compare object layouts with. */
export interface MeshCost {
  objects: number;
  requests: number;
}

export interface MeshProvisioner {
  readonly kind: 'kubernetes' | 'rest';
  /** Creates the call's objects in the order that loses no media (Rules, Targets, VirtualServices) and resolves when
   * they are accepted (and, where it can be observed, ready). Throws MeshError on a refusal it cannot retry. */
  provision(call: MeshCall): Promise<ProvisionTiming & MeshCost>;
  /** Removes the call's objects in the order that leaves nothing behind. Never throws for objects already gone. */
  release(call: MeshCall): Promise<MeshCost>;
  /** Removes everything this run made that is still there (end of run, Ctrl-C). */
  releaseRun(runId: string): Promise<void>;
  close(): Promise<void>;
}

/** A refusal by the Kubernetes API or an l7mp proxy, worded for the user with what to do. */
export class MeshError extends Error {
  constructor(message: string, readonly status: number | null = null, options?: ErrorOptions) {
    super(message, options);
  }
}
