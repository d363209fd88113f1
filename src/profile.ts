import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './paths.js';

/** How a codec's frames are produced; each value has an encoder in src/media/codec.ts. */
export type MediaKind = 'g711-ulaw' | 'g711-alaw' | 'opus';

export interface EmodelImpairment {
  /** Equipment impairment factor Ie (ITU-T G.113). */
  ie: number;
  /** Packet-loss robustness factor Bpl (ITU-T G.113). */
  bpl: number;
  source: string;
}

/** One codec as leg A offers it or leg B answers it (profiles/codecs.json). */
export interface CodecProfile {
  /** Key in codecs.json and on the command line, lower case: pcmu, pcma, opus. */
  name: string;
  /** The encoding name in SDP rtpmap and in rtpengine's codec flags. */
  encoding: string;
  payloadType: number;
  clockRate: number;
  channels: number;
  /** Sample rate of the PCM we generate and decode (may differ from the RTP clock for some codecs). */
  sampleRate: number;
  ptimeMs: number;
  fmtp: string | null;
  bitrate: number;
  media: MediaKind;
  emodel: EmodelImpairment;
}

/** A codec pair: what leg A (the offerer) sends and what leg B (the answerer) sends. */
export interface CodecPair {
  a: CodecProfile;
  b: CodecProfile;
  /** True when rtpengine has to transcode between the legs. */
  transcoded: boolean;
}

let cachedCodecs: Map<string, CodecProfile> | undefined;

export function loadCodecs(): Map<string, CodecProfile> {
  if (cachedCodecs) return cachedCodecs;
  const file = join(packageRoot(), 'profiles', 'codecs.json');
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { codecs: Record<string, Omit<CodecProfile, 'name'>> };
  cachedCodecs = new Map(Object.entries(parsed.codecs).map(([name, c]) => [name, { ...c, name }]));
  return cachedCodecs;
}

export function codecNames(): string[] {
  return [...loadCodecs().keys()];
}

export function codecByName(name: string): CodecProfile | undefined {
  return loadCodecs().get(name.toLowerCase());
}

/** Resolve "opus:pcmu" (leg A : leg B). Returns undefined for an unknown codec; plan.ts words the error. */
export function codecPair(aName: string, bName: string): CodecPair | undefined {
  const a = codecByName(aName);
  const b = codecByName(bName);
  if (!a || !b) return undefined;
  return { a, b, transcoded: a.encoding !== b.encoding };
}
