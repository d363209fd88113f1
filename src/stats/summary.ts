/**
 * The run's summary: counts from the call records, distributions from the merged histograms. Per-call and
 * per-stream values (setup, loss, MOS) are recorded here, one sample each; per-packet values (latency, jitter,
 * send lateness) were recorded in the media threads and merged call by call.
 */
import type { ChurnFigures } from '../load/churn.js';
import { MetricSet, type MetricName, type Percentiles } from './histogram.js';
import type { Cost } from './cost-window.js';
import type { CallRecord } from '../call.js';
import type { Contention } from '../cpu-contention.js';
import type { WorkerFigures } from './timeline.js';
import type { FaultRecord } from '../faults/model.js';
import { failoverSummary, type FailoverSummary } from '../faults/summary.js';

export interface GeneratorHealth {
  threads: number;
  /** What the media threads moved packets with ('native io_uring', 'native epoll', 'dgram'); null if no call ran. */
  io: string | null;
  /** How the media threads were scheduled ('realtime', 'normal', 'normal (why not realtime)'); null if no call ran. */
  priority: string | null;
  /** Process CPU, percent of one core (can exceed 100 with several threads), over `costWindow`. */
  cpuPct: number;
  /** CPU microseconds per packet operation (one send or one receive of RTP), the generator's cost figure. */
  cpuUsPerPacketOp: number | null;
  /** "hold": measured while every call was up (steady state); "run": the hold was too short, whole run. */
  costWindow: 'hold' | 'run';
  sendLatenessMs: Percentiles | null;
  /** Packets the generator itself lost, by where: accounted apart, never as the system's loss. */
  drops: GeneratorDropTotals;
  /** What kept the generator from the CPU (its own cgroup's cap, other processes), over the same window. */
  contention: Contention | null;
  /** A warning: the generator was near its limits (figures still stand). */
  saturated: string | null;
  /**
   * Set when the generator, not the system under test, limited the run: it dropped packets of its own or could not
   * keep its schedule. The run's figures then do not describe the system under test, and the run exits 4.
   */
  limited: string | null;
}

export interface GeneratorDropTotals {
  sendFailed: number;
  skipped: number;
  /** null when some stream's count could not be read (dgram without /proc/net/udp). */
  receiveQueue: number | null;
  truncated: number;
}

export interface Summary {
  interrupted: boolean;
  wallMs: number;
  /** interrupted: calls that were fine until the run was stopped (Ctrl-C); not failures. */
  calls: {
    attempted: number;
    ok: number;
    failed: number;
    interrupted: number;
    failedByCause: Record<string, number>;
    /** The first failure's message per cause: what happened, in words, and what to do where there is something to do. */
    firstFailure: Record<string, string>;
  };
  /**
   * sent: packets the kernel took. missing: sent (less the transcoding tail) but never received, whoever lost them;
   * lost: of those, what the system under test (and the network) lost, i.e. missing less the generator's own
   * receive-queue drops. lossPct is lost over sent less the tail.
   */
  packets: { sent: number; received: number; missing: number; lost: number; lossPct: number; transcodingTail: number; duplicates: number; late: number; malformed: number; sequenceJumps: number; startOfCallLost: number; streamsWithStartLoss: number; wrongPayloadType: number; payloadMismatches: number };
  rtcp: { sent: number; received: number; malformed: number };
  /** ng requests rtp-bench had to send again (a request or its reply was lost): a sick control plane shows here. */
  ng: { retransmissions: number };
  /** Time calls' ng requests waited in rtp-bench's own queue (--ng-in-flight reached), per call; not in offerMs etc. */
  ngQueueMs: Percentiles | null;
  lossPct: Percentiles | null;
  jitterMs: Percentiles | null;
  transitJitterMs: Percentiles | null;
  latencyMs: Percentiles | null;
  /** Audio delay per marker found in the decoded audio (the far leg's marker send to its onset): no sequence numbers. */
  audioDelayMs: Percentiles | null;
  offerMs: Percentiles | null;
  answerMs: Percentiles | null;
  setupMs: Percentiles | null;
  firstMediaMs: Percentiles | null;
  /** From setup to the media starting in its thread: the generator's own delay, not the system's. */
  mediaStartWaitMs: Percentiles | null;
  deleteMs: Percentiles | null;
  /** The calls' l7mp objects, when a mesh carried the media. */
  mesh: MeshSummary | null;
  mos: Percentiles | null;
  rtpengineMos: Percentiles | null;
  audioCheck: { checked: number; passed: number; failed: number };
  generator: GeneratorHealth;
  /** Where rtp-bench's own limits (not the system under test) shaped a figure, in words with the flag to change. */
  toolLimits: string[];
  /** Each rtpengine worker during the hold: calls, CPU (and per call-second), memory, its own counters. */
  workers: WorkerFigures[];
  /** Churn runs (--rate): offered and carried Erlang, set-ups per second under load; null for ramp and hold. */
  churn: ChurnFigures | null;
  /** --fault: each fault as it was made (src/faults/model.ts); empty without. */
  faults: FaultRecord[];
  /** The calls a worker fault hit while their media ran: how many came back, their gaps; null: none was hit. */
  failover: FailoverSummary | null;
}

