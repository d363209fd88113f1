import type { CodecPair } from './profile.js';

/** on: clients send RTCP SR/RR; off: no RTCP at all; generate: clients send RTCP and rtpengine makes its own. */
export type RtcpMode = 'on' | 'off' | 'generate';

export interface Endpoint {
  host: string;
  port: number;
}

export interface PortRange {
  /** First port, even. */
  min: number;
  /** Last port, inclusive. */
  max: number;
}

/** Service-level objectives: any one missed makes the run exit 1 (k6 thresholds, as flags). */
export interface Slo {
  /** Packet loss over all streams, percent. */
  maxLossPct?: number;
  /** p99 of RFC 3550 jitter, ms. */
  maxJitterMs?: number;
  /** p99 one-way latency, ms. */
  maxLatencyMs?: number;
  /** p99 call setup (offer + answer), ms. */
  maxSetupMs?: number;
  /** p50 (median) E-model MOS must be at least this. */
  minMos?: number;
  /** Failed calls, percent of attempted. */
  maxFailedPct?: number;
}

/** Where rtpengine is. */
export type Target =
  /** rtp-bench starts `workers` rtpengine daemons of its own on loopback and stops them at the end. */
  | {
      kind: 'embedded';
      workers: number;
      binary: string;
      /** Media ports of all workers together, split evenly between them; null: sized for the calls. */
      portRange: PortRange | null;
      logLevel: number;
    }
  /** Already-running rtpengine instances: the ng address of each. */
  | { kind: 'remote'; endpoints: Endpoint[] }
  /** No rtpengine: each leg sends straight to the other leg (generator self-calibration). */
  | { kind: 'direct' };

/** Everything a run needs, validated: the coordinator trusts it. Produced by plan.ts from the command line. */
export interface RunPlan {
  /** Target concurrent calls. */
  calls: number;
  /** New calls per second while ramping up. */
  rampPerSec: number;
  /** How long all calls stay up after the last one arrived, ms. */
  holdMs: number;
  codecPair: CodecPair;
  target: Target;
  /** Media worker threads (piscina). */
  threads: number;
  /** Address the clients bind and put in their SDP. */
  localIp: string;
  /** Client ports: each call takes 4 (two legs, RTP even and RTCP = RTP + 1). */
  localPorts: PortRange;
  rtcp: RtcpMode;
  /** Results file; null: results/<run id>.json under the package root. */
  output: string | null;
  /** Print the summary as JSON on stdout instead of the table. */
  json: boolean;
  /** Live progress on stderr: auto = only when stderr is a terminal. */
  progress: 'auto' | 'on' | 'off';
  slo: Slo;
  /** Overall timeout of one ng request, including retransmissions, ms. */
  ngTimeoutMs: number;
  /** Most ng requests in flight at once (calls being set up or torn down). */
  ngInFlight: number;
  /** Share of opus-receiving streams whose audio is decoded and checked for the far tone, 0..1 (G.711 always). */
  audioCheckShare: number;
}
