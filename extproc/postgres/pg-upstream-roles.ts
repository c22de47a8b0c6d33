/**
 * Short-lived upstream roles: for a target whose credential has `roles: {group}`, an agent logs in upstream as a role
 * of its own that the gateway created (`pc_<agent>_<hash>`, LOGIN, member of `group`, VALID UNTIL the expiry of the
 * agent's newest live token), never as the vault's role, which serves only this administration.
 *
 * Per agent, not per session, because of when the role must be known: the startup message names the upstream role
 * before the agent has proved anything, and network ext_proc cannot answer the client on its own to wait for the proof.
 * The role is created (or its validity moved to the newest token's expiry) when the startup message arrives, for an
 * agent that has a live token; a client that then fails to prove a token never learns or uses the role's password.
 *
 * The role's password is derived (HMAC-SHA-256 keyed by the vault's password, over the target and role name), so every
 * replica computes the same one without storing it, and the server is given only its SCRAM verifier, never the
 * password (nothing of it in a server log). A sweep, run at most every `sweepEveryMs` when a login to the target
 * arrives, drops the roles whose agent has no live token left (all expired or revoked) or whose VALID UNTIL passed,
 * after ending their sessions: what a crash or a revocation left behind goes at the next sweep, and until then the
 * role cannot log in past its VALID UNTIL and nobody but the gateway knows its password.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { scramVerifier } from '../spine/index.ts';
import type { Spine } from '../spine/index.ts';
import { literal, PgCatalogClient } from './pg-catalog-client.ts';
import type { PgLogin } from './pg-connection.ts';

/** What marks a role as one of ours (its COMMENT): the sweep never touches a role without it. */
const COMMENT_PREFIX = 'portcullis upstream role of agent ';
const ENSURED_FOR_MS = 30_000;

/** The agent our comment names, or null for a comment someone else wrote to look like ours. */
function agentOfComment(description: string): string | null {
  try {
    const agent: unknown = JSON.parse(description.slice(COMMENT_PREFIX.length));
    return typeof agent === 'string' ? agent : null;
  } catch {
    return null;
  }
}

/** A role this gateway logs an agent in as, with the password it presents. */
export interface AgentRole {
  user: string;
  password: string;
}

/** A PostgreSQL identifier, quoted. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The role of `agent` on `target`: readable in pg_stat_activity, unique by its hash, at most 63 bytes. */
export function agentRoleName(target: string, agent: string): string {
  const readable = agent
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 40);
  const hash = createHash('sha256').update(`${target}\0${agent}`).digest('hex').slice(0, 10);
  return `pc_${readable}_${hash}`;
}

export class UpstreamRoles {
  private admin: { client: PgCatalogClient; key: string } | null = null;
  private lastSweep = 0;
  private sweeping: Promise<number> | null = null;
  /** Verifiers computed (4096 PBKDF2 rounds each), by role and password. */
  private readonly verifiers = new Map<string, string>();
  /**
   * Roles this process made ready lately, with the validity and verifier it gave them: a login that would set the same
   * again within ENSURED_FOR_MS sends nothing (a client that only claims an agent id does not make the gateway alter a
   * role per connection attempt). A role dropped behind the gateway's back meanwhile fails logins until then.
   */
  private readonly ensured = new Map<string, { until: string; verifier: string; at: number }>();

  constructor(
    private readonly spine: Spine,
    private readonly target: string,
    private readonly login: PgLogin,
    private readonly group: string,
    private readonly sweepEveryMs: number,
  ) {}

  /** The gateway's administration connection, logged in with the vault's credential (re-made when it changes). */
  private async adminClient(): Promise<{ client: PgCatalogClient; key: Buffer }> {
    const cred = await this.spine.upstreamAdmin(this.target);
    const password = cred.password.reveal();
    const key = createHash('sha256').update(`${cred.user}\0${password}`).digest('base64');
    if (this.admin?.key !== key) {
      this.admin?.client.close();
      this.admin = {
        client: new PgCatalogClient({ ...this.login, user: cred.user, password }),
        key,
      };
    }
    return { client: this.admin.client, key: Buffer.from(password) };
  }

