/**
 * Masking rules of a policy → a compiled plan the engine runs. Validation collects every problem with the index of
 * the rule and the field (e.g. `detectors[1].pattern`), so the policy loader can point at a line and column.
 */
import { matchColumn, parseColumnPattern, type ColumnPattern } from './column-matcher.ts';
import { findCustom, type CustomMatcher } from './custom-detectors.ts';
import { parseJsonPath, type JsonPath } from './json-path.ts';
import {
  BUILTIN_ENTITIES,
  STRATEGIES,
  type BuiltinEntity,
  type CustomDetector,
  type MaskingRule,
  type Strategy,
} from './types.ts';

export interface MaskingRuleIssue {
  /** Index of the rule in the list given. */
  index: number;
  /** Field inside the rule, e.g. `strategy`, `detectors[0].pattern`, `paths[2]`. */
  field: string;
  message: string;
}

export class MaskingRulesError extends Error {
  readonly code = 'invalid_masking_rules';
  constructor(readonly issues: MaskingRuleIssue[]) {
    super(`invalid masking rules: ${issues.map((i) => `masking[${i.index}].${i.field}: ${i.message}`).join('; ')}`);
  }
}

/** How one entity (built-in, custom or field rule) is masked. */
export interface EntityMasking {
  strategy: Strategy;
  keep: number;
}

/** A whole-value rule (column or JSON path); `label` names it in redactions: `[REDACTED:<label>]`. */
export interface FieldMasking extends EntityMasking {
  label: string;
}

export interface CompiledDetector extends EntityMasking {
  name: string;
  /** Engine entity id (32..62). */
  id: number;
  kind: CustomDetector['kind'];
  find: CustomMatcher;
}

export interface CompiledMasking {
  /** Bit i set: built-in entity BUILTIN_ENTITIES[i] is detected. */
  readonly entityMask: number;
  /** Strategy per built-in entity, indexed like BUILTIN_ENTITIES (only meaningful where the bit is set). */
  readonly builtin: readonly EntityMasking[];
  readonly custom: readonly CompiledDetector[];
  readonly columns: readonly { pattern: ColumnPattern; field: FieldMasking }[];
  readonly paths: readonly { path: JsonPath; field: FieldMasking }[];
  /** Nothing to detect in content (field rules may still apply). */
  readonly contentEmpty: boolean;
  /**
   * The fewest ASCII digits a value must hold for any of the plan's content detectors to find something in it (a
   * card number has 13 or more, an SSN 9): a value with fewer is answered without reading it. 0 when a detector
   * needs none (an e-mail address, a key) or is a policy's own.
   */
  readonly minDigits: number;
}

/**
 * Digits each built-in entity needs at the least, from its definition (docs/masking.md): CREDIT_CARD 13–19 digits,
 * US_SSN nine. An entity not listed may need none.
 */
const MIN_DIGITS: Partial<Record<BuiltinEntity, number>> = { CREDIT_CARD: 13, US_SSN: 9 };

/** Ids below are built-in entities (the entity mask is 32 bits); custom detectors take 32..62, field rules 63. */
export const CUSTOM_ID_BASE = 32;
export const FIELD_ID = 63;
/** How many custom detectors one compiled plan holds (every policy in a scope together). */
export const MAX_CUSTOM = FIELD_ID - CUSTOM_ID_BASE;
const NAME = /^[A-Z][A-Z0-9_]{0,47}$/;
const LABEL = /^[A-Za-z0-9_.:-]{1,64}$/;
const REGEX_FLAGS = /^[imsu]*$/;

/**
 * Checks the shape of raw masking rules (as parsed from YAML/JSON) and fills defaults: entities, detectors, columns
 * and paths default to [], strategy to 'redact', keep to 4. Throws MaskingRulesError listing every problem.
 */
