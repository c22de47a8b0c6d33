/**
 * Policies in Redis: every accepted write is a new version (author, time, source); the current version of each policy
 * is a pointer that rollback moves forward (a rollback is itself a new version). Replicas learn of changes through
 * pub/sub (and a slow poll as a safety net) and keep serving the last good set if Redis goes away.
 */
import type { RedisClient } from '../common/redis-client.ts';
import { loadPolicy, quarantinePolicy, type CompiledPolicy } from './load.ts';

export interface PolicyVersion {
  name: string;
  version: number;
  author: string;
  time: string;
  /** True for the version that deleted the policy. */
  deleted: boolean;
  source: string;
  /** Set on versions created by rollback. */
  rolledBackFrom?: number;
}

export const POLICY_CHANNEL = 'portcullis:policy:changed';
/** Every policy key shares the hash tag `{policy}`: one append touches the versions, the pointer and the name set. */
export const POLICY_PREFIX = 'portcullis:{policy}:';
const NAMES = `${POLICY_PREFIX}names`;
const versionsKey = (name: string): string => `${POLICY_PREFIX}${name}:versions`;
const currentKey = (name: string): string => `${POLICY_PREFIX}${name}:current`;

// KEYS: versions, current, names. ARGV: name, the entry's JSON up to its version number, the rest of it, channel.
// The version is the list length plus one, read and written in one step, so concurrent writers never share a number.
const APPEND = `
local version = redis.call('LLEN', KEYS[1]) + 1
redis.call('RPUSH', KEYS[1], ARGV[2] .. version .. ARGV[3])
redis.call('SET', KEYS[2], version)
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[4], cjson.encode({name = ARGV[1], version = version}))
return version
`;

export class PolicyStore {
  constructor(private readonly redis: RedisClient) {}

  /** Validates and stores a new version; throws PolicyLoadError for an invalid policy (nothing is written). */
  async put(source: string, author: string): Promise<PolicyVersion> {
    const compiled = loadPolicy(source);
    return this.append(compiled.doc.name, { author, deleted: false, source });
  }

  async remove(name: string, author: string): Promise<PolicyVersion> {
    const cur = await this.get(name);
    if (!cur) throw new Error(`policy ${name} does not exist`);
    return this.append(name, { author, deleted: true, source: '' });
  }

  async rollback(name: string, version: number, author: string): Promise<PolicyVersion> {
    const old = await this.version(name, version);
    if (!old) throw new Error(`policy ${name} has no version ${version}`);
    loadPolicy(old.source); // a version that no longer compiles (e.g. the context changed) is refused
    return this.append(name, { author, deleted: old.deleted, source: old.source, rolledBackFrom: version });
  }

  private async append(name: string, v: Omit<PolicyVersion, 'name' | 'version' | 'time'>): Promise<PolicyVersion> {
    const time = new Date().toISOString();
    const head = `${JSON.stringify({ name }).slice(0, -1)},"version":`;
    const rest = `,${JSON.stringify({ time, ...v }).slice(1)}`;
    const version = (await this.redis.eval(
      APPEND,
      3,
      versionsKey(name),
      currentKey(name),
      NAMES,
      name,
      head,
      rest,
      POLICY_CHANNEL,
    )) as number;
    return { name, version, time, ...v };
  }

  async version(name: string, version: number): Promise<PolicyVersion | null> {
    const raw = await this.redis.lindex(versionsKey(name), version - 1);
    return raw ? (JSON.parse(raw) as PolicyVersion) : null;
  }

  /** The current version, or null when the policy never existed or was deleted. */
  async get(name: string): Promise<PolicyVersion | null> {
    const cur = await this.redis.get(currentKey(name));
    if (!cur) return null;
    const v = await this.version(name, Number(cur));
    return v && !v.deleted ? v : null;
  }

  async history(name: string): Promise<PolicyVersion[]> {
    return (await this.redis.lrange(versionsKey(name), 0, -1)).map((s) => JSON.parse(s) as PolicyVersion);
  }

  async list(): Promise<PolicyVersion[]> {
    const names = (await this.redis.smembers(NAMES)).sort();
    const all = await Promise.all(names.map((n) => this.get(n)));
    return all.filter((v): v is PolicyVersion => v !== null);
  }
}

/**
 * Compiles the current versions. A current version that does not compile is never dropped (that would open whatever
 * it denied): the policy's history is walked back to the newest version that compiles, stopping at a deletion (what
 * came before it is a policy that was deleted, not an earlier state of this one); if none compiles, the policy is
 * quarantined — it refuses everything in its scope. Every replica, restarted or not, reaches the same result from the
 * same history.
 */
export async function compileVersions(
  versions: PolicyVersion[],
  lastGood: ReadonlyMap<string, CompiledPolicy>,
  history: (name: string) => Promise<PolicyVersion[]>,
  onError: (v: PolicyVersion, err: Error) => void,
): Promise<CompiledPolicy[]> {
  const out: CompiledPolicy[] = [];
  for (const v of versions) {
    const prev = lastGood.get(v.name);
    if (prev && (prev.degraded?.currentVersion ?? prev.version) === v.version) {
      out.push(prev);
      continue;
    }
    try {
      out.push(loadPolicy(v.source, v.version));
    } catch (err) {
      onError(v, err as Error);
      const error = (err as Error).message.split('\n')[0];
      out.push(fallback(v, await history(v.name), error) ?? quarantinePolicy(v, error));
    }
  }
  return out.sort((a, b) => a.doc.name.localeCompare(b.doc.name));
}

function fallback(current: PolicyVersion, all: PolicyVersion[], error: string): CompiledPolicy | null {
  for (let i = current.version - 2; i >= 0; i--) {
    const older = all[i];
    if (!older || older.deleted) return null;
    try {
      const compiled = loadPolicy(older.source, older.version);
      return { ...compiled, degraded: { state: 'fallback', currentVersion: current.version, error } };
    } catch {
      /* older still: keep walking */
    }
  }
  return null;
}
