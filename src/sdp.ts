/**
 * The audio SDP subset rtp-bench speaks with rtpengine: one m=audio line, plain RTP/AVP, static or dynamic payload
 * types with rtpmap/fmtp, ptime, direction and a=rtcp. Anything else in a received SDP is ignored.
 */

export interface SdpCodec {
  payloadType: number;
  /** Encoding name as in a=rtpmap, e.g. "PCMU", "opus". */
  encoding: string;
  clockRate: number;
  /** Written and read only when the rtpmap carries it (e.g. opus/48000/2). */
  channels?: number;
  fmtp?: string | null;
}

export type SdpDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface AudioSdpOptions {
  /** o= sess-id, also used as its version. RFC 4566 asks for digits; rtpengine 10.5 accepts any token without spaces. */
  sessionId: string;
  /** Where this side receives: goes into o= and c=. */
  address: string;
  port: number;
  /** Written as a=rtcp when given (RTCP on another port than port + 1). */
  rtcpPort?: number;
  codecs: SdpCodec[];
  ptimeMs?: number;
  direction?: SdpDirection;
}

export interface AudioSdp {
  /** Where to send RTP: the media-level c= address, else the session-level one. */
  address: string;
  port: number;
  /** Where to send RTCP: a=rtcp if present, else the RTP address and port + 1 (the RTP port itself with rtcp-mux). */
  rtcpAddress: string;
  rtcpPort: number;
  rtcpMux: boolean;
  /** In m= line order. Static payload types without a=rtpmap carry their RFC 3551 names. */
  codecs: SdpCodec[];
  ptimeMs: number | null;
  direction: string;
  /** Transport from the m= line, e.g. "RTP/AVP". */
  protocol: string;
}

/** An SDP that lacks something rtp-bench needs to send media. */
export class SdpError extends Error {
  override readonly name = 'SdpError';
}

/** RFC 3551 table 4: audio payload types usable without a=rtpmap. */
const STATIC_AUDIO: ReadonlyMap<number, { encoding: string; clockRate: number; channels?: number }> = new Map([
  [0, { encoding: 'PCMU', clockRate: 8000 }],
  [3, { encoding: 'GSM', clockRate: 8000 }],
  [4, { encoding: 'G723', clockRate: 8000 }],
  [5, { encoding: 'DVI4', clockRate: 8000 }],
  [6, { encoding: 'DVI4', clockRate: 16000 }],
  [7, { encoding: 'LPC', clockRate: 8000 }],
  [8, { encoding: 'PCMA', clockRate: 8000 }],
  [9, { encoding: 'G722', clockRate: 8000 }],
  [10, { encoding: 'L16', clockRate: 44100, channels: 2 }],
  [11, { encoding: 'L16', clockRate: 44100 }],
  [12, { encoding: 'QCELP', clockRate: 8000 }],
  [13, { encoding: 'CN', clockRate: 8000 }],
  [14, { encoding: 'MPA', clockRate: 90000 }],
  [15, { encoding: 'G728', clockRate: 8000 }],
  [16, { encoding: 'DVI4', clockRate: 11025 }],
  [17, { encoding: 'DVI4', clockRate: 22050 }],
  [18, { encoding: 'G729', clockRate: 8000 }],
]);

const DIRECTIONS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

function addressType(address: string): 'IP4' | 'IP6' {
  return address.includes(':') ? 'IP6' : 'IP4';
}

function checkPort(what: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SdpError(`${what} ${port} is not a UDP port (1-65535)`);
}

