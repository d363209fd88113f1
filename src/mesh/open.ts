/**
 * The mesh of a run, ready for calls: its provisioner, where clients send media, and its rtpengine workers (which
 * become the run's stack). `local` is not opened here: it runs the benchmark as a child (src/mesh/local/run.ts),
 * which opens the local mesh as a `rest` mesh.
 */
import { RestProvisioner } from './rest/provisioner.js';
import { KubernetesProvisioner } from './kubernetes/provisioner.js';
import { MeshError } from './provisioner.js';
import { RTPENGINE_NG_PORT } from '../stack/l7mp-proxy.js';
import { meshProxies } from './config.js';
import type { MeshProvisioner } from './provisioner.js';
import type { MeshStackWorker } from '../stack/stack.js';
import type { RunPlan } from '../run-plan.js';

export interface OpenMesh {
  provisioner: MeshProvisioner;
  mediaAddress: string;
  workers: MeshStackWorker[];
}

export async function openMesh(plan: RunPlan, status: (line: string) => void): Promise<OpenMesh | null> {
  const mesh = plan.mesh;
  if (mesh === null || mesh.kind === 'local') return null;
  if (mesh.kind === 'rest') {
    const { config } = mesh;
    status(`mesh: ${config.ingress.length} ingress and ${config.workers.length} worker proxies over REST, media to ${config.mediaAddress}`);
    return {
      // A fault can leave sessions retrying towards a dead worker or a restarted ingress: every listener waits for its
      // sessions to settle before its delete (deleting a retrying one makes l7mp 0.5.7 exit).
      provisioner: new RestProvisioner({ proxies: meshProxies(config), mesh: mesh.options, settleCheck: plan.faults.length > 0 ? 'always' : 'unready' }),
      mediaAddress: config.mediaAddress,
      workers: config.workers.map(({ name, address, labels, ng }) => ({ name, address, labels, ng })),
    };
  }
  const provisioner = new KubernetesProvisioner({
    mesh: mesh.options,
    kubeconfig: mesh.kubeconfig,
    context: mesh.context,
    concurrency: mesh.concurrency,
    ratePerSec: mesh.ratePerSec,
  });
  try {
    const { namespace, workerSelector, workerPinLabel, ingressSelector } = mesh.options;
    const pods = await provisioner.listWorkers(namespace, workerSelector, workerPinLabel);
    if (pods.length === 0) throw new MeshError(`no ready rtpengine worker pods (${labels(workerSelector)}) in namespace ${namespace}: apply kubernetes/rtpengine-workers.yaml, or check --namespace`);
    const mediaAddress = mesh.mediaAddress ?? (await provisioner.ingressAddress(namespace, ingressSelector));
    status(`mesh: ${pods.length} worker pod(s) in ${namespace}, l7mp.io objects through the Kubernetes API, media to ${mediaAddress}`);
    return {
      provisioner,
      mediaAddress,
      // Each worker's sidecar exposes its rtpengine's ng on the pod address (kubernetes/rtpengine-workers.yaml).
      workers: pods.map((pod) => ({ ...pod, ng: { host: pod.address, port: RTPENGINE_NG_PORT } })),
    };
  } catch (err) {
    await provisioner.close();
    throw err;
  }
}

function labels(selector: Record<string, string>): string {
  return Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
}
