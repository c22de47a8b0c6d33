/** Admin API endpoints for policy authors: write, validate, version, diff, roll back and try policies. */
import { parseDocument } from 'yaml';
import { AdminError } from '../admin/errors.ts';
import type { AdminRoute } from '../admin/route.ts';
import { lineDiff } from './diff.ts';
import { decide } from './evaluate.ts';
import { loadPolicy, PolicyLoadError, type CompiledPolicy } from './load.ts';
import { checkMaskingCapacity } from './masking-plans.ts';
import type { PolicySet } from './policy-set.ts';
import {
  contextFromSample,
  SAMPLE_REQUEST_SCHEMA,
  SampleRequestError,
  type K8sSampleClassifier,
  type SampleRequest,
} from './sample-request.ts';
import type { PolicyStore, PolicyVersion } from './store.ts';

const AUTHORS = ['policy-author', 'admin'] as const;
const READERS = ['policy-author', 'admin', 'auditor'] as const;
const sourceBody = {
  type: 'object',
  additionalProperties: false,
  required: ['source'],
  properties: { source: { type: 'string', minLength: 1, description: 'The policy document, YAML or JSON.' } },
};
const versionSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    author: { type: 'string' },
    time: { type: 'string' },
    deleted: { type: 'boolean' },
    source: { type: 'string' },
    rolledBackFrom: { type: 'integer' },
    degraded: {
      type: 'object',
      description:
        'Present when this version does not compile on the replica that answered: it enforces an earlier version (fallback) or refuses everything in the scope (quarantined).',
      properties: {
        state: { type: 'string', enum: ['fallback', 'quarantined'] },
        currentVersion: { type: 'integer' },
        enforcedVersion: { type: ['integer', 'null'] },
        error: { type: 'string' },
      },
    },
  },
};

function invalid(err: unknown): never {
  if (err instanceof PolicyLoadError)
    throw new AdminError('invalid_policy', 'the policy is invalid', { problems: err.problems });
  throw err;
}

/** More alias expansions than any real policy needs; a source over it is refused as invalid, not expanded. */
const MAX_YAML_ALIASES = 100;

/**
 * Refuses a source whose YAML aliases expand past MAX_YAML_ALIASES (a "billion laughs" document), as a policy
 * problem rather than the yaml package's ReferenceError, which would surface as a 500.
 */
