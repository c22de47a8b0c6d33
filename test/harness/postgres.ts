/**
 * Starts a private PostgreSQL (Debian's postgresql 15 package) for one test file: its own data directory, its own
 * loopback port, the unix socket inside the data directory, SCRAM-SHA-256 everywhere except for two roles kept to test
 * the gateway's md5 and cleartext upstream logins. Seeds an `app` database with `orders` and `customers` (card
 * numbers, an `ssn` column) owned by the role `app_owner`, whose password is the credential the gateway's vault holds.
 * Real PostgreSQL, never a mock. PostgreSQL refuses to run as root: as root the server runs as the `postgres` user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, waitFor } from './ports.ts';

const BIN = '/usr/lib/postgresql/15/bin';

export const PG_SUPERUSER = { user: 'postgres', password: 'superuser-secret-1f3a' } as const;
/** The role the gateway logs in as: its password lives only in the gateway's vault. */
export const PG_APP_OWNER = { user: 'app_owner', password: 'app-owner-secret-9c2e' } as const;
/** Roles whose pg_hba line asks for md5 and for a cleartext password, with the same grants as app_owner. */
export const PG_MD5_ROLE = { user: 'app_md5', password: 'app-md5-secret-44d1' } as const;
export const PG_CLEARTEXT_ROLE = { user: 'app_plain', password: 'app-plain-secret-7be0' } as const;

export interface TestPostgres {
  host: '127.0.0.1';
  port: number;
  dir: string;
  /** A client connected as the superuser to `database` (default `app`); the caller ends it. */
  superuser(database?: string): Promise<pg.Client>;
  /** The server's log so far (for a failing test's message). */
  output(): string;
  close(): Promise<void>;
}

/** Card numbers (valid Luhn) and SSNs the masking tests look for. */
export const SEEDED_CUSTOMERS = [
  { id: 1, name: 'Ada Lovelace', email: 'ada@example.com', card: '4111111111111111', ssn: '123-45-6789' },
  { id: 2, name: 'Alan Turing', email: 'alan@example.com', card: '5500005555555559', ssn: '987-65-4320' },
  { id: 3, name: 'Grace Hopper', email: 'grace@example.com', card: '340000000000009', ssn: '111-22-3333' },
] as const;

const SEED = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, card_number text, ssn text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric(10,2), note text);
INSERT INTO customers VALUES ${SEEDED_CUSTOMERS.map(
  (c) => `(${c.id}, '${c.name}', '${c.email}', '${c.card}', '${c.ssn}')`,
).join(', ')};
INSERT INTO orders SELECT g, 1 + g % 3, g * 1.5, 'order ' || g FROM generate_series(1, 20) g;
`;

export async function startPostgres(): Promise<TestPostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-pg-'));
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? userIds('postgres') : null;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const pwfile = join(dir, 'superuser-password');
  writeFileSync(pwfile, PG_SUPERUSER.password);
  if (owner) chownSync(pwfile, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const init = spawnSync(
    join(BIN, 'initdb'),
    ['-D', data, '-U', PG_SUPERUSER.user, '--pwfile', pwfile, '--auth', 'scram-sha-256', '-E', 'UTF8', '--no-sync'],
    { encoding: 'utf8', ...(owner ?? {}) },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stdout}\n${init.stderr}`);
  // First match wins: the md5 and cleartext roles get their own methods, everyone else SCRAM.
  writeFileSync(
    join(data, 'pg_hba.conf'),
    [
      `host all ${PG_MD5_ROLE.user} 127.0.0.1/32 md5`,
      `host all ${PG_CLEARTEXT_ROLE.user} 127.0.0.1/32 password`,
      'local all all scram-sha-256',
      'host all all 127.0.0.1/32 scram-sha-256',
      '',
    ].join('\n'),
  );
  if (owner) chownSync(join(data, 'pg_hba.conf'), owner.uid, owner.gid);
  let output = '';
  const child: ChildProcess = spawn(
    join(BIN, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'password_encryption=scram-sha-256',
      '-c',
      'fsync=off',
      '-c',
      'max_connections=60',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], ...(owner ?? {}) },
  );
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const connect = async (database: string): Promise<pg.Client> => {
    const c = new pg.Client({ host: '127.0.0.1', port, database, ...PG_SUPERUSER });
    await c.connect();
    return c;
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGINT'); // fast shutdown
    });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error('postgres exited');
        try {
          (await connect('postgres')).end();
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      'postgres to accept connections',
    );
    const admin = await connect('postgres');
    try {
      for (const role of [PG_APP_OWNER, PG_MD5_ROLE, PG_CLEARTEXT_ROLE]) {
        // md5 needs an md5 verifier: the md5 role's password is stored that way, the others as SCRAM.
        if (role === PG_MD5_ROLE) await admin.query("SET password_encryption = 'md5'");
        await admin.query(`CREATE ROLE ${role.user} LOGIN PASSWORD '${role.password}'`);
        await admin.query("SET password_encryption = 'scram-sha-256'");
      }
      await admin.query(`CREATE DATABASE app OWNER ${PG_APP_OWNER.user}`);
    } finally {
      await admin.end();
    }
    const app = new pg.Client({ host: '127.0.0.1', port, database: 'app', ...PG_APP_OWNER });
    await app.connect();
    try {
      await app.query(SEED);
      await app.query(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${PG_MD5_ROLE.user}, ${PG_CLEARTEXT_ROLE.user}`);
    } finally {
      await app.end();
    }
  } catch (err) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${String(err)}\n${output}`);
  }
  return {
    host: '127.0.0.1',
    port,
    dir,
    superuser: (database = 'app') => connect(database),
    output: () => output,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function userIds(name: string): { uid: number; gid: number } {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) throw new Error(`running as root needs a '${name}' user to run PostgreSQL`);
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}
