/**
 * A strict check of Envoy bootstrap YAML against Envoy's API protos (the 1.31 copy in @grpc/grpc-js-xds plus the
 * project's own protos), at least as strict as Envoy's own loader (docs/envoy-behaviour.md A): unknown fields, unknown `@type`s,
 * bad enum names, two members of one oneof, and the protoc-gen-validate rules Envoy enforces that matter for configs
 * (string min_len — e.g. an empty `stat_prefix` —, required messages, min_items, numeric and duration bounds, required
 * oneofs). Lenient where Envoy is: quoted booleans and numbers, `{seconds: 60}` or "60s" durations, a single value
 * for a list, camelCase JSON names.
 */
import { readFileSync } from 'node:fs';
import type protobuf from 'protobufjs';
import { parseAllDocuments } from 'yaml';
import { loadEnvoyConfigRoot, lookupTypeUrl } from '../../extproc/envoy-api/index.ts';

export interface ConfigProblem {
  /** Where, e.g. `static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix`. */
  path: string;
  message: string;
}

const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';

/** True if a parsed YAML document looks like an Envoy bootstrap (and not, say, a compose file). */
export function isEnvoyBootstrap(doc: unknown): boolean {
  if (!isObject(doc) || 'services' in doc) return false;
  return ['static_resources', 'dynamic_resources', 'admin', 'node', 'layered_runtime'].some((k) => k in doc);
}

/** Parses one YAML file (one document expected) and checks it against the Bootstrap proto. */
export function checkEnvoyConfigFile(file: string): ConfigProblem[] {
  return checkEnvoyConfigText(readFileSync(file, 'utf8'));
}

export function checkEnvoyConfigText(text: string): ConfigProblem[] {
  const docs = parseAllDocuments(text);
  if (docs.length !== 1) return [{ path: '', message: `expected one YAML document, found ${docs.length}` }];
  const doc = docs[0];
  if (doc.errors.length > 0) return doc.errors.map((e) => ({ path: '', message: `YAML: ${e.message}` }));
  return checkEnvoyConfig(doc.toJS());
}

/** Checks an already-parsed bootstrap object. An empty list means the config is accepted. */
export function checkEnvoyConfig(config: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  checkMessage(loadEnvoyConfigRoot().lookupType(BOOTSTRAP), config, '', problems);
  return problems;
}

/** Throws one Error listing every problem, or returns quietly. */
export function assertEnvoyConfigValid(config: unknown, what = 'config'): void {
  const problems = checkEnvoyConfig(config);
  if (problems.length > 0) throw new Error(`${what} is invalid:\n${formatProblems(problems)}`);
}

