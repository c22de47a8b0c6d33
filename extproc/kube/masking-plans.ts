/**
 * Which masking plan applies to a request: the masking rules of every enforced policy in scope for the agent and
 * target (as `decide()` collects them), compiled once per policy set and scope. Known at request-headers time, before
 * the request is classified, so the response body mode can be chosen with `mode_override` on the first answer.
 */
import { compileMaskingRules, type CompiledMasking } from '../masking/index.ts';
import type { RequestContext } from '../policy/context.ts';
import { inScope } from '../policy/evaluate.ts';
import type { CompiledPolicy } from '../policy/load.ts';

export class MaskingPlans {
  private byPolicies = new WeakMap<readonly CompiledPolicy[], Map<string, CompiledMasking | null>>();

  /** `ctx` needs agent and target only. Null when no rule masks anything for this scope. */
  planFor(policies: readonly CompiledPolicy[], ctx: Pick<RequestContext, 'agent' | 'target'>): CompiledMasking | null {
    let plans = this.byPolicies.get(policies);
    if (!plans) {
      plans = new Map();
      this.byPolicies.set(policies, plans);
    }
    const key = JSON.stringify([ctx.agent.id, ctx.agent.groups, ctx.agent.labels, ctx.target.name, ctx.target.labels]);
    const hit = plans.get(key);
    if (hit !== undefined) return hit;
    const rules = policies
      .filter((p) => p.doc.mode === 'enforce' && inScope(p, ctx as RequestContext))
      .flatMap((p) => p.doc.masking.filter((m) => !m.protocol || m.protocol === 'kubernetes'));
    const plan = rules.length === 0 ? null : compileMaskingRules(rules, { protocol: 'kubernetes' });
    if (plans.size > 10_000) plans.clear();
    plans.set(key, plan);
    return plan;
  }
}
