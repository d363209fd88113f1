/**
 * The life of one call, each step timed: ports, offer (leg A's SDP), answer (leg B's SDP), media in a worker
 * thread until the run's end time, delete (keeping rtpengine's final stats). A failure at any step is recorded with
 * its cause and stage; whatever was set up is torn down; the run goes on.
 */
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { buildAudioSdp, findCodec, parseAudioSdp, type AudioSdp, type SdpCodec } from './sdp.js';
import { NgError, NgTimeoutError, NgUnreachableError, type AnswerParams, type OfferParams, type RequestTiming } from './ng/client.js';
import { toneFrequencyHz } from './media/tone.js';
import { callIdOf } from './call-id.js';
import { streamRecord, type StreamRecord } from './stats/stream.js';
import type { MetricSet } from './stats/histogram.js';
import type { CodecProfile } from './profile.js';
import type { RunPlan } from './run-plan.js';
import type { CallPorts, PortPool } from './ports.js';
import type { MediaPool } from './media-pool.js';
import type { Stack, Worker } from './stack/stack.js';
import type { CallMediaResult, CallMediaTask, LegMedia } from './media/task.js';
import { LOCAL_PORT_IN_USE } from './media/task.js';
import { summarizeDeleteStats, type RtpengineCallStats } from './stats/rtpengine-stats.js';
import { MeshError, type MeshProvisioner, type ProvisionTiming } from './mesh/provisioner.js';
import type { MeshCall, MeshWorker } from './mesh/model.js';
import type { CallFailover, CallFaults } from './faults/model.js';

export type CallStage = 'ports' | 'offer' | 'answer' | 'mesh' | 'media' | 'delete';

export interface CallFailure {
  stage: CallStage;
  /** Short, stable, countable: "Ran out of ports", "ng timeout", "no media b->a". */
  cause: string;
  message: string;
}

/**
 * ok: set up, media both ways, deleted. failed: something the system under test (or the generator: see the cause)
 * did wrong. interrupted: the run was stopped (Ctrl-C) while the call was fine; its figures up to then stand, and it
 * is counted apart, not as a failure.
 */
export type CallStatus = 'ok' | 'failed' | 'interrupted';

export interface CallRecord {
  index: number;
  callId: string;
  worker: string | null;
  status: CallStatus;
  failure: CallFailure | null;
  /** Epoch ms at which the call was due to arrive, and how late it actually started. */
  dueEpochMs: number;
  startLagMs: number;
  /** ng round trips, from the moment the request left (rtp-bench's own queue excluded: ngQueueMs). */
  offerMs: number | null;
  answerMs: number | null;
  /** Offer, answer and mesh provisioning, without the time spent waiting for rtp-bench's own limits. */
  setupMs: number | null;
  /** Time this call's ng requests waited in rtp-bench's own queue (more requests than --ng-in-flight), ms. */
  ngQueueMs: number;
  firstMediaMs: { a: number | null; b: number | null };
  mediaMs: number | null;
  ports: { a: number; b: number } | null;
  streams: StreamRecord[];
  rtcp: { a: CallMediaResult['legs'][0]['rtcp']; b: CallMediaResult['legs'][1]['rtcp'] } | null;
  /** From rtpengine's delete reply. */
  rtpengine: RtpengineCallStats | null;
  /** The call's l7mp objects: how long they took and what they cost; null without a mesh. */
  mesh: (ProvisionTiming & {
    objects: number;
    requests: number;
    releaseRequests: number | null;
    /** From the start of provisioning until media had arrived on both legs (the call's start phase excluded). */
    firstMediaMs: number | null;
  }) | null;
  /** Time the media thread took to start the call's media after setup (opening sockets, the thread being busy). */
  mediaStartWaitMs: number | null;
  deleteMs: number | null;
  deleteWarning: string | null;
  /** A fault hit this call's worker while its media ran (--fault): how its media fared (src/faults); null: none did. */
  failover: CallFailover | null;
}

