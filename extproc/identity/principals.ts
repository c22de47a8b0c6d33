/**
 * Human principals of the admin API and their bearer tokens. Tokens are random, shown once at creation (or
 * rotation), stored only as SHA-256 digests, expire after a configured lifetime and can be revoked. Agent tokens are
 * refused here by shape before any lookup.
 *
 * A token's digest maps to `{id, issuedAt, expiresAt, revokedAt?}`. A revoked entry is kept (not deleted) so that
 * its holder is told "revoked" rather than "unknown"; entries are pruned once they are past expiry.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { RedisClient } from '../common/redis-client.ts';
import { AdminError } from '../admin/errors.ts';
import { looksLikeAgentToken } from './agent-tokens.ts';
import type { Principal, Role } from './principal.ts';

const PRINCIPALS = 'portcullis:principals';
const TOKENS = 'portcullis:principal-tokens';
const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Default lifetime of a principal's token: 30 days. */
export const DEFAULT_PRINCIPAL_TOKEN_TTL_SECONDS = 30 * 24 * 3600;

export interface PrincipalTokenRecord {
  id: string;
  issuedAt: string;
  expiresAt: string;
  revokedAt?: string;
}

export class Principals {
  private readonly ttlMs: number;
  private readonly now: () => number;
  constructor(
    private readonly redis: RedisClient,
    opts: { tokenTtlSeconds?: number; now?: () => number } = {},
  ) {
    this.ttlMs = (opts.tokenTtlSeconds ?? DEFAULT_PRINCIPAL_TOKEN_TTL_SECONDS) * 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Creates a principal and its first token; the token is returned once and never stored in clear. */
  async create(p: {
    name: string;
    roles: Role[];
    groups?: string[];
    id?: string;
  }): Promise<{ principal: Principal; token: string; expiresAt: string }> {
    const principal: Principal = {
      id: p.id ?? `usr_${randomUUID()}`,
      name: p.name,
      roles: p.roles,
      groups: p.groups ?? [],
    };
    const { token, digest: d, record } = this.mint(principal.id);
    // Two keys in two hash slots on a Redis Cluster, so two writes: the token first, so that a failure between them leaves
    // at worst a token naming no principal, which authenticates nobody and is pruned once past expiry.
    await this.redis.hset(TOKENS, d, JSON.stringify(record));
    await this.redis.hset(PRINCIPALS, principal.id, JSON.stringify(principal));
    return { principal, token, expiresAt: record.expiresAt };
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

  /** Whether some admin principal holds a token that is neither expired nor revoked (bootstrap recovery). */
  async hasUsableAdminToken(): Promise<boolean> {
    const admins = new Set((await this.list()).filter((p) => p.roles.includes('admin')).map((p) => p.id));
    const now = this.now();
    return (await this.tokenRecords()).some(
      ([, r]) => admins.has(r.id) && !r.revokedAt && Date.parse(r.expiresAt) > now,
    );
  }

  /** Revokes every live token of a principal; the principal stays (rotate gives it a new token). */
  async revoke(id: string): Promise<{ revoked: number }> {
    if (!(await this.get(id))) throw new AdminError('not_found', `no principal ${id}`);
    return { revoked: await this.revokeTokensOf(id) };
  }

  /** Revokes every token of a principal and issues a new one, returned once. */
  async rotate(id: string): Promise<{ principal: Principal; token: string; expiresAt: string; revoked: number }> {
    const principal = await this.get(id);
    if (!principal) throw new AdminError('not_found', `no principal ${id}`);
    const revoked = await this.revokeTokensOf(id);
    const { token, digest: d, record } = this.mint(id);
    await this.redis.hset(TOKENS, d, JSON.stringify(record));
    return { principal, token, expiresAt: record.expiresAt, revoked };
  }

  /** The admin server's authenticate function. */
  async authenticate(bearer: string | undefined): Promise<Principal> {
    if (!bearer)
      throw new AdminError('unauthenticated', 'the admin API needs a bearer token (Authorization: Bearer <token>)');
    if (looksLikeAgentToken(bearer))
      throw new AdminError('unauthenticated', 'agent tokens are not accepted by the admin API');
    const d = digest(bearer);
    const raw = await this.redis.hget(TOKENS, d);
    const record = raw ? (parseRecord(raw) ?? (await this.migrateLegacy(d, raw))) : null;
    if (!record) throw new AdminError('unauthenticated', 'unknown admin token');
    if (record.revokedAt) {
      throw new AdminError(
        'unauthenticated',
        `this admin token was revoked at ${record.revokedAt}; ask an admin for a new one (portcullis principal rotate ${record.id})`,
        { reason: 'revoked', revokedAt: record.revokedAt },
      );
    }
    if (Date.parse(record.expiresAt) <= this.now()) {
      throw new AdminError(
        'unauthenticated',
        `this admin token expired at ${record.expiresAt}; ask an admin for a new one (portcullis principal rotate ${record.id})`,
        { reason: 'expired', expiresAt: record.expiresAt },
      );
    }
    const principal = await this.get(record.id);
    if (!principal) throw new AdminError('unauthenticated', 'unknown admin token');
    return principal;
  }

  /**
   * Gives tokens stored before tokens expired (a bare principal id as the value) a lifetime starting now, so that
   * an upgrade neither locks anyone out nor leaves a token valid forever.
   */
  async migrateLegacyTokens(): Promise<number> {
    const all = await this.redis.hgetall(TOKENS);
    let n = 0;
    for (const [d, raw] of Object.entries(all)) {
      if (raw.startsWith('{')) continue;
      await this.migrateLegacy(d, raw);
      n++;
    }
    return n;
  }

  /** One legacy entry; also done on use, for entries an older replica writes during a rolling upgrade. */
  private async migrateLegacy(d: string, id: string): Promise<PrincipalTokenRecord | null> {
    if (id.startsWith('{')) return null; // a record that does not parse: unknown
    const now = this.now();
    const record: PrincipalTokenRecord = {
      id,
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.ttlMs).toISOString(),
    };
    await this.redis.hset(TOKENS, d, JSON.stringify(record));
    return record;
  }

  /**
   * A new token for an existing principal, leaving its other tokens alone (bootstrap recovery: several replicas
   * starting at once each get a working token instead of revoking each other's).
   */
  async issue(id: string): Promise<{ token: string; expiresAt: string }> {
    if (!(await this.get(id))) throw new AdminError('not_found', `no principal ${id}`);
    const { token, digest: d, record } = this.mint(id);
    await this.redis.hset(TOKENS, d, JSON.stringify(record));
    return { token, expiresAt: record.expiresAt };
  }

  private mint(id: string): { token: string; digest: string; record: PrincipalTokenRecord } {
    const token = `pcu_${randomBytes(32).toString('base64url')}`;
    const now = this.now();
    return {
      token,
      digest: digest(token),
      record: {
        id,
        issuedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + this.ttlMs).toISOString(),
      },
    };
  }

