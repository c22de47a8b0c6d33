/**
 * The policies this replica enforces, kept current from the store. Reads never touch Redis: `current()` returns the
 * last set compiled. Changes arrive by pub/sub within milliseconds; a slow poll covers messages lost while the
 * subscriber reconnected. If Redis is unreachable the last good set stays in force.
 */
import { handleResubscribes, type RedisClient } from '../common/redis-client.ts';
import type { Logger } from 'pino';
import type { CompiledPolicy } from './load.ts';
import { compileVersions, POLICY_CHANNEL, type PolicyStore, type PolicyVersion } from './store.ts';

export class PolicySet {
  private policies: CompiledPolicy[] = [];
  private byName = new Map<string, CompiledPolicy>();
  /** Degraded policies already logged (each is logged once, not on every poll). */
  private reported = new Map<string, CompiledPolicy>();
  private timer: NodeJS.Timeout | null = null;
  private reloading: Promise<void> | null = null;
  private pendingReload = false;

  constructor(
    private readonly store: PolicyStore,
    private readonly subscriber: RedisClient,
    private readonly logger?: Logger,
    /** Told each time a reload fails and the last good policies stay in force (counted by the metrics). */
    private readonly onReloadFailure: () => void = () => {},
  ) {}

  current(): readonly CompiledPolicy[] {
    return this.policies;
  }

  /** What this replica enforces for a policy, when that is not the store's current version. */
  degraded(name: string): (CompiledPolicy['degraded'] & { enforcedVersion: number | null }) | undefined {
    const p = this.byName.get(name);
    return p?.degraded
      ? { ...p.degraded, enforcedVersion: p.degraded.state === 'fallback' ? p.version : null }
      : undefined;
  }

  async start(pollMs = 5000): Promise<void> {
    handleResubscribes(this.subscriber);
    await this.subscriber.subscribe(POLICY_CHANNEL);
    this.subscriber.on('message', (channel: string) => {
      if (channel === POLICY_CHANNEL) void this.reload();
    });
    await this.reload();
    this.timer = setInterval(() => void this.reload(), pollMs);
    this.timer.unref();
  }

  /** Re-reads the current versions; concurrent calls coalesce into one more read after the running one. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.pendingReload = true;
      return this.reloading;
    }
    this.reloading = this.load().finally(() => {
      this.reloading = null;
      if (this.pendingReload) {
        this.pendingReload = false;
        void this.reload();
      }
    });
    return this.reloading;
  }

  private async load(): Promise<void> {
    let versions: PolicyVersion[];
    try {
      versions = await this.store.list();
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message }, 'policy reload failed; keeping the last good policies');
      this.onReloadFailure();
      return;
    }
    let next: CompiledPolicy[];
    try {
      next = await compileVersions(
        versions,
        this.byName,
        (name) => this.store.history(name),
        (v, err) => {
          this.logger?.error(
            { policy: v.name, version: v.version, err: err.message },
            'stored policy version does not compile',
          );
        },
      );
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message }, 'policy reload failed; keeping the last good policies');
      this.onReloadFailure();
      return;
    }
    const changed = next.length !== this.policies.length || next.some((p, i) => p !== this.policies[i]);
    // An unchanged set keeps its identity: what is cached per policy set (masking plans) stays valid across polls.
    if (!changed) return;
    this.policies = next;
    this.byName = new Map(next.map((p) => [p.doc.name, p]));
    for (const p of next) {
      if (!p.degraded || this.reported.get(p.doc.name) === p) continue;
      if (p.degraded.state === 'fallback')
        this.logger?.error(
          { policy: p.doc.name, version: p.degraded.currentVersion, enforced: p.version },
          `policy ${p.doc.name}: version ${p.degraded.currentVersion} does not compile; enforcing version ${p.version}, the newest that does`,
        );
      else
        this.logger?.error(
          { policy: p.doc.name, version: p.degraded.currentVersion },
          p.rules[0].message ?? 'policy quarantined',
        );
    }
    this.reported = new Map(next.filter((p) => p.degraded).map((p) => [p.doc.name, p]));
    this.logger?.info({ policies: next.map((p) => `${p.doc.name}@${p.version}`) }, 'policies loaded');
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.subscriber.unsubscribe(POLICY_CHANNEL).catch(() => undefined);
  }
}
