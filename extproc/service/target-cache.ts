/**
 * Targets as the data path reads them: from memory, refreshed from Redis every second, so a decision never waits on a
 * Redis round trip for target metadata and a Redis outage leaves the last known targets in force.
 */
import type { Logger } from 'pino';
import type { Registry, Target } from '../identity/registry.ts';

export class TargetCache {
  private byName = new Map<string, Target>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly registry: Registry,
    private readonly logger?: Logger,
  ) {}

  get(name: string): Target | undefined {
    return this.byName.get(name);
  }

  all(): Target[] {
    return [...this.byName.values()];
  }

  async refresh(): Promise<void> {
    try {
      this.byName = new Map((await this.registry.listTargets()).map((t) => [t.name, t]));
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message }, 'target refresh failed; keeping the known targets');
    }
  }

  async start(intervalMs = 1000): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