export function formatProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path || '<root>'}: ${p.message}`).join('\n');
}

// ------------------------------------------------------------------------------------------------ walking

type Problems = ConfigProblem[];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

const WRAPPERS: Record<string, string> = {
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};

/** Messages whose JSON form is not an object of their fields. Returns true if handled. */
function checkWellKnown(type: protobuf.Type, value: unknown, path: string, problems: Problems): boolean {
  const name = type.fullName;
  if (name in WRAPPERS) {
    checkScalar(WRAPPERS[name], value, path, problems);
    return true;
  }
  switch (name) {
    case '.google.protobuf.Duration':
      // Envoy accepts the JSON string form ("1.5s") and, leniently, the message form ({seconds, nanos}).
      if (typeof value === 'string') {
        if (!/^-?\d+(\.\d{1,9})?s$/.test(value))
          problems.push({ path, message: `bad duration ${JSON.stringify(value)} (want e.g. "0.5s")` });
        return true;
      }
      return false;
    case '.google.protobuf.Timestamp':
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
        problems.push({ path, message: 'bad timestamp' });
      return true;
    case '.google.protobuf.Struct':
      if (!isObject(value)) problems.push({ path, message: 'expected a mapping (google.protobuf.Struct)' });
      return true;
    case '.google.protobuf.Value':
      return true;
    case '.google.protobuf.ListValue':
      if (!Array.isArray(value)) problems.push({ path, message: 'expected a list (google.protobuf.ListValue)' });
      return true;
    case '.google.protobuf.FieldMask':
      if (typeof value !== 'string') problems.push({ path, message: 'expected a string (google.protobuf.FieldMask)' });
      return true;
    case '.google.protobuf.Any':
      checkAny(value, path, problems);
      return true;
    default:
      return false;
  }
}

function checkAny(value: unknown, path: string, problems: Problems): void {
  if (!isObject(value)) {
    problems.push({ path, message: 'expected a mapping with "@type" (google.protobuf.Any)' });
    return;
  }
  const typeUrl = value['@type'];
  if (typeof typeUrl !== 'string' || typeUrl === '') {
    problems.push({ path, message: 'missing "@type"' });
    return;
  }
  const inner = lookupTypeUrl(typeUrl);
  if (!inner) {
    problems.push({ path: join(path, '@type'), message: `unknown @type ${typeUrl}` });
    return;
  }
  const { '@type': _ignored, ...rest } = value;
  // Well-known types with a special JSON form are wrapped as {"@type": ..., "value": <json>}.
  if (inner.fullName.startsWith('.google.protobuf.') && inner.fullName !== '.google.protobuf.Empty') {
    const keys = Object.keys(rest);
    if (keys.some((k) => k !== 'value')) {
      problems.push({ path, message: `an Any of ${typeUrl} takes only "value"` });
      return;
    }
    checkMessage(inner, rest.value, join(path, 'value'), problems);
    return;
  }
  checkMessage(inner, rest, path, problems);
}

function checkMessage(type: protobuf.Type, value: unknown, path: string, problems: Problems): void {
  if (checkWellKnown(type, value, path, problems)) return;
  if (!isObject(value)) {
    problems.push({ path, message: `expected a mapping (${type.fullName.slice(1)})` });
    return;
  }
  const seen = new Map<string, unknown>();
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key] ?? Object.values(type.fields).find((f) => jsonName(f.name) === key);
    const p = join(path, key);
    if (!field) {
      problems.push({ path: p, message: `unknown field "${key}" in ${type.fullName.slice(1)}` });
      continue;
    }
    if (v === null) continue; // JSON null = unset
    seen.set(field.name, v);
    checkField(field, v, p, problems);
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => seen.has(f.name)).map((f) => f.name);
    if (set.length > 1)
      problems.push({ path, message: `oneof "${oneof.name}" has more than one member set: ${set.join(', ')}` });
    if (set.length === 0 && oneof.options?.['(validate.required)'] === true) {
      problems.push({
        path,
        message: `oneof "${oneof.name}" is required: set one of ${oneof.fieldsArray.map((f) => f.name).join(', ')}`,
      });
    }
  }
  for (const field of type.fieldsArray) {
    // A oneof member's rules apply only when it is the member set (PGV).
    if (field.partOf && !seen.has(field.name)) continue;
    checkRules(field, seen.get(field.name), join(path, field.name), problems);
  }
}

function jsonName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function checkField(field: protobuf.Field, value: unknown, path: string, problems: Problems): void {
  if (field.map) {
    if (!isObject(value)) {
      problems.push({ path, message: 'expected a mapping' });
      return;
    }
    for (const [k, v] of Object.entries(value)) checkSingle(field, v, `${path}[${JSON.stringify(k)}]`, problems);
    return;
  }
  if (field.repeated) {
    // Envoy (protobuf JSON) leniently takes a single value for a list.
    const items = Array.isArray(value) ? value : [value];
    for (const [i, item] of items.entries()) checkSingle(field, item, `${path}[${i}]`, problems);
    return;
  }
  if (Array.isArray(value)) {
    problems.push({ path, message: 'expected a single value, got a list' });
    return;
  }
  checkSingle(field, value, path, problems);
}

function checkSingle(field: protobuf.Field, value: unknown, path: string, problems: Problems): void {
  const resolved = field.resolvedType;
  if (resolved && 'fields' in resolved) {
    checkMessage(resolved as protobuf.Type, value, path, problems);
  } else if (resolved) {
    checkEnum(resolved as protobuf.Enum, value, path, problems);
  } else {
    checkScalar(field.type, value, path, problems);
  }
}

function checkEnum(e: protobuf.Enum, value: unknown, path: string, problems: Problems): void {
  if (typeof value === 'string' && value in e.values) return;
  if (typeof value === 'number' && Object.values(e.values).includes(value)) return;
  problems.push({
    path,
    message: `bad enum value ${JSON.stringify(value)} for ${e.fullName.slice(1)} (one of ${Object.keys(e.values).join(', ')})`,
  });
}

const INT_RE = /^-?\d+$/;

function checkScalar(kind: string, value: unknown, path: string, problems: Problems): void {
  const bad = (want: string) => problems.push({ path, message: `expected ${want}, got ${JSON.stringify(value)}` });
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') bad('a string');
      return;
    case 'bool':
      // Envoy accepts quoted booleans.
      if (typeof value !== 'boolean' && value !== 'true' && value !== 'false') bad('a boolean');
      return;
    case 'bytes':
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) bad('base64 bytes');
      return;
    case 'double':
    case 'float':
      if (typeof value === 'number') return;
      if (
        typeof value === 'string'
        && (value === 'NaN'
          || value === 'Infinity'
          || value === '-Infinity'
          || (value.trim() !== '' && !Number.isNaN(Number(value))))
      )
        return;
      bad('a number');
      return;
    default: {
      // (u)int32/64, (s)fixed, sint: integers, quoted or not; unsigned ones not negative.
      const n =
        typeof value === 'number' ? value : typeof value === 'string' && INT_RE.test(value) ? Number(value) : NaN;
      if (!Number.isInteger(n)) bad(`an integer (${kind})`);
      else if (kind.startsWith('u') || kind.startsWith('fixed')) {
        if (n < 0) bad(`a non-negative integer (${kind})`);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------ PGV rules

type Rules = Record<string, Record<string, unknown>>;

/** The field's (validate.rules), merged from protobufjs' parsed options. */
function rulesOf(field: protobuf.Field): Rules | undefined {
  const parsed = (field as unknown as { parsedOptions?: Record<string, unknown>[] }).parsedOptions;
  if (!parsed) return undefined;
  let rules: Rules | undefined;
  for (const opt of parsed) {
    const r = opt['(validate.rules)'];
    if (isObject(r)) rules = { ...rules, ...(r as Rules) };
  }
  return rules;
}

function durationNanos(v: unknown): number | undefined {
  if (typeof v === 'string') {
    const m = /^(-?\d+(?:\.\d+)?)s$/.exec(v);
    return m ? Math.round(Number(m[1]) * 1e9) : undefined;
  }
  if (isObject(v)) return Number(v.seconds ?? 0) * 1e9 + Number(v.nanos ?? 0);
  return undefined;
}

function checkRules(field: protobuf.Field, value: unknown, path: string, problems: Problems): void {
  const rules = rulesOf(field);
  if (!rules) return;
  const fail = (message: string) => problems.push({ path, message });
  const present = value !== undefined;
  if (rules.message?.required === true && !present) fail('is required');
  if (rules.any?.required === true && !present) fail('is required');
  if (rules.duration?.required === true && !present) fail('is required');
  if (field.repeated && rules.repeated) {
    const n = Array.isArray(value) ? value.length : present ? 1 : 0;
    if (
      typeof rules.repeated.min_items === 'number'
      && n < rules.repeated.min_items
      && !(rules.repeated.ignore_empty && n === 0)
    ) {
      fail(`needs at least ${rules.repeated.min_items} item(s)`);
    }
    return;
  }
  if (rules.string && !field.repeated && !field.map) {
    const s = typeof value === 'string' ? value : '';
    const minLen = rules.string.min_len ?? rules.string.min_bytes;
    if (typeof minLen === 'number' && s.length < minLen && !(rules.string.ignore_empty && s === '')) {
      fail(s === '' ? 'must not be empty' : `must be at least ${minLen} characters`);
    }
    const maxLen = rules.string.max_len ?? rules.string.max_bytes;
    if (typeof maxLen === 'number' && s.length > maxLen) fail(`must be at most ${maxLen} characters`);
  }
  for (const kind of ['uint32', 'uint64', 'int32', 'int64', 'double', 'float']) {
    const r = rules[kind];
    if (!r) continue;
    const isWrapper = field.resolvedType !== null;
    if (isWrapper && !present) continue; // wrapper bounds apply only when set
    const n = present ? Number(value) : 0;
    if (r.ignore_empty && n === 0) continue;
    if (typeof r.gt === 'number' && !(n > r.gt)) fail(`must be > ${r.gt}`);
    if (typeof r.gte === 'number' && !(n >= r.gte)) fail(`must be >= ${r.gte}`);
    if (typeof r.lt === 'number' && !(n < r.lt)) fail(`must be < ${r.lt}`);
    if (typeof r.lte === 'number' && !(n <= r.lte)) fail(`must be <= ${r.lte}`);
  }
  if (rules.duration && present) {
    const n = durationNanos(value);
    if (n === undefined) return; // already reported as a bad duration
    for (const [op, test] of [
      ['gt', (a: number, b: number) => a > b],
      ['gte', (a: number, b: number) => a >= b],
      ['lt', (a: number, b: number) => a < b],
      ['lte', (a: number, b: number) => a <= b],
    ] as const) {
      const bound = rules.duration[op];
      if (bound !== undefined && !test(n, durationNanos(bound) ?? 0))
        fail(`duration must be ${op} ${JSON.stringify(bound)}`);
    }
  }
}
