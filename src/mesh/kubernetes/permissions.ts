/**
 * What rtp-bench asks of the Kubernetes API server, as RBAC rules: create, get, delete, deletecollection and list
 * on l7mp.io virtualservices/targets/rules, and list on pods. kubernetes/rbac.yaml grants exactly that (a test holds
 * the two equal), and every request is checked against it before it is sent.
 */

export const L7MP_GROUP = 'l7mp.io';
export const L7MP_VERSION = 'v1';

export type ApiVerb = 'create' | 'get' | 'list' | 'delete' | 'deletecollection';

/** One RBAC rule's worth of what the code calls. */
export interface ApiPermission {
  apiGroup: string;
  resources: string[];
  verbs: ApiVerb[];
}

/** Everything rtp-bench asks the API server for, as RBAC rules: kubernetes/rbac.yaml's Role grants exactly this. */
export const API_PERMISSIONS: readonly ApiPermission[] = [
  { apiGroup: L7MP_GROUP, resources: ['virtualservices', 'targets', 'rules'], verbs: ['create', 'get', 'list', 'delete', 'deletecollection'] },
  { apiGroup: '', resources: ['pods'], verbs: ['list'] },
];

/** Where the rtp-bench RBAC lives, for messages. */
export const RBAC_FILE = 'kubernetes/rbac.yaml';

/** Whether API_PERMISSIONS covers the request. */
export function permitted(verb: ApiVerb, apiGroup: string, resource: string): boolean {
  return API_PERMISSIONS.some((p) => p.apiGroup === apiGroup && p.resources.includes(resource) && p.verbs.includes(verb));
}
