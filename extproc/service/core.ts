/**
 * What a protocol adapter gets from the service: the core (policy, identities, recording, approvals, masking) as
 * plain interfaces. Adapters import this type only; the composition root (service.ts) builds it.
 */
import type { Logger } from 'pino';
import type { Approvals } from '../approvals/index.ts';
import type { AgentTokens } from '../identity/agent-tokens.ts';
import type { PolicySet } from '../policy/policy-set.ts';
import type { Recorder } from '../recording/index.ts';
import type { Metrics } from './metrics.ts';
import type { TargetCache } from './target-cache.ts';

export interface GatewayCore {
  policies: PolicySet;
  targets: TargetCache;
  tokens: AgentTokens;
  recorder: Recorder;
  approvals: Approvals;
  metrics: Metrics;
  logger: Logger;
}
