/**
 * Compiles the active policies into the snapshot the proxy-wasm filter enforces without CEL (wasm-snapshot.ts).
 * Only what cannot depend on anything else goes in, so the filter never refuses what ext_proc would let through:
 * - a deny rule of an enforced, healthy policy that applies to every agent and to Kubernetes targets, whose condition
 *   is a conjunction of equalities / `in` lists over k8s.verb, k8s.resource, k8s.subresource and k8s.apiGroup (plus
 *   k8s.isResourceRequest); deny wins over every other action, so such a rule decides alone. It becomes method + path
 *   patterns for exactly the request shapes that RequestInfo classifies that way; GET is only used when the rule does
 *   not name a verb (a GET is get, list or watch depending on the query);
 * - token presence and shape, always (ext_proc refuses a request without an agent token whatever the policy);
 * - the revoked token ids the service knows;
 * - the entities of Kubernetes masking rules, each with its strictest strategy (`hash` needs the service's key, so
 *   the filter redacts instead — stricter).
 * A deny rule that does not fit is simply left to ext_proc.
 */
import { createHash } from 'node:crypto';
import { BUILTIN_ENTITIES, type BuiltinEntity } from '../masking/types.ts';
import type { CompiledPolicy } from '../policy/load.ts';
import type { PolicyDocument, Rule } from '../policy/types.ts';
import {
  SNAPSHOT_LIMITS,
  type FilterStrategy,
  type StaticDenyRule,
  type StreamMasking,
  type WasmSnapshot,
} from './wasm-snapshot.ts';

type Field = 'verb' | 'resource' | 'subresource' | 'apiGroup';

/** Allowed values per field; a field absent from the condition is unconstrained. */
type Conjunction = Partial<Record<Field, string[]>>;

const FIELD_TERM = /^k8s\.(verb|resource|subresource|apiGroup)\s*(==|in)\s*(.+)$/;
const STRING = /^"([a-z0-9.-]*)"$/;

function parseList(src: string): string[] | undefined {
  const s = src.trim();
  if (!s.startsWith('[') || !s.endsWith(']')) return undefined;
  const items = s
    .slice(1, -1)
    .split(',')
    .map((x) => STRING.exec(x.trim())?.[1]);
  return items.every((x): x is string => x !== undefined) ? items : undefined;
}

/** The condition as a conjunction over the four fields, or undefined if it is anything else. */
export function parseConjunction(when: string | undefined): Conjunction | undefined {
  if (!when || /\|\||[()!]/.test(when)) return undefined;
  const out: Conjunction = {};
  for (const raw of when.split('&&')) {
    const term = raw.trim();
    if (term === 'k8s.isResourceRequest' || term === 'k8s.isResourceRequest == true') continue;
    const m = FIELD_TERM.exec(term);
    if (!m) return undefined;
    const field = m[1] as Field;
    const values = m[2] === '==' ? [STRING.exec(m[3].trim())?.[1]] : parseList(m[3]);
    if (!values || values.some((v) => v === undefined)) return undefined;
    const set = values as string[];
    out[field] = out[field] ? out[field].filter((v) => set.includes(v)) : set;
  }
  return out;
}

/** Verbs that one method + path shape always classifies as, GET excluded (see above). */
const NAMED_VERBS: Record<string, string> = { create: 'POST', update: 'PUT', patch: 'PATCH', delete: 'DELETE' };

/** Method + path patterns for the requests the conjunction matches (a subset of them when the rest has no shape). */
export function requestShapes(c: Conjunction): { method: string; pattern: string }[] {
  if (!c.resource || c.resource.length === 0) return [];
  const groups = (c.apiGroup ?? ['']).map((g) => (g === '' ? '/api/v1' : `/apis/${g}/*`));
  const subresources = c.subresource ?? [''];
  const methods: string[] = [];
  if (!c.verb) methods.push('*');
  else {
    for (const v of c.verb) if (NAMED_VERBS[v]) methods.push(NAMED_VERBS[v]);
  }
  const out: { method: string; pattern: string }[] = [];
  for (const prefix of groups)
    for (const resource of c.resource)
      for (const sub of subresources) {
        const tail = sub === '' ? '' : `/${sub}`;
        // create on a named object exists only for subresources (exec, eviction, ...); on the collection otherwise.
        for (const method of methods) {
          const named = method !== 'POST' || sub !== '';
          const paths =
            resource === 'namespaces'
              ? [named ? `${prefix}/namespaces/*${tail}` : `${prefix}/namespaces`]
              : [
                  named ? `${prefix}/namespaces/*/${resource}/*${tail}` : `${prefix}/namespaces/*/${resource}`,
                  named ? `${prefix}/${resource}/*${tail}` : `${prefix}/${resource}`,
                ];
          if (method === '*' && sub === '') continue; // GET on a bare object may be a watch: not static
          for (const pattern of paths) out.push({ method, pattern });
        }
      }
  return out;
}