export interface CallContext {
  plan: RunPlan;
  runId: string;
  stack: Stack | null;
  pool: MediaPool;
  ports: PortPool;
  /** Epoch ms at which every call's media stops. */
  endAtEpochMs: number;
  stopping: () => boolean;
  /** The run's histograms: each call's per-packet histograms are merged in as it ends. */
  metrics: MetricSet;
  /** The mesh the media goes through, or null (straight to rtpengine). */
  mesh: CallMesh | null;
  /** The I/O layers the media threads reported (one per thread kind; normally one). */
  ioSeen: Set<string>;
  /** The media threads' scheduling as they reported it (CallMediaResult.priority). */
  prioritySeen: Set<string>;
  /** Told as soon as a call is set up (before its media), for a capacity step's setup figures; optional. */
  onEstablished?: (record: CallRecord) => void;
  /** The run's faults (--fault): which workers take calls, where a call's later ng commands go; absent: none. */
  faults?: CallFaults;
}

export interface CallMesh {
  provisioner: MeshProvisioner;
  /** Where clients send media: the ingress gateway (rtpengine's SDP names its own loopback behind the sidecar). */
  mediaAddress: string;
}

/** Calls shorter than this would measure nothing (a late setup near the end of the run still gets this much). */
const MIN_MEDIA_MS = 1000;
const RTCP_INTERVAL_MS = 5000;
const DRAIN_MS = 250;

