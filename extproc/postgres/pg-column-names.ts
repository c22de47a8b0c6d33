/**
 * What the gateway asks a target's catalog (its own connection): the planner's estimate for approvers, and the table
 * and column names of result columns, asked of the catalog on the gateway's own connection and cached per
 * target (a table's OID and its columns' numbers do not change while it exists; a cache entry is dropped when the
 * catalog no longer knows it).
 */
import { literal, type PgCatalogClient } from './pg-catalog-client.ts';
import { type ColumnNames, type ColumnSource, sourceKey } from './pg-result-masking.ts';
import { tableName } from './sql-classify.ts';

const CACHE_MAX = 50_000;

export class CatalogColumnNames implements ColumnNames {
  private readonly cache = new Map<string, { table: string; column: string }>();

  constructor(private readonly catalog: PgCatalogClient) {}

  estimateRows(statement: string, values: (Buffer | null)[], formats: number[]): Promise<number | null> {
    return this.catalog.estimateRows(statement, values, formats);
  }

  async resolve(sources: ColumnSource[]): Promise<Map<string, { table: string; column: string }>> {
    const out = new Map<string, { table: string; column: string }>();
    const missing: ColumnSource[] = [];
    for (const s of sources) {
      const hit = this.cache.get(sourceKey(s));
      if (hit) out.set(sourceKey(s), hit);
      else missing.push(s);
    }
    if (missing.length === 0) return out;
    // OIDs and column numbers are integers from the server's own RowDescription.
    const pairs = missing.map((s) => `(${s.tableOid}::oid, ${s.attnum}::int2)`).join(', ');
    const rows = await this.catalog.query(
      `SELECT c.oid::text, a.attnum::text, n.nspname, c.relname, a.attname FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       WHERE (a.attrelid, a.attnum) IN (${pairs})`,
    );
    if (this.cache.size + rows.length > CACHE_MAX) this.cache.clear();
    for (const [oid, attnum, schema, table, column] of rows) {
      const name = { table: tableName([schema ?? '', table ?? '']), column: column ?? '' };
      const key = `${oid}:${attnum}`;
      this.cache.set(key, name);
      out.set(key, name);
    }
    return out;
  }

  async tableColumns(table: string): Promise<Array<{ name: string; type: number }>> {
    const rows = await this.catalog.query(
      `SELECT a.attname, CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       WHERE a.attrelid = pg_catalog.to_regclass(${literal(table)}) AND a.attnum > 0 AND NOT a.attisdropped
       ORDER BY a.attnum`,
    );
    return rows.map(([name, type]) => ({ name: name ?? '', type: Number(type ?? 0) }));
  }
}
