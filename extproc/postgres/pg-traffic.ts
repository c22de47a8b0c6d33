/**
 * A logged-in PostgreSQL connection's traffic: each client message decided (a simple Query as one action, an
 * extended-protocol statement at its Bind, with the bound values), a refused one replaced by one the server refuses
 * (pg-refusal.ts); each server message matched to the request it answers (pg-responses.ts), its rows masked
 * (pg-result-masking.ts) and each statement's output recorded when its result ends.
 */
import type { CompiledMasking, MaskingEngine } from '../masking/index.ts';
import type { ActionRun, Outcome, Refusal, Session, Spine } from '../spine/index.ts';
import { refusal } from '../spine/index.ts';
import { type PgFrame, PgFrameError } from './pg-frames.ts';
import type { PendingRefusals } from './pg-refusal.ts';
import { ResponseOrder } from './pg-responses.ts';
import {
  type ColumnNames,
  type Described,
  type MaskedCounts,
  memoColumnMatcher,
  type ResultMasker,
} from './pg-result-masking.ts';
import { recordedText, sqlContext, statementAction, wantsEstimate } from './pg-statements.ts';
import { BodyReader, readNoticeFields } from './pg-wire.ts';
import { changesParsing, classify, type Classification, type StatementClass } from './sql-classify.ts';

/** A statement with bound values while the gateway has no key to record their digests with. */
const NO_VALUE_KEY = refusal(
  'recording-unavailable',
  'session recording cannot keep bound values now (the gateway has no key for them); the statement did not run',
  'no-value-key',
);

export interface PgTrafficDeps {
  spine: Spine;
  session: Session;
  /** The target's real database (the `sql.database` of every statement). */
  database: string;
  masker: ResultMasker;
  /** The masking engine the masker uses: statement texts are masked with it for the recording. */
  engine: MaskingEngine;
  names: ColumnNames;
  refusals: PendingRefusals;
  nextRequestId(): string;
}

/** A prepared statement of this connection, as the client's Parse gave it. */
interface Prepared {
  text: string;
  classification: Classification;
}

/** A statement being decided: its action run, its `sql` section and what an allowed one leaves for its result. */
interface DecidedStatement {
  run: ActionRun;
  sql: ReturnType<typeof sqlContext>;
  classification: Extract<Classification, { ok: true }>;
  values: (Buffer | null)[] | undefined;
  /** Its text as recorded and shown to approvers (shownText). */
  shown: string;
  /** Its COPY … TO statements, whose CopyOutResponses will come. */
  copies: NonNullable<StatementClass['copyOut']>[];
}

/**
 * What the recording keeps of a statement's result (the `output` of its decision event, or an event of its own). A
 * type, not an interface: it is passed where a plain record is taken (ActionRun.output).
 */
type StatementOutput = {
  /** The command tags of its CommandCompletes (`SELECT 3`, `DELETE 1`). */
  commands: string[];
  /** Its own rows, values masked and values withheld (binary values sent as NULL, see ResultMasker). */
  rows: number;
  maskedValues: number;
  withheldValues: number;
  /** Its first rows as the client got them (masked). */
  sample: (string | null)[][];
  /** The result ended with an ErrorResponse. */
  error?: true;
};

/** An allowed statement whose result is still coming: its output is recorded when the result ends. */
interface AwaitingOutput {
  run: ActionRun;
  /** A simple Query's statements end at ReadyForQuery; an extended-protocol Execute at its CommandComplete. */
  endsAt: 'ready' | 'complete';
  tags: string[];
  /**
   * Its COPY … TO still to come, in order, for their CopyOutResponses. They end with the statement: a COPY that failed
   * or never ran leaves nothing for the next statement's CopyOutResponse to be read by.
   */
  copies: NonNullable<StatementClass['copyOut']>[];
}

/**
 * A ParameterStatus the server reports: if it says statements are now read differently from how the gateway reads
 * them (standard_conforming_strings off, a client-only encoding), the connection ends (a fault: Envoy closes it).
 * Statements that set these are refused; this is the backstop for every other way (role or database defaults, a
 * function the gateway does not know).
 */