  private async tokenRecords(): Promise<[string, PrincipalTokenRecord][]> {
    const now = this.now();
    return Object.entries(await this.redis.hgetall(TOKENS)).flatMap(([d, raw]) => {
      // A legacy entry (a bare id) counts as issued now, so that revoking its principal revokes it too.
      const r: PrincipalTokenRecord | null = raw.startsWith('{')
        ? parseRecord(raw)
        : { id: raw, issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + this.ttlMs).toISOString() };
      return r ? [[d, r] as [string, PrincipalTokenRecord]] : [];
    });
  }

  private async revokeTokensOf(id: string): Promise<number> {
    const now = this.now();
    const at = new Date(now).toISOString();
    let n = 0;
    const tx = this.redis.multi();
    for (const [d, r] of await this.tokenRecords()) {
      // Entries long past expiry are pruned here: their holders have been told "expired" for a full lifetime.
      if (Date.parse(r.expiresAt) + this.ttlMs < now) {
        tx.hdel(TOKENS, d);
        continue;
      }
      if (r.id !== id || r.revokedAt) continue;
      tx.hset(TOKENS, d, JSON.stringify({ ...r, revokedAt: at }));
      n++;
    }
    await tx.exec();
    return n;
  }
}

function parseRecord(raw: string): PrincipalTokenRecord | null {
  if (!raw.startsWith('{')) return null; // legacy (a bare principal id): migrated at start or on use
  try {
    return JSON.parse(raw) as PrincipalTokenRecord;
  } catch {
    return null;
  }
}
