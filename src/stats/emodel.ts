/**
 * The ITU-T G.107 (06/2015) E-model, narrowband: transmission rating R from the planning parameters, and MOS from R
 * (Annex B). Clause references below are to that edition.
 */

/**
 * Every input of the narrowband E-model. Defaults (G.107 Table 3) describe a standard ISDN-like connection; with
 * all of them R = 93.2. Loudness ratings and levels in dB, delays in ms, Ppl in percent.
 */
export interface EmodelParameters {
  /** Send loudness rating, dB. */
  SLR: number;
  /** Receive loudness rating, dB. */
  RLR: number;
  /** Sidetone masking rating, dB. */
  STMR: number;
  /** Listener sidetone rating, dB (= STMR + Dr for a consistent telephone set). */
  LSTR: number;
  /** D-value of the telephone, send side. */
  Ds: number;
  /** D-value of the telephone, receive side; enters the model only through LSTR. */
  Dr: number;
  /** Talker echo loudness rating, dB. */
  TELR: number;
  /** Weighted echo path loss, dB. */
  WEPL: number;
  /** Mean one-way delay of the echo path, ms. */
  T: number;
  /** Absolute delay in echo-free connections (mouth to ear), ms. */
  Ta: number;
  /** Round-trip delay in a 4-wire loop, ms. */
  Tr: number;
  /** Random packet-loss probability, percent. */
  Ppl: number;
  /** Burst ratio: 1 for random loss, > 1 for bursty loss. */
  BurstR: number;
  /** Circuit noise referred to the 0 dBr point, dBm0p. */
  Nc: number;
  /** Noise floor at the receive side, dBmp. */
  Nfor: number;
  /** Room noise at the send side, dB(A). */
  Ps: number;
  /** Room noise at the receive side, dB(A). */
  Pr: number;
  /** Equipment impairment factor of the codec (G.113 Appendix I). */
  Ie: number;
  /** Packet-loss robustness factor of the codec and its concealment (G.113 Appendix I). */
  Bpl: number;
  /** Advantage factor. */
  A: number;
  /** Number of quantization distortion units. */
  qdu: number;
  /**
   * Delay sensitivity (added in the 2015 edition for less interactive services). Carrier- and enterprise-grade
   * telephony must use the default, 1, which gives the classic Idd.
   */
  sT: number;
  /** Minimum perceivable delay, ms (2015 edition); default 100, below which Ta costs nothing. */
  mT: number;
}

export function defaultEmodelParameters(): EmodelParameters {
  return {
    SLR: 8,
    RLR: 2,
    STMR: 15,
    LSTR: 18,
    Ds: 3,
    Dr: 3,
    TELR: 65,
    WEPL: 110,
    T: 0,
    Ta: 0,
    Tr: 0,
    Ppl: 0,
    BurstR: 1,
    Nc: -70,
    Nfor: -64,
    Ps: 35,
    Pr: 35,
    Ie: 0,
    Bpl: 1,
    A: 0,
    qdu: 1,
    sT: 1,
    mT: 100,
  };
}

/** The intermediate terms of one computation: exposed so that tests and reports can show which impairment dominates. */
export interface EmodelTerms {
  /** Basic signal-to-noise ratio. */
  ro: number;
  /** Simultaneous impairments: iolr + ist + iq. */
  is: number;
  iolr: number;
  ist: number;
  iq: number;
  /** Delay impairments: idte + idle + idd. */
  id: number;
  /** Talker echo. */
  idte: number;
  /** Listener echo. */
  idle: number;
  /** Too-long absolute delay (mouth to ear). */
  idd: number;
  /** Effective equipment impairment: codec plus packet loss. */
  ieEff: number;
  a: number;
  /** R = ro - is - id - ieEff + a. */
  r: number;
}

const log10 = Math.log10;

/** 7.5: the codec's Ie raised by packet loss, saturating towards 95 as loss grows. */
export function effectiveEquipmentImpairment(ie: number, bpl: number, ppl: number, burstR: number): number {
  if (ppl === 0) return ie;
  return ie + ((95 - ie) * ppl) / (ppl / burstR + bpl);
}

/** 7.4 Idd, with the 2015 delay-sensitivity parameters; sT = 1, mT = 100 is the classic formula. */
function absoluteDelayImpairment(ta: number, mT: number, sT: number): number {
  if (ta <= mT) return 0;
  const x = Math.log2(ta / mT);
  const k = 6 * sT;
  return 25 * ((1 + x ** k) ** (1 / k) - 3 * (1 + (x / 3) ** k) ** (1 / k) + 2);
}

