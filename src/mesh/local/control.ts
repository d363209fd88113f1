/**
 * Faults on a local mesh's daemons, made by the process that owns them. With --mesh local the benchmark runs as a
 * child in the client namespace (run.ts), but the rtpengines, the proxies and Redis are the parent's children:
 * only the parent can stop, wait for and start them again. The child's fault runtime asks over the Node IPC channel
 * that runInClientNamespace opens (it survives the `setpriv` and `ip netns exec` execs: the channel is a file
 * descriptor and NODE_CHANNEL_FD), and the parent answers with what it did and when (epoch ms: both processes read
 * the same clock).
 *
 * A worker is a pod here: kill-worker kills its rtpengine and its l7mp sidecar together; restart-worker restarts
 * its rtpengine in place (a crashed container: the sidecar and its rules stay); pause-worker stops rtpengine.
 */
import type { ChildProcess } from 'node:child_process';
import { epochNow, killProcesses, pauseProcess, resumeProcess, type Restarted, type Signalled, type WorkerFaultMaker } from '../../faults/worker-process.js';
import type { LocalMesh } from './mesh.js';

export type MeshFaultOp = { op: 'kill' | 'restart' | 'pause' | 'resume'; index: number } | { op: 'restart-ingress' };

interface FaultRequest {
  type: 'rtp-bench-fault';
  id: number;
  request: MeshFaultOp;
}

type FaultReply = { type: 'rtp-bench-fault-reply'; id: number } & ({ ok: true; result: Signalled | Restarted | number } | { ok: false; error: string });

function isRequest(m: unknown): m is FaultRequest {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'rtp-bench-fault';
}

function isReply(m: unknown): m is FaultReply {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'rtp-bench-fault-reply';
}

/** Makes one fault on the mesh's daemons. */
export async function makeMeshFault(mesh: LocalMesh, r: MeshFaultOp): Promise<Signalled | Restarted | number> {
  if (r.op === 'restart-ingress') {
    const old = mesh.ingress.proxy;
    const killed = await killProcesses([old]);
    const proxy = await mesh.restartIngress();
    return { ...killed, what: `l7mp ingress pid ${old.pid}`, readyEpochMs: epochNow(), pid: proxy.pid };
  }
  const worker = mesh.workers[r.index];
  if (worker === undefined) throw new Error(`the local mesh has no worker ${r.index + 1}`);
  const { rtpengine, proxy } = worker;
  switch (r.op) {
    case 'kill':
      return { ...(await killProcesses([rtpengine, proxy])), what: `rtpengine pid ${rtpengine.pid} and its l7mp sidecar pid ${proxy.pid} (the worker's pod)` };
    case 'restart': {
      const killed = await killProcesses([rtpengine]);
      const restarted = await mesh.restartRtpengine(r.index);
      return { ...killed, what: `rtpengine pid ${rtpengine.pid} (its l7mp sidecar kept running)`, readyEpochMs: epochNow(), pid: restarted.pid };
    }
    case 'pause':
      return { ...(await pauseProcess(rtpengine.pid)), what: `rtpengine pid ${rtpengine.pid}` };
    case 'resume':
      return resumeProcess(rtpengine.pid);
  }
}

/** The parent's side: answers the child's fault requests until it exits. */
export function serveMeshFaults(child: ChildProcess, mesh: LocalMesh): void {
  child.on('message', (message: unknown) => {
    if (!isRequest(message)) return;
    void makeMeshFault(mesh, message.request).then(
      (result): FaultReply => ({ type: 'rtp-bench-fault-reply', id: message.id, ok: true, result }),
      (err: unknown): FaultReply => ({ type: 'rtp-bench-fault-reply', id: message.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    ).then((reply) => {
      // The child may have ended meanwhile: nothing to answer then.
      if (child.connected) child.send(reply);
    });
  });
}

/**
 * The child's side: a WorkerFaultMaker whose faults the parent makes; null when this process has no IPC channel (it
 * was not started by a --mesh local run).
 */
export function meshFaultMaker(): WorkerFaultMaker | null {
  const send = process.send?.bind(process);
  if (send === undefined) return null;
  let nextId = 1;
  const waiting = new Map<number, (reply: FaultReply) => void>();
  let listening = false;
  const ask = <T extends Signalled | Restarted | number>(request: MeshFaultOp): Promise<T> => {
    if (!listening) {
      listening = true;
      process.on('message', (m: unknown) => {
        if (isReply(m)) waiting.get(m.id)?.(m);
      });
      // Listening must not keep the benchmark alive once its work is done.
      process.channel?.unref();
    }
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, (reply) => {
        waiting.delete(id);
        if (reply.ok) resolve(reply.result as T);
        else reject(new Error(reply.error));
      });
      send({ type: 'rtp-bench-fault', id, request } satisfies FaultRequest, (err: Error | null) => {
        if (err === null) return;
        waiting.delete(id);
        reject(new Error(`the rtp-bench process that owns the local mesh did not take the request: ${err.message}`));
      });
    });
  };
  return {
    kill: (index) => ask<Signalled>({ op: 'kill', index }),
    restart: (index) => ask<Restarted>({ op: 'restart', index }),
    pause: (index) => ask<Signalled>({ op: 'pause', index }),
    resume: (index) => ask<number>({ op: 'resume', index }),
    restartIngress: () => ask<Restarted>({ op: 'restart-ingress' }),
  };
}
