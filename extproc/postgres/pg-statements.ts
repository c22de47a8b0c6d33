/**
 * Statements of one connection as typed actions: the classification of a Query's or prepared statement's text turned
 * into the `sql` section of the policy context, and what an approval binds to (the text plus the bound values).
 */
import { createHash } from 'node:crypto';
import type { Action, SqlContext } from '../spine/index.ts';
import { EMPTY_SQL } from '../spine/index.ts';
import type { Classification, StatementClass } from './sql-classify.ts';

/** Longest statement text kept in a recording or an approval summary (the rest is cut, with its length noted). */
const RECORDED_TEXT_MAX = 4096;

/** The members of a statement's `sql` section that follow from its classification alone. */
type ClassifiedSql = Omit<SqlContext, 'database' | 'text'>;

/**
 * Kept per classification: the classifier hands out one object per statement shape (sql-classify.ts), so a client
 * repeating a shape gets its tables and kinds listed once. Shared and never changed: the context is read only.
 */
const classified = new WeakMap<StatementClass[], ClassifiedSql>();

export function sqlContext(text: string, database: string, statements: StatementClass[]): SqlContext {
  let c = classified.get(statements);
  if (!c) {
    c = classifiedSql(statements);
    classified.set(statements, c);
  }
  return { ...c, database, text };
}

function classifiedSql(statements: StatementClass[]): ClassifiedSql {
  const kinds = new Set<string>();
  const reads = new Set<string>();
  const writes = new Set<string>();
  const functions = new Set<string>();
  for (const s of statements) {
    kinds.add(s.kind);
    for (const k of s.nestedKinds) kinds.add(k);
    for (const t of s.tables) (t.access === 'write' ? writes : reads).add(t.name);
    for (const f of s.functions) functions.add(f);
  }
  // Frozen: shared by every statement of the shape (and so compared by identity, policy/decision-cache.ts).
  return {
    ...EMPTY_SQL,
    statements: Object.freeze([...kinds]) as string[],
    readTables: Object.freeze([...reads]) as string[],
    writeTables: Object.freeze([...writes]) as string[],
    functions: Object.freeze([...functions]) as string[],
    unqualifiedWrite: statements.some((s) => s.unqualifiedWrite),
    roleChange: statements.some((s) => s.roleChange),
    opaque: statements.some((s) => s.opaque),
  };
}

export function recordedText(text: string): string {
  return text.length <= RECORDED_TEXT_MAX ? text : `${text.slice(0, RECORDED_TEXT_MAX)}… (${text.length} characters)`;
}

/**
 * A statement as an action. `values` are the bound parameters of an extended-protocol Bind (null for NULL), or
 * undefined for a simple Query: an approval covers this text with exactly these values. The recording keeps a keyed
 * digest of each value (`digest`: the deployment's, Spine.valueDigest), never the value (bound values may be any data
 * the agent sends) nor an unkeyed hash of it (one with few candidates, an SSN whose last four digits a masked result
 * shows, is reversed by trying them all). `shown` is the text as the recording keeps it and approvers read it (masked
 * by content, and cut: PgTraffic.shownText); the policy and the approval's fingerprint take the text as sent
 * (`sql.text`).
 */
export function statementAction(
  sql: SqlContext,
  classification: Extract<Classification, { ok: true }>,
  values: (Buffer | null)[] | undefined,
  estimatedRows: number | null,
  shown: string,
  digest: ((value: Uint8Array) => string) | null,
): Action {
  return new StatementAction(sql, classification, values, estimatedRows, shown, digest);
}

/** One per statement: a class rather than an object of closures, so that making one allocates nothing more. */
class StatementAction implements Action {
  readonly section: Action['section'];
  readonly recorded: Record<string, unknown>;
  // Statements repeat a few shapes; a decision is reused only when every field a rule reads is equal.
  readonly reusableDecision = true;
  // A statement is recorded with its decision, and usually its output inside it too (NewRecordingEvent.into): one
  // event per statement, not three.
  readonly recordedWithDecision = true;
  /** Each bound value's keyed digest (null for NULL), as recorded; undefined for a simple Query. */
  private readonly valueDigests: (string | null)[] | undefined;

  constructor(
    private readonly sql: SqlContext,
    classification: Extract<Classification, { ok: true }>,
    private readonly values: (Buffer | null)[] | undefined,
    private readonly estimatedRows: number | null,
    private readonly shown: string,
    digest: ((value: Uint8Array) => string) | null,
  ) {
    this.section = { protocol: 'postgres', sql };
    const recorded: Record<string, unknown> = {
      statement: shown,
      classification: classification.statements,
    };
    if (values) {
      const hashes: (string | null)[] = [];
      for (const v of values) {
        if (v === null) hashes.push(null);
        // Fail closed: PgTraffic refuses a statement with values when there is no key, so this is a bug if reached.
        else if (digest) hashes.push(digest(v));
        else throw new Error('a bound value to record without a value digest key');
      }
      recorded.parameters = hashes.length;
      recorded.parameterHashes = hashes;
      this.valueDigests = hashes;
    }
    if (estimatedRows !== null) recorded.estimatedRows = estimatedRows;
    this.recorded = recorded;
  }

  /**
   * The text and each bound value by its keyed digest (the one recorded): the approval fingerprint made from this is
   * readable through the approvals API, and an unkeyed hash over the values would let a reader test guesses at them.
   */
  canonical(): string {
    const digests = this.valueDigests;
    const h = createHash('sha256').update(this.sql.text);
    for (const d of digests ?? []) h.update(d === null ? Buffer.from([0]) : Buffer.from(`\x01${d}`, 'latin1'));
    return `postgres-statement\0${digests === undefined ? 'simple' : `bound:${digests.length}`}\0${h.digest('hex')}`;
  }

  summary(): string {
    const values = this.values;
    const estimatedRows = this.estimatedRows;
    return `${this.shown}${values?.length ? ` (${values.length} bound value${values.length === 1 ? '' : 's'})` : ''}${
      estimatedRows === null ? '' : ` ≈ ${estimatedRows} row${estimatedRows === 1 ? '' : 's'} (planner estimate)`
    }`;
  }
}

/** Statements whose effect an approver needs to see as a row count. */
const ESTIMATED_KINDS = new Set(['UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** Whether the statement is one UPDATE, DELETE or MERGE (the planner's estimate is asked for those only). */
export function wantsEstimate(classification: Extract<Classification, { ok: true }>): boolean {
  return classification.statements.length === 1 && ESTIMATED_KINDS.has(classification.statements[0].kind);
}
