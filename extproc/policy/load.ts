/**
 * From policy text (YAML or JSON) to a compiled policy: schema validation, defaults, CEL compilation. Every problem is
 * reported with the line and column of the offending node, so `policy lint` can print `FILE:LINE:COL: message`.
 */
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { LineCounter, parseDocument, isMap, isScalar, Scalar, type Document, type Node, type YAMLMap } from 'yaml';
import { parseDurationSeconds } from '../common/duration.ts';
import { compileMaskingRules, MaskingRulesError } from '../masking/compile.ts';
import type { MaskingRule } from '../masking/types.ts';
import { compileCondition, type Condition } from './cel.ts';
import { POLICY_SCHEMA } from './schema.ts';
import type { ApprovalRequirement, PolicyDocument, Rule } from './types.ts';

export interface PolicyProblem {
  line: number;
  col: number;
  /** JSON pointer into the document, e.g. `/rules/2/when`. */
  path: string;
  message: string;
}

export class PolicyLoadError extends Error {
  constructor(readonly problems: PolicyProblem[]) {
    super(problems.map((p) => `${p.line}:${p.col}: ${p.message}`).join('\n'));
    this.name = 'PolicyLoadError';
  }
}

export interface CompiledRule extends Rule {
  /** null when the rule has no condition (always matches). */
  condition: Condition | null;
}

export interface CompiledPolicy {
  doc: PolicyDocument;
  rules: CompiledRule[];
  /** Store version; null for a policy loaded from a file. */
  version: number | null;
  source: string;
  /**
   * Set when the store's current version of this policy does not compile: `fallback` enforces the newest earlier
   * version that does (this object's `version`), `quarantined` refuses everything in the policy's scope.
   */
  degraded?: { state: 'fallback' | 'quarantined'; currentVersion: number; error: string };
  /** The compiled `when` of each masking rule (index for index; null: always); absent when none has one. */
  maskingWhen?: readonly (Condition | null)[];
}

const ajv = new Ajv2020({ allErrors: true, strict: false, useDefaults: false });
const validateSchema = ajv.compile(POLICY_SCHEMA);

function position(
  doc: Document,
  lines: LineCounter,
  path: (string | number)[],
): { line: number; col: number; node?: Node } {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = (depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true)) as Node | undefined;
    if (node?.range) {
      const { line, col } = lines.linePos(node.range[0]);
      return { line, col, node };
    }
  }
  return { line: 1, col: 1 };
}

/** Where `path` (e.g. ['masking', 0, 'detectors', 2]) starts in a policy's source: for problems found after loading. */
export function sourcePosition(source: string, path: (string | number)[]): { line: number; col: number } {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false });
  const { line, col } = position(doc, lines, path);
  return { line, col };
}

/** The key node of `key` inside the mapping at `path` (to point at the key, not its value). */
function keyNode(doc: Document, path: (string | number)[], key: string): Node | undefined {
  const map = (path.length ? doc.getIn(path, true) : doc.contents) as YAMLMap | undefined;
  if (!isMap(map)) return undefined;
  const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
  return pair?.key as Node | undefined;
}

function pointer(path: (string | number)[]): string {
  return `/${path.join('/')}`;
}

function schemaProblem(doc: Document, lines: LineCounter, err: ErrorObject): PolicyProblem {
  const path = err.instancePath
    .split('/')
    .slice(1)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')));
  let message = `${err.instancePath || 'document'} ${err.message ?? 'is invalid'}`;
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    const key = keyNode(doc, path, extra);
    path.push(extra);
    message = `unknown field "${extra}"`;
    if (key?.range) return { ...lines.linePos(key.range[0]), path: pointer(path), message };
  } else if (err.keyword === 'enum') {
    message = `${err.instancePath} must be one of: ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  }
  const pos = position(doc, lines, path);
  return { line: pos.line, col: pos.col, path: pointer(path), message };
}

/**
 * Maps an offset inside a CEL expression to the line and column of the YAML scalar that holds it. The expression is
 * the scalar's value, which is not its source text: a folded block (`>-`) and a plain or quoted scalar spread over
 * several lines join those lines with spaces, a literal block (`|`) keeps them; so the source lines are walked beside
 * the value, a value character per source character and one per line break.
 */
function celPosition(
  node: Node | undefined,
  lines: LineCounter,
  text: string,
  expr: string,
  offset: number,
): { line: number; col: number } {
  if (!node?.range || !isScalar(node)) return { line: 1, col: 1 };
  const src = text.split('\n');
  const start = lines.linePos(node.range[0]);
  const last = lines.linePos(node.range[1]).line;
  const literal = node.type === Scalar.BLOCK_LITERAL;
  const quote = node.type === Scalar.QUOTE_DOUBLE ? '"' : node.type === Scalar.QUOTE_SINGLE ? "'" : '';
  const rows: { line: number; col: number; text: string }[] = [];
  if (literal || node.type === Scalar.BLOCK_FOLDED) {
    // Content starts on the line after the indicator, indented by its first non-blank line's indentation.
    const body = src.slice(start.line, last);
    const indent = body.find((l) => l.trim())?.match(/^ */)?.[0].length ?? 0;
    body.forEach((l, i) => {
      rows.push({
        line: start.line + 1 + i,
        col: indent + 1,
        text: literal ? l.slice(indent) : l.slice(indent).trimEnd(),
      });
    });
  } else {
    const quoted = quote ? 1 : 0;
    const first = src[start.line - 1] ?? '';
    rows.push({ line: start.line, col: start.col + quoted, text: first.slice(start.col - 1 + quoted).trimEnd() });
    for (let l = start.line + 1; l <= last; l++) {
      const t = src[l - 1] ?? '';
      const lead = t.match(/^\s*/)?.[0].length ?? 0;
      rows.push({ line: l, col: lead + 1, text: t.slice(lead).trimEnd() });
    }
  }
  let row = 0;
  let col = 0;
  for (let k = 0; k < offset && k < expr.length && row < rows.length; k++) {
    if (col < rows[row].text.length) {
      // An escape in a quoted scalar is two source characters for one of the value (`\"` and `''`).
      const pair = rows[row].text.slice(col, col + 2);
      col += (quote === '"' && pair[0] === '\\') || (quote === "'" && pair === "''") ? 2 : 1;
      continue;
    }
    // The end of a source line: this value character is its line break (a space where the lines were joined).
    row++;
    col = 0;
    // Folding turns a line break followed by blank lines into one newline per blank line.
    if (!literal && expr[k] === '\n' && rows[row]?.text === '') row++;
  }
  const at = rows[Math.min(row, rows.length - 1)];
  return at ? { line: at.line, col: at.col + col } : { line: start.line, col: start.col };
}