export interface MeshSummary {
  /** Per provisioned call (averages over calls: every call of a run costs the same unless one failed half-way). */
  objectsPerCall: number;
  requestsPerCall: number;
  releaseRequestsPerCall: number | null;
  acceptedMs: Percentiles | null;
  readyMs: Percentiles | null;
  /** From the start of provisioning until media arrived on both legs: the one readiness figure Kubernetes has. */
  firstMediaMs: Percentiles | null;
  /** Time calls' mesh requests waited for rtp-bench's own rate and concurrency limits (not in acceptedMs). */
  throttledMs: Percentiles | null;
}

export interface RunMeasure {
  wallMs: number;
  ngRetransmissions: number;
  cost: Cost;
  costWindow: 'hold' | 'run';
  /** Over the same window as cost; null when it could not be read. */
  contention: Contention | null;
  threads: number;
  io: string | null;
  priority: string | null;
  interrupted: boolean;
  /** An rtpengine (or mesh) runs on this machine and competes with the generator for its cores. */
  localSystemUnderTest: boolean;
  /** --ng-in-flight: ng requests beyond it wait in rtp-bench's queue. */
  ngInFlight: number;
  /** Each rtpengine worker over the same window (its CPU, memory and own counters: src/stats/timeline.ts). */
  workers: WorkerFigures[];
  /** A churn run's own figures (src/load/churn.ts); absent for ramp and hold. */
  churn?: ChurnFigures | null;
  /** The run's faults as they were made (--fault); absent: none. */
  faults?: FaultRecord[];
}

/** A wait in rtp-bench's own queues above this (p99) is worth telling the user about. */
const OWN_WAIT_NOTABLE_MS = 1;

/** Send lateness p99 above this means the pacing loop could not keep up (a healthy Node loop stays under ~2 ms). */
const LATENESS_SATURATED_MS = 5;
/**
 * Send lateness p99 of more than two frame intervals: the system under test got bursts, not paced streams, and the
 * RFC 3550 jitter (and the MOS made from it) is the generator's.
 */
const LATENESS_LIMITED_MS = 50;
/** Generator drops above this share of the packets make the run's figures the generator's, not the system's. */
const DROPS_LIMITED_SHARE = 0.001;
/** Calls whose media started this long after their setup (p99) did not get the hold they were planned to have. */
const MEDIA_START_LIMITED_MS = 200;
/** CPU per media thread (percent of a core) above which the generator itself is the bottleneck. */
const BUSY_THREAD_PCT = 80;
/** The cgroup throttled the generator this share of the window or more: a cap starved it. */
const THROTTLED_SHARE = 0.05;
/** Threads runnable but waiting this many ms per second or more (summed): other processes took the cores. */
const RUN_QUEUE_WAIT_MS_PER_S = 100;

