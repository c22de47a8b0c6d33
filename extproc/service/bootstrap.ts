/**
 * First-start seeding for the quickstart: an admin principal whose token is written (0600) to the data directory,
 * the bundled example policies and targets when the store has none. Once a store is populated only one thing here
 * still acts: when no admin holds a usable token any more (expired or revoked), a new one is written to the same file.
 */
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import type { Principals } from '../identity/principals.ts';
import type { Registry } from '../identity/registry.ts';
import { targetFromInput } from '../identity/routes.ts';
import type { PolicyStore } from '../policy/store.ts';
import { StartupError } from './startup.ts';

/** Expands `dir/*.yaml`-style patterns (one `*` in the file name) relative to `base`. */
export function expandPattern(pattern: string, base: string): string[] {
  const abs = resolve(base, pattern);
  if (!basename(abs).includes('*')) return [abs];
  const [prefix, suffix] = basename(abs).split('*');
  try {
    return readdirSync(dirname(abs))
      .filter((f) => f.startsWith(prefix) && f.endsWith(suffix))
      .sort()
      .map((f) => join(dirname(abs), f));
  } catch {
    return [];
  }
}

export async function ensureAdminToken(
  principals: Principals,
  dataDir: string,
  logger: Logger,
): Promise<string | null> {
  if (await principals.hasUsableAdminToken()) return null;
  // No admin can call the API: either a first start, or every admin token has expired or been revoked. Whoever can
  // start the service and read its data directory can recover; nobody else learns the new token.
  const existing = (await principals.list()).find((p) => p.roles.includes('admin'));
  const token = existing
    ? (await principals.issue(existing.id)).token
    : (
        await principals.create({
          name: 'admin',
          roles: ['admin', 'policy-author', 'auditor'],
          id: 'admin',
        })
      ).token;
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'admin.token');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  logger.info(
    { path, principal: existing?.id ?? 'admin' },
    existing
      ? 'no admin held a usable token (all expired or revoked): issued a new one into this file'
      : 'created the first admin principal; its token is in this file (shown nowhere else)',
  );
  return path;
}

/** A seed file's text; one that cannot be read stops start-up with a message naming it and the setting. */
function readBootstrapFile(file: string, setting: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new StartupError(
      `cannot read ${file} (${setting}): ${(err as NodeJS.ErrnoException).code}; set ${setting} in the config file ([] for none)`,
    );
  }
}

export async function seedPolicies(
  store: PolicyStore,
  patterns: string[],
  base: string,
  logger: Logger,
): Promise<void> {
  if ((await store.list()).length) return;
  // Policy tests (`*_test.yaml`, see `portcullis policy test`) live beside the policies; they are not policies.
  for (const file of patterns.flatMap((p) => expandPattern(p, base)).filter((f) => !/_test\.ya?ml$/.test(f))) {
    const v = await store.put(readBootstrapFile(file, 'bootstrap.policies'), 'bootstrap');
    logger.info({ policy: v.name, version: v.version, file }, 'seeded policy');
  }
}

export async function seedTargets(registry: Registry, patterns: string[], base: string, logger: Logger): Promise<void> {
  if ((await registry.listTargets()).length) return;
  for (const file of patterns.flatMap((p) => expandPattern(p, base))) {
    const doc = parseYaml(readBootstrapFile(file, 'bootstrap.targets')) as {
      targets?: Record<string, unknown>[];
      agents?: Record<string, unknown>[];
    } | null;
    for (const t of doc?.targets ?? []) {
      await registry.putTarget(targetFromInput(t));
      logger.info({ target: t.name, file }, 'seeded target');
    }
    for (const a of doc?.agents ?? []) {
      await registry.putAgent({
        id: String(a.id),
        groups: (a.groups as string[]) ?? [],
        labels: (a.labels as Record<string, string>) ?? {},
        disabled: false,
        createdAt: new Date().toISOString(),
        ...(a.owner ? { owner: String(a.owner) } : {}),
      });
      logger.info({ agent: a.id, file }, 'seeded agent');
    }
  }
}