export function checkReportedSetting(frame: PgFrame): void {
  const r = new BodyReader(frame.body, 'ParameterStatus');
  const name = r.cstring();
  const value = r.cstring();
  r.end();
  if (changesParsing(name, value))
    throw new Error(`the server reports ${name} = ${value}: the gateway would no longer read statements as it does`);
}

/** Statement names the gateway's own refusals use (pg-refusal.ts): an agent may not create or name one. */
const RESERVED_PREFIX = 'portcullis_refused_';
const RESERVED_NAME = refusal(
  'unsupported',
  `statement names beginning with ${RESERVED_PREFIX} are reserved`,
  'reserved-name',
);

export class PgTraffic {
  /** Statements the extended protocol prepared on this connection, once the server confirmed each (ParseComplete). */
  private readonly prepared = new Map<string, Prepared>();
  /**
   * Parses sent and not yet confirmed, in order: the server answers each with ParseComplete, or fails it and skips the
   * rest of its batch. A Bind that comes before the confirmation is decided on the statement it will bind.
   */
  private readonly parsing: Array<{ name: string; prepared: Prepared; closed: boolean; batch: number }> = [];
  /** Batches sent (each Sync, Query or FunctionCall ends one) and ended (each ReadyForQuery). */
  private batchesSent = 0;
  private batchesEnded = 0;
  private readonly order = new ResponseOrder();
  private readonly awaitingOutput: AwaitingOutput[] = [];
  /**
   * The masker's counts when the last output was recorded. Results come in the order their statements were sent, so
   * what was counted since is the next output's. Counts read at a statement's decision would include the rows of the
   * statements still running ahead of it when a client pipelines (libpq's pipeline mode, JDBC batches).
   */
  private readonly counted: MaskedCounts = { rows: 0, maskedValues: 0, withheldValues: 0 };

  constructor(private readonly deps: PgTrafficDeps) {}

  private get refusals(): PendingRefusals {
    return this.deps.refusals;
  }

