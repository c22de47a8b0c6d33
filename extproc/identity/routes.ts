/**
 * Admin API endpoints for agents, their tokens, targets, human principals and the signing keyring. All are for
 * admins. Responses carry vault references (which say where a secret lives) but never a secret.
 */
import { AdminError } from '../admin/errors.ts';
import type { AdminRoute } from '../admin/route.ts';
import { parseDurationSeconds } from '../common/duration.ts';
import { TokenIssueError, type AgentTokens } from './agent-tokens.ts';
import { ROLES, type Role } from './principal.ts';
import type { Principals } from './principals.ts';
import type { Agent, Registry, Target } from './registry.ts';
import type { SigningKeys } from './signing-keys.ts';
import { VAULT_REF_PATTERN } from './vault.ts';

const ADMIN = ['admin'] as const;
const id = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' };
const labels = { type: 'object', additionalProperties: { type: 'string' } };
const ref = { type: 'string', pattern: VAULT_REF_PATTERN };
/** An OpenSSH public key line: `type base64 [comment]`. */
const SSH_PUBLIC_KEY = '^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}( .*)?$';

export const AGENT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id,
    groups: { type: 'array', items: { type: 'string' } },
    labels,
    disabled: { type: 'boolean' },
    owner: { type: 'string' },
    sshKeys: {
      type: 'array',
      maxItems: 20,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['publicKey', 'targets'],
        properties: {
          publicKey: { type: 'string', pattern: SSH_PUBLIC_KEY },
          targets: { type: 'array', items: id, minItems: 1 },
        },
      },
    },
  },
};

export const TARGET_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'kind', 'address'],
  properties: {
    name: id,
    kind: { enum: ['kubernetes', 'postgres', 'ssh'] },
    address: { type: 'string', minLength: 1 },
    labels,
    defaultAction: { enum: ['deny', 'allow'] },
    caRef: ref,
    hostKey: {
      type: 'string',
      pattern: '^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}( .*)?$',
    },
    recording: { enum: ['fail-closed', 'best-effort'] },
    credential: {
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'tokenRef'],
          properties: { kind: { const: 'static-token' }, tokenRef: ref },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'tokenRef', 'namespace', 'serviceAccount'],
          properties: {
            kind: { const: 'token-request' },
            tokenRef: ref,
            namespace: { type: 'string' },
            serviceAccount: { type: 'string' },
            ttlSeconds: { type: 'integer', minimum: 600 },
            audiences: { type: 'array', items: { type: 'string' } },
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'user', 'passwordRef'],
          properties: {
            kind: { const: 'password' },
            user: { type: 'string' },
            passwordRef: ref,
            roles: {
              type: 'object',
              additionalProperties: false,
              required: ['group'],
              properties: { group: { type: 'string', minLength: 1, maxLength: 63 } },
            },
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'user', 'privateKeyRef'],
          properties: { kind: { const: 'ssh-key' }, user: { type: 'string' }, privateKeyRef: ref },
        },
      ],
    },
  },
};

export function targetFromInput(input: Record<string, unknown>): Target {
  const t = input as Partial<Target> & Pick<Target, 'name' | 'kind' | 'address'>;
  const credential =
    t.credential?.kind === 'token-request'
      ? { ...t.credential, ttlSeconds: t.credential.ttlSeconds ?? 3600 }
      : t.credential;
  return {
    name: t.name,
    kind: t.kind,
    address: t.address,
    labels: t.labels ?? {},
    defaultAction: t.defaultAction ?? 'deny',
    recording: t.recording ?? 'fail-closed',
    ...(credential ? { credential } : {}),
    ...(t.caRef ? { caRef: t.caRef } : {}),
    ...(t.hostKey ? { hostKey: t.hostKey } : {}),
  };
}

