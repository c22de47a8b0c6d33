/**
 * The PostgreSQL adapter: a network ext_proc listener whose processor is one PgConnection per TCP connection. The
 * listener's target comes from Envoy's `x-portcullis-target` stream metadata; the target's address is
 * `host:port/database` and its credential a password (the role the gateway logs in as).
 */
import { lazyMaskingEngine } from '../masking/index.ts';
import type { DataPathAdapter } from '../streams/index.ts';
import { type CatalogLogin, PgCatalogClient } from './pg-catalog-client.ts';
import { CatalogColumnNames } from './pg-column-names.ts';
import { PgConnection, type PgLogin } from './pg-connection.ts';
import { UpstreamRoles } from './pg-upstream-roles.ts';
import { loadSqlParser } from './sql-classify.ts';

export const TARGET_METADATA = 'x-portcullis-target';

export interface PostgresAdapterOptions {
  /** Largest client message (statement text and bound values), default 16 MiB. */
  maxClientMessageBytes?: number;
  /** Largest server message (one row), default 64 MiB. */
  maxServerMessageBytes?: number;
  /** Short-lived upstream roles: how often a login may start a sweep of lapsed roles (default 60 s). */
  roleSweepEveryMs?: number;
}

/**
 * `host:port/database` (or `postgres://host:port/database`) → where the database is; port 5432 and database
 * `postgres` when the address names none.
 */
export function targetAddress(address: string): { host: string; port: number; database: string } {
  const [hostPort = '', path = ''] = address.replace(/^postgres(ql)?:\/\//, '').split('/');
  const colon = hostPort.lastIndexOf(':');
  const host = (colon >= 0 ? hostPort.slice(0, colon) : hostPort).replace(/^\[|\]$/g, '');
  const port = colon >= 0 ? Number(hostPort.slice(colon + 1)) : 5432;
  return { host, port, database: decodeURIComponent(path.split('?')[0] ?? '') || 'postgres' };
}

export function postgresAdapter(opts: PostgresAdapterOptions = {}): DataPathAdapter {
  return (spine) => {
    const engine = lazyMaskingEngine();
    /** One catalog connection per target and login, shared by the target's connections. */
    const catalogs = new Map<string, CatalogColumnNames>();
    /** The short-lived upstream roles of each target that has them, by target and login. */
    const roles = new Map<string, UpstreamRoles>();
    const rolesFor = (target: string, login: PgLogin, group: string): UpstreamRoles => {
      const key = JSON.stringify([target, login.host, login.port, login.database, group]);
      let r = roles.get(key);
      if (!r) {
        r = new UpstreamRoles(spine, target, login, group, opts.roleSweepEveryMs ?? 60_000);
        roles.set(key, r);
      }
      return r;
    };
    const columnNames = (login: CatalogLogin): CatalogColumnNames => {
      const key = JSON.stringify([login.host, login.port, login.database, login.user, login.password]);
      let names = catalogs.get(key);
      if (!names) {
        names = new CatalogColumnNames(new PgCatalogClient(login));
        catalogs.set(key, names);
      }
      return names;
    };
    // The parser's wasm loads once, before the first statement can arrive (a login takes several round trips).
    void loadSqlParser().catch((err: unknown) =>
      spine.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'SQL parser failed to load'),
    );
    return {
      kind: 'network-ext-proc',
      name: 'postgres',
      open: (stream) => {
        const target = stream.metadata(TARGET_METADATA) ?? '';
        const upstream = spine.upstreamLogin(target, 'postgres');
        const login: PgLogin | null = upstream ? { ...targetAddress(upstream.address), user: upstream.user } : null;
        return new PgConnection({
          spine,
          target,
          login,
          maxClientMessageBytes: opts.maxClientMessageBytes ?? 16 * 1024 * 1024,
          maxServerMessageBytes: opts.maxServerMessageBytes ?? 64 * 1024 * 1024,
          engine,
          columnNames,
          roles: login && upstream?.roles ? rolesFor(target, login, upstream.roles.group) : null,
        });
      },
    };
  };
}
