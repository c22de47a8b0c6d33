/**
 * Which request each server message answers. The server answers a connection's messages strictly in order, so the
 * read side notes each message that gets an answer, and the write side takes them off as the answers come. This is
 * how rows are matched to their columns when the extended protocol sends no RowDescription with them: a prepared
 * statement is described once (Describe), then executed many times (Bind, Execute) — JDBC and others do exactly that.
 * A re-Parse or Close of a statement forgets its description, so rows are never masked by a stale one; rows of a
 * statement never described cannot be matched and end the connection (fail closed).
 */
import type { Described } from './pg-result-masking.ts';

type Awaited =
  | { kind: 'query' }
  | { kind: 'parse'; statement: string }
  | { kind: 'describe'; statement: string }
  | { kind: 'execute'; statement: string | null; formats: number[]; begun: boolean }
  | { kind: 'close'; statement: string | null }
  | { kind: 'sync' };

/** Described statements kept at most per connection (a client that prepares without end is cut off here). */
const DESCRIBED_MAX = 10_000;

export class ResponseOrder {
  private readonly queue: Awaited[] = [];
  private readonly portals = new Map<string, { statement: string; formats: number[] }>();
  private readonly described = new Map<string, Described>();

  // ---------------------------------------------------------------------------------------- client messages, in order

  query(): void {
    this.queue.push({ kind: 'query' });
  }

  parse(statement: string): void {
    this.queue.push({ kind: 'parse', statement });
  }

  bind(portal: string, statement: string, formats: number[]): void {
    this.portals.set(portal, { statement, formats });
  }

  describe(target: 'S' | 'P', name: string): void {
    const statement = target === 'S' ? name : this.portals.get(name)?.statement;
    // A portal nobody bound: the server refuses the Describe (an error, which skips to Sync).
    if (statement !== undefined) this.queue.push({ kind: 'describe', statement });
  }

  execute(portal: string): void {
    const p = this.portals.get(portal);
    this.queue.push({ kind: 'execute', statement: p?.statement ?? null, formats: p?.formats ?? [], begun: false });
  }

  close(target: 'S' | 'P', name: string): void {
    this.queue.push({ kind: 'close', statement: target === 'S' ? name : null });
    if (target === 'P') this.portals.delete(name);
  }

  sync(): void {
    this.queue.push({ kind: 'sync' });
  }

  // ---------------------------------------------------------------------------------------- server messages, in order

  /** A RowDescription answering a Describe (stored for the statement) or starting a simple Query's result. */
  rowDescription(described: Described): 'query' | 'described' {
    const head = this.queue[0];
    if (head?.kind === 'describe') {
      this.queue.shift();
      if (this.described.size >= DESCRIBED_MAX) this.described.clear();
      this.described.set(head.statement, described);
      return 'described';
    }
    return 'query';
  }

  /** NoData: a Describe of a statement that returns no rows. */
  noData(): void {
    const head = this.queue[0];
    if (head?.kind === 'describe') {
      this.queue.shift();
      this.described.set(head.statement, []);
    }
  }

  /**
   * A DataRow of an Execute whose result has not begun: the description and formats to mask it with, or null when
   * the rows belong to a simple Query (described by their own RowDescription) or nothing describes them.
   */
  executeStarting(): { described: Described | undefined; formats: number[] } | null {
    const head = this.queue[0];
    if (head?.kind !== 'execute' || head.begun) return null;
    head.begun = true;
    return {
      described: head.statement === null ? undefined : this.described.get(head.statement),
      formats: head.formats,
    };
  }

  /** ParseComplete: the statement's text may have changed, its old description is forgotten. */
  parseComplete(): void {
    const head = this.queue[0];
    if (head?.kind === 'parse') {
      this.queue.shift();
      this.described.delete(head.statement);
    }
  }

  closeComplete(): void {
    const head = this.queue[0];
    if (head?.kind === 'close') {
      this.queue.shift();
      if (head.statement !== null) this.described.delete(head.statement);
    }
  }

  /** CommandComplete, EmptyQueryResponse or PortalSuspended: an Execute's result ended (a Query goes on). */
  resultComplete(): void {
    if (this.queue[0]?.kind === 'execute') this.queue.shift();
  }

  /** An ErrorResponse: in the extended protocol the server skips every message up to the next Sync. */
  error(): void {
    if (this.queue[0]?.kind === 'query') return;
    while (this.queue.length > 0 && this.queue[0].kind !== 'sync') this.queue.shift();
  }

  /** ReadyForQuery: the Query or Sync it answers is done. */
  readyForQuery(): void {
    while (this.queue.length > 0) {
      const head = this.queue.shift() as Awaited;
      if (head.kind === 'query' || head.kind === 'sync') return;
    }
  }
}
