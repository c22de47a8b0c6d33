/**
 * Column rules for Postgres results: a pattern is `column`, `table.column` or `schema.table.column`, each part may
 * use `*`, and matching ignores case (Postgres folds unquoted identifiers). A `column` pattern matches that column
 * in every table; a table part matches a table given with or without its schema.
 */
export type ColumnPattern = { table: RegExp | null; schema: RegExp | null; column: RegExp };

export class ColumnPatternError extends Error {}

const PART = /^[A-Za-z_*][A-Za-z0-9_$*]*$/;

export function parseColumnPattern(text: string): ColumnPattern {
  const parts = text.split('.');
  if (parts.length > 3 || parts.some((p) => !PART.test(p))) {
    throw new ColumnPatternError(
      'expected column, table.column or schema.table.column (letters, digits, _, $ and * wildcards)',
    );
  }
  const re = (p: string): RegExp => new RegExp(`^${p.replace(/\$/g, '\\$').replace(/\*/g, '.*')}$`, 'i');
  const column = re(parts[parts.length - 1]);
  const table = parts.length >= 2 ? re(parts[parts.length - 2]) : null;
  const schema = parts.length === 3 ? re(parts[0]) : null;
  return { table, schema, column };
}

/** `table` may be `name` or `schema.name`; unknown (undefined) tables match only patterns without a table part. */
export function matchColumn(pattern: ColumnPattern, column: string, table?: string): boolean {
  if (!pattern.column.test(column)) return false;
  if (!pattern.table) return true;
  if (table === undefined) return false;
  const dot = table.lastIndexOf('.');
  const name = dot >= 0 ? table.slice(dot + 1) : table;
  if (!pattern.table.test(name)) return false;
  if (!pattern.schema) return true;
  return dot >= 0 && pattern.schema.test(table.slice(0, dot));
}