  /**
   * One client message after the login: what goes upstream in its place. A promise only when the decision has to
   * wait (the planner's estimate for an approver, an approval); otherwise the answer at once.
   */
  statement(frame: PgFrame): Buffer | Promise<Buffer> {
    switch (frame.type) {
      case 'Q': {
        const r = new BodyReader(frame.body, 'Query');
        const text = r.cstring();
        r.end();
        this.order.query();
        this.batchesSent++;
        const refused = this.decide(text, classify(text), undefined);
        if (refused instanceof Promise) return refused.then((r) => (r ? this.refusals.query(r) : frame.raw));
        return refused ? this.refusals.query(refused) : frame.raw;
      }
      case 'P': {
        const r = new BodyReader(frame.body, 'Parse');
        const name = r.cstring();
        const text = r.cstring();
        const types = r.int16();
        r.bytes(types * 4);
        r.end();
        const refused = this.parseRefusal(name);
        this.order.parse(name);
        if (refused) {
          const run = this.sessionRun();
          run.refuse(refused, { parse: name.slice(0, 256), statement: this.shownText(run.masking(), text) });
          return this.refusals.bind(refused, '');
        }
        this.parsing.push({
          name,
          prepared: { text, classification: classify(text) },
          closed: false,
          batch: this.batchesSent,
        });
        return frame.raw;
      }
      case 'B': {
        const r = new BodyReader(frame.body, 'Bind');
        const portal = r.cstring();
        const name = r.cstring();
        const formatCount = r.int16();
        const formats: number[] = [];
        for (let i = 0; i < formatCount; i++) formats.push(r.int16());
        const count = r.int16();
        const values: (Buffer | null)[] = [];
        for (let i = 0; i < count; i++) {
          const length = r.int32();
          values.push(length === -1 ? null : r.bytes(length));
        }
        const resultFormatCount = r.int16();
        const resultFormats: number[] = [];
        for (let i = 0; i < resultFormatCount; i++) resultFormats.push(r.int16());
        r.end();
        this.order.bind(portal, name, resultFormats);
        const prepared = this.preparedStatement(name);
        if (!prepared) {
          // Not one this connection's Parse prepared: a statement SQL PREPARE made (decided as a PREPARE, not with
          // these values), or none. Either way the gateway does not know what would run.
          const r = refusal(
            'bad-request',
            `prepared statement "${name}" was not prepared through the gateway with Parse; Parse it first`,
            'unknown-statement',
          );
          this.sessionRun().refuse(r, { bind: name.slice(0, 256) });
          return this.refusals.bind(r, portal);
        }
        const refused = this.decide(prepared.text, prepared.classification, { values, formats });
        if (refused instanceof Promise) return refused.then((r) => (r ? this.refusals.bind(r, portal) : frame.raw));
        return refused ? this.refusals.bind(refused, portal) : frame.raw;
      }
      case 'F': {
        const r = refusal(
          'unsupported',
          'the fast-path function call protocol is not allowed through the gateway; call the function in SQL',
          'function-call',
        );
        this.sessionRun().refuse(r, { functionCall: true });
        this.order.query();
        this.batchesSent++;
        return this.refusals.query(r);
      }
      case 'C': {
        const r = new BodyReader(frame.body, 'Close');
        const kind = r.bytes(1).toString('latin1');
        const name = r.cstring();
        r.end();
        if (kind === 'S') this.forget(name);
        this.order.close(kind === 'S' ? 'S' : 'P', name);
        return frame.raw;
      }
      case 'D': {
        const r = new BodyReader(frame.body, 'Describe');
        const kind = r.bytes(1).toString('latin1');
        const name = r.cstring();
        r.end();
        this.order.describe(kind === 'S' ? 'S' : 'P', name);
        return frame.raw;
      }
      case 'E': {
        const r = new BodyReader(frame.body, 'Execute');
        const portal = r.cstring();
        r.int32();
        r.end();
        this.order.execute(portal);
        return frame.raw;
      }
      case 'S':
        this.order.sync();
        this.batchesSent++;
        return frame.raw;
      case 'H':
      case 'X':
      case 'd':
      case 'c':
      case 'f':
        return frame.raw;
      default:
        throw new PgFrameError(`unknown client message type '${frame.type}'`);
    }
  }

  private sessionRun(): ActionRun {
    return this.deps.spine.begin(this.deps.session, this.deps.nextRequestId());
  }

  /**
   * Decides one statement; returns the refusal, or null when it may run (a promise only when the decision waits). Text
   * that does not parse is refused.
   */
  private decide(
    text: string,
    classification: Classification,
    bound: { values: (Buffer | null)[]; formats: number[] } | undefined,
  ): Refusal | null | Promise<Refusal | null> {
    const values = bound?.values;
    if (!classification.ok) {
      const r = refusal(
        'bad-request',
        `the gateway could not parse this statement, so it does not run: ${classification.error}`,
        'unparsable',
      );
      const run = this.sessionRun();
      run.refuse(r, { statement: this.shownText(run.masking(), text) });
      return r;
    }
    // Nothing to run (an empty query, or only comments): the server answers EmptyQueryResponse.
    if (classification.statements.length === 0) return null;
    const run = this.sessionRun();
    const ours = this.gatewayRefusal(classification.statements);
    if (ours) {
      run.refuse(ours, { statement: this.shownText(run.masking(), text) });
      return ours;
    }
    const copies: NonNullable<StatementClass['copyOut']>[] = [];
    for (const s of classification.statements) if (s.copyOut) copies.push(s.copyOut);
    // One reading of the session's masking plan for the statement: its recorded text and what can be masked by column.
    const plan = run.masking();
    const shown = this.shownText(plan, text);
    const unmaskable = this.unmaskableByColumn(plan, classification.statements, copies);
    if (unmaskable) {
      run.refuse(unmaskable, { statement: shown });
      return unmaskable;
    }
    // Bound values are recorded as keyed digests only: without the key the statement does not run (an unkeyed hash of
    // a value with few candidates gives the value away).
    if (values?.some((v) => v !== null) && !this.deps.spine.valueDigest) {
      this.deps.spine.logger.error(
        { target: run.session.target.name },
        'no key for the digests of bound values (GatewayCore.valueDigest); refusing statements with bound values',
      );
      run.refuse(NO_VALUE_KEY, { statement: shown, parameters: values.length });
      return NO_VALUE_KEY;
    }
    const sql = sqlContext(text, this.deps.database, classification.statements);
    const statement: DecidedStatement = { run, sql, classification, values, shown, copies };
    if (wantsEstimate(classification))
      return this.deps.names
        .estimateRows(text, values ?? [], bound?.formats ?? [])
        .then((estimate) => this.decideStatement(statement, estimate));
    return this.decideStatement(statement, null);
  }

