/**
 * The spine's metrics, with each label set's series looked up once and kept by a single string: every action counts and
 * times its decision, and finding a series through the tally's labels() (a labels object, a key built from its
 * values) costs about ten times as much per call.
 */
import type { Finding } from '../masking/index.ts';
import type { Protocol } from '../policy/context.ts';
import type { DataPathMetrics } from './core.ts';

interface Incrementable {
  inc(by?: number): void;
}
interface Observable {
  observe(value: number): void;
}

export class DecisionMetrics {
  private readonly counted = new Map<string, Incrementable>();
  private readonly timed = new Map<Protocol, Observable>();
  private readonly found = new Map<string, Incrementable>();

  constructor(private readonly metrics: DataPathMetrics) {}

  /** One decision of `protocol`: what was enforced, and why (a decision reason or a refusal code; a closed set). */
  decided(protocol: Protocol, action: string, reason: string): void {
    const key = `${protocol}\n${action}\n${reason}`;
    let child = this.counted.get(key);
    if (!child) {
      child = this.metrics.decisions.labels({ protocol, action, reason });
      this.counted.set(key, child);
    }
    child.inc();
  }

  /** Values masked in one action's output, by entity. */
  masked(protocol: Protocol, findings: readonly Finding[]): void {
    for (const f of findings) {
      const key = `${protocol}\n${f.entity}`;
      let child = this.found.get(key);
      if (!child) {
        child = this.metrics.maskingFindings.labels({ protocol, entity: f.entity });
        this.found.set(key, child);
      }
      child.inc(f.count);
    }
  }

  /** Time from the start of an action to its policy decision. */
  took(protocol: Protocol, seconds: number): void {
    let child = this.timed.get(protocol);
    if (!child) {
      child = this.metrics.decisionSeconds.labels({ protocol });
      this.timed.set(protocol, child);
    }
    child.observe(seconds);
  }
}
