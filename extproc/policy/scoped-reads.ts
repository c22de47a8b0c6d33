/**
 * Which context fields the rules in scope for an agent and target can read (see Condition.reads), computed once per
 * policy set and scope: an adapter asks before paying for an expensive field (the Kubernetes adapter's dry run for
 * `k8s.object`). Rules of enforced and dry-run policies both count, since decide() evaluates both.
 */
import type { RequestContext } from './context.ts';
import { inScope } from './evaluate.ts';
import type { CompiledPolicy } from './load.ts';
import type { MaskingScope } from './masking-plans.ts';

export class ScopedReads {
  private byPolicies = new WeakMap<readonly CompiledPolicy[], Map<string, ReadonlySet<string>>>();

  /** True when a rule in scope may read `field` (e.g. "k8s.object"), directly or through its whole section. */
  reads(policies: readonly CompiledPolicy[], scope: MaskingScope, field: string): boolean {
    const fields = this.fieldsFor(policies, scope);
    return fields.has(field) || fields.has(`${field.slice(0, field.indexOf('.'))}.*`);
  }

  /** The last answer per scope object (a session's, asked on every statement): no key string made to find it again. */
  private readonly lastFor = new WeakMap<
    MaskingScope,
    { policies: readonly CompiledPolicy[]; fields: ReadonlySet<string> }
  >();

  /** Every field a rule in scope may read (`sql.text`, `k8s.*`, `time`, …): the set is the same object per scope. */
  fieldsFor(policies: readonly CompiledPolicy[], scope: MaskingScope): ReadonlySet<string> {
    const last = this.lastFor.get(scope);
    if (last?.policies === policies) return last.fields;
    const fields = this.fieldsByKey(policies, scope);
    this.lastFor.set(scope, { policies, fields });
    return fields;
  }

  private fieldsByKey(policies: readonly CompiledPolicy[], scope: MaskingScope): ReadonlySet<string> {
    let byScope = this.byPolicies.get(policies);
    if (!byScope) {
      byScope = new Map();
      this.byPolicies.set(policies, byScope);
    }
    const key = `${scope.protocol}\n${scope.key}`;
    const hit = byScope.get(key);
    if (hit) return hit;
    const ctx = { agent: scope.agent, target: scope.target } as RequestContext;
    const fields = new Set<string>();
    for (const p of policies) {
      if (!inScope(p, ctx)) continue;
      for (const rule of p.rules) {
        if (rule.protocol && rule.protocol !== scope.protocol) continue;
        for (const f of rule.condition?.reads ?? []) fields.add(f);
      }
      // A masking rule's `when` reads the same context: a rule on k8s.object must get the object to decide on.
      for (const when of p.maskingWhen ?? []) for (const f of when?.reads ?? []) fields.add(f);
    }
    if (byScope.size > 10_000) byScope.clear();
    byScope.set(key, fields);
    return fields;
  }
}
