/**
 * The mesh side of one call, independent of how the objects reach the proxies (Kubernetes custom resources, or
 * straight to each l7mp proxy's REST API). Topology (docs/l7mp-behaviour.md#topology, the original suite): per leg
 * and per RTP/RTCP, the ingress gateway listens on the port rtpengine allocated for that leg, tags the client's
 * packets with the call and leg, and forwards them as JSONSocket to the worker's sidecar (19000 RTP / 19001 RTCP),
 * where a rule matching those labels sends them to rtpengine on 127.0.0.1 from 127.0.0.1:<client port>.
 */

export type MeshStreamKind = 'rtp' | 'rtcp';

/** One worker of the mesh: a pod (or, locally, a network namespace) running rtpengine behind an l7mp sidecar. */
export interface MeshWorker {
  /** Stable name: the pod name (StatefulSet) or the local worker's name. */
  name: string;
  /** Address the ingress reaches the sidecar at (pod IP, or the worker namespace's address). */
  address: string;
  /** Labels of the pod (or local worker): endpoint selectors match on these. */
  labels: Record<string, string>;
}

/** One direction-agnostic media path: one leg's RTP or RTCP through ingress and worker. */
export interface MeshStream {
  leg: 'a' | 'b';
  /** The leg's SIP tag, as in ng offer/answer (the worker rule matches on it). */
  tag: string;
  kind: MeshStreamKind;
  /** The port rtpengine allocated for this leg (from the ng reply): the ingress listens on the same port. */
  rtpenginePort: number;
  /** Where the client really is: the ingress connects its listener back to this address and port. */
  clientAddress: string;
  clientPort: number;
}

export interface MeshCall {
  runId: string;
  /** The ng call-id. */
  callId: string;
  /** The worker whose rtpengine took the offer: media must go to it, never elsewhere. */
  worker: MeshWorker;
  /** Four streams: legs a and b, RTP and RTCP each. */
  streams: MeshStream[];
}

/**
 * How the objects are built. Defaults reproduce the original suite's topology with its known problems fixed:
 * singleton listeners (no start-of-call loss), a short route retry timeout, the current operator's naming.
 */
export interface MeshOptions {
  namespace: string;
  /** singleton: the session exists before media (no start-of-call loss); server: the old behaviour, kept to measure it. */
  listenerMode: 'singleton' | 'server';
  /** Route retry timeout, ms: also the JSONSocket reply timeout (200-500 ms works, 2000 ms loses media:
   * docs/l7mp-behaviour.md#route-retry-timeout). */
  retryTimeoutMs: number;
  /** Names of objects on the proxies: `operator` = /<apiVersion>/<kind>/<ns>/<name> (operators since April 2021);
   * `selflink` = /apis/l7mp.io/v1/namespaces/<ns>/<plural>/<name> (older operators, the original suite). */
  naming: 'operator' | 'selflink';
  /** 8 objects per call (the Target inlined into the VirtualService route, the worker's address given statically)
   * instead of the suite's 12. */
  compact: boolean;
  /** Labels on every object, besides the run and call labels (see LABEL_RUN, LABEL_CALL). */
  labels: Record<string, string>;
  /** Selects the ingress gateway pods. */
  ingressSelector: Record<string, string>;
  /** Selects worker pods; the call's worker is pinned by adding workerPinLabel = worker.name. */
  workerSelector: Record<string, string>;
  workerPinLabel: string;
  /** The worker sidecar's JSONSocket ports and rule lists (the worker config in kubernetes/). */
  workerPorts: Record<MeshStreamKind, number>;
  workerRulelists: Record<MeshStreamKind, string>;
}

export const LABEL_RUN = 'rtp-bench.l7mp.io/run';
export const LABEL_CALL = 'rtp-bench.l7mp.io/call';

export const DEFAULT_MESH_OPTIONS: MeshOptions = {
  namespace: 'default',
  listenerMode: 'singleton',
  retryTimeoutMs: 250,
  naming: 'operator',
  compact: false,
  labels: {},
  ingressSelector: { app: 'l7mp-ingress' },
  workerSelector: { app: 'l7mp-worker' },
  workerPinLabel: 'statefulset.kubernetes.io/pod-name',
  workerPorts: { rtp: 19000, rtcp: 19001 },
  workerRulelists: { rtp: 'worker-rtp-rulelist', rtcp: 'worker-rtcp-rulelist' },
};