/** `endAtEpochMs`: when this call's media stops (a churn call's own end); the run's common end when not given. */
export async function placeCall(ctx: CallContext, index: number, dueEpochMs: number, endAtEpochMs: number = ctx.endAtEpochMs): Promise<CallRecord> {
  const { plan } = ctx;
  const startEpoch = epochNow();
  const record: CallRecord = {
    index,
    callId: callIdOf(ctx.runId, index),
    worker: null,
    status: 'failed',
    failure: null,
    dueEpochMs,
    startLagMs: Math.max(0, startEpoch - dueEpochMs),
    offerMs: null,
    answerMs: null,
    setupMs: null,
    ngQueueMs: 0,
    mediaStartWaitMs: null,
    firstMediaMs: { a: null, b: null },
    mediaMs: null,
    ports: null,
    streams: [],
    rtcp: null,
    rtpengine: null,
    deleteMs: null,
    deleteWarning: null,
    mesh: null,
    failover: null,
  };
  const ports = ctx.ports.take();
  if (ports === null) {
    record.failure = { stage: 'ports', cause: 'local ports exhausted', message: 'no free client ports left (4 per call): widen --local-ports' };
    return record;
  }
  record.ports = { a: ports.aRtp, b: ports.bRtp };
  const worker = ctx.stack?.choose(ctx.faults?.unavailable) ?? null;
  if (worker) {
    worker.activeCalls++;
    record.worker = worker.name;
  }
  // Where the setup got to: which stage a failure belongs to, and whether rtpengine holds the call (then it must be
  // deleted whatever happens next).
  const progress: SetupProgress = { stage: 'offer', offered: false };
  let meshCall: MeshCall | null = null;
  let media: CallMediaResult | null = null;
  try {
    const legs = legPlans(plan, index, ports);
    let establishedEpoch = epochNow();
    let provisionStartEpoch = Number.NaN;
    if (worker !== null) {
      try {
        const t0 = performance.now();
        await signal(ctx, worker, record, legs, progress);
        if (ctx.mesh !== null && worker.mesh !== null) {
          progress.stage = 'mesh';
          meshCall = meshCallOf(ctx, record.callId, worker.mesh, legs);
          provisionStartEpoch = epochNow();
          const cost = await ctx.mesh.provisioner.provision(meshCall);
          record.mesh = { ...cost, releaseRequests: null, firstMediaMs: null };
          // rtpengine's SDP says where it listens behind the sidecar; clients reach that port at the ingress.
          legs.a.media.remoteAddress = ctx.mesh.mediaAddress;
          legs.b.media.remoteAddress = ctx.mesh.mediaAddress;
        }
        const t1 = performance.now();
        record.setupMs = t1 - t0 - record.ngQueueMs - (record.mesh?.throttledMs ?? 0);
        establishedEpoch = performance.timeOrigin + t1;
        ctx.onEstablished?.(record);
      } catch (err) {
        record.failure = failureOf(progress.stage, err);
        return record;
      }
    }
    if (ctx.stopping()) {
      record.status = 'interrupted';
      record.failure = { stage: 'media', cause: 'interrupted', message: 'the run was stopped before this call carried media' };
      return record;
    }
    const task: CallMediaTask = {
      callId: record.callId,
      callIndex: index,
      localIp: plan.localIp,
      legs: [legs.a.media, legs.b.media],
      endAtEpochMs: Math.max(endAtEpochMs, establishedEpoch + MIN_MEDIA_MS),
      rtcp: plan.rtcp,
      rtcpIntervalMs: RTCP_INTERVAL_MS,
      drainMs: DRAIN_MS,
      faultWatchFromEpochMs: worker === null ? null : (ctx.faults?.watchFrom(worker) ?? null),
    };
    let result: CallMediaResult;
    try {
      result = await ctx.pool.run(task);
    } catch (err) {
      // The thread itself failed (not the call's sockets, which come back as an error result): this call fails
      // alone, with the cause, and the run goes on.
      record.failure = { stage: 'media', cause: 'media thread error', message: (err as Error).message };
      return record;
    }
    // Before anything else: the result may carry other calls' per-packet values (see CallMediaResult.histograms).
    ctx.metrics.merge(result.histograms, result.outliers);
    ctx.ioSeen.add(result.io);
    ctx.prioritySeen.add(result.priority);
    if (result.error !== null) {
      record.failure = { stage: 'media', ...result.error };
      return record;
    }
    media = result;
    record.mediaMs = result.mediaEndEpochMs - result.mediaStartEpochMs;
    const [a, b] = result.legs;
    // From when the call's first frame was due in the media thread (its sockets open, its start phase passed), so
    // neither the thread's own delay in starting it nor the phase counts as the system's.
    const mediaDue = result.mediaStartEpochMs;
    record.mediaStartWaitMs = Math.max(0, mediaDue - result.phaseMs - establishedEpoch);
    record.firstMediaMs = {
      a: a.received.firstPacketEpochMs === null ? null : a.received.firstPacketEpochMs - mediaDue,
      b: b.received.firstPacketEpochMs === null ? null : b.received.firstPacketEpochMs - mediaDue,
    };
    if (record.mesh !== null && a.received.firstPacketEpochMs !== null && b.received.firstPacketEpochMs !== null) {
      // Kubernetes cannot observe readiness (readyMs null): this is the figure that shows when its mesh carried media.
      const bothFlowing = Math.max(a.received.firstPacketEpochMs, b.received.firstPacketEpochMs);
      record.mesh.firstMediaMs = bothFlowing - provisionStartEpoch - record.mesh.throttledMs - record.mediaStartWaitMs - result.phaseMs;
    }
    const transcoded = worker !== null && plan.codecPair.transcoded;
    record.streams = [
      streamRecord(a, b, transcoded, legs.a.media.send.codec, legs.b.media.receive.codec),
      streamRecord(b, a, transcoded, legs.b.media.send.codec, legs.a.media.receive.codec),
    ];
    record.rtcp = { a: a.rtcp, b: b.rtcp };
    const silent = record.streams.find((s) => s.received === 0 && s.sent > 0);
    if (silent) {
      record.failure = { stage: 'media', cause: `no media ${silent.direction}`, message: `leg ${silent.direction.slice(-1)} received none of the ${silent.sent} packets sent to it` };
    } else if (result.stoppedEarly) {
      record.status = 'interrupted';
      record.failure = { stage: 'media', cause: 'interrupted', message: 'the run was stopped while this call was up' };
    } else {
      record.status = 'ok';
    }
    return record;
  } finally {
    // After a failover the call is the survivor's: its delete goes there (never while the first worker lives).
    if (worker !== null && progress.offered) await deleteCall(ctx.faults?.route(worker) ?? worker, record);
    // After rtpengine let go of the call; a refused provision may have left some objects, so release anyway.
    if (meshCall !== null && ctx.mesh !== null) await releaseMesh(ctx.mesh, meshCall, record);
    // Counted where the call is now: a failover moved the dead worker's count to the survivor.
    if (worker !== null) (ctx.faults?.route(worker) ?? worker).activeCalls--;
    if (worker !== null && media !== null) noteFailover(ctx, record, worker, media);
    // Ports someone else bound since the run started would fail every call that took them again.
    if (record.failure?.cause === LOCAL_PORT_IN_USE) ctx.ports.retire(ports);
    else ctx.ports.release(ports);
  }
}

