/**
 * What rtp-bench asks of the Kubernetes API server, as RBAC rules: create, get, delete, deletecollection and list
 * on l7mp.io virtualservices/targets/rules, and list on pods (runs); get and patch on statefulsets/scale and get on
 * statefulsets (`rtp-bench scale --mesh kubernetes`, src/mesh/kubernetes/workers-scale.ts); get and delete on pods
 * (`--fault kill-worker`: src/faults/pod-replacement.ts). kubernetes/rbac.yaml
 * grants exactly that (a test holds the two equal), and every request is checked against it before it is sent.
 */

export const L7MP_GROUP = 'l7mp.io';
export const L7MP_VERSION = 'v1';
export const APPS_GROUP = 'apps';

export type ApiVerb = 'create' | 'get' | 'list' | 'delete' | 'deletecollection' | 'patch';

/** One RBAC rule's worth of what the code calls. */
export interface ApiPermission {
  apiGroup: string;
  resources: string[];
  verbs: ApiVerb[];
  /** What needs it, for the explanation of a 403. */
  usedBy: string;
}

/** Everything rtp-bench asks the API server for, as RBAC rules: kubernetes/rbac.yaml's Role grants exactly this. */
export const API_PERMISSIONS: readonly ApiPermission[] = [
  { apiGroup: L7MP_GROUP, resources: ['virtualservices', 'targets', 'rules'], verbs: ['create', 'get', 'list', 'delete', 'deletecollection'], usedBy: "every --mesh kubernetes run (each call's l7mp objects)" },
  { apiGroup: '', resources: ['pods'], verbs: ['list'], usedBy: 'every --mesh kubernetes run (the worker pods, the ingress address) and scale (waiting for the workers)' },
  { apiGroup: '', resources: ['pods'], verbs: ['get', 'delete'], usedBy: "--fault kill-worker=N@TIME with --mesh kubernetes (deletes worker N's pod, grace period 0, and reads it until its replacement is Ready)" },
  { apiGroup: APPS_GROUP, resources: ['statefulsets/scale'], verbs: ['get', 'patch'], usedBy: "rtp-bench scale --mesh kubernetes (sets the worker StatefulSet's replicas, and restores them)" },
  { apiGroup: APPS_GROUP, resources: ['statefulsets'], verbs: ['get'], usedBy: "rtp-bench scale --mesh kubernetes (the StatefulSet's ready replicas and pod selector)" },
];

/** Where the rtp-bench RBAC lives, for messages. */
export const RBAC_FILE = 'kubernetes/rbac.yaml';

/** The rule of API_PERMISSIONS that covers the request, if any. */
export function permissionFor(verb: ApiVerb, apiGroup: string, resource: string): ApiPermission | undefined {
  return API_PERMISSIONS.find((p) => p.apiGroup === apiGroup && p.resources.includes(resource) && p.verbs.includes(verb));
}

/** Whether API_PERMISSIONS covers the request. */
export function permitted(verb: ApiVerb, apiGroup: string, resource: string): boolean {
  return permissionFor(verb, apiGroup, resource) !== undefined;
}

/** A rule as it stands in the Role's `rules:` of kubernetes/rbac.yaml, on one line (for messages). */
export function roleRuleText(p: ApiPermission): string {
  const list = (items: readonly string[]): string => `[${items.map((i) => JSON.stringify(i)).join(', ')}]`;
  return `{apiGroups: ${list([p.apiGroup])}, resources: ${list(p.resources)}, verbs: ${list(p.verbs)}}`;
}
