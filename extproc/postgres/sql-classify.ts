/**
 * SQL → what it does, read by the real PostgreSQL parser (libpg-query: PostgreSQL's own grammar compiled to wasm):
 * each statement's kind (the parser's node name, e.g. `DeleteStmt`), every table it touches with read or write access
 * — through CTEs, sub-selects, MERGE, COPY (query), EXPLAIN ANALYZE, INSERT … SELECT, SELECT INTO — the functions it
 * calls, whether it changes the session's role, and whether it runs code the gateway cannot see into (DO, CALL).
 * Text the parser rejects is an error: the caller refuses it (fail closed). One parse per distinct text: results are
 * cached by the text's hash.
 */
import { createHash } from 'node:crypto';
import { loadModule, parseSync } from 'libpg-query';
import { unnamedValues } from './sql-unnamed-values.ts';

export type TableAccess = 'read' | 'write';

export interface StatementClass {
  /** The parser's node name of the statement, e.g. "SelectStmt", "DropdbStmt". */
  kind: string;
  tables: { name: string; access: TableAccess }[];
  /** Functions called, by their unqualified name (`pg_catalog.pg_read_file` → `pg_read_file`). */
  functions: string[];
  /** Kinds of statements nested inside it that also run: data-modifying CTEs, the statement EXPLAIN ANALYZE runs. */
  nestedKinds: string[];
  /** An UPDATE or DELETE (anywhere in it) without a WHERE clause. */
  unqualifiedWrite: boolean;
  /** SET [LOCAL] ROLE, SET SESSION AUTHORIZATION, RESET ROLE / SESSION AUTHORIZATION. */
  roleChange: boolean;
  /** DO and CALL run code whose statements the gateway cannot see. */
  opaque: boolean;
  /**
   * For COPY … TO: what it writes — a table (and the columns listed, or null for all of them) or a query (table
   * null) — its format (`text`, `csv` or `binary`) and column delimiter, so that the result can be masked by column.
   */
  copyOut?: { table: string | null; columns: string[] | null; format: string; delimiter: string };
  /**
   * Prepared statements it names: SQL PREPARE, EXECUTE (also inside EXPLAIN or CREATE TABLE AS) and DEALLOCATE, and
   * whether it drops them all (DEALLOCATE ALL, DISCARD ALL). The gateway keeps its own account of what the extended
   * protocol prepared, and protocol and SQL statements share one namespace on the server. Absent when none.
   */
  preparedNames?: { prepares: string[]; executes: string[]; deallocates: string[]; deallocatesAll: boolean };
  /**
   * It changes how the server reads the text of later statements (standard_conforming_strings off, a client encoding
   * whose characters can end in a quote or backslash byte, or set_config of such a setting or of a computed name):
   * the gateway's parser would no longer read them as the server does. Absent when not.
   */
  parserChange?: true;
  /**
   * It sets search_path (by SET or set_config): later statements' unqualified table names would resolve elsewhere
   * than the gateway names them. Absent when not.
   */
  searchPathChange?: true;
  /**
   * Columns whose values it can send to the client, or into a table, as values of no column: inside an expression, a
   * UNION's arms, a sub-select in the select list, a copy into a table (sql-unnamed-values.ts); `wholeRow` when a row
   * is used whole. Column rules cannot follow them: the gateway refuses the statement while a rule names one. Absent
   * when none.
   */
  unnamedValues?: { columns: string[]; wholeRow?: true };
}

export type Classification = { ok: true; statements: StatementClass[] } | { ok: false; error: string };

type Node = Record<string, unknown>;

const DML_KINDS = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);
const ROLE_SETTINGS = new Set(['role', 'session_authorization']);
/** Settings that change how the server lexes statement text (compared lower-case, as the server compares names). */
const PARSER_SETTINGS = new Set(['standard_conforming_strings', 'client_encoding']);
/** Where unqualified table names resolve: the gateway names tables as the default search_path resolves them. */
const SEARCH_PATH = 'search_path';
/** Spellings of `on` for a boolean setting (PostgreSQL's parse_bool: unique prefixes of true and yes, on, 1). */
const BOOLEAN_ON = new Set(['on', 't', 'tr', 'tru', 'true', 'y', 'ye', 'yes', '1']);
/**
 * Client-only encodings (PostgreSQL's, by their names and aliases as it normalizes them: lower-case, letters and digits
 * only): a character's second byte can be `\` or `'`, so the server and a UTF-8 reader split strings differently.
 */
