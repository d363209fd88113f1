/**
 * The run's summary: counts from the call records, distributions from the merged histograms. Per-call and
 * per-stream values (setup, loss, MOS) are recorded here, one sample each; per-packet values (latency, jitter,
 * send lateness) were recorded in the media threads and merged call by call.
 */
import { MetricSet, type MetricName, type Percentiles } from './histogram.js';
import type { Cost } from './cost-window.js';
import type { CallRecord } from '../call.js';

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
  /** Set when the generator, not the system under test, probably limited the figures. */
  saturated: string | null;
}

export interface Summary {
  interrupted: boolean;
  wallMs: number;
  calls: { attempted: number; ok: number; failed: number; failedByCause: Record<string, number> };
  packets: { sent: number; received: number; lost: number; lossPct: number; transcodingTail: number; duplicates: number; late: number; malformed: number; sequenceJumps: number; startOfCallLost: number; streamsWithStartLoss: number; wrongPayloadType: number; payloadMismatches: number };
  rtcp: { sent: number; received: number; malformed: number };
  /** ng requests rtp-bench had to send again (a request or its reply was lost): a sick control plane shows here. */
  ng: { retransmissions: number };
  lossPct: Percentiles | null;
  jitterMs: Percentiles | null;
  transitJitterMs: Percentiles | null;
  latencyMs: Percentiles | null;
  offerMs: Percentiles | null;
  answerMs: Percentiles | null;
  setupMs: Percentiles | null;
  firstMediaMs: Percentiles | null;
  deleteMs: Percentiles | null;
  /** The calls' l7mp objects, when a mesh carried the media. */
  mesh: MeshSummary | null;
  mos: Percentiles | null;
  rtpengineMos: Percentiles | null;
  audioCheck: { checked: number; passed: number; failed: number };
  generator: GeneratorHealth;
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
}

export interface RunMeasure {
  wallMs: number;
  ngRetransmissions: number;
  cost: Cost;
  costWindow: 'hold' | 'run';
  threads: number;
  io: string | null;
  priority: string | null;
  interrupted: boolean;
}

/** Send lateness p99 above this means the pacing loop could not keep up (a healthy Node loop stays under ~2 ms). */
const LATENESS_SATURATED_MS = 5;
/** CPU per media thread (percent of a core) above which the generator itself is the bottleneck. */
const BUSY_THREAD_PCT = 80;

export function summarize(records: readonly CallRecord[], metrics: MetricSet, measure: RunMeasure): Summary {
  const failedByCause: Record<string, number> = {};
  const packets = { sent: 0, received: 0, lost: 0, lossPct: 0, transcodingTail: 0, duplicates: 0, late: 0, malformed: 0, sequenceJumps: 0, startOfCallLost: 0, streamsWithStartLoss: 0, wrongPayloadType: 0, payloadMismatches: 0 };
  const rtcp = { sent: 0, received: 0, malformed: 0 };
  const audioCheck = { checked: 0, passed: 0, failed: 0 };
  let ok = 0;
  for (const call of records) {
    if (call.status === 'ok') ok++;
    else if (call.failure) failedByCause[call.failure.cause] = (failedByCause[call.failure.cause] ?? 0) + 1;
    record(metrics, 'offerMs', call.offerMs);
    record(metrics, 'answerMs', call.answerMs);
    record(metrics, 'setupMs', call.setupMs);
    record(metrics, 'deleteMs', call.deleteMs);
    if (call.mesh !== null) {
      record(metrics, 'meshAcceptedMs', call.mesh.acceptedMs);
      record(metrics, 'meshReadyMs', call.mesh.readyMs);
      record(metrics, 'meshFirstMediaMs', call.mesh.firstMediaMs);
    }
    record(metrics, 'firstMediaMs', call.firstMediaMs.a);
    record(metrics, 'firstMediaMs', call.firstMediaMs.b);
    for (const s of call.streams) {
      packets.sent += s.sent;
      packets.received += s.received;
      packets.lost += s.lost;
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
  const cpuPct = measure.cost.cpuPct;
  let saturated: string | null = null;
  // Late sends have two causes that call for different remedies: the generator's own threads are full, or they
  // wait for a CPU that something else (typically the embedded rtpengine, transcoding) is using.
  const busyThreads = cpuPct > BUSY_THREAD_PCT * measure.threads;
  if (lateness !== null && lateness.p99 > LATENESS_SATURATED_MS) {
    saturated = busyThreads
      ? `send lateness p99 ${lateness.p99.toFixed(1)} ms with the generator's ${measure.threads} thread(s) at ${cpuPct.toFixed(0)}% CPU: the generator could not keep its schedule; add --threads or lower the load before blaming rtpengine`
      : `send lateness p99 ${lateness.p99.toFixed(1)} ms while the generator used only ${cpuPct.toFixed(0)}% CPU: its threads waited for a core something else was using (an embedded rtpengine shares this machine); RFC 3550 jitter includes that lateness, transit jitter does not. Run rtpengine elsewhere for clean figures`;
  } else if (busyThreads) {
    saturated = `generator CPU ${cpuPct.toFixed(0)}% with ${measure.threads} thread(s): it is near its limit`;
  }

  return {
    interrupted: measure.interrupted,
    wallMs: measure.wallMs,
    calls: { attempted: records.length, ok, failed: records.length - ok, failedByCause },
    packets,
    rtcp,
    ng: { retransmissions: measure.ngRetransmissions },
    lossPct: metrics.summary('lossPct'),
    jitterMs: metrics.summary('jitterMs'),
    transitJitterMs: metrics.summary('transitJitterMs'),
    latencyMs: metrics.summary('latencyMs'),
    offerMs: metrics.summary('offerMs'),
    answerMs: metrics.summary('answerMs'),
    setupMs: metrics.summary('setupMs'),
    firstMediaMs: metrics.summary('firstMediaMs'),
    deleteMs: metrics.summary('deleteMs'),
    mesh: meshSummary(records, metrics),
    mos: metrics.summary('mos'),
    rtpengineMos: metrics.summary('rtpengineMos'),
    audioCheck,
    generator: {
      threads: measure.threads,
      io: measure.io,
      priority: measure.priority,
      cpuPct,
      cpuUsPerPacketOp: measure.cost.usPerPacketOp,
      costWindow: measure.costWindow,
      sendLatenessMs: lateness,
      saturated,
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
  };
}
