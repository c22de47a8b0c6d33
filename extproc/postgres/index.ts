/** The PostgreSQL adapter's public surface: the adapter, and the SQL classifier for the policy tools and the CLI. */
export { postgresAdapter, TARGET_METADATA, targetAddress, type PostgresAdapterOptions } from './pg-adapter.ts';
export { classify, loadSqlParser, type Classification, type StatementClass } from './sql-classify.ts';
export { sqlClassifyReport, type SqlReport } from './sql-report.ts';