const CLIENT_ONLY_ENCODINGS = new Set([
  'sjis',
  'shiftjis',
  'mskanji',
  'shiftjis2004',
  'win932',
  'windows932',
  'big5',
  'win950',
  'windows950',
  'gbk',
  'win936',
  'windows936',
  'uhc',
  'win949',
  'windows949',
  'gb18030',
  'johab',
]);
/**
 * Functions that run SQL given to them as text (or read whole tables, schemas or databases by name), which the
 * gateway cannot classify: opaque, as DO is.
 */
const SQL_TEXT_FUNCTIONS = new Set([
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
  'ts_stat',
  'ts_rewrite',
]);

/** Whether a client encoding's name is one of the client-only encodings. */
function clientOnlyEncoding(name: string): boolean {
  return CLIENT_ONLY_ENCODINGS.has(name.toLowerCase().replace(/[^a-z0-9]/g, ''));
}

/**
 * Whether setting `name` to `value` (null: not a constant) changes how the server reads statement text. A boolean
 * spelled as an integer constant arrives as its number.
 */
export function changesParsing(name: string, value: string | null): boolean {
  const setting = name.toLowerCase();
  if (!PARSER_SETTINGS.has(setting)) return false;
  if (value === null) return true;
  return setting === 'client_encoding' ? clientOnlyEncoding(value) : !BOOLEAN_ON.has(value.trim().toLowerCase());
}

/** The value of a constant (A_Const) as the server reads it for a setting, or null for anything else. */
function constantText(node: Node | undefined): string | null {
  const c = node?.A_Const as Node | undefined;
  if (!c) return null;
  if (c.sval) return String((c.sval as Node).sval ?? '');
  if (c.ival) return String((c.ival as Node).ival ?? 0);
  if (c.boolval) return (c.boolval as Node).boolval === true ? 'on' : 'off';
  return null;
}
const CACHE_MAX = 10_000;
/** Texts up to this length are their own cache key; longer ones are keyed by their hash (the cache's memory stays bounded). */
const KEY_AS_TEXT_MAX = 1024;

let loaded: Promise<void> | null = null;
let ready = false;

/** Loads the parser's wasm module; classify() may be called once it resolved. */
export function loadSqlParser(): Promise<void> {
  loaded ??= loadModule().then(() => {
    ready = true;
  });
  return loaded;
}

const cache = new Map<string, Classification>();

/** Classifies `text` (which may hold several statements). The parser must be loaded (loadSqlParser). */
export function classify(text: string): Classification {
  if (!ready) throw new Error('the SQL parser is not loaded (call loadSqlParser first)');
  // A plain text is looked up by its shape first: equal texts have equal shapes, so it needs no key of its own unless
  // it failed to parse (only what parsed is shared by shape: a text the parser rejects is refused for its own reason).
  const shape = shapeKey(text);
  if (shape !== null) {
    const sameShape = cache.get(shape);
    if (sameShape) return sameShape;
  }
  // A hash key never equals a short text: the text key is prefixed with what no base64 digest starts with.
  const key = text.length <= KEY_AS_TEXT_MAX ? `=${text}` : createHash('sha256').update(text).digest('base64');
  const hit = cache.get(key);
  if (hit) return hit;
  const result = classifyUncached(text);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(shape !== null && result.ok ? shape : key, result);
  return result;
}

/**
 * Whether an UPDATE's or DELETE's WHERE can tell rows apart: it names a column (of any table, anywhere in it) or is
 * `WHERE CURRENT OF cursor`. A predicate without either (`WHERE true`, `WHERE 1 = 1`, `WHERE $1`, `WHERE
 * now() > '2000-01-01'`) is the same for every row: it writes all of them or none, as no WHERE does. A tautology over
 * columns (`WHERE id = id`) cannot be told from a real condition and counts as one.
 */
function picksRows(where: unknown): boolean {
  if (where === undefined || where === null || typeof where !== 'object') return false;
  if (Array.isArray(where)) return where.some(picksRows);
  for (const key in where) {
    if (key === 'ColumnRef' || key === 'CurrentOfExpr') return true;
    if (picksRows((where as Node)[key])) return true;
  }
  return false;
}

