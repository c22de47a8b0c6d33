/**
 * Which column values a statement can send to the client (or into another table) without the result naming their
 * table and column, read from the parse tree. Column rules mask a result column by its origin, which PostgreSQL
 * reports in RowDescription only for a column selected as it is — also through FROM sub-selects, CTEs and joins,
 * which the server traces back to the table. A value used inside an expression (`ssn || ''`, `upper(ssn)`,
 * `ssn::text`), in the arms of a UNION, in a scalar sub-select, in a function in FROM, in VALUES, copied into a table
 * (INSERT … SELECT, UPDATE … SET, SELECT INTO, CREATE TABLE AS, a view), or a whole row (`SELECT c FROM customers c`,
 * `row_to_json(c)`, `c.*` inside an expression) reaches the client, or a table it can read later, as a value of no
 * column. The gateway refuses such a statement while a column rule names one of those columns (pg-traffic.ts).
 *
 * Conservative by construction: every column named anywhere inside such a place counts (its WHERE included), where
 * the server might in fact have used it only to filter. A column used in a WHERE, JOIN, GROUP BY, HAVING or ORDER BY
 * of a statement's own query sends no value and does not count.
 */

type Node = Record<string, unknown>;

export interface UnnamedValues {
  /** Column names (the last part of each reference, as the parser gives it) whose values lose their origin. */
  columns: Set<string>;
  /** A row is used whole as a value (or `*` expanded where origins are lost). */
  wholeRow: boolean;
}

/**
 * The unnamed values of one parsed statement ({"SelectStmt": {...}} and the like). `relations`: the names a one-part
 * column reference may use for a whole row that could hold a table's columns — tables (and CTEs read by name) with
 * their aliases, sub-selects' aliases and CTE names, anywhere in the statement; not a function's alias in FROM
 * (`unnest(a) x`), whose row is what the function returned, from arguments read as unnamed values. The classifier
 * collects them in its own walk of the tree (sql-classify.ts), so the tree is not walked once more for them.
 */
export function unnamedValues(stmt: Node, relations: ReadonlySet<string>): UnnamedValues {
  const out: UnnamedValues = { columns: new Set(), wholeRow: false };
  visitStatement(stmt, true, relations, out);
  return out;
}

/** A statement node `{Kind: body}`; `named`: its query's own result columns keep their origin. */
function visitStatement(stmt: unknown, named: boolean, relations: ReadonlySet<string>, out: UnnamedValues): void {
  if (stmt === null || typeof stmt !== 'object') return;
  for (const kind in stmt) {
    const body = (stmt as Node)[kind];
    if (body === null || typeof body !== 'object') continue;
    const b = body as Node;
    switch (kind) {
      case 'SelectStmt':
        visitSelect(b, named, relations, out);
        break;
      case 'InsertStmt':
        visitWith(b, relations, out);
        // The rows inserted land in a table the agent may read back under other names.
        visitStatement(b.selectStmt, false, relations, out);
        collectAll(b.onConflictClause, relations, out);
        visitReturning(returning(b), named, relations, out);
        break;
      case 'UpdateStmt':
        visitWith(b, relations, out);
        collectAll(b.targetList, relations, out);
        visitFrom(b.fromClause, false, relations, out);
        visitReturning(returning(b), named, relations, out);
        break;
      case 'DeleteStmt':
        visitWith(b, relations, out);
        visitReturning(returning(b), named, relations, out);
        break;
      case 'MergeStmt':
        visitWith(b, relations, out);
        collectAll(b.mergeWhenClauses, relations, out);
        visitFrom([b.sourceRelation], false, relations, out);
        visitReturning(returning(b), named, relations, out);
        break;
      case 'CreateTableAsStmt':
      case 'ViewStmt':
        visitStatement(b.query, false, relations, out);
        break;
      case 'ExplainStmt':
      case 'DeclareCursorStmt':
      case 'PrepareStmt':
      case 'CopyStmt':
        visitStatement(b.query, named, relations, out);
        break;
      default:
        break;
    }
  }
}

function visitWith(b: Node, relations: ReadonlySet<string>, out: UnnamedValues): void {
  const ctes = ((b.withClause as Node | undefined)?.ctes as Node[] | undefined) ?? [];
  for (const c of ctes) visitStatement((c.CommonTableExpr as Node | undefined)?.ctequery, false, relations, out);
}

