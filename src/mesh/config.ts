/**
 * A mesh of running l7mp proxies, as `--mesh rest --mesh-config FILE` describes it (and as the local mesh hands it
 * to the benchmark it runs in the client namespace): where the clients send media, the ingress proxies' REST APIs,
 * and each worker with its REST API, its address for the ingress, and its rtpengine's ng address.
 *
 *   {
 *     "mediaAddress": "10.0.0.3",
 *     "ingress": [{ "name": "ingress", "restUrl": "http://10.0.0.3:1234", "address": "10.0.0.3",
 *                   "labels": { "app": "l7mp-ingress" } }],
 *     "workers": [{ "name": "w1", "restUrl": "http://10.0.0.11:1234", "address": "10.0.0.11",
 *                   "labels": { "app": "l7mp-worker" }, "ng": "10.0.0.11:22222" }]
 *   }
 */
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import type { MeshProxy } from './rest/operator.js';
import type { MeshWorker } from './model.js';
import type { Endpoint } from '../addresses.js';
import type { LocalMeshDescription } from './local/description.js';

export interface MeshConfigWorker extends MeshWorker {
  restUrl: string;
  ng: Endpoint;
}

export interface MeshConfig {
  /** Where clients send RTP and RTCP: the ingress gateway's address. */
  mediaAddress: string;
  ingress: MeshProxy[];
  workers: MeshConfigWorker[];
}

export class MeshConfigError extends Error {
  override readonly name = 'MeshConfigError';
}

/** Every proxy of the mesh, as the REST provisioner addresses them. */
export function meshProxies(config: MeshConfig): MeshProxy[] {
  return [...config.ingress, ...config.workers.map(({ name, address, restUrl, labels }) => ({ name, address, restUrl, labels }))];
}

/** Reads and checks a mesh description; every problem names the file and the field. */
export function readMeshConfig(file: string, workerPinLabel: string): MeshConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new MeshConfigError(`cannot read the mesh description ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new MeshConfigError(`${file} is not JSON: ${(err as Error).message}`);
  }
  return parseMeshConfig(json, file, workerPinLabel);
}

export function parseMeshConfig(json: unknown, where: string, workerPinLabel: string): MeshConfig {
  const fail = (path: string, problem: string): never => {
    throw new MeshConfigError(`${where}: ${path} ${problem} (see src/mesh/config.ts for the format)`);
  };
  const root = object(json, 'the description', fail);
  const mediaAddress = ipv4(root['mediaAddress'], 'mediaAddress', fail);
  const ingress = list(root['ingress'], 'ingress', fail).map((p, i) => proxy(p, `ingress[${i}]`, fail));
  const workers = list(root['workers'], 'workers', fail).map((w, i): MeshConfigWorker => {
    const path = `workers[${i}]`;
    const base = proxy(w, path, fail);
    const ng = text(object(w, path, fail)['ng'], `${path}.ng`, fail);
    const match = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(ng);
    if (!match || !isIPv4(match[1]!) || Number(match[2]) < 1 || Number(match[2]) > 65535) fail(`${path}.ng`, `"${ng}" is not IPV4:PORT`);
    // The call's objects pin it to its worker by this label; a worker without it could never be matched.
    return { ...base, labels: { ...base.labels, [workerPinLabel]: base.name }, ng: { host: match![1]!, port: Number(match![2]) } };
  });
  if (ingress.length === 0) fail('ingress', 'is empty: at least one ingress proxy is needed');
  if (workers.length === 0) fail('workers', 'is empty: at least one worker is needed');
  const names = new Set<string>();
  for (const p of [...ingress, ...workers]) {
    if (names.has(p.name)) fail('names', `repeat "${p.name}": every proxy needs its own name`);
    names.add(p.name);
  }
  return { mediaAddress, ingress, workers };
}

/** The local mesh as a mesh description: what its benchmark child reads. */
export function fromLocalMesh(mesh: LocalMeshDescription): MeshConfig {
  return {
    mediaAddress: mesh.ingress.address,
    ingress: [{ name: mesh.ingress.name, address: mesh.ingress.address, restUrl: mesh.ingress.restUrl, labels: mesh.ingress.labels }],
    workers: mesh.workers.map((w) => ({ name: w.name, address: w.address, restUrl: w.restUrl, labels: w.labels, ng: w.ng })),
  };
}

type Fail = (path: string, problem: string) => never;

function object(v: unknown, path: string, fail: Fail): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'must be an object');
  return v as Record<string, unknown>;
}

function list(v: unknown, path: string, fail: Fail): unknown[] {
  if (!Array.isArray(v)) fail(path, 'must be a list');
  return v as unknown[];
}

function text(v: unknown, path: string, fail: Fail): string {
  if (typeof v !== 'string' || v.trim() === '') fail(path, 'must be a non-empty string');
  return (v as string).trim();
}

function ipv4(v: unknown, path: string, fail: Fail): string {
  const s = text(v, path, fail);
  if (!isIPv4(s)) fail(path, `"${s}" is not an IPv4 address`);
  return s;
}

function proxy(v: unknown, path: string, fail: Fail): MeshProxy {
  const o = object(v, path, fail);
  const restUrl = text(o['restUrl'], `${path}.restUrl`, fail);
  try {
    const u = new URL(restUrl);
    if (u.protocol !== 'http:') fail(`${path}.restUrl`, `"${restUrl}" must be an http:// URL (the l7mp controller)`);
  } catch {
    fail(`${path}.restUrl`, `"${restUrl}" is not a URL`);
  }
  const labels = object(o['labels'] ?? {}, `${path}.labels`, fail);
  for (const [k, val] of Object.entries(labels)) if (typeof val !== 'string') fail(`${path}.labels.${k}`, 'must be a string');
  return {
    name: text(o['name'], `${path}.name`, fail),
    address: ipv4(o['address'], `${path}.address`, fail),
    restUrl: restUrl.replace(/\/+$/, ''),
    labels: labels as Record<string, string>,
  };
}