export function summarize(records: readonly CallRecord[], metrics: MetricSet, measure: RunMeasure): Summary {
  const failedByCause: Record<string, number> = {};
  const firstFailure: Record<string, string> = {};
  const packets = { sent: 0, received: 0, missing: 0, lost: 0, lossPct: 0, transcodingTail: 0, duplicates: 0, late: 0, malformed: 0, sequenceJumps: 0, startOfCallLost: 0, streamsWithStartLoss: 0, wrongPayloadType: 0, payloadMismatches: 0 };
  const drops: GeneratorDropTotals = { sendFailed: 0, skipped: 0, receiveQueue: 0, truncated: 0 };
  const rtcp = { sent: 0, received: 0, malformed: 0 };
  const audioCheck = { checked: 0, passed: 0, failed: 0 };
  let ok = 0;
  let interrupted = 0;
  for (const call of records) {
    if (call.status === 'ok') ok++;
    else if (call.status === 'interrupted') interrupted++;
    else if (call.failure) {
      failedByCause[call.failure.cause] = (failedByCause[call.failure.cause] ?? 0) + 1;
      firstFailure[call.failure.cause] ??= call.failure.message;
    }
    record(metrics, 'ngQueueMs', call.ngQueueMs);
    record(metrics, 'offerMs', call.offerMs);
    record(metrics, 'answerMs', call.answerMs);
    record(metrics, 'setupMs', call.setupMs);
    record(metrics, 'deleteMs', call.deleteMs);
    if (call.mesh !== null) {
      record(metrics, 'meshAcceptedMs', call.mesh.acceptedMs);
      record(metrics, 'meshReadyMs', call.mesh.readyMs);
      record(metrics, 'meshFirstMediaMs', call.mesh.firstMediaMs);
      record(metrics, 'meshThrottledMs', call.mesh.throttledMs);
    }
    record(metrics, 'mediaStartWaitMs', call.mediaStartWaitMs);
    record(metrics, 'firstMediaMs', call.firstMediaMs.a);
    record(metrics, 'firstMediaMs', call.firstMediaMs.b);
    for (const s of call.streams) {
      packets.sent += s.sent;
      packets.received += s.received;
      packets.missing += s.missing;
      packets.lost += s.lost;
      drops.sendFailed += s.generatorDrops.sendFailed;
      drops.skipped += s.generatorDrops.skipped;
      drops.truncated += s.generatorDrops.truncated;
      drops.receiveQueue = drops.receiveQueue === null || s.generatorDrops.receiveQueue === null ? null : drops.receiveQueue + s.generatorDrops.receiveQueue;
      packets.transcodingTail += s.tail;
      packets.duplicates += s.duplicates;
      packets.late += s.late;
      packets.malformed += s.malformed;
      packets.sequenceJumps += s.sequenceJumps;
      packets.startOfCallLost += s.startLost;
      if (s.startLost > 0) packets.streamsWithStartLoss++;
      packets.wrongPayloadType += s.wrongPayloadType;
      packets.payloadMismatches += s.payloadMismatches ?? 0;
      if (s.sent > 0) metrics.record('lossPct', s.lossPct);
      record(metrics, 'mos', s.mos);
      if (s.audio.checked) {
        audioCheck.checked++;
        if (s.audio.passed) audioCheck.passed++;
        else audioCheck.failed++;
      }
    }
    for (const leg of call.rtcp ? [call.rtcp.a, call.rtcp.b] : []) {
      rtcp.sent += leg.sent;
      rtcp.received += leg.received;
      rtcp.malformed += leg.malformed;
    }
    for (const m of call.rtpengine?.mos ?? []) record(metrics, 'rtpengineMos', m);
  }
  const deliverable = packets.sent - packets.transcodingTail;
  packets.lossPct = deliverable > 0 ? (packets.lost * 100) / deliverable : 0;

  const lateness = metrics.summary('sendLatenessMs');
  const mediaStartWait = metrics.summary('mediaStartWaitMs');
  const verdict = judgeGenerator({
    latenessP99Ms: lateness?.p99 ?? null,
    mediaStartWaitP99Ms: mediaStartWait?.p99 ?? null,
    cpuPct: measure.cost.cpuPct,
    threads: measure.threads,
    drops,
    packetsOffered: packets.sent + drops.sendFailed + drops.skipped,
    contention: measure.contention,
    localSystemUnderTest: measure.localSystemUnderTest,
  });

  return {
    interrupted: measure.interrupted,
    wallMs: measure.wallMs,
    calls: { attempted: records.length, ok, failed: records.length - ok - interrupted, interrupted, failedByCause, firstFailure },
    packets,
    rtcp,
    ng: { retransmissions: measure.ngRetransmissions },
    ngQueueMs: metrics.summary('ngQueueMs'),
    lossPct: metrics.summary('lossPct'),
    jitterMs: metrics.summary('jitterMs'),
    transitJitterMs: metrics.summary('transitJitterMs'),
    latencyMs: metrics.summary('latencyMs'),
    audioDelayMs: metrics.summary('audioDelayMs'),
    offerMs: metrics.summary('offerMs'),
    answerMs: metrics.summary('answerMs'),
    setupMs: metrics.summary('setupMs'),
    firstMediaMs: metrics.summary('firstMediaMs'),
    mediaStartWaitMs: metrics.summary('mediaStartWaitMs'),
    deleteMs: metrics.summary('deleteMs'),
    mesh: meshSummary(records, metrics),
    mos: metrics.summary('mos'),
    rtpengineMos: metrics.summary('rtpengineMos'),
    audioCheck,
    toolLimits: toolLimits(metrics, measure.ngInFlight),
    workers: measure.workers,
    churn: measure.churn ?? null,
    faults: measure.faults ?? [],
    failover: failoverSummary(records, metrics),
    generator: {
      threads: measure.threads,
      io: measure.io,
      priority: measure.priority,
      cpuPct: measure.cost.cpuPct,
      cpuUsPerPacketOp: measure.cost.usPerPacketOp,
      costWindow: measure.costWindow,
      sendLatenessMs: lateness,
      drops,
      contention: measure.contention,
      saturated: verdict.saturated,
      limited: verdict.limited,
    },
  };
}