export function validateMaskingRules(raw: unknown): MaskingRule[] {
  const issues: MaskingRuleIssue[] = [];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw))
    throw new MaskingRulesError([{ index: -1, field: '', message: 'masking must be a list of rules' }]);
  const rules = raw.map((r: unknown, index): MaskingRule => {
    const bad = (field: string, message: string): void => {
      issues.push({ index, field, message });
    };
    if (typeof r !== 'object' || r === null || Array.isArray(r)) {
      bad('', 'a masking rule must be an object');
      return emptyRule(`masking-${index}`);
    }
    const o = r as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (!['name', 'protocol', 'when', 'entities', 'detectors', 'columns', 'paths', 'strategy', 'keep'].includes(key))
        bad(key, 'unknown field');
    }
    const name = o.name ?? `masking-${index}`;
    if (typeof name !== 'string' || !LABEL.test(name)) bad('name', 'must be 1–64 letters, digits, _ . : -');
    if (o.protocol !== undefined && !['kubernetes', 'postgres', 'ssh'].includes(o.protocol as string)) {
      bad('protocol', 'must be kubernetes, postgres or ssh');
    }
    const strategy = o.strategy ?? 'redact';
    if (!STRATEGIES.includes(strategy as Strategy)) bad('strategy', `must be one of ${STRATEGIES.join(', ')}`);
    const keep = o.keep ?? 4;
    if (!Number.isInteger(keep) || (keep as number) < 0 || (keep as number) > 64)
      bad('keep', 'must be an integer from 0 to 64');
    const list = (field: string): unknown[] => {
      const v = o[field] ?? [];
      if (!Array.isArray(v)) {
        bad(field, 'must be a list');
        return [];
      }
      return v;
    };
    const entities = list('entities');
    entities.forEach((e, k) => {
      if (!BUILTIN_ENTITIES.includes(e as BuiltinEntity))
        bad(`entities[${k}]`, `unknown entity ${JSON.stringify(e)} (known: ${BUILTIN_ENTITIES.join(', ')})`);
    });
    const detectors = list('detectors');
    detectors.forEach((d, k) => {
      checkDetectorShape(d, (f, m) => bad(`detectors[${k}]${f}`, m));
    });
    const strings = (field: string): string[] => {
      const v = list(field);
      v.forEach((s, k) => {
        if (typeof s !== 'string' || s === '') bad(`${field}[${k}]`, 'must be a non-empty string');
      });
      return v as string[];
    };
    return {
      name: name as string,
      ...(o.protocol === undefined ? {} : { protocol: o.protocol as MaskingRule['protocol'] }),
      // A CEL condition: the policy loader compiles it (with line and column); the engine never evaluates it.
      ...(typeof o.when === 'string' ? { when: o.when } : {}),
      entities: entities as BuiltinEntity[],
      detectors: detectors as CustomDetector[],
      columns: strings('columns'),
      paths: strings('paths'),
      strategy: strategy as Strategy,
      keep: keep as number,
    };
  });
  if (issues.length > 0) throw new MaskingRulesError(issues);
  return rules;
}

function emptyRule(name: string): MaskingRule {
  return { name, entities: [], detectors: [], columns: [], paths: [], strategy: 'redact', keep: 4 };
}

function checkDetectorShape(d: unknown, bad: (field: string, message: string) => void): void {
  if (typeof d !== 'object' || d === null) {
    bad('', 'a detector must be an object');
    return;
  }
  const o = d as Record<string, unknown>;
  if (typeof o.name !== 'string' || !NAME.test(o.name))
    bad('.name', 'must be UPPER_SNAKE_CASE (A–Z, 0–9, _; at most 48)');
  else if (BUILTIN_ENTITIES.includes(o.name as BuiltinEntity)) bad('.name', 'is the name of a built-in entity');
  if (o.kind === 'regex') {
    if (typeof o.pattern !== 'string' || o.pattern === '') bad('.pattern', 'must be a non-empty string');
    if (o.flags !== undefined && (typeof o.flags !== 'string' || !REGEX_FLAGS.test(o.flags)))
      bad('.flags', 'may only contain i, m, s, u');
  } else if (o.kind === 'words') {
    if (!Array.isArray(o.words) || o.words.length === 0) bad('.words', 'must be a non-empty list');
    else
      o.words.forEach((w, k) => {
        if (typeof w !== 'string' || w.trim() === '') bad(`.words[${k}]`, 'must be a non-empty string');
      });
    if (o.caseSensitive !== undefined && typeof o.caseSensitive !== 'boolean')
      bad('.caseSensitive', 'must be a boolean');
  } else {
    bad('.kind', "must be 'regex' or 'words'");
  }
}

/** Stricter strategies win when two rules name the same entity: redact, then hash, then mask, then partial. */
const STRICTNESS: Record<Strategy, number> = { redact: 3, hash: 2, mask: 1, partial: 0 };

function stricter(a: EntityMasking | undefined, b: EntityMasking): EntityMasking {
  if (!a) return b;
  if (STRICTNESS[b.strategy] !== STRICTNESS[a.strategy]) return STRICTNESS[b.strategy] > STRICTNESS[a.strategy] ? b : a;
  return { strategy: a.strategy, keep: Math.min(a.keep, b.keep) };
}

