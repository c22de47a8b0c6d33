/**
 * The stand-in's statistics, under the names Envoy's ext_proc filter uses (http.<stat_prefix>.ext_proc.*), plus a
 * few of the stand-in's own for what Envoy counts elsewhere (local replies by details).
 */
export const EXT_PROC_COUNTERS = [
  'streams_started',
  'stream_msgs_sent',
  'stream_msgs_received',
  'spurious_msgs_received',
  'streams_closed',
  'streams_failed',
  'failure_mode_allowed',
  'message_timeouts',
  'rejected_header_mutations',
  'override_message_timeout_received',
  'override_message_timeout_ignored',
  'clear_route_cache_ignored',
] as const;

export type CounterName = (typeof EXT_PROC_COUNTERS)[number];

export class Counters {
  private readonly values = new Map<string, number>();
  /** Local replies sent, by %RESPONSE_CODE_DETAILS%. */
  readonly localReplies: { status: number; details: string }[] = [];

  inc(name: CounterName): void {
    this.values.set(name, (this.values.get(name) ?? 0) + 1);
  }

  get(name: CounterName): number {
    return this.values.get(name) ?? 0;
  }

  /** All counters, zeros included. */
  snapshot(): Record<CounterName, number> {
    return Object.fromEntries(EXT_PROC_COUNTERS.map((n) => [n, this.get(n)])) as Record<CounterName, number>;
  }
}