function record(metrics: MetricSet, name: MetricName, value: number | null): void {
  if (value !== null && Number.isFinite(value)) metrics.record(name, value);
}

function meshSummary(records: readonly CallRecord[], metrics: MetricSet): MeshSummary | null {
  const meshed = records.flatMap((c) => (c.mesh === null ? [] : [c.mesh]));
  if (meshed.length === 0) return null;
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  const released = meshed.flatMap((m) => (m.releaseRequests === null ? [] : [m.releaseRequests]));
  return {
    objectsPerCall: mean(meshed.map((m) => m.objects)),
    requestsPerCall: mean(meshed.map((m) => m.requests)),
    releaseRequestsPerCall: released.length > 0 ? mean(released) : null,
    acceptedMs: metrics.summary('meshAcceptedMs'),
    readyMs: metrics.summary('meshReadyMs'),
    firstMediaMs: metrics.summary('meshFirstMediaMs'),
    throttledMs: metrics.summary('meshThrottledMs'),
  };
}

/** Where rtp-bench's own bounds held calls back: said, so that a figure is not read as the system's when it is ours. */
function toolLimits(metrics: MetricSet, ngInFlight: number): string[] {
  const out: string[] = [];
  const ng = metrics.summary('ngQueueMs');
  if (ng !== null && ng.p99 > OWN_WAIT_NOTABLE_MS) {
    out.push(
      `ng requests waited in rtp-bench's own queue (--ng-in-flight ${ngInFlight} reached; p99 ${ng.p99.toFixed(1)} ms per call): ` +
        'offer, answer and delete times leave that wait out, but calls were set up later than planned; raise --ng-in-flight if rtpengine can take more',
    );
  }
  const mesh = metrics.summary('meshThrottledMs');
  if (mesh !== null && mesh.p99 > OWN_WAIT_NOTABLE_MS) {
    out.push(
      `mesh requests waited for rtp-bench's own rate and concurrency limits (p99 ${mesh.p99.toFixed(1)} ms per call): the mesh figures leave that wait out; ` +
        'raise --mesh-rate and --mesh-concurrency if the API server allows',
    );
  }
  return out;
}

export interface GeneratorEvidence {
  latenessP99Ms: number | null;
  /** How long calls waited for a media thread to start their media, p99, ms. */
  mediaStartWaitP99Ms: number | null;
  /** Process CPU, percent of one core. */
  cpuPct: number;
  threads: number;
  drops: GeneratorDropTotals;
  /** Packets the generator meant to send: sent + refused + skipped. */
  packetsOffered: number;
  contention: Contention | null;
  localSystemUnderTest: boolean;
}

/**
 * Whether the generator kept up, and if not, why, in words that name the bottleneck and say what to do. Pure:
 * tested on planted evidence. `limited` (the run's figures are the generator's) when it dropped more than 0.1% of
 * the packets itself or sent them more than 50 ms late at p99; `saturated` for milder signs.
 */