export function emodelTerms(parameters: Partial<EmodelParameters> = {}): EmodelTerms {
  const p: EmodelParameters = { ...defaultEmodelParameters(), ...parameters };
  for (const [key, value] of Object.entries(p)) {
    if (!Number.isFinite(value)) throw new RangeError(`E-model parameter ${key} is ${value}: expected a finite number`);
  }

  // 7.2: noise sources summed at the 0 dBr point.
  const olr = p.SLR + p.RLR;
  const nfo = p.Nfor + p.RLR;
  const pre = p.Pr + 10 * log10(1 + 10 ** ((10 - p.LSTR) / 10));
  const nor = p.RLR - 121 + pre + 0.008 * (pre - 35) ** 2;
  const nos = p.Ps - p.SLR - p.Ds - 100 + 0.004 * (p.Ps - olr - p.Ds - 14) ** 2;
  const no = 10 * log10(10 ** (p.Nc / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10));
  const ro = 15 - 1.5 * (p.SLR + no);

  // 7.3: loudness, sidetone and quantization.
  const xolr = olr + 0.2 * (64 + no - p.RLR);
  const iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8);
  const stmro = -10 * log10(10 ** (-p.STMR / 10) + Math.exp(-p.T / 4) * 10 ** (-p.TELR / 10));
  const ist =
    12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8) -
    28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35) -
    13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13) +
    29;
  const q = 37 - 15 * log10(p.qdu);
  const g = 1.07 + 0.258 * q + 0.0602 * q ** 2;
  const y = (ro - 100) / 15 + 46 / 8.4 - g / 9;
  const z = 46 / 30 - g / 40;
  const iq = 15 * log10(1 + 10 ** y + 10 ** z);
  const is = iolr + ist + iq;

  // 7.4: talker echo, listener echo, absolute delay.
  const roe = -1.5 * (no - p.RLR);
  // With very low sidetone the talker hears more of their own echo (TERVs).
  const terv =
    p.TELR - 40 * log10((1 + p.T / 10) / (1 + p.T / 150)) + 6 * Math.exp(-0.3 * p.T ** 2) + (p.STMR < 9 ? ist / 2 : 0);
  const re = 80 + 2.5 * (terv - 14);
  // An echo delayed by less than 1 ms is heard as sidetone, which Ist already accounts for.
  let idte = p.T < 1 ? 0 : ((roe - re) / 2 + Math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - Math.exp(-p.T));
  // With very high sidetone masking, talker echo and sidetone impairments combine (Idtes).
  if (p.STMR > 20) idte = Math.sqrt(idte ** 2 + ist ** 2);
  const rle = 10.5 * (p.WEPL + 7) * (p.Tr + 1) ** -0.25;
  const idle = (ro - rle) / 2 + Math.sqrt((ro - rle) ** 2 / 4 + 169);
  const idd = absoluteDelayImpairment(p.Ta, p.mT, p.sT);
  const id = idte + idle + idd;

  // 7.5 and 7.6.
  const ieEff = effectiveEquipmentImpairment(p.Ie, p.Bpl, p.Ppl, p.BurstR);
  const r = ro - is - id - ieEff + p.A;
  return { ro, is, iolr, ist, iq, id, idte, idle, idd, ieEff, a: p.A, r };
}

/** R = Ro - Is - Id - Ie,eff + A; parameters not given take their G.107 defaults. Not clamped: see mosFromR. */
export function rFactor(parameters: Partial<EmodelParameters> = {}): number {
  return emodelTerms(parameters).r;
}

/**
 * G.107 Annex B, MOS (conversational quality, estimated) from R, kept as printed so that it matches other E-model
 * tools: for 0 < R < ~6.5 the cubic dips slightly (by about 0.01) below 1.
 */
export function mosFromR(r: number): number {
  if (Number.isNaN(r)) return Number.NaN;
  if (r < 0) return 1;
  if (r > 100) return 4.5;
  // The Annex B polynomial dips below 1 for 0 < R < 6.5 (at R = 3 it gives 0.989): the scale's floor is 1.
  return Math.max(1, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6);
}

export interface StreamQuality {
  /** Measured one-way network latency (through rtpengine), ms. */
  oneWayLatencyMs: number;
  /** Measured interarrival jitter, ms. */
  jitterMs: number;
  /** Measured loss, percent; outside [0, 100] (duplicates can make RFC 3550 loss negative) it is clamped. */
  lossPct: number;
  /** Packetisation time of the stream's codec, ms. */
  ptimeMs: number;
  /** Equipment impairment factor of the codec (G.113 Appendix I; 0 for G.711). */
  ie: number;
  /** Packet-loss robustness factor of the codec with its concealment (G.113 Appendix I; 25.1 for G.711 with PLC). */
  bpl: number;
}

/**
 * MOS of one measured stream. The E-model wants mouth-to-ear delay, echo paths and terminal ratings; we measure only
 * the network between our two generator endpoints, so we assume a typical endpoint that we do not have:
 *
 * - mouth-to-ear delay Ta = measured one-way latency + one ptime of packetisation + a jitter buffer of
 *   max(2 x jitter, ptime) (an adaptive buffer holding about twice the jitter, never less than one frame);
 * - talker echo delay T = Ta, and the 4-wire round trip Tr = 2 x Ta (echo returns over the same path);
 * - Ppl = measured loss, taken as random (BurstR = 1);
 * - every other parameter (loudness ratings, sidetone, TELR, WEPL, noise, A) at its G.107 default.
 *
 * The result ranks streams and runs against each other; it is not a listening test.
 */
export function mosForStream(q: StreamQuality): { r: number; mos: number; mouthToEarMs: number } {
  for (const [key, value] of Object.entries(q) as [keyof StreamQuality, number][]) {
    if (!Number.isFinite(value)) throw new RangeError(`stream quality ${key} is ${value}: expected a finite number`);
  }
  if (q.oneWayLatencyMs < 0) throw new RangeError(`oneWayLatencyMs is ${q.oneWayLatencyMs}: expected >= 0`);
  if (q.jitterMs < 0) throw new RangeError(`jitterMs is ${q.jitterMs}: expected >= 0`);
  if (q.ptimeMs <= 0) throw new RangeError(`ptimeMs is ${q.ptimeMs}: expected > 0`);

  const mouthToEarMs = q.oneWayLatencyMs + q.ptimeMs + Math.max(2 * q.jitterMs, q.ptimeMs);
  const r = rFactor({
    Ta: mouthToEarMs,
    T: mouthToEarMs,
    Tr: 2 * mouthToEarMs,
    Ppl: Math.min(Math.max(q.lossPct, 0), 100),
    BurstR: 1,
    Ie: q.ie,
    Bpl: q.bpl,
  });
  return { r, mos: mosFromR(r), mouthToEarMs };
}