/**
 * Validates and compiles masking rules. With `protocol`, only rules for that protocol (or for every protocol) are
 * compiled; all rules are validated either way. An empty list (or rules that name nothing) compiles to a plan that
 * masks nothing.
 *
 * A detector name is unique within one policy. Rules from several policies compiled together (the plan for an agent
 * and target) give `owners`, the policy of each rule: two policies may each define a detector of the same name, and
 * both run (their redactions carry the same label).
 */
export function compileMaskingRules(
  raw: readonly unknown[] | MaskingRule[],
  opts: { protocol?: MaskingRule['protocol']; owners?: readonly string[] } = {},
): CompiledMasking {
  const rules = validateMaskingRules(raw);
  const issues: MaskingRuleIssue[] = [];
  const builtin: (EntityMasking | undefined)[] = BUILTIN_ENTITIES.map(() => undefined);
  const custom: CompiledDetector[] = [];
  const columns: { pattern: ColumnPattern; field: FieldMasking }[] = [];
  const paths: { path: JsonPath; field: FieldMasking }[] = [];
  const seen = new Map<string, number>();
  rules.forEach((rule, index) => {
    const how: EntityMasking = { strategy: rule.strategy, keep: rule.keep };
    const field: FieldMasking = { ...how, label: rule.name };
    const applies = !opts.protocol || !rule.protocol || rule.protocol === opts.protocol;
    const owner = opts.owners?.[index] ?? '';
    rule.detectors.forEach((d, k) => {
      const key = `${owner}\n${d.name}`;
      const previous = seen.get(key);
      if (previous !== undefined && previous !== index) {
        issues.push({
          index,
          field: `detectors[${k}].name`,
          message: `detector ${d.name} is already defined by masking[${previous}]`,
        });
        return;
      }
      seen.set(key, index);
      let find: CustomMatcher;
      try {
        find = findCustom(d);
      } catch (err) {
        issues.push({
          index,
          field: `detectors[${k}].${d.kind === 'regex' ? 'pattern' : 'words'}`,
          message: (err as Error).message,
        });
        return;
      }
      if (!applies) return;
      if (custom.length >= MAX_CUSTOM) {
        issues.push({ index, field: `detectors[${k}]`, message: `at most ${MAX_CUSTOM} custom detectors` });
        return;
      }
      custom.push({ name: d.name, id: CUSTOM_ID_BASE + custom.length, kind: d.kind, find, ...how });
    });
    rule.columns.forEach((c, k) => {
      try {
        const pattern = parseColumnPattern(c);
        if (applies) columns.push({ pattern, field });
      } catch (err) {
        issues.push({ index, field: `columns[${k}]`, message: (err as Error).message });
      }
    });
    rule.paths.forEach((p, k) => {
      try {
        const path = parseJsonPath(p);
        if (applies) paths.push({ path, field });
      } catch (err) {
        issues.push({ index, field: `paths[${k}]`, message: (err as Error).message });
      }
    });
    if (!applies) return;
    for (const e of rule.entities) {
      const id = BUILTIN_ENTITIES.indexOf(e);
      builtin[id] = stricter(builtin[id], how);
    }
  });
  if (issues.length > 0) throw new MaskingRulesError(issues);
  let entityMask = 0;
  let minDigits = custom.length === 0 ? Number.POSITIVE_INFINITY : 0;
  builtin.forEach((b, i) => {
    if (!b) return;
    entityMask |= 1 << i;
    minDigits = Math.min(minDigits, MIN_DIGITS[BUILTIN_ENTITIES[i]] ?? 0);
  });
  return {
    entityMask,
    builtin: builtin.map((b) => b ?? { strategy: 'redact', keep: 4 }),
    custom,
    columns,
    paths,
    contentEmpty: entityMask === 0 && custom.length === 0,
    minDigits: Number.isFinite(minDigits) ? minDigits : 0,
  };
}

/** For Postgres results: the field rule of a column (first matching rule), or undefined. */
export function columnMatcher(plan: CompiledMasking): (column: string, table?: string) => FieldMasking | undefined {
  return (column, table) => plan.columns.find((c) => matchColumn(c.pattern, column, table))?.field;
}

/** A plan for the CLI and tests: the given built-in entities (all when omitted) with one strategy. */
export function builtinPlan(
  entities: readonly BuiltinEntity[] = BUILTIN_ENTITIES,
  strategy: Strategy = 'redact',
  keep = 4,
): CompiledMasking {
  return compileMaskingRules([{ name: 'builtin', entities: [...entities], strategy, keep }]);
}
