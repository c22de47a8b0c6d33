/** An authenticated agent on one target: what every action of its session shares. */
import type { Agent, Target } from '../identity/registry.ts';
import type { AgentContext, Protocol, TargetContext } from '../policy/context.ts';
import type { MaskingScope } from '../policy/masking-plans.ts';

export class Session {
  /** The agent and target as policies see them, built once per session. */
  readonly agentContext: AgentContext;
  readonly targetContext: TargetContext;
  readonly maskingScope: MaskingScope;

  constructor(
    readonly id: string,
    readonly protocol: Protocol,
    readonly agent: Agent,
    readonly target: Target,
    /** The plan the agent's token is scoped to, or "". */
    readonly plan: string,
    readonly tokenId: string,
  ) {
    this.agentContext = { id: agent.id, groups: agent.groups, labels: agent.labels };
    this.targetContext = { name: target.name, kind: target.kind, labels: target.labels };
    this.maskingScope = {
      protocol,
      agent: this.agentContext,
      target: this.targetContext,
      key: JSON.stringify([agent.id, agent.groups, agent.labels, target.name, target.labels]),
    };
  }
}
