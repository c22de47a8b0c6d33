/**
 * A value worked out once per policy set and scope (protocol, agent, target), for MaskingPlans and ScopedReads. Found
 * again first by the scope object itself (a session's, asked on every action: no key string made), then by the
 * scope's key (another session of the same agent and target), else computed. A new policy set starts afresh.
 */
import type { CompiledPolicy } from './load.ts';
import type { MaskingScope } from './masking-plans.ts';

/** Scopes remembered per policy set; beyond this the map starts over (scopes come from agents and targets). */
const SCOPES_MAX = 10_000;

export class PerScope<T> {
  private readonly byPolicies = new WeakMap<readonly CompiledPolicy[], Map<string, T>>();
  private readonly last = new WeakMap<MaskingScope, { policies: readonly CompiledPolicy[]; value: T }>();

  constructor(private readonly compute: (policies: readonly CompiledPolicy[], scope: MaskingScope) => T) {}

  get(policies: readonly CompiledPolicy[], scope: MaskingScope): T {
    const last = this.last.get(scope);
    if (last?.policies === policies) return last.value;
    let byScope = this.byPolicies.get(policies);
    if (!byScope) {
      byScope = new Map();
      this.byPolicies.set(policies, byScope);
    }
    const key = `${scope.protocol}\n${scope.key}`;
    let value = byScope.get(key);
    if (value === undefined) {
      value = this.compute(policies, scope);
      if (byScope.size > SCOPES_MAX) byScope.clear();
      byScope.set(key, value);
    }
    this.last.set(scope, { policies, value });
    return value;
  }
}