function visitSelect(s: Node, named: boolean, relations: ReadonlySet<string>, out: UnnamedValues): void {
  const keepsOrigin = named && s.intoClause === undefined;
  const ctes = ((s.withClause as Node | undefined)?.ctes as Node[] | undefined) ?? [];
  if (s.op !== undefined && s.op !== 'SETOP_NONE') {
    // A set operation's columns have no table: each arm's values are unnamed (its names are the first arm's).
    for (const c of ctes) visitStatement((c.CommonTableExpr as Node | undefined)?.ctequery, false, relations, out);
    visitStatement({ SelectStmt: s.larg }, false, relations, out);
    visitStatement({ SelectStmt: s.rarg }, false, relations, out);
    return;
  }
  for (const c of ctes) {
    // The server traces a CTE's SELECT columns back to their tables; a data-modifying CTE's RETURNING is read below.
    const query = (c.CommonTableExpr as Node | undefined)?.ctequery as Node | undefined;
    visitStatement(query, keepsOrigin && query?.SelectStmt !== undefined, relations, out);
  }
  for (const t of (s.targetList as Node[] | undefined) ?? []) {
    const rt = (t.ResTarget as Node | undefined) ?? {};
    const bare = bareColumn(rt.val);
    if (keepsOrigin && bare) {
      if (bare.length === 1 && relations.has(bare[0])) out.wholeRow = true;
    } else if (bare && bare[bare.length - 1] === '*') {
      // `*` where origins are lost (a UNION arm, an INSERT … SELECT): every column of the row.
      out.wholeRow = true;
    } else {
      collectAll(rt.val, relations, out);
    }
  }
  collectAll(s.valuesLists, relations, out);
  visitFrom(s.fromClause, keepsOrigin, relations, out);
}

/**
 * FROM items: sub-selects and joins keep their columns' origins when the query does; tables name theirs. Anything
 * else (a function, ROWS FROM, XMLTABLE, JSON_TABLE) makes values of no column out of what it is given.
 */
function visitFrom(items: unknown, named: boolean, relations: ReadonlySet<string>, out: UnnamedValues): void {
  if (!Array.isArray(items)) return;
  for (const item of items as Node[]) {
    if (item === null || typeof item !== 'object') continue;
    const sub = item.RangeSubselect as Node | undefined;
    const join = item.JoinExpr as Node | undefined;
    if (sub) visitStatement(sub.subquery, named, relations, out);
    else if (join) visitFrom([join.larg, join.rarg], named, relations, out);
    else if (item.RangeTableSample) visitFrom([(item.RangeTableSample as Node).relation], named, relations, out);
    else if (!item.RangeVar && typeof item.relname !== 'string') collectAll(item, relations, out);
  }
}

/** A statement's RETURNING list (`returningClause.exprs` since PostgreSQL 18's RETURNING OLD/NEW). */
function returning(b: Node): unknown {
  return b.returningList ?? (b.returningClause as Node | undefined)?.exprs;
}

/**
 * RETURNING of the statement itself: a column returned as it is, under its own name, is masked by its name; anything
 * else is unnamed. A data-modifying CTE's RETURNING (`named` false) is read by a query that may rename it: all of it
 * is unnamed.
 */
function visitReturning(list: unknown, named: boolean, relations: ReadonlySet<string>, out: UnnamedValues): void {
  for (const t of (list as Node[] | undefined) ?? []) {
    const rt = (t.ResTarget as Node | undefined) ?? {};
    const bare = bareColumn(rt.val);
    const last = bare?.[bare.length - 1];
    if (named && last === '*') continue;
    if (named && bare && (rt.name === undefined || rt.name === last) && !(bare.length === 1 && relations.has(bare[0])))
      continue;
    if (last === '*') out.wholeRow = true;
    else collectAll(rt.val, relations, out);
  }
}

/** The parts of a reference that is the whole expression (`ssn`, `c.ssn`, `c.*`), or null. */
function bareColumn(val: unknown): string[] | null {
  const ref = (val as Node | undefined)?.ColumnRef as Node | undefined;
  if (!ref) return null;
  const parts: string[] = [];
  for (const f of (ref.fields as Node[] | undefined) ?? []) {
    const s = (f.String as Node | undefined)?.sval;
    if (typeof s === 'string') parts.push(s);
    else if (f.A_Star !== undefined) parts.push('*');
    else return null;
  }
  return parts;
}

/** Every column reference under `node`, each an unnamed value; a whole row or a `*` among them makes wholeRow. */
function collectAll(node: unknown, relations: ReadonlySet<string>, out: UnnamedValues): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) collectAll(n, relations, out);
    return;
  }
  const n = node as Node;
  const parts = n.ColumnRef ? bareColumn(n) : null;
  if (parts) {
    const last = parts[parts.length - 1];
    if (last === '*' || (parts.length === 1 && relations.has(last))) out.wholeRow = true;
    else out.columns.add(last);
    return;
  }
  for (const key in n) {
    const child = n[key];
    if (child !== null && typeof child === 'object') collectAll(child, relations, out);
  }
}
