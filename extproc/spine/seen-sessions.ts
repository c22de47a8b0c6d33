/** Session ids this process has already announced with `session.start` (bounded; a repeat after eviction is harmless). */
export class SeenSessions {
  private seen = new Set<string>();
  constructor(private readonly max = 100_000) {}

  /** True the first time an id is offered. */
  first(id: string): boolean {
    if (this.seen.has(id)) return false;
    if (this.seen.size >= this.max) this.seen = new Set();
    this.seen.add(id);
    return true;
  }
}
