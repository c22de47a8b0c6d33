/**
 * Human principals of the admin API and their bearer tokens. Tokens are random, shown once at creation, and stored
 * only as SHA-256 digests. Agent tokens are refused here by shape before any lookup.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AdminError } from '../admin/errors.ts';
import { looksLikeAgentToken } from './agent-tokens.ts';
import type { Principal, Role } from './principal.ts';

const PRINCIPALS = 'portcullis:principals';
const TOKENS = 'portcullis:principal-tokens';
const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

export class Principals {
  constructor(private readonly redis: Redis) {}

  /** Creates a principal and its first token; the token is returned once and never stored in clear. */
  async create(p: {
    name: string;
    roles: Role[];
    groups?: string[];
    id?: string;
  }): Promise<{ principal: Principal; token: string }> {
    const principal: Principal = {
      id: p.id ?? `usr_${randomUUID()}`,
      name: p.name,
      roles: p.roles,
      groups: p.groups ?? [],
    };
    const token = `pcu_${randomBytes(32).toString('base64url')}`;
    await this.redis
      .multi()
      .hset(PRINCIPALS, principal.id, JSON.stringify(principal))
      .hset(TOKENS, digest(token), principal.id)
      .exec();
    return { principal, token };
  }

  async list(): Promise<Principal[]> {
    return Object.values(await this.redis.hgetall(PRINCIPALS)).map((s) => JSON.parse(s) as Principal);
  }

  async get(id: string): Promise<Principal | null> {
    const raw = await this.redis.hget(PRINCIPALS, id);
    return raw ? (JSON.parse(raw) as Principal) : null;
  }

  async hasAdmin(): Promise<boolean> {
    return (await this.list()).some((p) => p.roles.includes('admin'));
  }

  /** The admin server's authenticate function. */
  async authenticate(bearer: string | undefined): Promise<Principal> {
    if (!bearer)
      throw new AdminError('unauthenticated', 'the admin API needs a bearer token (Authorization: Bearer <token>)');
    if (looksLikeAgentToken(bearer))
      throw new AdminError('unauthenticated', 'agent tokens are not accepted by the admin API');
    const id = await this.redis.hget(TOKENS, digest(bearer));
    const principal = id ? await this.get(id) : null;
    if (!principal) throw new AdminError('unauthenticated', 'unknown or revoked admin token');
    return principal;
  }
}
