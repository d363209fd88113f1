/** One call and a two-proxy mesh (one ingress, one worker) shared by the mesh tests. */
import { DEFAULT_MESH_OPTIONS, type MeshCall, type MeshOptions } from '../../src/mesh/model.js';
import type { MeshProxy } from '../../src/mesh/rest/operator.js';

export const WORKER_LABELS = { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': 'worker-0' };

export function testCall(): MeshCall {
  return {
    runId: 'run-1',
    callId: 'call-1',
    worker: { name: 'worker-0', address: '10.0.1.7', labels: { ...WORKER_LABELS } },
    streams: [
      { leg: 'a', tag: 'tag-a', kind: 'rtp', rtpenginePort: 30000, clientAddress: '10.0.0.1', clientPort: 40000 },
      { leg: 'a', tag: 'tag-a', kind: 'rtcp', rtpenginePort: 30001, clientAddress: '10.0.0.1', clientPort: 40001 },
      { leg: 'b', tag: 'tag-b', kind: 'rtp', rtpenginePort: 30002, clientAddress: '10.0.0.2', clientPort: 40002 },
      { leg: 'b', tag: 'tag-b', kind: 'rtcp', rtpenginePort: 30003, clientAddress: '10.0.0.2', clientPort: 40003 },
    ],
  };
}

export function testOptions(more: Partial<MeshOptions> = {}): MeshOptions {
  return { ...DEFAULT_MESH_OPTIONS, labels: { 'app.kubernetes.io/part-of': 'rtp-bench' }, ...more };
}

export const INGRESS: MeshProxy = { name: 'ingress-0', address: '10.0.1.2', restUrl: 'http://10.0.1.2:1234', labels: { app: 'l7mp-ingress' } };
export const WORKER: MeshProxy = { name: 'worker-0', address: '10.0.1.7', restUrl: 'http://10.0.1.7:1234', labels: { ...WORKER_LABELS } };
/** Another worker: selected by the worker selector, but not the call's worker. */
export const OTHER_WORKER: MeshProxy = {
  name: 'worker-1',
  address: '10.0.1.8',
  restUrl: 'http://10.0.1.8:1234',
  labels: { app: 'l7mp-worker', 'statefulset.kubernetes.io/pod-name': 'worker-1' },
};
