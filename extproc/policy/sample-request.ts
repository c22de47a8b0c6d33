/**
 * A request context from a partial JSON sample (for `policy eval`, `policy test` and the evaluate endpoint):
 * everything not given takes its zero value, so a sample names only what matters to the case.
 */
import { EMPTY_K8S, EMPTY_SQL, EMPTY_SSH, type K8sContext, type Protocol, type RequestContext } from './context.ts';
import type { DefaultAction } from './evaluate.ts';

/**
 * Classifies a Kubernetes request given as method, path (and body) exactly as the Kubernetes adapter does; injected
 * by the edges (CLI, service) so the policy core stays free of wire formats. Returns a reason string when refused.
 */
export type K8sSampleClassifier = (request: {
  method: string;
  path: string;
  body: unknown;
  contentType: string;
}) => K8sContext | string;

export class SampleRequestError extends Error {}

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
    time: {
      type: 'string',
      pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
      description: 'RFC 3339',
    },
    k8s: {
      type: 'object',
      properties: { method: { type: 'string' }, path: { type: 'string' }, contentType: { type: 'string' } },
      description:
        'The classified k8s context, or just method and path (plus body, contentType) to classify as the Kubernetes adapter does.',
    },
    sql: { type: 'object' },
    ssh: {
      type: 'object',
      properties: { forwardPort: { type: 'integer', minimum: 0, maximum: 65535 } },
    },
  },
} as const;

/**
 * A sample's `k8s` section may be given as the classified context, or as just `method` and `path` (plus `body` and
 * `contentType`): then `classifyK8s` fills the rest, so a policy test says what kubectl sends rather than how it is
 * classified.
 */
export function contextFromSample(
  s: SampleRequest,
  classifyK8s?: K8sSampleClassifier,
): { ctx: RequestContext; defaultAction: DefaultAction } {
  const k8s =
    s.k8s && s.k8s.verb === undefined && s.k8s.method && s.k8s.path && classifyK8s
      ? classified(s.k8s as Partial<K8sContext> & { method: string; path: string; contentType?: string }, classifyK8s)
      : { ...EMPTY_K8S, ...s.k8s };
  const port = s.ssh?.forwardPort ?? 0;
  // The schema says so for the admin API; the CLI reads samples from files, so the check is repeated here.
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new SampleRequestError(`ssh.forwardPort must be an integer port (0-65535), got ${JSON.stringify(port)}`);
  const protocol: Protocol = s.protocol ?? (s.sql ? 'postgres' : s.ssh ? 'ssh' : 'kubernetes');
  const ctx: RequestContext = {
    protocol,
    agent: { id: s.agent?.id ?? 'sample-agent', groups: s.agent?.groups ?? [], labels: s.agent?.labels ?? {} },
    target: {
      name: s.target?.name ?? 'sample-target',
      kind: s.target?.kind ?? protocol,
      labels: s.target?.labels ?? {},
    },
    session: { id: s.session?.id ?? 'sample-session', plan: s.session?.plan ?? '' },
    time: s.time ? new Date(s.time) : new Date(),
    k8s,
    sql: { ...EMPTY_SQL, ...s.sql },
    ssh: { ...EMPTY_SSH, ...s.ssh, forwardPort: BigInt(port) },
  };
  return { ctx, defaultAction: s.target?.defaultAction ?? 'deny' };
}

function classified(
  k: Partial<K8sContext> & { method: string; path: string; contentType?: string },
  classify: K8sSampleClassifier,
): K8sContext {
  for (const f of ['method', 'path', 'contentType'] as const) {
    if (k[f] !== undefined && typeof k[f] !== 'string')
      throw new SampleRequestError(`k8s.${f} must be a string, got ${JSON.stringify(k[f])}`);
  }
  const r = classify({
    method: k.method,
    path: k.path,
    body: k.body ?? null,
    contentType: k.contentType ?? 'application/json',
  });
  if (typeof r === 'string')
    throw new SampleRequestError(`the sample's Kubernetes request is refused by the gateway: ${r}`);
  // The object a write would store comes from the API server's dry run, which a sample cannot make: the sample says it.
  return { ...r, object: k.object ?? null, oldObject: k.oldObject ?? null };
}
