/** What a started local mesh looks like to the rest of rtp-bench (src/mesh/config.ts reads it as a mesh description). Types only. */
import type { PortRange } from '../../addresses.js';
import type { MeshWorker } from '../model.js';

/** Where each part of a running local mesh is. */
export interface LocalMeshDescription {
  runId: string;
  clientNamespace: string;
  clientAddress: string;
  subnet: string;
  ingress: { name: string; namespace: string; address: string; restUrl: string; labels: Record<string, string> };
  workers: Array<MeshWorker & { namespace: string; restUrl: string; ng: { host: string; port: number }; rtpenginePorts: PortRange; rtpengineVersion: string }>;
  /** The mesh's Redis (its address on the bridge), worker i writing DB dbs[i]; null without one. */
  redis: { host: string; port: number; dbs: number[]; version: string } | null;
}