  /**
   * The role `agent` logs in as: created, or its password and VALID UNTIL brought up to date, before the startup
   * message goes upstream. Null when the agent has no live token (its login fails at the proof; the startup message
   * then names a role that does not exist, and the server fails the proof as it would for a wrong password).
   */
  async ensure(agent: string): Promise<AgentRole | null> {
    this.maybeSweep();
    const user = agentRoleName(this.target, agent);
    const until = await this.spine.agentLiveUntil(agent);
    if (!until) return null;
    const { client, key } = await this.adminClient();
    const password = createHmac('sha256', key)
      .update(`portcullis upstream role\0${this.target}\0${user}`)
      .digest('base64url');
    const verifierKey = createHash('sha256').update(`${user}\0${password}`).digest('base64');
    let verifier = this.verifiers.get(verifierKey);
    if (!verifier) {
      const salt = randomBytes(16);
      const v = scramVerifier(password, salt);
      verifier = `SCRAM-SHA-256$4096:${salt.toString('base64')}$${v.storedKey}:${v.serverKey}`;
      if (this.verifiers.size >= 10_000) this.verifiers.clear();
      this.verifiers.set(verifierKey, verifier);
    }
    const untilText = until.toISOString();
    const last = this.ensured.get(user);
    if (last && last.until === untilText && last.verifier === verifier && Date.now() - last.at < ENSURED_FOR_MS)
      return { user, password };
    const role = ident(user);
    const comment = literal(COMMENT_PREFIX + JSON.stringify(agent));
    const login = `LOGIN PASSWORD ${literal(verifier)} VALID UNTIL ${literal(untilText)}`;
    // One round trip. A role of that name that exists already is altered only when it is ours (our comment) and holds
    // no privilege beyond its group's; a concurrent creation by another replica is met that way too. The dollar
    // quote's tag is random, so no name or comment inside can end it.
    const tag = `$pc_${randomBytes(8).toString('hex')}$`;
    await client.query(
      `DO ${tag} BEGIN
  BEGIN
    CREATE ROLE ${role} ${login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS IN ROLE ${ident(this.group)};
    COMMENT ON ROLE ${role} IS ${comment};
  EXCEPTION WHEN duplicate_object THEN
    IF NOT EXISTS (
      SELECT FROM pg_catalog.pg_roles r
        JOIN pg_catalog.pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_authid'::regclass
       WHERE r.rolname = ${literal(user)} AND d.description = ${comment}
         AND NOT (r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls)
    ) THEN
      RAISE EXCEPTION 'role % exists and is not a Portcullis upstream role', ${literal(user)};
    END IF;
    ALTER ROLE ${role} ${login};
  END;
END ${tag}`,
    );
    if (this.ensured.size >= 10_000) this.ensured.clear();
    this.ensured.set(user, { until: untilText, verifier, at: Date.now() });
    return { user, password };
  }

  private maybeSweep(): void {
    if (this.sweeping || Date.now() - this.lastSweep < this.sweepEveryMs) return;
    this.lastSweep = Date.now();
    this.sweeping = this.sweep()
      .catch((err: unknown) => {
        this.spine.logger.warn(
          { target: this.target, err: err instanceof Error ? err.message : String(err) },
          'upstream role sweep failed; retried at a later login',
        );
        return 0;
      })
      .finally(() => {
        this.sweeping = null;
      });
  }

  /** Drops our roles whose agent has no live token or whose validity passed, ending their sessions; returns how many. */
  async sweep(): Promise<number> {
    const { client } = await this.adminClient();
    const rows = await client.query(
      `SELECT r.rolname, d.description, r.rolvaliduntil IS NOT NULL AND r.rolvaliduntil < now()
         FROM pg_catalog.pg_roles r
         JOIN pg_catalog.pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_authid'::regclass
        WHERE d.description LIKE ${literal(`${COMMENT_PREFIX}%`)}`,
    );
    let dropped = 0;
    for (const [name, description, lapsed] of rows) {
      if (name === null || description === null) continue;
      const agent = agentOfComment(description);
      if (agent === null) continue;
      // Another target's roles on the same server are that target's to sweep.
      if (name !== agentRoleName(this.target, agent)) continue;
      if (lapsed !== 't' && (await this.spine.agentLiveUntil(agent))) continue;
      await client.query(
        `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = ${literal(name)}`,
      );
      await client.query(`DROP ROLE IF EXISTS ${ident(name)}`);
      this.ensured.delete(name);
      this.spine.logger.info({ target: this.target, agent, role: name }, 'upstream role dropped');
      dropped++;
    }
    return dropped;
  }

  close(): void {
    this.admin?.client.close();
    this.admin = null;
  }
}