export function identityRoutes(deps: {
  registry: Registry;
  tokens: AgentTokens;
  principals: Principals;
  keys: SigningKeys;
}): AdminRoute[] {
  const { registry, tokens, principals } = deps;
  const agentOf = (a: Record<string, unknown>, prev: Agent | null): Agent => ({
    id: String(a.id),
    groups: (a.groups as string[]) ?? prev?.groups ?? [],
    labels: (a.labels as Record<string, string>) ?? prev?.labels ?? {},
    disabled: (a.disabled as boolean) ?? prev?.disabled ?? false,
    ...((a.owner ?? prev?.owner) ? { owner: String(a.owner ?? prev?.owner) } : {}),
    ...((a.sshKeys ?? prev?.sshKeys) ? { sshKeys: (a.sshKeys as Agent['sshKeys']) ?? prev?.sshKeys } : {}),
    createdAt: prev?.createdAt ?? new Date().toISOString(),
  });
  // An owner is a principal id, never a name: self-approval is checked by id, names are neither unique nor fixed,
  // so resolving one would silently pick a human (or the wrong one). A name is refused with the matching ids.
  const assertOwner = async (owner: unknown): Promise<void> => {
    if (owner === undefined || owner === '') return; // '' on an update clears the owner
    const ownerId = String(owner);
    if (await principals.get(ownerId)) return;
    const byName = (await principals.list()).filter((p) => p.name === ownerId).map((p) => p.id);
    throw new AdminError(
      'invalid_request',
      `owner: "${ownerId}" is not a principal id${byName.length ? ` (it is the name of ${byName.join(', ')}; give the id)` : ''}`,
      { field: 'owner', ...(byName.length ? { principalsWithThisName: byName } : {}) },
    );
  };
  return [
    {
      method: 'GET',
      path: '/v1/agents',
      roles: ADMIN,
      tag: 'agents',
      summary: 'List agents',
      handler: async () => ({ body: await registry.listAgents() }),
    },
    {
      method: 'POST',
      path: '/v1/agents',
      roles: ADMIN,
      tag: 'agents',
      summary: 'Register an agent',
      request: AGENT_SCHEMA,
      handler: async (req) => {
        const body = req.body as Record<string, unknown>;
        if (await registry.getAgent(String(body.id)))
          throw new AdminError('conflict', `agent ${String(body.id)} already exists`);
        await assertOwner(body.owner);
        const agent = agentOf(body, null);
        await registry.putAgent(agent);
        return { status: 201, body: agent };
      },
    },
    {
      method: 'GET',
      path: '/v1/agents/{id}',
      roles: ADMIN,
      tag: 'agents',
      summary: 'Get an agent',
      handler: async (req) => {
        const a = await registry.getAgent(req.params.id);
        if (!a) throw new AdminError('not_found', `no agent ${req.params.id}`);
        return { body: a };
      },
    },
    {
      method: 'PUT',
      path: '/v1/agents/{id}',
      roles: ADMIN,
      tag: 'agents',
      summary: 'Update an agent (groups, labels, disabled, owner)',
      request: AGENT_SCHEMA,
      handler: async (req) => {
        const prev = await registry.getAgent(req.params.id);
        if (!prev) throw new AdminError('not_found', `no agent ${req.params.id}`);
        await assertOwner((req.body as Record<string, unknown>).owner);
        const agent = agentOf({ ...(req.body as Record<string, unknown>), id: prev.id }, prev);
        await registry.putAgent(agent);
        return { body: agent };
      },
    },
    {
      method: 'POST',
      path: '/v1/tokens',
      roles: ADMIN,
      tag: 'tokens',
      summary: 'Issue a short-lived agent token scoped to targets (the token is shown once)',
      request: {
        type: 'object',
        additionalProperties: false,
        required: ['agent', 'targets'],
        properties: {
          agent: { type: 'string' },
          targets: { type: 'array', minItems: 1, items: { type: 'string' } },
          ttl: { type: 'string', pattern: '^([0-9]+(ms|s|m|h))+$' },
          plan: { type: 'string' },
        },
      },
      handler: async (req) => {
        const b = req.body as { agent: string; targets: string[]; ttl?: string; plan?: string };
        try {
          const { token, record } = await tokens.issue({
            agent: b.agent,
            targets: b.targets,
            ...(b.ttl ? { ttlSeconds: parseDurationSeconds(b.ttl) } : {}),
            ...(b.plan ? { plan: b.plan } : {}),
            issuedBy: req.principal.id,
          });
          return { status: 201, body: { token, ...record } };
        } catch (err) {
          if (err instanceof TokenIssueError) throw new AdminError('invalid_request', err.message);
          throw err;
        }
      },
    },
    {
      method: 'GET',
      path: '/v1/tokens/{jti}',
      roles: ADMIN,
      tag: 'tokens',
      summary: 'Metadata of an issued token (never the token)',
      handler: async (req) => {
        const r = await tokens.get(req.params.jti);
        if (!r) throw new AdminError('not_found', `no live token ${req.params.jti}`);
        return { body: r };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/tokens/{jti}',
      roles: ADMIN,
      tag: 'tokens',
      summary: 'Revoke a token by id',
      handler: async (req) => {
        const r = await tokens.revoke(req.params.jti);
        if (!r) throw new AdminError('not_found', `no live token ${req.params.jti}`);
        return { body: { revoked: true, ...r } };
      },
    },
    {
      method: 'GET',
      path: '/v1/targets',
      roles: ADMIN,
      tag: 'targets',
      summary: 'List targets',
      handler: async () => ({ body: await registry.listTargets() }),
    },
    {
      method: 'POST',
      path: '/v1/targets',
      roles: ADMIN,
      tag: 'targets',
      summary: 'Register a target',
      request: TARGET_SCHEMA,
      handler: async (req) => {
        const t = targetFromInput(req.body as Record<string, unknown>);
        if (await registry.getTarget(t.name)) throw new AdminError('conflict', `target ${t.name} already exists`);
        await registry.putTarget(t);
        return { status: 201, body: t };
      },
    },
    {
      method: 'GET',
      path: '/v1/targets/{name}',
      roles: ADMIN,
      tag: 'targets',
      summary: 'Get a target',
      handler: async (req) => {
        const t = await registry.getTarget(req.params.name);
        if (!t) throw new AdminError('not_found', `no target ${req.params.name}`);
        return { body: t };
      },
    },
    {
      method: 'PUT',
      path: '/v1/targets/{name}',
      roles: ADMIN,
      tag: 'targets',
      summary: 'Replace a target',
      request: TARGET_SCHEMA,
      handler: async (req) => {
        const t = targetFromInput({ ...(req.body as Record<string, unknown>), name: req.params.name });
        await registry.putTarget(t);
        return { body: t };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/targets/{name}',
      roles: ADMIN,
      tag: 'targets',
      summary: 'Remove a target',
      handler: async (req) => {
        if (!(await registry.deleteTarget(req.params.name)))
          throw new AdminError('not_found', `no target ${req.params.name}`);
        return { body: { deleted: true } };
      },
    },
    {
      method: 'GET',
      path: '/v1/principals',
      roles: ADMIN,
      tag: 'principals',
      summary: 'List human principals',
      handler: async () => ({ body: await principals.list() }),
    },
    {
      method: 'POST',
      path: '/v1/principals',
      roles: ADMIN,
      tag: 'principals',
      summary: 'Create a human principal with roles and approver groups (its token is shown once)',
      request: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'roles'],
        properties: {
          name: { type: 'string', minLength: 1 },
          roles: { type: 'array', minItems: 1, items: { enum: [...ROLES] } },
          groups: { type: 'array', items: { type: 'string' } },
        },
      },
      handler: async (req) => {
        const b = req.body as { name: string; roles: Role[]; groups?: string[] };
        const { principal, token, expiresAt } = await principals.create(b);
        return { status: 201, body: { ...principal, token, tokenExpiresAt: expiresAt } };
      },
    },
    {
      method: 'POST',
      path: '/v1/principals/{id}/revoke',
      roles: ADMIN,
      tag: 'principals',
      summary: 'Revoke every token of a human principal (the principal stays; rotate gives it a new token)',
      handler: async (req) => ({ body: { id: req.params.id, ...(await principals.revoke(req.params.id)) } }),
    },
    {
      method: 'POST',
      path: '/v1/principals/{id}/rotate',
      roles: ADMIN,
      tag: 'principals',
      summary: "Revoke a human principal's tokens and issue a new one (shown once)",
      handler: async (req) => {
        const { principal, token, expiresAt, revoked } = await principals.rotate(req.params.id);
        return { body: { ...principal, token, tokenExpiresAt: expiresAt, revoked } };
      },
    },
    {
      method: 'POST',
      path: '/v1/signing-keys/rotate',
      roles: ADMIN,
      tag: 'tokens',
      summary: 'Rotate the agent-token signing key (tokens in flight stay valid)',
      handler: async () => {
        const kid = await deps.keys.rotate(tokens.policy.maxTtlSeconds * 1000);
        await deps.keys.load();
        return { body: { kid } };
      },
    },
  ];
}