/** Texts the shape key reads: ASCII without quotes, dollar signs, backslashes or comments (see shapeKey). */
const PLAIN_TEXT = /^[\x20-\x7e\t\r\n]*$/;
const NOT_PLAIN = /['"$\\]|--|\/\*/;
/** A run of 1–9 digits not preceded by an identifier character: a numeric constant that fits an integer. */
const SMALL_NUMBER = /(?<![A-Za-z0-9_])[0-9]{1,9}(?![0-9])/g;

/**
 * The same statements with other numeric constants (`… WHERE aid = 12345` and `… WHERE aid = 678`) classify alike:
 * what a statement does, its tables and its functions never depend on a number's value. So a plain text is cached under
 * its shape: its numbers of up to nine digits replaced by `0` (each stays an integer constant, as the lexer reads it;
 * longer ones are kept as they are). Only for texts whose lexing is plain — ASCII, no string or quoted-identifier
 * quotes, no dollar quotes or parameters, no backslashes, no comments — so that a digit run outside an identifier is a
 * number and nothing else (a digit in `"t1"` names a table; such texts are keyed by their full text only). Null when
 * the text is not plain, or too long to be its own key. The policy still sees each statement's own text (`sql.text`).
 * The one difference: a value the grammar itself rejects (`float(0)`) is not refused by the gateway once the same
 * shape has parsed; the server, whose grammar it is, rejects it.
 */
function shapeKey(text: string): string | null {
  if (text.length > KEY_AS_TEXT_MAX || !PLAIN_TEXT.test(text) || NOT_PLAIN.test(text)) return null;
  return `#${text.replace(SMALL_NUMBER, '0')}`;
}

function classifyUncached(text: string): Classification {
  let parsed: { stmts?: { stmt?: Node }[] };
  try {
    parsed = parseSync(text) as typeof parsed;
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  const mayHaveCte = /with/i.test(text);
  const statements = (parsed.stmts ?? []).flatMap(({ stmt }) => (stmt ? [classifyStatement(stmt, mayHaveCte)] : []));
  // Shared by every statement of the shape and recorded with each: frozen, so no reader can change another's, and the
  // recorder serializes it once (recording/redact.ts).
  return { ok: true, statements: deepFreeze(statements) };
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (Array.isArray(value)) for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
  else for (const key in value) deepFreeze(value[key]);
  return Object.freeze(value);
}

/** A key naming a node type (it starts with a capital letter) wraps that node. */
function isNodeName(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 65 && c <= 90;
}

function classifyStatement(stmt: Node, mayHaveCte: boolean): StatementClass {
  const kind = Object.keys(stmt)[0] ?? 'Unknown';
  const walk = new StatementWalk(stmt, kind);
  // CTE names first, so that a reference before the definition in tree order is still recognised. A CTE needs the
  // keyword WITH, which has no other spelling: a text without it has none, and the tree need not be walked twice.
  if (mayHaveCte) collectCteNames(stmt, walk.cteNames);
  walk.onNode(kind, stmt[kind] as Node);
  const out = walk.finish();
  const unnamed = unnamedValues(stmt, walk.relations);
  if (unnamed.columns.size > 0 || unnamed.wholeRow) {
    out.unnamedValues = { columns: [...unnamed.columns].sort() };
    if (unnamed.wholeRow) out.unnamedValues.wholeRow = true;
  }
  return out;
}

/**
 * One statement's walk of its parse tree, and what it found on the way. A class rather than closures made per
 * statement: an uncached classification made six of them, each a function object (and, run through tsx, a call to
 * name it).
 */
class StatementWalk {
  private readonly out: StatementClass;
  private readonly writes = new Set<Node>();
  readonly cteNames = new Set<string>();
  private readonly seenTables = new Map<string, TableAccess>();
  private readonly functions = new Set<string>();
  private readonly nested = new Set<string>();
  /** Names a one-part column reference may use for a whole row (sql-unnamed-values.ts). */
  readonly relations = new Set<string>();
  /** The statement of a plain EXPLAIN: planned, not run (its tables still count). */
  private readonly planOnly = new Set<Node>();

  constructor(
    private readonly stmt: Node,
    private readonly kind: string,
  ) {
    this.out = {
      kind,
      tables: [],
      functions: [],
      nestedKinds: [],
      unqualifiedWrite: false,
      roleChange: false,
      opaque: kind === 'DoStmt' || kind === 'CallStmt',
    };
  }

  /** The statement's class, once its tree was walked (onNode of its own node). */
  finish(): StatementClass {
    const out = this.out;
    out.tables = [...this.seenTables].map(([name, access]) => ({ name, access }));
    out.functions = [...this.functions];
    out.nestedKinds = [...this.nested].filter((k) => DML_KINDS.has(k) || k !== this.kind);
    return out;
  }

  private visit(value: unknown): void {
    if (Array.isArray(value)) {
      for (const v of value) this.visit(v);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    for (const key in value) {
      const child = (value as Node)[key];
      if (child === null || typeof child !== 'object') continue;
      // A key naming a node type wraps that node: {"DeleteStmt": {...}}.
      if (isNodeName(key)) this.onNode(key, child as Node);
      // Fields typed RangeVar in the parser (`relation`, `rel`) hold it bare, without the {"RangeVar": …} wrapper.
      else if (typeof (child as Node).relname === 'string') this.onNode('RangeVar', child as Node);
      else this.visit(child);
    }
  }

  /** A node of the tree, `type` its node type: what it adds to the class, then its children. */
  onNode(type: string, node: Node): void {
    switch (type) {
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        if (node.relation) this.writes.add(node.relation as Node);
        if (this.planOnly.has(node)) break;
        if ((type === 'UpdateStmt' || type === 'DeleteStmt') && !picksRows(node.whereClause)) {
          this.out.unqualifiedWrite = true;
        }
        if (node !== this.stmt[this.kind]) this.nested.add(type);
        break;
      case 'TruncateStmt':
      case 'LockStmt':
        for (const r of (node.relations as Node[] | undefined) ?? []) this.writes.add((r.RangeVar as Node) ?? r);
        break;
      case 'CopyStmt': {
        // COPY … PROGRAM runs a shell command, COPY to or from a file the server's files: opaque, as DO is.
        if (node.is_program === true || typeof node.filename === 'string') this.out.opaque = true;
        if (node.relation && node.is_from === true) this.writes.add(node.relation as Node);
        if (node.is_from === true) break;
        const rel = node.relation as Node | undefined;
        const option = (name: string): string | undefined => {
          const d = ((node.options as Node[] | undefined) ?? [])
            .map((o) => o.DefElem as Node | undefined)
            .find((e) => e?.defname === name);
          const v = ((d?.arg as Node | undefined)?.String as Node | undefined)?.sval;
          return v === undefined ? undefined : String(v);
        };
        const attlist = node.attlist as Node[] | undefined;
        this.out.copyOut = {
          table: rel ? tableName(rangeVarParts(rel)) : null,
          columns: attlist ? attlist.map((a) => String((a.String as Node | undefined)?.sval ?? '')) : null,
          format: (option('format') ?? 'text').toLowerCase(),
          delimiter: option('delimiter') ?? '\t',
        };
        break;
      }
      case 'SelectStmt': {
        // SELECT … INTO creates and fills a table.
        const into = node.intoClause as Node | undefined;
        if (into?.rel) this.writes.add(into.rel as Node);
        break;
      }
      case 'CreateTableAsStmt': {
        const into = node.into as Node | undefined;
        if (into?.rel) this.writes.add(into.rel as Node);
        break;
      }
      case 'CreateStmt':
      case 'AlterTableStmt':
      case 'IndexStmt':
      case 'RenameStmt':
      case 'CreateTrigStmt':
      case 'RuleStmt':
      case 'VacuumRelation':
      case 'ClusterStmt':
        if (node.relation) this.writes.add(node.relation as Node);
        break;
      case 'DropStmt':
        // DROP TABLE/VIEW/INDEX …: each object is a list of name parts.
        for (const obj of (node.objects as Node[] | undefined) ?? []) {
          const parts = ((obj.List as Node | undefined)?.items as Node[] | undefined) ?? [];
          const names = parts.map((p) => String((p.String as Node | undefined)?.sval ?? ''));
          if (names.length > 0 && names.every((n) => n !== '')) this.addTable(names, 'write');
        }
        break;
      case 'CommonTableExpr':
        if (typeof node.ctename === 'string') {
          this.cteNames.add(node.ctename);
          this.relations.add(node.ctename);
        }
        break;
      case 'RangeSubselect':
        this.addAlias(node);
        break;
      case 'ExplainStmt': {
        const options = (node.options as Node[] | undefined) ?? [];
        const analyze = options.some((o) => (o.DefElem as Node | undefined)?.defname === 'analyze');
        const inner = node.query as Node | undefined;
        const innerKind = inner ? Object.keys(inner)[0] : undefined;
        if (inner && innerKind) {
          if (analyze) this.nested.add(innerKind);
          else this.planOnly.add(inner[innerKind] as Node);
        }
        break;
      }
      case 'VariableSetStmt': {
        // Setting names are case-insensitive on the server: `SET "ROLE"` is `SET role`.
        const name = String(node.name ?? '').toLowerCase();
        if (ROLE_SETTINGS.has(name) || node.kind === 'VAR_RESET_ALL') this.out.roleChange = true;
        if (node.kind === 'VAR_SET_VALUE') {
          const args = (node.args as Node[] | undefined) ?? [];
          if (changesParsing(name, args.length === 1 ? constantText(args[0]) : null)) this.out.parserChange = true;
          if (name === SEARCH_PATH) this.out.searchPathChange = true;
        }
        break;
      }
      case 'PrepareStmt':
        this.names().prepares.push(String(node.name ?? ''));
        break;
      case 'ExecuteStmt':
        this.names().executes.push(String(node.name ?? ''));
        break;
      case 'DeallocateStmt':
        if (node.isall === true) this.names().deallocatesAll = true;
        else this.names().deallocates.push(String(node.name ?? ''));
        break;
      case 'DiscardStmt':
        // DISCARD ALL is also RESET ALL and SET SESSION AUTHORIZATION DEFAULT.
        if (node.target === 'DISCARD_ALL') {
          this.names().deallocatesAll = true;
          this.out.roleChange = true;
        }
        break;
      case 'FuncCall':
        this.addFunction(node);
        break;
      case 'CallStmt':
        // CALL holds its FuncCall bare (`funccall`), without the {"FuncCall": …} wrapper.
        if (node.funccall) this.addFunction(node.funccall as Node);
        this.out.opaque = true;
        break;
      case 'DoStmt':
        this.out.opaque = true;
        break;
      case 'RangeVar': {
        if (typeof node.relname === 'string') this.relations.add(node.relname);
        this.addAlias(node);
        const parts = rangeVarParts(node);
        const write = this.writes.has(node);
        // A bare name that a WITH clause defines reads the CTE, not a table (a write target is always a table).
        if (!write && parts.length === 1 && this.cteNames.has(parts[0])) return;
        this.addTable(parts, write ? 'write' : 'read');
        return;
      }
      default:
        break;
    }
    this.visit(node);
  }

  private addFunction(call: Node): void {
    const parts = (call.funcname as Node[] | undefined) ?? [];
    const last = parts[parts.length - 1]?.String as Node | undefined;
    if (last?.sval === undefined) return;
    const name = String(last.sval);
    this.functions.add(name);
    if (SQL_TEXT_FUNCTIONS.has(name)) this.out.opaque = true;
    if (name === 'set_config') {
      // set_config(name, value, local): the setting is its first argument, a computed name could be any.
      const args = (call.args as Node[] | undefined) ?? [];
      const setting = constantText(args[0]);
      if (setting === null || changesParsing(setting, constantText(args[1]))) this.out.parserChange = true;
      if (setting?.toLowerCase() === SEARCH_PATH) this.out.searchPathChange = true;
    }
  }

  private addAlias(node: Node): void {
    const alias = (node.alias as Node | undefined)?.aliasname;
    if (typeof alias === 'string') this.relations.add(alias);
  }

  private names(): NonNullable<StatementClass['preparedNames']> {
    this.out.preparedNames ??= { prepares: [], executes: [], deallocates: [], deallocatesAll: false };
    return this.out.preparedNames;
  }

  private addTable(parts: string[], access: TableAccess): void {
    const name = tableName(parts);
    if (this.seenTables.get(name) !== 'write') this.seenTables.set(name, access);
  }
}

function rangeVarParts(node: Node): string[] {
  return [node.catalogname, node.schemaname, node.relname].filter(
    (p): p is string => typeof p === 'string' && p !== '',
  );
}

/** `public` is where an unqualified name resolves with the default search_path: one spelling for both. */
export function tableName(parts: string[]): string {
  return parts.length === 2 && parts[0] === 'public' ? parts[1] : parts.join('.');
}

function collectCteNames(value: unknown, into: Set<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) collectCteNames(v, into);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const key in value) {
    const child = (value as Node)[key];
    if (key === 'CommonTableExpr' && typeof (child as Node).ctename === 'string') {
      into.add((child as Node).ctename as string);
    }
    if (child !== null && typeof child === 'object') collectCteNames(child, into);
  }
}