/**
 * A fault on the call's worker while its media ran: its figures, and a call whose media did not come back fails
 * (a call that survived stays ok, its gap measured).
 */
function noteFailover(ctx: CallContext, record: CallRecord, worker: Worker, media: CallMediaResult): void {
  // rtpengine answers ok, with a warning, for a call it does not know (a worker restarted without its calls).
  const deleted = record.deleteMs !== null && !/not found/i.test(record.deleteWarning ?? '');
  record.failover = ctx.faults?.failover(worker, media, deleted) ?? null;
  const lost = record.failover;
  if (lost === null || lost.resumed || record.status === 'interrupted') return;
  record.status = 'failed';
  // The media is what was lost; a failed delete of the same call (a dead worker) stays in deleteWarning.
  record.failure = {
    stage: 'media',
    cause: `media lost after ${lost.fault.split('=')[0]}`,
    message: `media did not come back after ${lost.fault} on ${lost.worker}${lost.survivor === null ? ' (no survivor took its calls: --redis lets one)' : ''}`,
  };
}

interface SetupProgress {
  stage: CallStage;
  offered: boolean;
}

/** Offer with leg A's SDP, answer with leg B's; each reply tells the other leg where to send. */
async function signal(ctx: CallContext, worker: Worker, record: CallRecord, legs: { a: LegPlan; b: LegPlan }, progress: SetupProgress): Promise<void> {
  const { plan } = ctx;
  const offerTiming: RequestTiming = { queuedMs: 0, roundTripMs: Number.NaN };
  try {
    const offer = await worker.ng.offer(offerParams(plan, record.callId, legs.a), offerTiming);
    progress.offered = true;
    record.offerMs = offerTiming.roundTripMs;
    // Leg B answers with the payload type rtpengine's offer gave its codec, and uses it both ways.
    applyRemote(legs.b, readReplySdp(offer.sdp, plan.codecPair.b, 'offer'));
  } finally {
    record.ngQueueMs += offerTiming.queuedMs;
  }
  progress.stage = 'answer';
  const answerTiming: RequestTiming = { queuedMs: 0, roundTripMs: Number.NaN };
  try {
    const answer = await worker.ng.answer(answerParams(plan, record.callId, legs.b), answerTiming);
    record.answerMs = answerTiming.roundTripMs;
    applyRemote(legs.a, readReplySdp(answer.sdp, plan.codecPair.a, 'answer'));
  } finally {
    record.ngQueueMs += answerTiming.queuedMs;
  }
}

/** The call's streams as the mesh sees them: each leg's rtpengine ports and where the client really is. */
function meshCallOf(ctx: CallContext, callId: string, worker: MeshWorker, legs: { a: LegPlan; b: LegPlan }): MeshCall {
  const streams = (['a', 'b'] as const).flatMap((leg) => {
    const m = legs[leg].media;
    return [
      { leg, tag: tagOf(callId, leg), kind: 'rtp' as const, rtpenginePort: m.remoteRtpPort, clientAddress: ctx.plan.localIp, clientPort: m.rtpPort },
      { leg, tag: tagOf(callId, leg), kind: 'rtcp' as const, rtpenginePort: m.remoteRtcpPort, clientAddress: ctx.plan.localIp, clientPort: m.rtpPort + 1 },
    ];
  });
  return { runId: ctx.runId, callId, worker, streams };
}

async function releaseMesh(mesh: CallMesh, call: MeshCall, record: CallRecord): Promise<void> {
  try {
    const cost = await mesh.provisioner.release(call);
    if (record.mesh !== null) record.mesh.releaseRequests = cost.requests;
  } catch (err) {
    // The run's final releaseRun() retries; the call's media figures stand.
    record.deleteWarning = `${record.deleteWarning ? `${record.deleteWarning}; ` : ''}mesh release failed: ${(err as Error).message}`;
  }
}