function guardAliases(source: string): void {
  if (!source.includes('*')) return;
  const doc = parseDocument(source, { prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length) return; // loadPolicy reports them with positions
  try {
    doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    throw new PolicyLoadError([
      {
        line: 1,
        col: 1,
        path: '',
        message: `YAML aliases expand past ${MAX_YAML_ALIASES} nodes; write the values out`,
      },
    ]);
  }
}

/** A policy source from a request: alias-guarded, then parsed, validated and compiled. */
function loadSource(source: string): CompiledPolicy {
  guardAliases(source);
  return loadPolicy(source);
}

/** A version number from the query string: a positive integer, or a 400 naming the parameter. */
function versionParam(query: URLSearchParams, name: string): number {
  const raw = query.get(name);
  if (raw === null || !/^[1-9][0-9]{0,8}$/.test(raw)) {
    throw new AdminError('invalid_request', `query parameter "${name}" must be a positive integer (a version)`, {
      parameter: name,
      value: raw,
    });
  }
  return Number(raw);
}

async function mustGet(store: PolicyStore, name: string): Promise<PolicyVersion> {
  const v = await store.get(name);
  if (!v) throw new AdminError('not_found', `no policy named ${name}`);
  return v;
}

export function policyRoutes(deps: {
  store: PolicyStore;
  policies: PolicySet;
  classifyK8s?: K8sSampleClassifier;
}): AdminRoute[] {
  const { store } = deps;
  const marked = (v: PolicyVersion): PolicyVersion & { degraded?: unknown } => {
    const degraded = deps.policies.degraded(v.name);
    return degraded && degraded.currentVersion === v.version ? { ...v, degraded } : v;
  };
  return [
    {
      method: 'GET',
      path: '/v1/policies',
      roles: READERS,
      tag: 'policies',
      summary: 'List the current version of every policy',
      response: { type: 'array', items: versionSchema },
      handler: async () => ({ body: (await store.list()).map(marked) }),
    },
    {
      method: 'POST',
      path: '/v1/policies',
      roles: AUTHORS,
      tag: 'policies',
      summary: 'Create a policy or add a new version of it',
      request: sourceBody,
      response: versionSchema,
      handler: async (req) => {
        try {
          const { source } = req.body as { source: string };
          checkMaskingCapacity(loadSource(source), deps.policies.current());
          return { status: 201, body: await store.put(source, req.principal.name) };
        } catch (err) {
          return invalid(err);
        }
      },
    },
    {
      method: 'POST',
      path: '/v1/policies/validate',
      roles: AUTHORS,
      tag: 'policies',
      summary: 'Validate a policy without storing it',
      request: sourceBody,
      response: { type: 'object', properties: { valid: { type: 'boolean' }, problems: { type: 'array' } } },
      handler: async (req) => {
        try {
          loadSource((req.body as { source: string }).source);
          return { body: { valid: true, problems: [] } };
        } catch (err) {
          if (err instanceof PolicyLoadError) return { body: { valid: false, problems: err.problems } };
          throw err;
        }
      },
    },
    {
      method: 'POST',
      path: '/v1/policies/evaluate',
      roles: AUTHORS,
      tag: 'policies',
      summary: 'Decide a sample request against the policies in force, or against the given policy sources',
      request: {
        type: 'object',
        additionalProperties: false,
        required: ['request'],
        properties: { request: SAMPLE_REQUEST_SCHEMA, sources: { type: 'array', items: { type: 'string' } } },
      },
      handler: async (req) => {
        const body = req.body as { request: SampleRequest; sources?: string[] };
        let policies: readonly CompiledPolicy[];
        try {
          policies = body.sources
            ? body.sources.map((s) => loadSource(s)).sort((a, b) => a.doc.name.localeCompare(b.doc.name))
            : deps.policies.current();
        } catch (err) {
          return invalid(err);
        }
        try {
          const { ctx, defaultAction } = contextFromSample(body.request, deps.classifyK8s);
          return { body: decide(policies, ctx, defaultAction) };
        } catch (err) {
          if (err instanceof SampleRequestError) throw new AdminError('invalid_request', err.message);
          throw err;
        }
      },
    },
    {
      method: 'GET',
      path: '/v1/policies/{name}',
      roles: READERS,
      tag: 'policies',
      summary: 'The current version of a policy',
      response: versionSchema,
      handler: async (req) => ({ body: marked(await mustGet(store, req.params.name)) }),
    },
    {
      method: 'PUT',
      path: '/v1/policies/{name}',
      roles: AUTHORS,
      tag: 'policies',
      summary: 'Replace a policy with a new version',
      request: sourceBody,
      response: versionSchema,
      handler: async (req) => {
        let compiled: CompiledPolicy;
        try {
          compiled = loadSource((req.body as { source: string }).source);
        } catch (err) {
          return invalid(err);
        }
        if (compiled.doc.name !== req.params.name)
          throw new AdminError('invalid_request', `the document is named ${compiled.doc.name}, not ${req.params.name}`);
        try {
          checkMaskingCapacity(compiled, deps.policies.current());
        } catch (err) {
          return invalid(err);
        }
        return { body: await store.put(compiled.source, req.principal.name) };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/policies/{name}',
      roles: AUTHORS,
      tag: 'policies',
      summary: 'Delete a policy (recorded as a new version; roll back to restore)',
      response: versionSchema,
      handler: async (req) => {
        await mustGet(store, req.params.name);
        return { body: await store.remove(req.params.name, req.principal.name) };
      },
    },
    {
      method: 'GET',
      path: '/v1/policies/{name}/versions',
      roles: READERS,
      tag: 'policies',
      summary: 'Every version of a policy, oldest first',
      response: { type: 'array', items: versionSchema },
      handler: async (req) => {
        const h = await store.history(req.params.name);
        if (!h.length) throw new AdminError('not_found', `no policy named ${req.params.name}`);
        return { body: h };
      },
    },
    {
      method: 'GET',
      path: '/v1/policies/{name}/diff',
      roles: READERS,
      tag: 'policies',
      summary: 'Line diff between two versions (?from=N&to=M; to defaults to the current one)',
      query: {
        from: { description: 'the older version', schema: { type: 'integer', minimum: 1 } },
        to: { description: 'the newer version (default: the current one)', schema: { type: 'integer', minimum: 1 } },
      },
      response: {
        type: 'object',
        properties: { from: { type: 'integer' }, to: { type: 'integer' }, diff: { type: 'string' } },
      },
      handler: async (req) => {
        const from = versionParam(req.query, 'from');
        const to = req.query.has('to')
          ? versionParam(req.query, 'to')
          : (await mustGet(store, req.params.name)).version;
        const [a, b] = await Promise.all([store.version(req.params.name, from), store.version(req.params.name, to)]);
        if (!a || !b) throw new AdminError('not_found', `policy ${req.params.name} has no version ${!a ? from : to}`);
        return { body: { from, to, diff: lineDiff(a.source, b.source) } };
      },
    },
    {
      method: 'POST',
      path: '/v1/policies/{name}/rollback',
      roles: AUTHORS,
      tag: 'policies',
      summary: 'Make an earlier version current again (as a new version)',
      request: {
        type: 'object',
        additionalProperties: false,
        required: ['version'],
        properties: { version: { type: 'integer', minimum: 1 } },
      },
      response: versionSchema,
      handler: async (req) => {
        const { version } = req.body as { version: number };
        const earlier = await store.version(req.params.name, version);
        if (!earlier) throw new AdminError('not_found', `policy ${req.params.name} has no version ${version}`);
        try {
          checkMaskingCapacity(loadPolicy(earlier.source), deps.policies.current());
          return { body: await store.rollback(req.params.name, version, req.principal.name) };
        } catch (err) {
          return invalid(err);
        }
      },
    },
  ];
}
