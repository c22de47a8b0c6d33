/**
 * Column rules for Postgres results: a pattern is `column`, `table.column` or `schema.table.column`, each part may
 * use `*`, and matching ignores case (Postgres folds unquoted identifiers). A `column` pattern matches that column
 * in every table; a table part matches a table given with or without its schema, and a column whose table is unknown
 * (see matchColumn).
 *
 * Wildcards run on RE2: on a backtracking engine a part such as `a*a*a*a*a*a*a*a*a*a*a*a*b` took minutes against a
 * 63-character column alias, which the agent chooses in its query.
 */
import { RE2JS } from 're2js';

export type PartMatcher = { test(name: string): boolean };
export type ColumnPattern = { table: PartMatcher | null; schema: PartMatcher | null; column: PartMatcher };

export class ColumnPatternError extends Error {}

const PART = /^[A-Za-z_*][A-Za-z0-9_$*]*$/;

export function parseColumnPattern(text: string): ColumnPattern {
  const parts = text.split('.');
  if (parts.length > 3 || parts.some((p) => !PART.test(p))) {
    throw new ColumnPatternError(
      'expected column, table.column or schema.table.column (letters, digits, _, $ and * wildcards)',
    );
  }
  // DOTALL: `*` matches any characters, a newline in a quoted identifier included.
  const re = (p: string): PartMatcher => {
    const compiled = RE2JS.compile(
      `^${p.replace(/\$/g, '\\$').replace(/\*/g, '.*')}$`,
      RE2JS.CASE_INSENSITIVE | RE2JS.DOTALL,
    );
    return { test: (name) => compiled.matcher(name).find() };
  };
  const column = re(parts[parts.length - 1]);
  const table = parts.length >= 2 ? re(parts[parts.length - 2]) : null;
  const schema = parts.length === 3 ? re(parts[0]) : null;
  return { table, schema, column };
}

/**
 * `table` may be `name` or `schema.name`. An unknown table (undefined) matches every pattern on its column part alone:
 * PostgreSQL names no source table for a column of a set operation (`SELECT ssn FROM customers UNION …`, also inside
 * a sub-select), and such a column may well come from the table a pattern names, so the match errs towards masking.
 */
export function matchColumn(pattern: ColumnPattern, column: string, table?: string): boolean {
  if (!pattern.column.test(column)) return false;
  if (!pattern.table || table === undefined) return true;
  const dot = table.lastIndexOf('.');
  const name = dot >= 0 ? table.slice(dot + 1) : table;
  if (!pattern.table.test(name)) return false;
  if (!pattern.schema) return true;
  return dot >= 0 && pattern.schema.test(table.slice(0, dot));
}
