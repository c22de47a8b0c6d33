/**
 * Short-lived agent tokens: signed JWTs scoped to targets (the `aud` claim), one session each (`sid`), revocable by
 * token id (`jti`). Only the token's metadata is stored, never the token itself. Verification is local (signature,
 * expiry) plus an in-memory revocation set that pub/sub keeps current.
 *
 * An Ed25519 verify through WebCrypto costs a few hundred microseconds and a thread-pool round trip, on every request
 * of every stream; an agent presents the same token for its whole session. So a verified signature is remembered
 * briefly (VerifiedTokens): keyed by the token's SHA-256 (the token itself is never held), good until the token's
 * `exp` or VERIFIED_TTL_MS, whichever is sooner, and dropped when the token is revoked. Only the signature and the
 * claims are remembered: revocation, target scope and the agent's state are checked on every call, as before.
 */
import { hash, randomUUID } from 'node:crypto';
import { handleResubscribes, type RedisClient } from '../common/redis-client.ts';
import { decodeProtectedHeader, errors as joseErrors, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import type { Logger } from 'pino';
import type { Agent, Registry } from './registry.ts';
import { type ScramCandidate, type ScramVerifier, scramSalt, scramVerifier } from './scram-verifier.ts';
import { ALG, type SigningKeys } from './signing-keys.ts';

export const AGENT_TOKEN_TYPE = 'portcullis-agent+jwt';
const ISSUER = 'portcullis';
const REVOKED = 'portcullis:tokens:revoked';
const REVOKED_CHANNEL = 'portcullis:tokens:revoked';
const tokenKey = (jti: string): string => `portcullis:token:${jti}`;
/** The ids of an agent's tokens that carry a SCRAM verifier (members outlive their token; readers skip those). */
const agentTokensKey = (agent: string): string => `portcullis:agent-tokens:${agent}`;
/** How long a verified signature is trusted without re-checking it (never past the token's own expiry). */
export const VERIFIED_TTL_MS = 5000;
/** Verified tokens remembered at most; the oldest goes first. */
const VERIFIED_MAX = 10_000;

export interface TokenRecord {
  jti: string;
  agent: string;
  targets: string[];
  sessionId: string;
  plan: string;
  issuedAt: string;
  expiresAt: string;
  issuedBy: string;
}

/**
 * What Redis keeps of a token: its record, and for PostgreSQL logins (where the agent proves its token with
 * SCRAM-SHA-256 without sending it) the token's SCRAM verifier. The verifier is never returned by the admin API.
 */
interface StoredTokenRecord extends TokenRecord {
  scram?: ScramVerifier;
}

export type TokenFailure =
  | 'missing'
  | 'malformed'
  | 'expired'
  | 'invalid'
  | 'revoked'
  | 'out_of_scope'
  | 'unknown_agent'
  | 'agent_disabled';

/** How long an SSH key login's session lasts after its last verification. */
const KEY_SESSION_HOURS = 12;

/** Whether the public key line `line` (`type base64 [comment]`) has the key blob `blob` (base64). */
function sameKeyBlob(line: string, blob: string): boolean {
  const field = line.trim().split(/\s+/)[1];
  if (!field) return false;
  return Buffer.from(field, 'base64').equals(Buffer.from(blob, 'base64'));
}

export type TokenVerification =
  | {
      ok: true;
      agent: Agent;
      token: { jti: string; sessionId: string; plan: string; targets: string[]; expiresAt: Date };
    }
  | { ok: false; failure: TokenFailure; message: string };

export interface TokenPolicy {
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
}

export class AgentTokens {
  private revoked = new Map<string, number>();
  private agentCache = new Map<string, { agent: Agent | null; at: number }>();
  private agentRefresh = new Map<string, Promise<Agent | null>>();
  private verified = new VerifiedTokens();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly keys: SigningKeys,
    private readonly registry: Registry,
    readonly policy: TokenPolicy,
    private readonly logger?: Logger,
    /** Milliseconds since the epoch; injectable so expiry is testable without waiting. */
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    handleResubscribes(this.subscriber);
    await this.subscriber.subscribe(REVOKED_CHANNEL);
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== REVOKED_CHANNEL) return;
      const { jti, exp } = JSON.parse(message) as { jti: string; exp: number };
      this.revoked.set(jti, exp);
      this.verified.dropJti(jti);
    });
    await this.syncRevocations();
    this.timer = setInterval(() => void this.syncRevocations(), 5000);
    this.timer.unref();
  }

  /** The revoked token ids known here (kept current by pub/sub and the periodic sync), for the wasm snapshot. */
  revokedTokenIds(): string[] {
    return [...this.revoked.keys()];
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.subscriber.unsubscribe(REVOKED_CHANNEL).catch(() => undefined);
  }

  private async syncRevocations(): Promise<void> {
    try {
      const now = Math.floor(this.now() / 1000);
      await this.redis.zremrangebyscore(REVOKED, 0, now);
      const entries = await this.redis.zrange(REVOKED, 0, -1, 'WITHSCORES');
      const next = new Map<string, number>();
      for (let i = 0; i < entries.length; i += 2) next.set(entries[i], Number(entries[i + 1]));
      this.revoked = next;
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message }, 'revocation sync failed; keeping the known revocations');
    }
  }

  async issue(req: {
    agent: string;
    targets: string[];
    ttlSeconds?: number;
    plan?: string;
    issuedBy: string;
  }): Promise<{ token: string; record: TokenRecord }> {
    const agent = await this.registry.getAgent(req.agent);
    if (!agent) throw new TokenIssueError(`agent ${req.agent} is not registered`);
    if (agent.disabled) throw new TokenIssueError(`agent ${req.agent} is disabled`);
    if (req.targets.length === 0) throw new TokenIssueError('a token must be scoped to at least one target');
    for (const t of req.targets) {
      if (!(await this.registry.getTarget(t))) throw new TokenIssueError(`target ${t} is not registered`);
    }
    const ttl = req.ttlSeconds ?? this.policy.defaultTtlSeconds;
    if (!(ttl > 0) || ttl > this.policy.maxTtlSeconds) {
      throw new TokenIssueError(`token lifetime must be between 1s and ${this.policy.maxTtlSeconds}s`);
    }
    const jti = randomUUID();
    const sessionId = `ses_${randomUUID()}`;
    const now = Math.floor(this.now() / 1000);
    const { kid, key } = this.keys.current();
    const token = await new SignJWT({ sid: sessionId, ...(req.plan ? { plan: req.plan } : {}) })
      .setProtectedHeader({ alg: ALG, kid, typ: AGENT_TOKEN_TYPE })
      .setIssuer(ISSUER)
      .setSubject(agent.id)
      .setAudience(req.targets)
      .setJti(jti)
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .sign(key);
    const record: TokenRecord = {
      jti,
      agent: agent.id,
      targets: req.targets,
      sessionId,
      plan: req.plan ?? '',
      issuedAt: new Date(now * 1000).toISOString(),
      expiresAt: new Date((now + ttl) * 1000).toISOString(),
      issuedBy: req.issuedBy,
    };
    const stored: StoredTokenRecord = { ...record, scram: scramVerifier(token, scramSalt(agent.id)) };
    // The record and the agent's index are in two hash slots on a Redis Cluster, so two writes: the record first, so
    // that a failure between them leaves a token nobody was given and no index entry (SCRAM cannot find it: closed).
    await this.redis.set(tokenKey(jti), JSON.stringify(stored), 'EX', ttl);
    await this.redis
      .multi()
      .sadd(agentTokensKey(agent.id), jti)
      .expire(agentTokensKey(agent.id), this.policy.maxTtlSeconds)
      .exec();
    return { token, record };
  }

  async revoke(jti: string): Promise<TokenRecord | null> {
    const raw = await this.redis.get(tokenKey(jti));
    if (!raw) return null;
    const record = JSON.parse(raw) as TokenRecord;
    const exp = Math.floor(Date.parse(record.expiresAt) / 1000);
    await this.redis.multi().zadd(REVOKED, exp, jti).publish(REVOKED_CHANNEL, JSON.stringify({ jti, exp })).exec();
    this.revoked.set(jti, exp);
    this.verified.dropJti(jti);
    return record;
  }

  async get(jti: string): Promise<TokenRecord | null> {
    const raw = await this.redis.get(tokenKey(jti));
    if (!raw) return null;
    const { scram: _verifier, ...record } = JSON.parse(raw) as StoredTokenRecord;
    return record;
  }

  /** The live tokens of `agent` with their SCRAM verifiers: one of them is the token a SCRAM client proves. */
  async scramCandidates(agent: string): Promise<ScramCandidate[]> {
    const ids = await this.redis.smembers(agentTokensKey(agent));
    if (ids.length === 0) return [];
    // One GET per token rather than MGET: the records are in as many hash slots on a Redis Cluster.
    const raws = await Promise.all(ids.map((id) => this.redis.get(tokenKey(id))));
    const out: ScramCandidate[] = [];
    raws.forEach((raw, i) => {
      if (!raw) return;
      const record = JSON.parse(raw) as StoredTokenRecord;
      if (record.scram && record.agent === agent) {
        const jti = ids[i];
        out.push({
          jti,
          verifier: record.scram,
          expiresAt: new Date(record.expiresAt),
          revoked: this.revoked.has(jti),
        });
      }
    });
    return out;
  }

  /**
   * Verifies a token the client proved it holds without presenting it (a SCRAM proof against the token's verifier):
   * the same checks as verify() after the signature, on the token's stored record.
   */
  async verifyProven(jti: string, target: string): Promise<TokenVerification> {
    const record = await this.get(jti);
    if (!record) return { ok: false, failure: 'expired', message: 'the agent token has expired; ask for a new one' };
    const exp = Math.floor(Date.parse(record.expiresAt) / 1000);
    if (exp * 1000 <= this.now())
      return { ok: false, failure: 'expired', message: 'the agent token has expired; ask for a new one' };
    return this.admit(
      { jti, sub: record.agent, sessionId: record.sessionId, plan: record.plan, targets: record.targets, exp },
      target,
    );
  }

  /**
   * Verifies an SSH public key login (the gateway has checked the signature): the agent exists, is enabled and has
   * registered exactly this key for `target`. The login is a session of its own, named by `login` (minted by the
   * gateway per connection); it has no expiry of a token's kind, so it is given one of KEY_SESSION_HOURS from the last
   * verification (the gateway verifies again before each action) and otherwise ends when idle. Never throws.
   */
  async verifyPublicKey(agentId: string, keyBlob: string, target: string, login: string): Promise<TokenVerification> {
    const agent = await this.agent(agentId);
    if (!agent) return { ok: false, failure: 'unknown_agent', message: `agent ${agentId} is not registered` };
    if (agent.disabled) return { ok: false, failure: 'agent_disabled', message: `agent ${agent.id} is disabled` };
    const key = agent.sshKeys?.find((k) => sameKeyBlob(k.publicKey, keyBlob));
    if (!key)
      return { ok: false, failure: 'invalid', message: `this public key is not registered to agent ${agentId}` };
    if (!key.targets.includes(target)) {
      return { ok: false, failure: 'out_of_scope', message: `this public key is not registered for target ${target}` };
    }
    return {
      ok: true,
      agent,
      token: {
        jti: `sshkey_${login}`,
        sessionId: `ses_${login}`,
        plan: '',
        targets: key.targets,
        expiresAt: new Date(this.now() + KEY_SESSION_HOURS * 3600_000),
      },
    };
  }

  /** Verifies a bearer token for use against `target`. Never throws for a bad token. */
  async verify(token: string | undefined, target: string): Promise<TokenVerification> {
    if (!token)
      return {
        ok: false,
        failure: 'missing',
        message: 'no Portcullis agent token was presented (send it as a bearer token)',
      };
    const now = this.now();
    const digest = hash('sha256', token, 'base64');
    // Fast path: this exact token's signature was verified moments ago and it has not expired since.
    const claims = this.verified.get(digest, now) ?? (await this.verifySignature(token, digest, now));
    if ('failure' in claims) return claims;
    return this.admit(claims, target);
  }

  /** What a token with valid claims must also pass: not revoked, scoped to `target`, its agent registered and enabled. */
  private async admit(claims: VerifiedClaims, target: string): Promise<TokenVerification> {
    const { jti, targets } = claims;
    if (this.revoked.has(jti))
      return { ok: false, failure: 'revoked', message: `the agent token ${jti} has been revoked` };
    if (!targets.includes(target))
      return { ok: false, failure: 'out_of_scope', message: `the agent token is not scoped to target ${target}` };
    const agent = await this.agent(claims.sub);
    if (!agent) return { ok: false, failure: 'unknown_agent', message: `agent ${claims.sub} is not registered` };
    if (agent.disabled) return { ok: false, failure: 'agent_disabled', message: `agent ${agent.id} is disabled` };
    return {
      ok: true,
      agent,
      token: { jti, sessionId: claims.sessionId, plan: claims.plan, targets, expiresAt: new Date(claims.exp * 1000) },
    };
  }

  /** The full check (header, key, signature, issuer, expiry); remembers the claims of a token that passes. */
  private async verifySignature(
    token: string,
    digest: string,
    now: number,
  ): Promise<VerifiedClaims | { ok: false; failure: TokenFailure; message: string }> {
    let kid: string | undefined;
    try {
      const header = decodeProtectedHeader(token);
      if (header.typ !== AGENT_TOKEN_TYPE)
        return { ok: false, failure: 'malformed', message: 'the bearer token is not a Portcullis agent token' };
      kid = header.kid;
    } catch {
      return { ok: false, failure: 'malformed', message: 'the bearer token is not a Portcullis agent token' };
    }
    const key = kid ? await this.keys.verificationKey(kid) : null;
    if (!key)
      return { ok: false, failure: 'invalid', message: 'the agent token was not signed by a key this gateway knows' };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        issuer: ISSUER,
        algorithms: [ALG],
        typ: AGENT_TOKEN_TYPE,
        clockTolerance: 0,
        currentDate: new Date(now),
        // Every token this gateway issues has them; a signed token without an expiry would never expire.
        requiredClaims: ['exp', 'jti', 'sub', 'aud', 'sid'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired)
        return { ok: false, failure: 'expired', message: 'the agent token has expired; ask for a new one' };
      return { ok: false, failure: 'invalid', message: 'the agent token is invalid' };
    }
    const claims: VerifiedClaims = {
      jti: String(payload.jti ?? ''),
      sub: String(payload.sub),
      sessionId: String(payload.sid),
      plan: String(payload.plan ?? ''),
      targets: Array.isArray(payload.aud) ? payload.aud : [String(payload.aud)],
      exp: Number(payload.exp),
    };
    // A token without an expiry (none we issue) is never remembered: there would be no bound but the TTL.
    if (payload.exp !== undefined) this.verified.set(digest, claims, now);
    return claims;
  }

  /** Agents are read through a short cache so a disabled agent is refused within a second, without a Redis read per request. */
  private async agent(id: string): Promise<Agent | null> {
    const hit = this.agentCache.get(id);
    if (hit && this.now() - hit.at < 1000) return hit.agent;
    let refresh = this.agentRefresh.get(id);
    if (!refresh) {
      refresh = this.registry
        .getAgent(id)
        .then((agent) => {
          this.agentCache.set(id, { agent, at: this.now() });
          return agent;
        })
        .finally(() => this.agentRefresh.delete(id));
      this.agentRefresh.set(id, refresh);
    }
    if (!hit) return refresh;
    // A stale entry answers now while one refresh runs: a request never waits on Redis for an agent it has seen,
    // so a Redis outage cannot stall decisions past Envoy's message timeout. The last known state of the agent
    // stands until Redis answers (a change reaches this replica about a second plus one round trip later).
    refresh.catch((err: unknown) =>
      this.logger?.warn({ err: (err as Error).message, agent: id }, 'agent refresh failed; using the last known state'),
    );
    return hit.agent;
  }
}

