/**
 * The admin API routes of the proxy-wasm filter: the snapshot it polls (by an HTTP callout on its timer), and where it
 * reports the requests it refused, so they are recorded like every other decision. Envoy holds a principal token with
 * the `auditor` role for both: the snapshot is read-only, and a report records nothing the agent's own token could not
 * have caused by sending the request (it is authenticated, classified and decided again by the service).
 */
import type { AdminRoute } from '../admin/route.ts';
import type { FilterRefusalReport } from '../kube/index.ts';
import type { CompiledPolicy } from '../policy/load.ts';
import { compileSnapshot } from './compile.ts';
import { renderSnapshot } from './wasm-snapshot.ts';

/** A request the filter refused from its snapshot, as it reports it (docs/wasm-filter.md). */
export type RefusalReport = FilterRefusalReport;

export interface SnapshotRouteDeps {
  policies: { current(): readonly CompiledPolicy[] };
  tokens: { revokedTokenIds(): string[] };
  /** Records a refused request through the data path's own adapter (the Kubernetes one for this filter). */
  recordRefusal(report: RefusalReport): Promise<{ recorded: boolean; reason?: string }>;
}

async function* once(text: string): AsyncIterable<string> {
  yield text;
}

export const SNAPSHOT_PATH = '/v1/wasm-filter/snapshot';
export const REFUSALS_PATH = '/v1/wasm-filter/refusals';

const REPORT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['target', 'requestId', 'method', 'path', 'token', 'status', 'message'],
  properties: {
    target: { type: 'string', minLength: 1, maxLength: 253 },
    requestId: {
      type: 'string',
      pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
    },
    method: { type: 'string', minLength: 1, maxLength: 32 },
    path: { type: 'string', minLength: 1, maxLength: 16384 },
    token: { type: 'string', minLength: 1, maxLength: 8192 },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    message: { type: 'string', maxLength: 2048 },
  },
};

export function snapshotRoutes(deps: SnapshotRouteDeps): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: SNAPSHOT_PATH,
      roles: ['admin', 'policy-author', 'auditor'],
      tag: 'wasm-filter',
      summary:
        'The policy snapshot the proxy-wasm filter enforces in Envoy (text/plain, line-based: token shape, revoked token ids, static deny rules, masked entities); see docs/wasm-filter.md',
      handler: async () => {
        const text = renderSnapshot(compileSnapshot(deps.policies.current(), deps.tokens.revokedTokenIds()));
        return { contentType: 'text/plain; charset=utf-8', stream: once(text) };
      },
    },
    {
      method: 'POST',
      path: REFUSALS_PATH,
      roles: ['admin', 'auditor'],
      tag: 'wasm-filter',
      summary:
        'A request the proxy-wasm filter refused in Envoy: recorded in the agent’s session like a refusal by ext_proc (the token is verified and the request decided again)',
      request: REPORT_SCHEMA,
      response: {
        type: 'object',
        required: ['recorded'],
        properties: { recorded: { type: 'boolean' }, reason: { type: 'string' } },
      },
      handler: async (req) => {
        const r = await deps.recordRefusal(req.body as RefusalReport);
        return { status: r.recorded ? 202 : 200, body: r.recorded ? { recorded: true } : r };
      },
    },
  ];
}
