/**
 * Validation of l7mp.io/v1 objects the way a Kubernetes API server would do it: against the openAPIV3Schema of the
 * CRDs in kubernetes/crds (ajv 6; vendor keywords such as x-kubernetes-preserve-unknown-fields are ignored by ajv
 * and used here only for pruning), plus what the API server checks that the schema does not state: apiVersion,
 * kind, metadata.name (DNS-1123 subdomain), metadata.namespace (DNS-1123 label), label keys and values, and fields the
 * schema does not know (the API server prunes them silently, or rejects them with fieldValidation=Strict, which
 * kubectl uses by default).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { packageRoot } from '../paths.js';

/** A JSON schema node as found in the CRDs (only what this module looks at is typed). */
interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  required?: string[];
  not?: SchemaNode;
  allOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  anyOf?: SchemaNode[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

interface CrdFile {
  spec: {
    group: string;
    names: { kind: string; plural: string };
    versions: { name: string; served: boolean; schema: { openAPIV3Schema: SchemaNode } }[];
  };
}

interface LoadedCrd {
  apiVersion: string;
  plural: string;
  schema: SchemaNode;
  validate: Ajv.ValidateFunction;
}

const CRD_FILES = ['virtualservices.l7mp.io.crd.json', 'targets.l7mp.io.crd.json', 'rules.l7mp.io.crd.json'];

let crds: Map<string, LoadedCrd> | undefined;

/** The CRDs by kind, loaded and compiled once. */
function loadCrds(): Map<string, LoadedCrd> {
  if (crds) return crds;
  const ajv = new Ajv({ allErrors: true, jsonPointers: true, nullable: true, unknownFormats: 'ignore', verbose: true });
  const loaded = new Map<string, LoadedCrd>();
  for (const file of CRD_FILES) {
    const crd = JSON.parse(readFileSync(join(packageRoot(), 'kubernetes', 'crds', file), 'utf8')) as CrdFile;
    const version = crd.spec.versions.find((v) => v.served) ?? crd.spec.versions[0];
    if (!version) throw new Error(`kubernetes/crds/${file}: no version`);
    const schema = version.schema.openAPIV3Schema;
    loaded.set(crd.spec.names.kind, {
      apiVersion: `${crd.spec.group}/${version.name}`,
      plural: crd.spec.names.plural,
      schema,
      validate: ajv.compile(schema),
    });
  }
  crds = loaded;
  return loaded;
}

/** The kinds the CRDs define, with their apiVersion and plural resource name. */
export function crdKinds(): { kind: string; apiVersion: string; plural: string }[] {
  return [...loadCrds()].map(([kind, c]) => ({ kind, apiVersion: c.apiVersion, plural: c.plural }));
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** Why `key` is not a valid label key, or null. */
export function labelKeyProblem(key: string): string | null {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== null && !isDns1123Subdomain(prefix)) return `prefix "${prefix}" is not a DNS-1123 subdomain`;
  if (name.length === 0 || name.length > 63) return `name part must be 1-63 characters (has ${name.length})`;
  if (!LABEL_NAME.test(name)) return 'name part must be alphanumerics, "-", "_" or ".", beginning and ending with an alphanumeric';
  return null;
}

/** Why `value` is not a valid label value, or null. */
export function labelValueProblem(value: string): string | null {
  if (value.length > 63) return `must be at most 63 characters (has ${value.length})`;
  if (!LABEL_VALUE.test(value)) return 'must be empty or alphanumerics, "-", "_" or ".", beginning and ending with an alphanumeric';
  return null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pointer(base: string, key: string | number): string {
  return `${base}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** Fields the schema does not know: where neither properties, additionalProperties nor preserve-unknown-fields
 * covers them. The CRD schemas are structural (oneOf/anyOf only constrain, they declare no properties). */
function unknownFields(schema: SchemaNode, data: unknown, path: string, out: string[]): void {
  if (Array.isArray(data)) {
    if (schema.items) data.forEach((item, i) => unknownFields(schema.items!, item, pointer(path, i), out));
    return;
  }
  if (!isRecord(data)) return;
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  for (const [key, value] of Object.entries(data)) {
    const p = pointer(path, key);
    const known = schema.properties?.[key];
    if (known) unknownFields(known, value, p, out);
    else if (isRecord(schema.additionalProperties)) unknownFields(schema.additionalProperties, value, p, out);
    else if (schema.additionalProperties !== true && !preserve) out.push(p);
  }
}

function describeBranch(branch: SchemaNode): string {
  const parts: string[] = [];
  const collect = (n: SchemaNode, negated: boolean): void => {
    for (const r of n.required ?? []) parts.push(negated ? `no ${r}` : r);
    if (n.not) collect(n.not, !negated);
    for (const sub of n.allOf ?? []) collect(sub, negated);
  };
  collect(branch, false);
  return parts.length ? `{${parts.join(', ')}}` : '{}';
}

function ajvMessage(e: Ajv.ErrorObject): string {
  const path = e.dataPath === '' ? '/' : e.dataPath;
  if (e.keyword === 'oneOf' || e.keyword === 'anyOf') {
    const branches = Array.isArray(e.schema) ? (e.schema as SchemaNode[]) : [];
    const which = e.keyword === 'oneOf' ? 'exactly one' : 'at least one';
    return `${path}: must match ${which} of ${branches.map(describeBranch).join(' | ')}`;
  }
  if (e.keyword === 'required') {
    const missing = (e.params as Ajv.RequiredParams).missingProperty.replace(/^[./]/, '');
    return `${pointer(e.dataPath, missing)}: required`;
  }
  if (e.keyword === 'enum') return `${path}: ${e.message ?? 'invalid'}: ${(e.params as Ajv.EnumParams).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  return `${path}: ${e.message ?? e.keyword}`;
}

/** Errors inside oneOf/anyOf branches are summed up by the oneOf/anyOf error itself. */
function schemaErrors(errors: Ajv.ErrorObject[]): string[] {
  const branchy = /\/(oneOf|anyOf)\/\d+(\/|$)/;
  const summarised = new Set(errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => `${e.dataPath}|${e.schemaPath}`));
  const out: string[] = [];
  for (const e of errors) {
    const m = branchy.exec(e.schemaPath);
    if (m) {
      const owner = e.schemaPath.slice(0, m.index + m[1]!.length + 1);
      if (summarised.has(`${e.dataPath}|${owner}`)) continue;
    }
    const msg = ajvMessage(e);
    if (!out.includes(msg)) out.push(msg);
  }
  return out;
}

function describe(obj: unknown): string {
  if (!isRecord(obj)) return 'object';
  const kind = typeof obj.kind === 'string' ? obj.kind : 'object';
  const md = isRecord(obj.metadata) ? obj.metadata : {};
  const name = typeof md.name === 'string' ? md.name : '(no name)';
  return typeof md.namespace === 'string' ? `${kind} ${md.namespace}/${name}` : `${kind} ${name}`;
}

function metadataErrors(obj: Record<string, unknown>): string[] {
  const out: string[] = [];
  const md = obj.metadata;
  if (!isRecord(md)) return ['/metadata: required object'];
  if (typeof md.name !== 'string' || md.name === '') out.push('/metadata/name: required');
  else if (!isDns1123Subdomain(md.name)) {
    out.push(`/metadata/name: "${md.name}" is not a DNS-1123 subdomain (at most 253 lowercase alphanumerics, "-" and ".", alphanumeric at both ends)`);
  }
  if (md.namespace !== undefined && (typeof md.namespace !== 'string' || !isDns1123Label(md.namespace))) {
    out.push(`/metadata/namespace: ${JSON.stringify(md.namespace)} is not a DNS-1123 label`);
  }
  if (md.labels !== undefined) {
    if (!isRecord(md.labels)) out.push('/metadata/labels: must be an object of strings');
    else {
      for (const [key, value] of Object.entries(md.labels)) {
        const p = pointer('/metadata/labels', key);
        const kp = labelKeyProblem(key);
        if (kp) out.push(`${p}: invalid label key: ${kp}`);
        if (typeof value !== 'string') out.push(`${p}: label value must be a string`);
        else {
          const vp = labelValueProblem(value);
          if (vp) out.push(`${p}: invalid label value "${value}": ${vp}`);
        }
      }
    }
  }
  return out;
}

/**
 * Problems of `obj` as an l7mp.io/v1 custom resource, each message naming the object and the JSON path; empty when
 * the API server would accept it as it is (nothing pruned).
 */
export function validateObject(obj: unknown): string[] {
  const label = describe(obj);
  if (!isRecord(obj)) return [`${label}: /: must be an object`];
  const problems: string[] = [];
  const kind = obj.kind;
  const crd = typeof kind === 'string' ? loadCrds().get(kind) : undefined;
  if (!crd) {
    const known = [...loadCrds().keys()].join(', ');
    problems.push(`/kind: ${JSON.stringify(kind)} is not an l7mp kind (${known})`);
  } else if (obj.apiVersion !== crd.apiVersion) {
    problems.push(`/apiVersion: ${JSON.stringify(obj.apiVersion)} must be "${crd.apiVersion}"`);
  }
  problems.push(...metadataErrors(obj));
  if (crd) {
    if (!crd.validate(obj)) problems.push(...schemaErrors(crd.validate.errors ?? []));
    const unknown: string[] = [];
    for (const key of ['spec', 'status']) {
      const s = crd.schema.properties?.[key];
      if (s && obj[key] !== undefined) unknownFields(s, obj[key], `/${key}`, unknown);
    }
    for (const key of Object.keys(obj)) {
      if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(key)) unknown.push(pointer('', key));
    }
    problems.push(...unknown.map((p) => `${p}: unknown field (not in the ${kind as string} CRD schema: the API server drops it, or rejects the object with fieldValidation=Strict)`));
  }
  return problems.map((p) => `${label}: ${p}`);
}
