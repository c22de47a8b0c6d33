/**
 * Which masking rules apply to an action: those of every enforced policy in scope for the agent and target (as
 * `decide()` collects them) that name the action's protocol or none, compiled once per policy set and scope. Known
 * before the action is classified, so an adapter can choose how to read the response (e.g. Envoy's body mode on the
 * first answer) from it.
 */
import { compileMaskingRules, MAX_CUSTOM, type CompiledMasking } from '../masking/index.ts';
import type { MaskingRule } from '../masking/types.ts';
import { celInput, type CelInput, type Condition } from './cel.ts';
import type { AgentContext, Protocol, RequestContext, TargetContext } from './context.ts';
import { inScope } from './evaluate.ts';
import { PolicyLoadError, sourcePosition, type CompiledPolicy } from './load.ts';
import { PerScope } from './per-scope.ts';

export interface MaskingScope {
  protocol: Protocol;
  agent: AgentContext;
  target: TargetContext;
  /** Identifies agent and target (ids, groups, labels) within one policy set: equal keys mean equal scopes. */
  key: string;
}

interface ScopeRules {
  /** The masking rules of the enforced policies in scope, for the scope's protocol, with their `when` (null: always). */
  rules: { m: MaskingRule; owner: string; when: Condition | null }[];
  /** Plans by which conditioned rules hold ("1"/"0" per rule; "" when none is conditioned). */
  plans: Map<string, CompiledMasking | null>;
}

export class MaskingPlans {
  private readonly scopes = new PerScope<ScopeRules>((policies, scope) => this.rulesFor(policies, scope));

  /**
   * Null when no rule masks anything for this scope. Without `action`, rules with a `when` are all included (the plan
   * before the action is known masks at least as much as any plan after); with it, each `when` is evaluated on the
   * action's context, and a `when` that fails to evaluate keeps its rule (masking more is the safe side).
   */
  planFor(policies: readonly CompiledPolicy[], scope: MaskingScope, action?: RequestContext): CompiledMasking | null {
    const scoped = this.scopes.get(policies, scope);
    let input: CelInput | undefined;
    let key = '';
    for (const r of scoped.rules) {
      if (!r.when) continue;
      let holds = true;
      if (action) {
        try {
          input ??= celInput(action);
          holds = r.when(input);
        } catch {
          holds = true;
        }
      }
      key += holds ? '1' : '0';
    }
    const hit = scoped.plans.get(key);
    if (hit !== undefined) return hit;
    let bit = 0;
    const rules = scoped.rules.filter((r) => !r.when || key[bit++] === '1');
    // Detector names are scoped to their policy (each policy was validated on its own when it was written).
    const plan =
      rules.length === 0
        ? null
        : compileMaskingRules(
            rules.map((r) => r.m),
            { protocol: scope.protocol, owners: rules.map((r) => r.owner) },
          );
    if (scoped.plans.size > 1000) scoped.plans.clear();
    scoped.plans.set(key, plan);
    return plan;
  }

  private rulesFor(policies: readonly CompiledPolicy[], scope: MaskingScope): ScopeRules {
    const ctx = { agent: scope.agent, target: scope.target } as RequestContext;
    const rules = policies
      .filter((p) => p.doc.mode === 'enforce' && inScope(p, ctx))
      .flatMap((p) =>
        p.doc.masking
          .map((m, i) => ({ m, owner: p.doc.name, when: p.maskingWhen?.[i] ?? null }))
          .filter(({ m }) => !m.protocol || m.protocol === scope.protocol),
      );
    return { rules, plans: new Map() };
  }
}

const PROTOCOLS: readonly Protocol[] = ['kubernetes', 'postgres', 'ssh'];

/**
 * Refuses `candidate` when, together with the other enforced policies of `current`, one protocol's custom detectors
 * would exceed what one compiled plan holds: scopes are not known before an action, so every enforced policy is
 * counted as if in one scope. What is accepted here is what the running set compiles (a plan that fails to compile
 * would refuse every action in its scope).
 */
export function checkMaskingCapacity(candidate: CompiledPolicy, current: readonly CompiledPolicy[]): void {
  if (candidate.doc.mode !== 'enforce') return;
  const others = current.filter((p) => p.doc.name !== candidate.doc.name && p.doc.mode === 'enforce');
  const count = (p: CompiledPolicy, protocol: Protocol): number =>
    p.doc.masking.filter((m) => !m.protocol || m.protocol === protocol).reduce((n, m) => n + m.detectors.length, 0);
  for (const protocol of PROTOCOLS) {
    const taken = others.reduce((n, p) => n + count(p, protocol), 0);
    if (taken + count(candidate, protocol) <= MAX_CUSTOM) continue;
    const rule = candidate.doc.masking.findIndex(
      (m) => (!m.protocol || m.protocol === protocol) && m.detectors.length > 0,
    );
    const path = ['masking', rule, 'detectors'];
    throw new PolicyLoadError([
      {
        ...sourcePosition(candidate.source, path),
        path: `/${path.join('/')}`,
        message: `the enforced policies would hold ${taken + count(candidate, protocol)} custom detectors for ${protocol}; one masking plan holds at most ${MAX_CUSTOM} (the other policies hold ${taken})`,
      },
    ]);
  }
}
