/**
 * Which context fields the rules in scope for an agent and target can read (see Condition.reads), computed once per
 * policy set and scope: an adapter asks before paying for an expensive field (the Kubernetes adapter's dry run for
 * `k8s.object`). Rules of enforced and dry-run policies both count, since decide() evaluates both.
 */
import type { RequestContext } from './context.ts';
import { inScope } from './evaluate.ts';
import type { CompiledPolicy } from './load.ts';
import type { MaskingScope } from './masking-plans.ts';
import { PerScope } from './per-scope.ts';

export class ScopedReads {
  private readonly scopes = new PerScope<ReadonlySet<string>>((policies, scope) => this.fieldsOf(policies, scope));

  /** True when a rule in scope may read `field` (e.g. "k8s.object"), directly or through its whole section. */
  reads(policies: readonly CompiledPolicy[], scope: MaskingScope, field: string): boolean {
    const fields = this.fieldsFor(policies, scope);
    return fields.has(field) || fields.has(`${field.slice(0, field.indexOf('.'))}.*`);
  }

  /** Every field a rule in scope may read (`sql.text`, `k8s.*`, `time`, …): the set is the same object per scope. */
  fieldsFor(policies: readonly CompiledPolicy[], scope: MaskingScope): ReadonlySet<string> {
    return this.scopes.get(policies, scope);
  }

  private fieldsOf(policies: readonly CompiledPolicy[], scope: MaskingScope): ReadonlySet<string> {
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
    return fields;
  }
}