export function judgeGenerator(e: GeneratorEvidence): { limited: string | null; saturated: string | null } {
  const dropped = e.drops.sendFailed + e.drops.skipped + (e.drops.receiveQueue ?? 0) + e.drops.truncated;
  const dropShare = e.packetsOffered > 0 ? dropped / e.packetsOffered : 0;
  const late = e.latenessP99Ms !== null && e.latenessP99Ms > LATENESS_LIMITED_MS;
  const slowStart = e.mediaStartWaitP99Ms !== null && e.mediaStartWaitP99Ms > MEDIA_START_LIMITED_MS;
  const busyThreads = e.cpuPct > BUSY_THREAD_PCT * e.threads;
  const c = e.contention;
  const throttled = c !== null && c.throttledShare !== null && c.throttledShare >= THROTTLED_SHARE;
  const waited = c !== null && c.runQueueWaitMsPerSec !== null && c.runQueueWaitMsPerSec >= RUN_QUEUE_WAIT_MS_PER_S;

  const cause = (): string => {
    if (throttled && c !== null && c.cap !== null) {
      return `starved of CPU by a CPU cap: its cgroup ${c.cap.cgroup} allows ${formatCores(c.cap.cores)} and throttled it ${pct(c.throttledShare ?? 0)} of the time (lift the cap or give rtp-bench more CPU)`;
    }
    if (busyThreads) return `its ${e.threads} media thread(s) were busy (${e.cpuPct.toFixed(0)}% CPU): add --threads, or run it on a bigger machine`;
    if (waited) {
      const who = e.localSystemUnderTest ? 'the rtpengine (or mesh) on this machine and any other process' : 'other processes on this machine';
      return `starved of CPU: its threads waited ${(c!.runQueueWaitMsPerSec! / 1000).toFixed(2)} s per second between them for a core that ${who} used (run the generator on its own cores or machine)`;
    }
    if (c !== null && c.cap !== null) return `starved of CPU, probably by its cgroup's cap of ${formatCores(c.cap.cores)} (${c.cap.cgroup})`;
    return `starved of CPU at ${e.cpuPct.toFixed(0)}% use: something kept its threads from running (another process, a CPU cap, a stopped process)`;
  };
  const dropText = (): string => {
    const parts = [
      e.drops.skipped > 0 ? `${e.drops.skipped} frames too late to send` : '',
      e.drops.sendFailed > 0 ? `${e.drops.sendFailed} sends refused by its kernel` : '',
      (e.drops.receiveQueue ?? 0) > 0 ? `${e.drops.receiveQueue} dropped at its own full receive queues` : '',
      e.drops.truncated > 0 ? `${e.drops.truncated} cut short` : '',
    ].filter((p) => p !== '');
    return `the generator lost ${dropped} packets itself (${parts.join(', ')}; ${pct(dropShare)} of its packets), accounted apart from the system's loss`;
  };

  if (dropShare > DROPS_LIMITED_SHARE || late || slowStart) {
    const what = [
      dropShare > DROPS_LIMITED_SHARE ? dropText() : '',
      late ? `its sends were ${e.latenessP99Ms!.toFixed(0)} ms late at p99` : '',
      slowStart ? `calls waited up to ${(e.mediaStartWaitP99Ms! / 1000).toFixed(1)} s (p99) for a media thread to start their media, so the system carried less than the plan` : '',
    ].filter((p) => p !== '');
    return {
      limited: `GENERATOR-LIMITED: these figures describe rtp-bench, not the system under test. ${capitalise(what.join('; '))}: ${cause()}`,
      saturated: null,
    };
  }
  if (dropped > 0) return { limited: null, saturated: `${capitalise(dropText())}: too few to change the figures; ${cause()}` };
  if (e.latenessP99Ms !== null && e.latenessP99Ms > LATENESS_SATURATED_MS) {
    return {
      limited: null,
      saturated: `send lateness p99 ${e.latenessP99Ms.toFixed(1)} ms: ${cause()}. RFC 3550 jitter includes that lateness, transit jitter does not`,
    };
  }
  if (busyThreads) return { limited: null, saturated: `generator CPU ${e.cpuPct.toFixed(0)}% with ${e.threads} thread(s): it is near its limit` };
  return { limited: null, saturated: null };
}

function formatCores(cores: number): string {
  return cores < 1 ? `${(cores * 100).toFixed(cores < 0.1 ? 1 : 0)}% of one core` : `${cores.toFixed(2)} cores`;
}

function pct(share: number): string {
  return `${(share * 100).toFixed(share < 0.01 ? 2 : 1)}%`;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