export function buildAudioSdp(o: AudioSdpOptions): string {
  if (!/^\S+$/.test(o.sessionId)) throw new SdpError(`SDP session id ${JSON.stringify(o.sessionId)} must be non-empty without spaces`);
  if (o.address.length === 0) throw new SdpError('SDP address is empty');
  checkPort('SDP media port', o.port);
  if (o.rtcpPort !== undefined) checkPort('SDP RTCP port', o.rtcpPort);
  if (o.codecs.length === 0) throw new SdpError('an audio SDP needs at least one codec');
  const ip = addressType(o.address);
  const lines = [
    'v=0',
    `o=- ${o.sessionId} ${o.sessionId} IN ${ip} ${o.address}`,
    's=rtp-bench',
    `c=IN ${ip} ${o.address}`,
    't=0 0',
    `m=audio ${o.port} RTP/AVP ${o.codecs.map((c) => c.payloadType).join(' ')}`,
  ];
  for (const c of o.codecs) {
    if (!Number.isInteger(c.payloadType) || c.payloadType < 0 || c.payloadType > 127) {
      throw new SdpError(`payload type ${c.payloadType} of ${c.encoding} is outside 0-127`);
    }
    const channels = c.channels !== undefined && c.channels > 1 ? `/${c.channels}` : '';
    lines.push(`a=rtpmap:${c.payloadType} ${c.encoding}/${c.clockRate}${channels}`);
    if (c.fmtp) lines.push(`a=fmtp:${c.payloadType} ${c.fmtp}`);
  }
  if (o.ptimeMs !== undefined) lines.push(`a=ptime:${o.ptimeMs}`);
  if (o.rtcpPort !== undefined) lines.push(`a=rtcp:${o.rtcpPort}`);
  lines.push(`a=${o.direction ?? 'sendrecv'}`);
  return lines.join('\r\n') + '\r\n';
}

