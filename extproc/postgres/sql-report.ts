/**
 * The offline view of the classifier (`portcullis sql classify 'SQL'`): what the gateway reads in a statement, in the
 * shape `{"statements": [{"kind", "tables": [{"name", "access"}], "functions": [...]}]}` plus the flags policies see,
 * or `{"error": ...}` for text the parser rejects (which the gateway refuses).
 */
import { classify, loadSqlParser, type StatementClass } from './sql-classify.ts';

export type SqlReport = { statements: StatementClass[] } | { error: string };

export async function sqlClassifyReport(text: string): Promise<SqlReport> {
  await loadSqlParser();
  const c = classify(text);
  return c.ok ? { statements: c.statements } : { error: c.error };
}