  private decideStatement(s: DecidedStatement, estimate: number | null): Refusal | null | Promise<Refusal | null> {
    const action = statementAction(s.sql, s.classification, s.values, estimate, s.shown, this.deps.spine.valueDigest);
    const outcome = s.run.decide(action, { maxHoldMs: 0, credential: null });
    if (outcome instanceof Promise) return outcome.then((o) => this.decided(o, s));
    return this.decided(outcome, s);
  }

  /** What a statement's outcome means for the connection: an allowed one awaits its output. */
  private decided(outcome: Outcome, { run, copies, values, classification }: DecidedStatement): Refusal | null {
    if (outcome.kind === 'allow') {
      for (const s of classification.statements) if (s.preparedNames) this.sqlNamed(s.preparedNames);
      this.awaitingOutput.push({ run, endsAt: values === undefined ? 'ready' : 'complete', tags: [], copies });
      return null;
    }
    if (outcome.kind === 'refuse') return outcome.refusal;
    return refusal('internal', 'internal error in the gateway');
  }

  /**
   * What the gateway refuses whatever the policy says, because it could no longer vouch for what runs: a statement
   * that changes how the server reads later statements' text, a SQL EXECUTE of a statement the extended protocol
   * prepared (decided only at a Bind, with its values), and any name reserved for the gateway's refusals.
   */
  private gatewayRefusal(statements: readonly StatementClass[]): Refusal | null {
    for (const s of statements) {
      if (s.parserChange) {
        return refusal(
          'unsupported',
          'setting standard_conforming_strings off, a client-only client_encoding (SJIS, BIG5, GBK, UHC, GB18030, JOHAB) or a computed setting name with set_config is not allowed through the gateway: the server would then read statements differently from the gateway',
          'parser-setting',
        );
      }
      if (s.searchPathChange) {
        return refusal(
          'unsupported',
          'setting search_path is not allowed through the gateway: tables are decided by their names under the default search_path; qualify names with their schema instead',
          'search-path',
        );
      }
      const names = s.preparedNames;
      if (!names) continue;
      const all = [...names.prepares, ...names.executes, ...names.deallocates];
      if (all.some((n) => n.startsWith(RESERVED_PREFIX))) return RESERVED_NAME;
      const protocol = names.executes.find((n) => this.preparedStatement(n));
      if (protocol !== undefined) {
        return refusal(
          'unsupported',
          `EXECUTE of "${protocol}", a statement prepared with the extended protocol, is not allowed: Bind it, so that it is decided with its values`,
          'execute-protocol-statement',
        );
      }
    }
    return null;
  }

  /** Why a Parse of `name` is refused, or null: a reserved name, or a named statement that exists already. */
  private parseRefusal(name: string): Refusal | null {
    if (name.startsWith(RESERVED_PREFIX)) return RESERVED_NAME;
    // The server refuses it too (42P05); refused here, the gateway's account of the name cannot diverge from the server's.
    if (name !== '' && this.preparedStatement(name))
      return refusal('bad-request', `prepared statement "${name}" already exists`, 'duplicate-statement');
    return null;
  }

