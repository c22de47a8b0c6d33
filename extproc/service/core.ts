/**
 * The core as the composition root holds it: the concrete stores and caches, which satisfy the spine's ports
 * (spine/core.ts) and which operators' tooling and tests can also drive directly (refresh, reload, flush).
 */
import type { Logger } from 'pino';
import type { AgentTokens } from '../identity/agent-tokens.ts';
import type { UpstreamCredentials } from '../identity/upstream-credentials.ts';
import type { PolicySet } from '../policy/policy-set.ts';
import type { RecorderWithStats } from '../recording/index.ts';
import type { GatewayCore } from '../spine/index.ts';
import type { Metrics } from './metrics.ts';
import type { OtlpDecisionTracer } from '../tracing/index.ts';
import type { TargetCache } from './target-cache.ts';

export interface ServiceCore extends GatewayCore {
  policies: PolicySet;
  targets: TargetCache;
  tokens: AgentTokens;
  credentials: UpstreamCredentials;
  recorder: RecorderWithStats;
  metrics: Metrics;
  logger: Logger;
  tracer?: OtlpDecisionTracer;
}