function approvalOf(raw: Record<string, unknown>): ApprovalRequirement {
  return {
    group: String(raw.group),
    grant: raw.grant === 'window' ? 'window' : 'once',
    windowSeconds: raw.window ? parseDurationSeconds(String(raw.window)) : 3600,
    minApprovals: typeof raw.minApprovals === 'number' ? raw.minApprovals : 1,
    ttlSeconds: raw.ttl ? parseDurationSeconds(String(raw.ttl)) : 900,
    holdSeconds: raw.hold ? parseDurationSeconds(String(raw.hold)) : 0,
  };
}

function normalize(raw: Record<string, unknown>): PolicyDocument {
  const scope = (raw.scope ?? {}) as { agents?: Record<string, unknown>; targets?: Record<string, unknown> };
  const rules = (raw.rules as Record<string, unknown>[]).map(
    (r): Rule => ({
      name: String(r.name),
      ...(r.protocol ? { protocol: r.protocol as Rule['protocol'] } : {}),
      ...(r.when ? { when: String(r.when) } : {}),
      action: r.action as Rule['action'],
      ...(r.message ? { message: String(r.message) } : {}),
      ...(r.approval ? { approval: approvalOf(r.approval as Record<string, unknown>) } : {}),
    }),
  );
  const masking = ((raw.masking ?? []) as Record<string, unknown>[]).map(
    (m): MaskingRule => ({
      name: String(m.name),
      ...(m.protocol ? { protocol: m.protocol as MaskingRule['protocol'] } : {}),
      ...(m.when ? { when: String(m.when) } : {}),
      entities: (m.entities ?? []) as MaskingRule['entities'],
      detectors: (m.detectors ?? []) as MaskingRule['detectors'],
      columns: (m.columns ?? []) as string[],
      paths: (m.paths ?? []) as string[],
      strategy: (m.strategy ?? 'redact') as MaskingRule['strategy'],
      keep: typeof m.keep === 'number' ? m.keep : 4,
    }),
  );
  return {
    name: String(raw.name),
    ...(raw.description ? { description: String(raw.description) } : {}),
    mode: raw.mode === 'dry-run' ? 'dry-run' : 'enforce',
    scope: {
      agents: {
        ids: (scope.agents?.ids ?? []) as string[],
        groups: (scope.agents?.groups ?? []) as string[],
        labels: (scope.agents?.labels ?? {}) as Record<string, string>,
      },
      targets: {
        names: (scope.targets?.names ?? []) as string[],
        kinds: (scope.targets?.kinds ?? []) as PolicyDocument['scope']['targets']['kinds'],
        labels: (scope.targets?.labels ?? {}) as Record<string, string>,
      },
    },
    rules,
    masking,
  };
}