function appliesToEveryAgentOnKubernetes(doc: PolicyDocument): boolean {
  const { agents, targets } = doc.scope;
  const everyAgent = agents.ids.length === 0 && agents.groups.length === 0 && Object.keys(agents.labels).length === 0;
  const kubeTargets =
    targets.names.length === 0
    && Object.keys(targets.labels).length === 0
    && (targets.kinds.length === 0 || targets.kinds.includes('kubernetes'));
  return everyAgent && kubeTargets;
}

function staticDenies(policy: CompiledPolicy, rule: Rule): StaticDenyRule[] {
  if (rule.action !== 'deny' || (rule.protocol && rule.protocol !== 'kubernetes')) return [];
  const c = parseConjunction(rule.when);
  if (!c) return [];
  const message = rule.message ?? `denied by policy ${policy.doc.name} rule ${rule.name}`;
  return requestShapes(c).map((s) => ({ code: 403, ...s, message }));
}

const STRICTNESS: Record<FilterStrategy, number> = { redact: 3, mask: 2, partial: 1 };
/** 36-byte ids (UUIDs) on 45-byte lines: 600 of them take under 27 KiB of the filter's 64 KiB. */
const MAX_REVOKED_IN_SNAPSHOT = 600;
/** What the deny lines may take, so that with the revoked ids and the masking lines a snapshot always fits. */
const DENY_BUDGET_BYTES = 32 * 1024;

/** The first deny rules (in evaluation order) that fit the filter's count and the byte budget. */
function withinBudget(denies: StaticDenyRule[]): StaticDenyRule[] {
  let bytes = 0;
  const kept: StaticDenyRule[] = [];
  for (const d of denies.slice(0, SNAPSHOT_LIMITS.denies)) {
    bytes += Buffer.byteLength(`deny ${d.code} ${d.method} ${d.pattern} ${d.message}\n`);
    if (bytes > DENY_BUDGET_BYTES) break;
    kept.push(d);
  }
  return kept;
}

export function compileSnapshot(policies: readonly CompiledPolicy[], revokedTokenIds: readonly string[]): WasmSnapshot {
  const enforced = [...policies]
    .filter((p) => p.doc.mode === 'enforce' && !p.degraded && appliesToEveryAgentOnKubernetes(p.doc))
    .sort((a, b) => (a.doc.name < b.doc.name ? -1 : a.doc.name > b.doc.name ? 1 : 0));
  const denies = enforced.flatMap((p) => p.doc.rules.flatMap((r) => staticDenies(p, r)));
  const byEntity = new Map<BuiltinEntity, StreamMasking>();
  for (const p of policies) {
    if (p.doc.mode !== 'enforce') continue;
    for (const m of p.doc.masking) {
      if (m.protocol && m.protocol !== 'kubernetes') continue;
      const strategy: FilterStrategy = m.strategy === 'hash' ? 'redact' : m.strategy;
      for (const e of m.entities) {
        const entity = BUILTIN_ENTITIES.indexOf(e);
        if (entity < 0 || entity > 31) continue;
        const have = byEntity.get(e);
        if (!have || STRICTNESS[strategy] > STRICTNESS[have.strategy])
          byEntity.set(e, { entity, strategy, keep: m.keep });
      }
    }
  }
  // Within the filter's limits, leaving out is safe (ext_proc checks revocations and decides every rule): only the
  // first deny rules in evaluation order are kept, and revoked ids up to a share of the size that always fits.
  const revoked = [...new Set(revokedTokenIds)].filter((j) => /^[A-Za-z0-9._-]{1,36}$/.test(j)).sort();
  const body = {
    tokenRequired: true,
    revokedTokenIds: revoked.slice(0, MAX_REVOKED_IN_SNAPSHOT),
    denies: withinBudget(denies),
    masking: [...byEntity.values()].sort((a, b) => a.entity - b.entity),
  };
  const version = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  return { version, ...body };
}