export class TokenIssueError extends Error {}

/** What a valid signature vouches for; the per-call checks (revocation, scope, agent) run on these. */
interface VerifiedClaims {
  jti: string;
  sub: string;
  sessionId: string;
  plan: string;
  targets: string[];
  exp: number;
}

/**
 * Tokens whose signature verified, by SHA-256 of the token. An entry is good while `now < until`, where `until` is
 * the earlier of the token's expiry (jose refuses once `exp <= now` in whole seconds) and VERIFIED_TTL_MS after the
 * check; past it, the token goes through the full check again, which reports the expiry itself.
 */
class VerifiedTokens {
  private entries = new Map<string, { claims: VerifiedClaims; until: number }>();

  get(digest: string, now: number): VerifiedClaims | undefined {
    const e = this.entries.get(digest);
    if (!e) return undefined;
    if (now < e.until) return e.claims;
    this.entries.delete(digest);
    return undefined;
  }

  set(digest: string, claims: VerifiedClaims, now: number): void {
    const until = Math.min(claims.exp * 1000, now + VERIFIED_TTL_MS);
    if (!(now < until)) return;
    if (this.entries.size >= VERIFIED_MAX) {
      for (const [k, e] of this.entries) if (e.until <= now) this.entries.delete(k);
      // Still full of live entries: the oldest goes (Map keeps insertion order).
      const oldest = this.entries.keys().next();
      if (this.entries.size >= VERIFIED_MAX && !oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.delete(digest);
    this.entries.set(digest, { claims, until });
  }

  /** Revocation drops the token at once (verify checks the revocation set on every call as well). */
  dropJti(jti: string): void {
    for (const [k, e] of this.entries) if (e.claims.jti === jti) this.entries.delete(k);
  }
}

/** True when a bearer value has the shape of an agent token (used to refuse agents at the admin API). */
export function looksLikeAgentToken(token: string): boolean {
  try {
    return decodeProtectedHeader(token).typ === AGENT_TOKEN_TYPE;
  } catch {
    return false;
  }
}