/** Parses, validates and compiles one policy. Throws PolicyLoadError listing every problem found. */
export function loadPolicy(source: string, version: number | null = null): CompiledPolicy {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new PolicyLoadError(
      doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return { line, col, path: '', message: e.message.split('\n')[0] };
      }),
    );
  }
  const raw = doc.toJS() as unknown;
  if (!validateSchema(raw)) {
    throw new PolicyLoadError(
      (validateSchema.errors ?? []).filter((e) => e.keyword !== 'if').map((e) => schemaProblem(doc, lines, e)),
    );
  }
  const policy = normalize(raw as unknown as Record<string, unknown>);
  const problems: PolicyProblem[] = [];
  const seen = new Set<string>();
  const rules = policy.rules.map((rule, i): CompiledRule => {
    if (seen.has(rule.name)) {
      const pos = position(doc, lines, ['rules', i, 'name']);
      problems.push({
        line: pos.line,
        col: pos.col,
        path: `/rules/${i}/name`,
        message: `duplicate rule name "${rule.name}"`,
      });
    }
    seen.add(rule.name);
    if (rule.when === undefined) return { ...rule, condition: null };
    const compiled = compileCondition(rule.when);
    if (compiled.ok) return { ...rule, condition: compiled.condition };
    const pos = position(doc, lines, ['rules', i, 'when']);
    const at = celPosition(pos.node, lines, source, rule.when, compiled.problem.offset);
    problems.push({
      line: at.line,
      col: at.col,
      path: `/rules/${i}/when`,
      message: `CEL: ${compiled.problem.message}`,
    });
    return { ...rule, condition: null };
  });
  const maskingWhen = policy.masking.map((m, i): Condition | null => {
    if (m.when === undefined) return null;
    const compiled = compileCondition(m.when);
    if (compiled.ok) return compiled.condition;
    const pos = position(doc, lines, ['masking', i, 'when']);
    const at = celPosition(pos.node, lines, source, m.when, compiled.problem.offset);
    problems.push({
      line: at.line,
      col: at.col,
      path: `/masking/${i}/when`,
      message: `CEL: ${compiled.problem.message}`,
    });
    return null;
  });
  try {
    compileMaskingRules(policy.masking);
  } catch (err) {
    if (!(err instanceof MaskingRulesError)) throw err;
    for (const issue of err.issues) {
      // `detectors[1].pattern` → ['masking', i, 'detectors', 1, 'pattern']
      const field = issue.field
        .split(/[.[\]]+/)
        .filter(Boolean)
        .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
      const path: (string | number)[] = ['masking', issue.index, ...field];
      const pos = position(doc, lines, path);
      problems.push({ line: pos.line, col: pos.col, path: pointer(path), message: issue.message });
    }
  }
  if (problems.length) throw new PolicyLoadError(problems);
  return { doc: policy, rules, version, source, ...(maskingWhen.some((c) => c) ? { maskingWhen } : {}) };
}

const QUARANTINE_RULE = 'quarantine';

function stringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function stringMap(v: unknown): v is Record<string, string> {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((s) => typeof s === 'string')
  );
}

/**
 * The scope and mode of a policy that does not compile, read as far as they can be trusted. A scope that cannot be
 * read selects everything (empty selectors): refusing too much is the safe side when it is unknown what the policy
 * guarded.
 */
function salvage(source: string): { scope: PolicyDocument['scope']; mode: PolicyDocument['mode'] } {
  const everything: PolicyDocument['scope'] = {
    agents: { ids: [], groups: [], labels: {} },
    targets: { names: [], kinds: [], labels: {} },
  };
  let raw: unknown;
  try {
    const doc = parseDocument(source, { prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length) return { scope: everything, mode: 'enforce' };
    raw = doc.toJS();
  } catch {
    return { scope: everything, mode: 'enforce' };
  }
  if (typeof raw !== 'object' || raw === null) return { scope: everything, mode: 'enforce' };
  const r = raw as Record<string, unknown>;
  const mode = r.mode === 'dry-run' ? 'dry-run' : 'enforce';
  const scope = (r.scope ?? {}) as Record<string, Record<string, unknown> | undefined>;
  if (typeof scope !== 'object' || Array.isArray(scope)) return { scope: everything, mode };
  const a = scope.agents ?? {};
  const t = scope.targets ?? {};
  const ids = a.ids ?? [];
  const groups = a.groups ?? [];
  const agentLabels = a.labels ?? {};
  const names = t.names ?? [];
  const kinds = t.kinds ?? [];
  const targetLabels = t.labels ?? {};
  if (
    !stringList(ids)
    || !stringList(groups)
    || !stringMap(agentLabels)
    || !stringList(names)
    || !stringList(kinds)
    || !stringMap(targetLabels)
  ) {
    return { scope: everything, mode };
  }
  return {
    scope: {
      agents: { ids, groups, labels: agentLabels },
      targets: { names, kinds: kinds as PolicyDocument['scope']['targets']['kinds'], labels: targetLabels },
    },
    mode,
  };
}

/**
 * A stand-in for a stored policy none of whose versions compiles: one rule that denies every action in the policy's
 * scope, so a broken policy never opens what it closed.
 */
export function quarantinePolicy(v: { name: string; version: number; source: string }, error: string): CompiledPolicy {
  const { scope, mode } = salvage(v.source);
  const message = `policy ${v.name} has no version that compiles; everything in its scope is refused`;
  const rule: Rule = { name: QUARANTINE_RULE, action: 'deny', message };
  return {
    doc: { name: v.name, mode, scope, rules: [rule], masking: [] },
    rules: [{ ...rule, condition: null }],
    version: v.version,
    source: v.source,
    degraded: { state: 'quarantined', currentVersion: v.version, error },
  };
}