/** Reads the first m=audio section of an SDP (e.g. one rtpengine returned) into where and how to send media. */
export function parseAudioSdp(sdp: string): AudioSdp {
  const lines = sdp.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  let sessionAddress: string | null = null;
  let sessionDirection: string | null = null;
  let sessionPtime: number | null = null;
  let i = 0;
  for (; i < lines.length && !lines[i]!.startsWith('m='); i++) {
    const line = lines[i]!;
    if (line.startsWith('c=')) sessionAddress = connectionAddress(line);
    else if (line.startsWith('a=')) {
      const attr = line.slice(2);
      if (DIRECTIONS.has(attr)) sessionDirection = attr;
      else if (attr.startsWith('ptime:')) sessionPtime = ptimeOf(attr);
    }
  }
  while (i < lines.length && !lines[i]!.startsWith('m=audio ')) i++;
  const mLine = lines[i];
  if (mLine === undefined) throw new SdpError(`SDP has no m=audio line: ${summary(sdp)}`);
  const fields = mLine.slice(2).split(/\s+/);
  const portText = fields[1] ?? '';
  const protocol = fields[2] ?? '';
  const port = Number(portText.split('/')[0]);
  if (!/^\d+(\/\d+)?$/.test(portText) || port > 65535) throw new SdpError(`SDP m=audio line has no valid port: "${mLine}"`);
  if (port === 0) throw new SdpError(`SDP m=audio has port 0: the audio stream was rejected ("${mLine}")`);
  const payloadTypes = fields.slice(3).map((f) => {
    const pt = Number(f);
    if (!/^\d+$/.test(f) || pt > 127) throw new SdpError(`SDP m=audio line has an invalid payload type "${f}": "${mLine}"`);
    return pt;
  });
  if (payloadTypes.length === 0) throw new SdpError(`SDP m=audio line lists no payload types: "${mLine}"`);

  let mediaAddress: string | null = null;
  let direction: string | null = null;
  let ptimeMs: number | null = null;
  let rtcp: { port: number; address: string | null } | null = null;
  let rtcpMux = false;
  const rtpmaps = new Map<number, { encoding: string; clockRate: number; channels?: number }>();
  const fmtps = new Map<number, string>();
  for (i++; i < lines.length && !lines[i]!.startsWith('m='); i++) {
    const line = lines[i]!;
    if (line.startsWith('c=')) {
      mediaAddress = connectionAddress(line);
      continue;
    }
    if (!line.startsWith('a=')) continue;
    const attr = line.slice(2);
    if (DIRECTIONS.has(attr)) direction = attr;
    else if (attr === 'rtcp-mux') rtcpMux = true;
    else if (attr.startsWith('ptime:')) ptimeMs = ptimeOf(attr);
    else if (attr.startsWith('rtcp:')) rtcp = rtcpOf(attr);
    else if (attr.startsWith('rtpmap:')) {
      const m = /^rtpmap:(\d+)\s+([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(attr);
      if (!m) throw new SdpError(`SDP has an unreadable a=${attr}`);
      const entry: { encoding: string; clockRate: number; channels?: number } = { encoding: m[2]!, clockRate: Number(m[3]) };
      if (m[4] !== undefined) entry.channels = Number(m[4]);
      rtpmaps.set(Number(m[1]), entry);
    } else if (attr.startsWith('fmtp:')) {
      // dotAll: a lone CR or U+2028 is part of the line (only CRLF and LF end one). Without it "." stops there, the
      // value is dropped, and each blank before it is retried: n^2 steps on a long line.
      const m = /^fmtp:(\d+)\s+(.*)$/s.exec(attr);
      if (m) fmtps.set(Number(m[1]), m[2]!);
    }
  }

  const address = mediaAddress ?? sessionAddress;
  if (address === null) throw new SdpError(`SDP has no c= line, neither at session nor at media level: ${summary(sdp)}`);
  const codecs = payloadTypes.map((pt): SdpCodec => {
    const map = rtpmaps.get(pt) ?? STATIC_AUDIO.get(pt);
    if (!map) throw new SdpError(`SDP payload type ${pt} is dynamic but has no a=rtpmap line`);
    const codec: SdpCodec = { payloadType: pt, encoding: map.encoding, clockRate: map.clockRate };
    if (map.channels !== undefined) codec.channels = map.channels;
    codec.fmtp = fmtps.get(pt) ?? null;
    return codec;
  });
  return {
    address,
    port,
    rtcpAddress: rtcp?.address ?? address,
    rtcpPort: rtcp?.port ?? (rtcpMux ? port : port + 1),
    rtcpMux,
    codecs,
    ptimeMs: ptimeMs ?? sessionPtime,
    direction: direction ?? sessionDirection ?? 'sendrecv',
    protocol,
  };
}

function connectionAddress(line: string): string {
  // c=IN IP4 203.0.113.1[/ttl[/count]]
  const m = /^c=IN\s+IP[46]\s+([^/\s]+)/.exec(line);
  if (!m) throw new SdpError(`SDP has an unreadable connection line "${line}"`);
  return m[1]!;
}

function ptimeOf(attr: string): number {
  const v = Number(attr.slice('ptime:'.length));
  if (!Number.isFinite(v) || v <= 0) throw new SdpError(`SDP has an invalid a=${attr}`);
  return v;
}

function rtcpOf(attr: string): { port: number; address: string | null } {
  // a=rtcp:port [IN IP4 address] (RFC 3605)
  const m = /^rtcp:(\d+)(?:\s+IN\s+IP[46]\s+(\S+))?\s*$/.exec(attr);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw new SdpError(`SDP has an invalid a=${attr}`);
  return { port, address: m[2] ?? null };
}

function summary(sdp: string): string {
  const flat = sdp.replace(/\r?\n/g, ' | ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}...` : flat || '(empty)';
}

/**
 * The entry of a codec list that carries this codec, whatever payload type the other side chose for it: the same
 * encoding name (case-insensitive), clock rate and channel count (1 when the rtpmap leaves it out). rtpengine maps a
 * codec it adds by transcoding to a dynamic payload type of its own (opus became 96 where we offer 111).
 */
export function findCodec(codecs: readonly SdpCodec[], want: { encoding: string; clockRate: number; channels?: number }): SdpCodec | undefined {
  const name = want.encoding.toLowerCase();
  const channels = want.channels ?? 1;
  return codecs.find((c) => c.encoding.toLowerCase() === name && c.clockRate === want.clockRate && (c.channels ?? 1) === channels);
}
