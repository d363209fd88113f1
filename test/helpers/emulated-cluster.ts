/**
 * What the CLI tests of --mesh kubernetes run against: the Kubernetes API emulator (k8s-emulator.ts), a kubeconfig
 * file pointing at it, and one real rtpengine whose ng listens on <pod IP>:22222 as a worker sidecar's would (the
 * worker pods the tests add carry that address).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { K8sEmulator } from './k8s-emulator.js';
import { startRtpengine, freeUdpPortRange, type LocalRtpengine } from '../../src/stack/rtpengine.js';
import { RTPENGINE_NG_PORT } from '../../src/stack/l7mp-proxy.js';

export interface EmulatedCluster {
  emulator: K8sEmulator;
  engine: LocalRtpengine;
  /** A loopback address of its own, so the worker's ng port 22222 is free whatever else runs here. */
  podIP: string;
  kubeconfig: string;
  close(): Promise<void>;
}

export async function startEmulatedCluster(): Promise<EmulatedCluster> {
  const podIP = `127.0.${100 + Math.floor(Math.random() * 100)}.${2 + Math.floor(Math.random() * 200)}`;
  const emulator = await K8sEmulator.start();
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-k8s-'));
  let engine: LocalRtpengine | undefined;
  try {
    const range = await freeUdpPortRange(podIP, 200);
    engine = await startRtpengine({ address: podIP, ngPort: RTPENGINE_NG_PORT, portMin: range.min, portMax: range.max });
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, emulator.kubeconfigYaml());
    const started = engine;
    return {
      emulator,
      engine: started,
      podIP,
      kubeconfig,
      close: async () => {
        await started.stop();
        await emulator.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await engine?.stop();
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
