/**
 * `rtp-bench cleanup --mesh kubernetes`: what a run that crashed (or was killed) left in the cluster, found by the
 * run label and removed, with a report of what went.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { LABEL_RUN } from '../model.js';
import { DELETION_ORDER, type L7mpKind } from '../objects.js';
import { allowPlainHttp, contextNamespace, loadKubeConfig, type KubeConfigChoice } from './config.js';
import { KubernetesApi, removeLabelled, runSelector, type KubernetesApiOptions, type ListedObject, type RemoveOptions } from './api.js';

export interface CleanupOptions extends KubeConfigChoice, KubernetesApiOptions, RemoveOptions {
  /** Only this run's objects; null or absent: every object with the run label (any run). */
  runId?: string | null;
  /** Default: the kube context's namespace, else "default". */
  namespace?: string | null;
  kubeConfig?: KubeConfig;
  /** Where the report lines go; default: standard output. */
  print?: (line: string) => void;
}

export interface CleanupResult {
  namespace: string;
  selector: string;
  /** What was there and is gone now, by kind (VirtualServices, Targets, Rules). */
  removed: { kind: L7mpKind; name: string; run: string | null }[];
}

/** `rtp-bench cleanup`: deletes every l7mp object of a run (or of any run) that is still in the namespace. */
export async function cleanupRun(options: CleanupOptions = {}): Promise<CleanupResult> {
  const print = options.print ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const kc = options.kubeConfig ? allowPlainHttp(options.kubeConfig) : loadKubeConfig(options);
  const namespace = options.namespace ?? contextNamespace(kc) ?? 'default';
  const selector = runSelector(options.runId ?? null);
  const api = new KubernetesApi(kc, options);
  try {
    const kinds = DELETION_ORDER;
    const found: ListedObject[] = [];
    for (const kind of kinds) found.push(...(await api.list(kind, namespace, selector)));
    const what = options.runId ? `run ${options.runId}` : 'any rtp-bench run';
    if (found.length === 0) {
      print(`cleanup: no l7mp objects of ${what} in namespace ${namespace} (selector ${selector})`);
      return { namespace, selector, removed: [] };
    }
    print(`cleanup: removing ${found.length} l7mp object(s) of ${what} from namespace ${namespace} (selector ${selector})`);
    await removeLabelled(api, namespace, selector, options);
    const removed = found.map((o) => ({ kind: o.kind, name: o.name, run: o.labels[LABEL_RUN] ?? null }));
    for (const o of removed) print(`removed ${o.kind} ${namespace}/${o.name}${o.run ? ` (run ${o.run})` : ''}`);
    const counts = kinds.map((k) => `${removed.filter((o) => o.kind === k).length} ${k}`).join(', ');
    const runs = [...new Set(removed.map((o) => o.run).filter((r): r is string => r !== null))];
    print(`cleanup: removed ${removed.length} object(s): ${counts}; run(s): ${runs.join(', ')}`);
    return { namespace, selector, removed };
  } finally {
    api.close();
  }
}
