/**
 * What the rest of rtp-bench sees of a run's faults: the record of each fault as it was made (the results'
 * summary.faults), each call's failover figures (CallRecord.failover), and what a call asks while it runs
 * (CallFaults, implemented by src/faults/runtime.ts). Types only.
 */
import type { FaultKind } from './spec.js';
import type { Worker } from '../stack/stack.js';
import type { CallMediaResult } from '../media/task.js';

/** One fault as it was made. */
export interface FaultRecord {
  kind: FaultKind;
  /** As typed on the command line (--fault). */
  spec: string;
  /** What it hit: "worker 1 (127.0.5.1:40123, pid 4242)", "media path (client namespace, ports 20000-20099)". */
  target: string;
  /** When it was made, epoch ms (for a kill: the SIGKILL); null when it never was (see note). */
  atMs: number | null;
  /** The same, seconds since the run's start (the first call's due time, t = 0 of the timeline). */
  atT: number | null;
  /** How long it lasted (pause, loss, restart until the new worker answered), ms; null for a kill. */
  durationMs: number | null;
  /** Made as planned (and, for pause and loss, undone). */
  done: boolean;
  /** What happened, in words: the survivor and the re-point time, the new PID, why it was not made. */
  note: string;
  /** kill-worker with --redis: the worker that took the calls and how the media was moved there; null otherwise. */
  failover: {
    survivor: string;
    /** From the kill to the last media thread having re-pointed its legs, ms. */
    repointMs: number;
    /** Legs re-pointed (two per call whose media ran). */
    legs: number;
  } | null;
  /**
   * kill-worker with --mesh kubernetes: the pod deleted and its replacement, as the API showed them. Not in
   * `failover`, whose fields say how rtp-bench moved the media: here the StatefulSet and the l7mp operator move it.
   * Absent in results of older versions and for other faults.
   */
  replacement?: PodReplacementRecord | null;
}

/** A worker pod deleted and the StatefulSet's new pod of the same name (src/faults/pod-replacement.ts). Epoch ms. */
export interface PodReplacementRecord {
  /** namespace/name */
  pod: string;
  oldUid: string;
  /** When the DELETE was answered (FaultRecord.atMs: when it was sent). */
  deleteAnsweredMs: number;
  /** The old pod first seen gone (404, or its name held by another uid); null: never. */
  goneMs: number | null;
  /** The replacement's uid, once seen; null: none seen. */
  newUid: string | null;
  /** The replacement first seen Running and Ready with an address; null: not before the run ended. */
  readyMs: number | null;
  podIP: string | null;
  /**
   * The gap boundary: the send time of the last read that found the replacement not Ready, never before goneMs. A
   * call's media came back only if it arrived after this. Null: no replacement was Ready, every call counts as lost.
   */
  boundaryMs: number | null;
}

/** Per direction: a = what leg A sent, as leg B received it (a->b); b = the other way (b->a). */
export interface PerDirection<T> {
  a: T;
  b: T;
}

/** How one call's media fared through a fault on its worker (CallRecord.failover). */
export interface CallFailover {
  /** The fault, as typed. */
  fault: string;
  /** The worker it hit, and the one carrying the call after it (the same one after a pause or a restart); null: none. */
  worker: string;
  survivor: string | null;
  /** From the last packet received before the fault to the first after it, ms; null where media did not come back. */
  gapMs: PerDirection<number | null>;
  /** Audio time lost with the gap (FaultGap.lostAudioMs: not packets, so 60 ms packets lose nothing), ms. */
  lostAudioMs: PerDirection<number | null>;
  /** Media came back in both directions. */
  resumed: boolean;
  /** The call's final ng delete succeeded on the worker that had it (the survivor after a failover). */
  deleted: boolean;
  /** From the fault to media flowing again both ways, ms; null unless resumed. */
  recoverMs: number | null;
}

/** What a call asks of the run's faults (src/call.ts). */
export interface CallFaults {
  /** Workers a fault has taken down (dead, paused, restarting): no new calls go there while another is up. */
  readonly unavailable: ReadonlySet<Worker>;
  /** When the media threads start watching a call on `worker` for a fault's gap (epoch ms): the next fault planned on it. */
  watchFrom(worker: Worker): number | null;
  /** Where a call placed on `worker` sends its later ng commands: the survivor once it took the calls over. */
  route(worker: Worker): Worker;
  /** The call's failover figures once its media and delete are done; null when no fault hit its worker while its media ran. */
  failover(worker: Worker, media: CallMediaResult, deleted: boolean): CallFailover | null;
}