async function deleteCall(worker: Worker, record: CallRecord): Promise<void> {
  const timing: RequestTiming = { queuedMs: 0, roundTripMs: Number.NaN };
  try {
    // With the from-tag, the reply carries the call's final statistics; without it, none.
    const reply = await worker.ng.delete({ callId: record.callId, fromTag: tagOf(record.callId, 'a'), deleteDelay: 0 }, timing);
    record.deleteMs = timing.roundTripMs;
    record.deleteWarning = reply.warning;
    record.rtpengine = summarizeDeleteStats(reply);
  } catch (err) {
    // The media numbers stand; a call rtpengine could not delete is still reported, with why.
    record.deleteWarning = `delete failed: ${(err as Error).message}`;
    if (record.failure === null) record.failure = failureOf('delete', err);
    record.status = 'failed';
  } finally {
    record.ngQueueMs += timing.queuedMs;
  }
}

export interface LegPlan {
  media: LegMedia;
  sdpCodec: SdpCodec;
}

export function legPlans(plan: RunPlan, index: number, ports: CallPorts): { a: LegPlan; b: LegPlan } {
  const direct = plan.target.kind === 'direct';
  const { a: codecA, b: codecB } = plan.codecPair;
  // RFC 3550 wants SSRC, first sequence number and first timestamp random: one fill gives all six.
  const random = randomFillSync(new Uint32Array(6));
  const toneA = toneFrequencyHz(index, 'a');
  const toneB = toneFrequencyHz(index, 'b');
  const make = (leg: 'a' | 'b', own: CodecProfile, far: CodecProfile, ownTone: number, farTone: number, rtpPort: number, farPort: number): LegPlan => {
    const r = leg === 'a' ? 0 : 3;
    // Through rtpengine each leg receives its own codec (transcoded if need be); in direct mode, the far leg's.
    const receiveCodec = direct ? far : own;
    return {
      sdpCodec: { payloadType: own.payloadType, encoding: own.encoding, clockRate: own.clockRate, channels: own.channels, fmtp: own.fmtp },
      media: {
        leg,
        rtpPort,
        // A leg starts late by the other leg's head start.
        startDelayMs: leg === 'a' ? plan.headStartMs.b : plan.headStartMs.a,
        // Direct mode sends straight to the other leg; otherwise applyRemote() fills in rtpengine's ports.
        remoteAddress: plan.localIp,
        remoteRtpPort: farPort,
        remoteRtcpPort: farPort + 1,
        send: { codec: own, payloadType: own.payloadType, toneHz: ownTone, ssrc: random[r]!, firstSeq: random[r + 1]! & 0xffff, firstTimestamp: random[r + 2]! },
        receive: {
          codec: receiveCodec,
          // Until an SDP says otherwise (applyRemote): what our own SDP offers, or in direct mode the far leg's.
          payloadType: receiveCodec.payloadType,
          toneHz: farTone,
          checkAudio: receiveCodec.media !== 'opus' || sampled(index, plan.audioCheckShare),
          transcoded: !direct && plan.codecPair.transcoded,
        },
      },
    };
  };
  return {
    a: make('a', codecA, codecB, toneA, toneB, ports.aRtp, ports.bRtp),
    b: make('b', codecB, codecA, toneB, toneA, ports.bRtp, ports.aRtp),
  };
}

/** Spreads a share of calls evenly over the run (call i is picked when i * share crosses an integer). */
function sampled(index: number, share: number): boolean {
  return Math.floor((index + 1) * share) > Math.floor(index * share);
}

function sdpFor(plan: RunPlan, leg: LegPlan, callId: string): string {
  return buildAudioSdp({
    sessionId: `${callId}-${leg.media.leg}`,
    // Behind an l7mp sidecar, rtpengine sees every client as 127.0.0.1:<client port> (the worker rule binds there).
    address: plan.mesh === null ? plan.localIp : '127.0.0.1',
    port: leg.media.rtpPort,
    rtcpPort: leg.media.rtpPort + 1,
    codecs: [leg.sdpCodec],
    ptimeMs: leg.media.send.codec.ptimeMs,
  });
}

