/**
 * Which cluster rtp-bench talks to: the Kubernetes client configuration from the usual places (an explicit file,
 * $KUBECONFIG, ~/.kube/config, or the pod's service account), with the context chosen, and what it says (the
 * context's namespace).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { MeshError } from '../provisioner.js';

export interface KubeConfigChoice {
  /** A kubeconfig file; default: $KUBECONFIG, then ~/.kube/config, then the pod's service account (in-cluster). */
  kubeconfig?: string | null;
  /** A context of that kubeconfig; default: its current context. */
  context?: string | null;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The Kubernetes client configuration, from the usual places (an explicit file, $KUBECONFIG, ~/.kube/config, or
 * in-cluster), with the context chosen. Unlike KubeConfig.loadFromDefault it never falls back to an unauthenticated
 * http://localhost:8080: with nothing found it says so. A plain-http server (kubectl proxy) is allowed.
 */
export function loadKubeConfig(choice: KubeConfigChoice = {}): KubeConfig {
  const kc = new KubeConfig();
  let source: string;
  try {
    if (choice.kubeconfig) {
      source = `--kubeconfig ${choice.kubeconfig}`;
      if (!existsSync(choice.kubeconfig)) throw new MeshError(`${source}: no such file`);
      kc.loadFromFile(choice.kubeconfig);
    } else if (process.env['KUBECONFIG']) {
      source = `KUBECONFIG=${process.env['KUBECONFIG']}`;
      kc.loadFromDefault();
    } else if (existsSync(join(homedir(), '.kube', 'config'))) {
      source = join(homedir(), '.kube', 'config');
      kc.loadFromDefault();
    } else if (process.env['KUBERNETES_SERVICE_HOST'] && existsSync(SERVICE_ACCOUNT_TOKEN)) {
      source = "the pod's service account (in-cluster)";
      kc.loadFromCluster();
    } else {
      throw new MeshError(
        'no Kubernetes configuration found: no --kubeconfig, no $KUBECONFIG, no ~/.kube/config, and not running in a pod. ' +
          'Point --kubeconfig at a kubeconfig file (e.g. the one `kind get kubeconfig` or minikube writes), or run rtp-bench in the cluster (kubernetes/rtp-bench-job.yaml)',
      );
    }
  } catch (err) {
    if (err instanceof MeshError) throw err;
    throw new MeshError(`cannot read the Kubernetes configuration: ${(err as Error).message}`, null, { cause: err });
  }
  if (choice.context) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(choice.context)) {
      throw new MeshError(`--context ${choice.context}: no such context in ${source}; its contexts: ${names.length ? names.join(', ') : '(none)'}`);
    }
    kc.setCurrentContext(choice.context);
  }
  if (!kc.getCurrentCluster()) {
    const names = kc.getContexts().map((c) => c.name);
    throw new MeshError(`${source} names no usable current context (or its cluster is missing): pass --context, one of: ${names.length ? names.join(', ') : '(none)'}`);
  }
  return allowPlainHttp(kc);
}

/**
 * client-node 1.4 refuses an http:// server unless the cluster says skipTLSVerify ("HTTP protocol is not allowed
 * when skipTLSVerify is not set or false"), at the first request. There is no TLS to verify on plain http (kubectl
 * proxy, an emulator), so the flag is set on that cluster.
 */
export function allowPlainHttp(kc: KubeConfig): KubeConfig {
  const current = kc.getCurrentCluster();
  if (!current || !current.server.startsWith('http:') || current.skipTLSVerify) return kc;
  kc.loadFromOptions({
    clusters: kc.getClusters().map((c) => (c.name === current.name ? { ...c, skipTLSVerify: true } : c)),
    contexts: kc.getContexts(),
    users: kc.getUsers(),
    currentContext: kc.getCurrentContext(),
  });
  return kc;
}

/** The current context's namespace, if it names one. */
export function contextNamespace(kc: KubeConfig): string | null {
  return kc.getContextObject(kc.getCurrentContext())?.namespace ?? null;
}
