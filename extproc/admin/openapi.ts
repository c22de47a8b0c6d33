/** The OpenAPI 3.1 document of the admin API, generated from the route table so it cannot drift from the code. */
import { ERROR_STATUS, type ErrorCode } from './errors.ts';
import type { AdminRoute } from './route.ts';

const ERROR_SCHEMA = {
  type: 'object',
  required: ['code', 'message', 'details'],
  properties: {
    code: { type: 'string', enum: Object.keys(ERROR_STATUS) },
    message: { type: 'string' },
    details: { description: 'Structured data about the error, e.g. `problems` with line and column for a policy' },
  },
};

const ERROR_DESCRIPTIONS: Record<ErrorCode, string> = {
  invalid_request: 'The request is malformed (a bad parameter, body or JSON)',
  unauthenticated: 'No valid bearer token',
  forbidden: 'The principal lacks a role this operation needs',
  not_found: 'No such object',
  conflict: 'The object exists already, or changed meanwhile',
  invalid_policy: 'The policy does not load; `details.problems` lists each with its line and column',
  unavailable: 'Redis cannot be reached; retry after the Retry-After header',
  internal: 'An internal error (logged by the service)',
};

const TAGS: Record<string, string> = {
  policies: 'Policies: versions, validation, evaluation, diff and rollback',
  identity: 'Agents, agent tokens, targets',
  tokens: 'Agent tokens',
  principals: 'Human principals and their admin API tokens',
  approvals: 'Just-in-time approval requests',
  recordings: 'Recorded sessions, for auditors',
};

/** `GET /v1/policies/{name}/diff` → `getPoliciesByNameDiff`: unique, stable, readable enough to generate clients. */
export function operationId(method: string, path: string): string {
  const words = path
    .split('/')
    .filter((s) => s && s !== 'v1')
    .map((s) => (s.startsWith('{') ? `By${cap(s.slice(1, -1))}` : s.split(/[-_]/).map(cap).join('')));
  return method.toLowerCase() + words.join('');
}

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Errors any operation can answer, plus those that depend on its shape. */
function errorCodes(r: AdminRoute, hasPathParams: boolean): ErrorCode[] {
  const codes: ErrorCode[] = ['invalid_request', 'unauthenticated', 'forbidden'];
  if (hasPathParams) codes.push('not_found');
  if (r.method !== 'GET') codes.push('conflict');
  if (r.tag === 'policies' && r.method !== 'GET') codes.push('invalid_policy');
  codes.push('unavailable', 'internal');
  return codes;
}

export function buildOpenApi(routes: readonly AdminRoute[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const tags = new Set<string>();
  for (const r of routes) {
    const pathParams = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const queryParams = Object.entries(r.query ?? {}).map(([name, q]) => ({
      name,
      in: 'query',
      required: false,
      description: q.description,
      schema: q.schema,
    }));
    const params = [...pathParams, ...queryParams];
    tags.add(r.tag);
    paths[r.path] ??= {};
    paths[r.path][r.method.toLowerCase()] = {
      operationId: operationId(r.method, r.path),
      summary: r.summary,
      tags: [r.tag],
      'x-roles': r.roles,
      security: [{ bearer: [] }],
      ...(params.length ? { parameters: params } : {}),
      ...(r.request ? { requestBody: { required: true, content: { 'application/json': { schema: r.request } } } } : {}),
      responses: {
        '200': {
          description: 'OK',
          ...(r.response ? { content: { 'application/json': { schema: r.response } } } : {}),
        },
        ...Object.fromEntries(
          errorCodes(r, pathParams.length > 0).map((c) => [
            String(ERROR_STATUS[c]),
            { $ref: `#/components/responses/${c}` },
          ]),
        ),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Portcullis admin API',
      version: '1',
      description:
        'Policies, identities, approvals and recordings of a Portcullis gateway. Every call carries a bearer token of a human principal; each operation lists the roles it admits in x-roles. Errors are `{code, message, details}`.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: 'http://127.0.0.1:8081', description: 'the default admin listener (admin.host, admin.port)' }],
    security: [{ bearer: [] }],
    tags: [...tags].sort().map((name) => ({ name, description: TAGS[name] ?? name })),
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: ERROR_SCHEMA },
      responses: Object.fromEntries(
        (Object.keys(ERROR_STATUS) as ErrorCode[]).map((c) => [
          c,
          {
            description: ERROR_DESCRIPTIONS[c],
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          },
        ]),
      ),
    },
    paths,
  };
}