  /** The statement `name` binds: the last Parse of it not yet confirmed, else the confirmed one. */
  private preparedStatement(name: string): Prepared | undefined {
    for (let i = this.parsing.length - 1; i >= 0; i--) {
      const p = this.parsing[i];
      if (p.name === name) return p.closed ? undefined : p.prepared;
    }
    return this.prepared.get(name);
  }

  /** A statement closed (Close, DEALLOCATE): the gateway no longer binds it. */
  private forget(name: string): void {
    this.prepared.delete(name);
    for (const p of this.parsing) if (p.name === name) p.closed = true;
  }

  /**
   * An allowed statement's SQL-level names: what it deallocates is gone, and a name SQL PREPARE takes is no longer a
   * statement the gateway decided (a Bind of it is refused).
   */
  private sqlNamed(names: NonNullable<StatementClass['preparedNames']>): void {
    if (names.deallocatesAll) {
      this.prepared.clear();
      for (const p of this.parsing) p.closed = true;
    }
    for (const n of [...names.deallocates, ...names.prepares]) this.forget(n);
  }

  /**
   * A statement's text as the recording keeps it (the decision's `request.statement`, and so the session's search text)
   * and as approvers read it: masked by content under the session's masking plan, as results are, then cut
   * (recordedText). Data typed into a statement (`WHERE card_number = '4012…'`) would otherwise be kept in clear where
   * the same value bound as a parameter is only hashed. The plan is the most the session can mask (every rule with a
   * `when` counts), never less than a result of the statement would get. The whole text is masked before it is cut, so
   * a value across the cut is not kept in part. Only what is recorded and shown: the policy reads the text as sent.
   */
  private shownText(plan: CompiledMasking | null, text: string): string {
    if (!plan || plan.contentEmpty) return recordedText(text);
    return recordedText(this.deps.engine.maskText(text, plan).value);
  }

  /**
   * What column rules, when the session's masking has any, cannot be applied to:
   * - a COPY … TO of a query (its columns are not known before it runs), in CSV or binary format, or with a delimiter
   *   other than tab (rows are split into columns at tabs, the text format's own delimiter);
   * - the value of a covered column sent as the value of no column (StatementClass `unnamedValues`: inside an
   *   expression, a UNION, a sub-select in the select list, a copy into a table, or a whole row), for which the server
   *   reports no origin. The same column selected as a column of its own is masked.
   */
  private unmaskableByColumn(
    plan: CompiledMasking | null,
    statements: readonly StatementClass[],
    copies: NonNullable<StatementClass['copyOut']>[],
  ): Refusal | null {
    if (!plan || plan.columns.length === 0) return null;
    const bad = copies.find((c) => c.table === null || c.format !== 'text' || c.delimiter !== '\t');
    if (bad) {
      return refusal(
        'unmaskable-response',
        bad.table === null
          ? 'COPY (query) TO STDOUT cannot be masked by column here; COPY a table, or SELECT'
          : bad.format !== 'text'
            ? `COPY in ${bad.format} format cannot be masked by column here; use the text format`
            : 'COPY with a DELIMITER other than tab cannot be masked by column here; use the default delimiter',
        'unmaskable-copy',
      );
    }
    const match = memoColumnMatcher(plan);
    for (const s of statements) {
      const unnamed = s.unnamedValues;
      if (!unnamed) continue;
      if (unnamed.wholeRow) {
        return refusal(
          'unmaskable-response',
          'a whole row used as a value cannot be masked by column here; select its columns',
          'unmaskable-row',
        );
      }
      const covered = unnamed.columns.find((c) => match(c) !== undefined);
      if (covered !== undefined) {
        return refusal(
          'unmaskable-response',
          `column "${covered.slice(0, 63)}" is masked, and here its value would leave as the value of no column (an expression, a UNION, a sub-select in the select list, or a copy into a table); select it as a column of its own`,
          'unmaskable-expression',
        );
      }
    }
    return null;
  }

