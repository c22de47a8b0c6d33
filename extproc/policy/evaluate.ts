/**
 * The decision function: pure, synchronous, no I/O. Given the compiled policies in force and a request context, it
 * returns the enforced decision and, when dry-run policies are in scope, what they would have decided.
 *
 * Semantics (documented for policy authors in docs/policies.md):
 * - A policy applies when its scope selects the agent and the target; a rule applies when its protocol (if any)
 *   matches and its condition is true.
 * - deny wins over require_approval, which wins over allow; the first matching rule of each kind (policies in name
 *   order, rules in document order) names the decision.
 * - Nothing matched: the target's default action (deny unless the target says allow).
 * - A condition that fails to evaluate is never ignored in a way that opens a door: a failing deny or
 *   require_approval rule denies (reason "error"); a failing allow rule does not allow.
 * - Dry-run: the enforced decision uses enforce-mode policies only; when no enforce-mode policy is in scope but a
 *   dry-run one is, the request is allowed (a dry-run rollout never blocks). `dryRun` reports what all policies in
 *   scope would have decided together.
 */
import { celInput, type CelInput } from './cel.ts';
import type { RequestContext } from './context.ts';
import type { CompiledPolicy, CompiledRule } from './load.ts';
import type { AgentSelector, Decision, RuleAction, TargetSelector, Verdict } from './types.ts';

export type DefaultAction = 'allow' | 'deny';

function labelsMatch(want: Record<string, string>, have: Record<string, string>): boolean {
  for (const k in want) if (have[k] !== want[k]) return false;
  return true;
}

function agentSelected(sel: AgentSelector, agent: RequestContext['agent']): boolean {
  if (sel.ids.length && !sel.ids.includes(agent.id)) return false;
  if (sel.groups.length && !sel.groups.some((g) => agent.groups.includes(g))) return false;
  return labelsMatch(sel.labels, agent.labels);
}

function targetSelected(sel: TargetSelector, target: RequestContext['target']): boolean {
  if (sel.names.length && !sel.names.includes(target.name)) return false;
  if (sel.kinds.length && !sel.kinds.includes(target.kind)) return false;
  return labelsMatch(sel.labels, target.labels);
}

export function inScope(policy: CompiledPolicy, ctx: RequestContext): boolean {
  return agentSelected(policy.doc.scope.agents, ctx.agent) && targetSelected(policy.doc.scope.targets, ctx.target);
}

const RANK: Record<RuleAction, number> = { allow: 1, require_approval: 2, deny: 3 };

interface Match {
  policy: CompiledPolicy;
  rule: CompiledRule;
  action: RuleAction;
  reason: 'rule' | 'error';
  error?: string;
}

function matchRule(
  policy: CompiledPolicy,
  rule: CompiledRule,
  ctx: RequestContext,
  input: () => CelInput,
): Match | null {
  if (rule.protocol && rule.protocol !== ctx.protocol) return null;
  if (rule.condition === null) return { policy, rule, action: rule.action, reason: 'rule' };
  try {
    return rule.condition(input()) ? { policy, rule, action: rule.action, reason: 'rule' } : null;
  } catch (err) {
    if (rule.action === 'allow') return null;
    return { policy, rule, action: 'deny', reason: 'error', error: (err as Error).message.split('\n')[0] };
  }
}

function verdictOf(
  policies: readonly CompiledPolicy[],
  ctx: RequestContext,
  input: () => CelInput,
  fallback: DefaultAction,
): Verdict {
  let best: Match | null = null;
  for (const policy of policies) {
    for (const rule of policy.rules) {
      const m = matchRule(policy, rule, ctx, input);
      if (m && (!best || RANK[m.action] > RANK[best.action])) {
        best = m;
        if (m.action === 'deny') break;
      }
    }
    if (best?.action === 'deny') break;
  }
  if (!best) {
    return {
      action: fallback,
      reason: 'default',
      policy: null,
      policyVersion: null,
      rule: null,
      message: fallback === 'deny' ? `no policy allows this request for target ${ctx.target.name} (default deny)` : '',
    };
  }
  const { policy, rule } = best;
  const message =
    best.reason === 'error'
      ? `policy ${policy.doc.name} rule ${rule.name} could not be evaluated: ${best.error}`
      : // require_approval without a message of its own: the adapter's approval text (request id, approver group) says it.
        (rule.message ?? (best.action === 'deny' ? `denied by policy ${policy.doc.name} rule ${rule.name}` : ''));
  return {
    action: best.action,
    reason: best.reason,
    policy: policy.doc.name,
    policyVersion: policy.version,
    rule: rule.name,
    message,
    ...(best.action === 'require_approval' && rule.approval ? { approval: rule.approval } : {}),
  };
}

/** `policies` must be sorted by name (PolicySet keeps them so). */
export function decide(policies: readonly CompiledPolicy[], ctx: RequestContext, fallback: DefaultAction): Decision {
  const scoped = policies.filter((p) => inScope(p, ctx));
  const enforced = scoped.filter((p) => p.doc.mode === 'enforce');
  const hasDryRun = enforced.length !== scoped.length;
  // Built on first use: a decision that reaches no condition pays nothing for it.
  let built: CelInput | undefined;
  const input = (): CelInput => (built ??= celInput(ctx));
  const enforcedVerdict: Verdict =
    enforced.length === 0 && hasDryRun
      ? {
          action: 'allow',
          reason: 'default',
          policy: null,
          policyVersion: null,
          rule: null,
          message: 'only dry-run policies apply',
        }
      : verdictOf(enforced, ctx, input, fallback);
  return {
    ...enforcedVerdict,
    ...(hasDryRun ? { dryRun: verdictOf(scoped, ctx, input, fallback) } : {}),
  };
}
