/**
 * The PostgreSQL adapter: a network ext_proc listener whose processor is one PgConnection per TCP connection. The
 * listener's target comes from Envoy's `x-portcullis-target` stream metadata; the target's address is
 * `host:port/database` and its credential a password (the role the gateway logs in as).
 */
import type { DataPathAdapter } from '../streams/index.ts';
import { PgConnection, type PgLogin } from './pg-connection.ts';
import { loadSqlParser } from './sql-classify.ts';

export const TARGET_METADATA = 'x-portcullis-target';

export interface PostgresAdapterOptions {
  /** Largest client message (statement text and bound values), default 16 MiB. */
  maxClientMessageBytes?: number;
  /** Largest server message (one row), default 64 MiB. */
  maxServerMessageBytes?: number;
}

/** `host:port/database` (or `postgres://host:port/database`) → the database; `postgres` when none is named. */
export function targetDatabase(address: string): string {
  const path = address.replace(/^postgres(ql)?:\/\//, '').split('/')[1] ?? '';
  return decodeURIComponent(path.split('?')[0] ?? '') || 'postgres';
}

export function postgresAdapter(opts: PostgresAdapterOptions = {}): DataPathAdapter {
  return (spine) => {
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
        const login: PgLogin | null = upstream
          ? { user: upstream.user, database: targetDatabase(upstream.address) }
          : null;
        return new PgConnection({
          spine,
          target,
          login,
          maxClientMessageBytes: opts.maxClientMessageBytes ?? 16 * 1024 * 1024,
          maxServerMessageBytes: opts.maxServerMessageBytes ?? 64 * 1024 * 1024,
        });
      },
    };
  };
}
