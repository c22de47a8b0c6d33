/**
 * Which masking rules apply to an action: those of every enforced policy in scope for the agent and target (as
 * `decide()` collects them) that name the action's protocol or none, compiled once per policy set and scope. Known
 * before the action is classified, so an adapter can choose how to read the response (e.g. Envoy's body mode on the
 * first answer) from it.
 */
import { compileMaskingRules, type CompiledMasking } from '../masking/index.ts';
import type { AgentContext, Protocol, RequestContext, TargetContext } from './context.ts';
import { inScope } from './evaluate.ts';
import type { CompiledPolicy } from './load.ts';

export interface MaskingScope {
  protocol: Protocol;
  agent: AgentContext;
  target: TargetContext;
  /** Identifies agent and target (ids, groups, labels) within one policy set: equal keys mean equal scopes. */
  key: string;
}

export class MaskingPlans {
  private byPolicies = new WeakMap<readonly CompiledPolicy[], Map<string, CompiledMasking | null>>();

  /** Null when no rule masks anything for this scope. */
  planFor(policies: readonly CompiledPolicy[], scope: MaskingScope): CompiledMasking | null {
    let plans = this.byPolicies.get(policies);
    if (!plans) {
      plans = new Map();
      this.byPolicies.set(policies, plans);
    }
    const key = `${scope.protocol}\n${scope.key}`;
    const hit = plans.get(key);
    if (hit !== undefined) return hit;
    const ctx = { agent: scope.agent, target: scope.target } as RequestContext;
    const rules = policies
      .filter((p) => p.doc.mode === 'enforce' && inScope(p, ctx))
      .flatMap((p) =>
        p.doc.masking
          .filter((m) => !m.protocol || m.protocol === scope.protocol)
          .map((m) => ({ m, owner: p.doc.name })),
      );
    // Detector names are scoped to their policy (each policy was validated on its own when it was written).
    const plan =
      rules.length === 0
        ? null
        : compileMaskingRules(
            rules.map((r) => r.m),
            { protocol: scope.protocol, owners: rules.map((r) => r.owner) },
          );
    if (plans.size > 10_000) plans.clear();
    plans.set(key, plan);
    return plan;
  }
}
