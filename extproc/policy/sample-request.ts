/**
 * A request context from a partial JSON sample (for `policy eval`, `policy test` and the evaluate endpoint):
 * everything not given takes its zero value, so a sample names only what matters to the case.
 */
import { EMPTY_K8S, EMPTY_SQL, EMPTY_SSH, type Protocol, type RequestContext } from './context.ts';
import type { DefaultAction } from './evaluate.ts';

export interface SampleRequest {
  protocol?: Protocol;
  agent?: Partial<RequestContext['agent']>;
  target?: Partial<RequestContext['target']> & { defaultAction?: DefaultAction };
  session?: Partial<RequestContext['session']>;
  time?: string;
  k8s?: Partial<RequestContext['k8s']>;
  sql?: Partial<RequestContext['sql']>;
  ssh?: Partial<Omit<RequestContext['ssh'], 'forwardPort'>> & { forwardPort?: number };
}

export const SAMPLE_REQUEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    protocol: { enum: ['kubernetes', 'postgres', 'ssh'] },
    agent: { type: 'object' },
    target: { type: 'object' },
    session: { type: 'object' },
    time: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$', description: 'RFC 3339' },
    k8s: { type: 'object' },
    sql: { type: 'object' },
    ssh: { type: 'object' },
  },
} as const;

export function contextFromSample(s: SampleRequest): { ctx: RequestContext; defaultAction: DefaultAction } {
  const protocol: Protocol = s.protocol ?? (s.sql ? 'postgres' : s.ssh ? 'ssh' : 'kubernetes');
  const ctx: RequestContext = {
    protocol,
    agent: { id: s.agent?.id ?? 'sample-agent', groups: s.agent?.groups ?? [], labels: s.agent?.labels ?? {} },
    target: { name: s.target?.name ?? 'sample-target', kind: s.target?.kind ?? protocol, labels: s.target?.labels ?? {} },
    session: { id: s.session?.id ?? 'sample-session', plan: s.session?.plan ?? '' },
    time: s.time ? new Date(s.time) : new Date(),
    k8s: { ...EMPTY_K8S, ...s.k8s },
    sql: { ...EMPTY_SQL, ...s.sql },
    ssh: { ...EMPTY_SSH, ...s.ssh, forwardPort: BigInt(s.ssh?.forwardPort ?? 0) },
  };
  return { ctx, defaultAction: s.target?.defaultAction ?? 'deny' };
}