  /** Records what the head statement's result was, once it ended. */
  private outputEnded(on: 'ready' | 'complete' | 'error', tag?: string): void {
    const head = this.awaitingOutput[0];
    if (!head) return;
    if (tag !== undefined) head.tags.push(tag);
    if (on === 'complete' && head.endsAt === 'ready') return;
    const done = on === 'ready' ? this.awaitingOutput.splice(0) : [this.awaitingOutput.shift() as AwaitingOutput];
    const { rows, maskedValues, withheldValues } = this.deps.masker.counts;
    for (const o of done) {
      // The first output takes what was counted since the last one; statements ended with it (the rest of a pipeline
      // the server skipped after an error) counted nothing.
      const counted = this.counted;
      const output: StatementOutput = {
        commands: o.tags,
        rows: rows - counted.rows,
        maskedValues: maskedValues - counted.maskedValues,
        withheldValues: withheldValues - counted.withheldValues,
        sample: this.deps.masker.takeSample(),
      };
      if (on === 'error') output.error = true;
      counted.rows = rows;
      counted.maskedValues = maskedValues;
      counted.withheldValues = withheldValues;
      o.run.output(output);
    }
  }

  /** A RowDescription resolved: kept for its statement, or the columns of the rows that follow. */
  private described(frame: PgFrame, described: Described): Buffer {
    if (this.order.rowDescription(described) === 'query') this.deps.masker.begin(described);
    return frame.raw;
  }

  /**
   * One server message after the login: what goes to the client in its place. A promise only when the gateway must
   * ask the catalog first (a result described for the first time, a COPY's columns); otherwise the answer at once.
   */
  result(frame: PgFrame): Buffer | Promise<Buffer> {
    const masker = this.deps.masker;
    switch (frame.type) {
      case 'D': {
        const starting = this.order.executeStarting();
        if (starting) {
          if (starting.described) masker.begin(starting.described, starting.formats);
          else masker.resultEnded();
        }
        return masker.dataRow(frame);
      }
      case 'T': {
        const described = masker.describe(frame);
        if (!(described instanceof Promise)) return this.described(frame, described);
        return described.then((d) => this.described(frame, d));
      }
      case 'n':
        this.order.noData();
        return frame.raw;
      case '1': {
        this.order.parseComplete();
        const parsed = this.parsing.shift();
        if (parsed && !parsed.closed) this.prepared.set(parsed.name, parsed.prepared);
        return frame.raw;
      }
      case '3':
        this.order.closeComplete();
        return frame.raw;
      case 'C': {
        masker.resultEnded();
        this.order.resultComplete();
        const r = new BodyReader(frame.body, 'CommandComplete');
        this.outputEnded('complete', r.cstring());
        return frame.raw;
      }
      case 'I':
      case 's':
        masker.resultEnded();
        this.order.resultComplete();
        return frame.raw;
      case 'Z': {
        // The batch ended: its Parses not confirmed were skipped after an error, never prepared.
        const ended = this.batchesEnded++;
        while (this.parsing.length > 0 && this.parsing[0].batch <= ended) this.parsing.shift();
        masker.resultEnded();
        this.order.readyForQuery();
        this.outputEnded('ready');
        return frame.raw;
      }
      case 'H':
        return masker.copyOut(frame, this.awaitingOutput[0]?.copies.shift());
      case 'd':
        return masker.copyData(frame);
      case 'E': {
        masker.resultEnded();
        this.order.error();
        const ours = this.refusals.answer(readNoticeFields(frame.body, 'ErrorResponse'));
        if (ours) return ours;
        this.outputEnded('error');
        return masker.notice(frame);
      }
      case 'N':
        return masker.notice(frame);
      case 'A':
        return masker.notification(frame);
      case 'S':
        checkReportedSetting(frame);
        return masker.parameterStatus(frame);
      default:
        return frame.raw;
    }
  }
}