/** Common to offer and answer: plain RTP/AVP with our addresses, no ICE, RTCP as the plan says. */
function commonParams(plan: RunPlan): Pick<OfferParams, 'ice' | 'replace' | 'generateRtcp'> {
  return { ice: 'remove', replace: ['origin', 'session connection'], generateRtcp: plan.rtcp === 'generate' };
}

export function offerParams(plan: RunPlan, callId: string, a: LegPlan): OfferParams {
  const { a: codecA, b: codecB, transcoded } = plan.codecPair;
  const params: OfferParams = { callId, fromTag: tagOf(callId, 'a'), sdp: sdpFor(plan, a, callId), label: 'caller', ...commonParams(plan) };
  if (transcoded) {
    // Leg A offers only its codec; masking it and adding B's forces rtpengine to transcode
    // (docs/rtpengine-behaviour.md#forcing-transcoding).
    params.codec = { mask: [codecA.encoding], transcode: [codecB.encoding] };
    const set = [codecA, codecB].filter((c) => c.media === 'opus').map((c) => `${c.encoding}/${c.clockRate}/${c.channels}/${c.bitrate}`);
    if (set.length > 0) params.codec.set = set;
  }
  return params;
}

export function answerParams(plan: RunPlan, callId: string, b: LegPlan): AnswerParams {
  return { callId, fromTag: tagOf(callId, 'a'), toTag: tagOf(callId, 'b'), sdp: sdpFor(plan, b, callId), label: 'callee', ...commonParams(plan) };
}

export function tagOf(callId: string, leg: 'a' | 'b'): string {
  return `${leg}-${callId}`;
}

/**
 * Reads rtpengine's SDP for one leg: where that leg sends, and the payload type rtpengine gave the leg's codec.
 * Without the codec the call cannot carry its media: that is a codec mismatch, said in words.
 */
function readReplySdp(sdp: string, codec: CodecProfile, command: 'offer' | 'answer'): { sdp: AudioSdp; payloadType: number } {
  const parsed = parseAudioSdp(sdp);
  const found = findCodec(parsed.codecs, codec);
  if (found === undefined) {
    const offered = parsed.codecs.map((c) => `${c.encoding}/${c.clockRate}${c.channels === undefined ? '' : `/${c.channels}`} (PT ${c.payloadType})`).join(', ') || 'none';
    const leg = command === 'offer' ? 'B (the callee)' : 'A (the caller)';
    throw new CodecMismatchError(
      `rtpengine's ${command} reply offers leg ${leg} ${offered}, not ${codec.encoding}/${codec.clockRate}: ` +
        'check that this rtpengine can transcode between the pair (rtpengine --codecs lists what it supports)',
    );
  }
  return { sdp: parsed, payloadType: found.payloadType };
}

class CodecMismatchError extends Error {}

/** Where the leg sends, and with which payload type it sends and expects to receive its codec. */
function applyRemote(leg: LegPlan, reply: { sdp: AudioSdp; payloadType: number }): void {
  leg.media.remoteAddress = reply.sdp.address;
  leg.media.remoteRtpPort = reply.sdp.port;
  leg.media.remoteRtcpPort = reply.sdp.rtcpPort;
  leg.media.send.payloadType = reply.payloadType;
  leg.media.receive.payloadType = reply.payloadType;
  leg.sdpCodec.payloadType = reply.payloadType;
}

function failureOf(stage: CallStage, err: unknown): CallFailure {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof NgError) return { stage, cause: err.reason, message };
  if (err instanceof NgTimeoutError) return { stage, cause: 'ng timeout', message };
  if (err instanceof NgUnreachableError) return { stage, cause: 'rtpengine unreachable', message };
  if (err instanceof CodecMismatchError) return { stage, cause: 'codec mismatch', message };
  if (err instanceof MeshError) return { stage, cause: err.status === null ? 'mesh error' : `mesh refused (${err.status})`, message };
  return { stage, cause: 'error', message };
}

function epochNow(): number {
  return performance.timeOrigin + performance.now();
}
