/**
 * Masking of what the server sends back, message by message (each one whole, so memory is one message, whatever the
 * result's size). RowDescription names each column and the table OID and column number it comes from; those are
 * resolved to `table.column` through the catalog (the gateway's own connection, cached), so an alias does not hide a
 * column from its rule. DataRow values are then masked by column rule (the whole value) or by the content detectors
 * (text values; a text-format bytea's bytes, decoded from its hex or escape form and written back in it), and the row
 * re-framed with the new lengths; NULL stays NULL; a row with nothing masked is passed on byte-identical.
 *
 * Binary-format values (extended protocol) are read by type. Text types, json and xml are their text, bytea its
 * bytes: masked as text values are. jsonb is a version byte and the text: the text masked, the byte kept. int8, int4,
 * oid and numeric are read as their decimal text for the content detectors, and withheld (sent as NULL) when
 * something is found, since a masked number cannot be written back as a number. Types that cannot carry such a value
 * (bool, "char", int2, float4, float8, date and time types, interval, uuid) pass. Any other type (arrays, records,
 * composites, tsvector, ranges, …) is not read by the gateway and could hold anything: withheld whenever content
 * detection is on. A column rule masks a text, json, xml or bytea value whole and withholds a value of any other
 * binary type, never passing it in clear.
 *
 * COPY … TO STDOUT rows (text format) are masked the same way as text values, and by content the texts of
 * ErrorResponse/NoticeResponse (every field but severity, code, positions and the server's source location),
 * NotificationResponse payloads and the values of ParameterStatus.
 */
import type { CompiledMasking, FieldMasking, MaskingEngine } from '../masking/index.ts';
import { columnMatcher } from '../masking/index.ts';
import type { PgFrame } from './pg-frames.ts';
import { BodyReader, cstr, int16, int32, message, noticeBody, readNoticeFields } from './pg-wire.ts';

/**
 * A plan's column matcher, remembering each answer: the same few columns are described again for every statement, and
 * each match runs the rules' RE2 patterns. Plans are compiled once per policy version, so the memo lives with the plan.
 */
const matchers = new WeakMap<CompiledMasking, (column: string, table?: string) => FieldMasking | undefined>();
const MEMO_MAX = 10_000;
export function memoColumnMatcher(plan: CompiledMasking): (column: string, table?: string) => FieldMasking | undefined {
  let m = matchers.get(plan);
  if (!m) {
    const match = columnMatcher(plan);
    const memo = new Map<string, FieldMasking | undefined>();
    m = (column, table) => {
      const key = `${table ?? ''}\0${column}`;
      if (memo.has(key)) return memo.get(key);
      const field = match(column, table);
      if (memo.size >= MEMO_MAX) memo.clear();
      memo.set(key, field);
      return field;
    };
    matchers.set(plan, m);
  }
  return m;
}

/** A result column's source, when it is a table column (tableOid 0 otherwise). */
export interface ColumnSource {
  tableOid: number;
  attnum: number;
}

/** Resolves table OIDs and column numbers to names (`table` as the classifier spells it: `orders`, `audit.log`). */
export interface ColumnNames {
  /** The planner's estimate of the rows a statement touches (for approvers), or null. */
  estimateRows(statement: string, values: (Buffer | null)[], formats: number[]): Promise<number | null>;
  resolve(sources: ColumnSource[]): Promise<Map<string, { table: string; column: string }>>;
  /** A table's columns in order, each with its type's OID (a domain's base type), for COPY's rows. */
  tableColumns(table: string): Promise<Array<{ name: string; type: number }>>;
}

export const sourceKey = (s: ColumnSource): string => `${s.tableOid}:${s.attnum}`;

/**
 * Types whose binary format is their bytes as such (text, varchar, bpchar, name, bytea, and json and xml, sent as
 * their text): maskable in either format, by rule or by content.
 */
const BYTE_TYPES = new Set([25, 1043, 1042, 19, 17, 114, 142]);

const BYTEA = 17;
const JSONB = 3802;

/**
 * Binary numbers wide enough for a card number or an SSN's nine digits (which the detectors find without dashes):
 * their decimal text, or null for bytes that are not one.
 */
const BINARY_NUMBERS = new Map<number, (value: Buffer) => string | null>([
  [20, (v) => (v.length === 8 ? v.readBigInt64BE(0).toString() : null)], // int8
  [23, (v) => (v.length === 4 ? String(v.readInt32BE(0)) : null)], // int4
  [26, (v) => (v.length === 4 ? String(v.readUInt32BE(0)) : null)], // oid
  [1700, numericText],
]);

/**
 * Binary types that cannot carry a detectable value: bool, "char", int2, float4, float8, date, time, timestamp,
 * timestamptz, interval, uuid. A float8 holds a 16-digit card number exactly, but its text (4.111111111111111e+15)
 * is not found by the detectors either: its binary form tells nothing that the text format would not.
 */
const INERT_BINARY = new Set([16, 18, 21, 700, 701, 1082, 1083, 1114, 1184, 1186, 2950]);

/**
 * How a column's values are read for masking. `text`: as they are (a text type in either format, any type in text
 * format). `byteaText`: bytea in text format, whose bytes are written out as `\x` hex (or in the escape form under
 * bytea_output = escape), so a card number in them is not in the text as such. Binary format of other types:
 * `jsonb` (a version byte and the text), `number` (read as its decimal text), `inert` (nothing to find) and `opaque`
 * (a format the gateway does not read: arrays, records, composites, tsvector, ranges, …).
 */
type ValueForm = 'text' | 'byteaText' | 'jsonb' | 'number' | 'inert' | 'opaque';

function valueForm(type: number, binary: boolean): ValueForm {
  if (!binary) return type === BYTEA ? 'byteaText' : 'text';
  if (BYTE_TYPES.has(type)) return 'text';
  if (type === JSONB) return 'jsonb';
  if (BINARY_NUMBERS.has(type)) return 'number';
  return INERT_BINARY.has(type) ? 'inert' : 'opaque';
}

/**
 * A binary numeric's decimal text: a count of base-10000 digits, the weight (power of 10000) of the first, the sign
 * and the display scale, then the digits. NaN and the infinities have no digits (read as 0). Null for bytes that are
 * not a numeric.
 */
function numericText(value: Buffer): string | null {
  if (value.length < 8) return null;
  const ndigits = value.readUInt16BE(0);
  const weight = value.readInt16BE(2);
  const negative = value.readUInt16BE(4) === 0x4000;
  const dscale = value.readUInt16BE(6);
  if (value.length !== 8 + 2 * ndigits) return null;
  let whole = '';
  let fraction = '0000'.repeat(Math.max(0, -weight - 1));
  for (let i = 0; i < ndigits; i++) {
    const digits = String(value.readUInt16BE(8 + 2 * i)).padStart(4, '0');
    if (i <= weight) whole += digits;
    else fraction += digits;
  }
  whole = (whole + '0000'.repeat(Math.max(0, weight + 1 - ndigits))).replace(/^0+/, '') || '0';
  const scaled = dscale > 0 ? `.${fraction.padEnd(dscale, '0').slice(0, dscale)}` : '';
  return `${negative ? '-' : ''}${whole}${scaled}`;
}

/** A result's columns as described: the rule that covers each (if any), its type, and the format described. */
export type Described = { field: FieldMasking | undefined; type: number; binary: boolean }[];

interface ColumnMask {
  field: FieldMasking | undefined;
  /** A field rule masks `text` and `byteaText` values whole and withholds values of the other forms. */
  form: ValueForm;
  /** The type OID (0 for COPY's text fields). */
  type: number;
}

/**
 * ErrorResponse/NoticeResponse fields that carry no data: severity (S, V), SQLSTATE (C), positions (P, p) and the
 * server's source file, line and routine (F, L, R).
 */
const NOTICE_FIXED_FIELDS = new Set(['S', 'V', 'C', 'P', 'p', 'F', 'L', 'R']);

/** Descriptions remembered per connection (a client that describes without end only clears them more often). */
const DESCRIBED_MEMO_MAX = 256;

/** Rows of a result kept for the recording (masked, text; a binary value as its size). */
const SAMPLE_ROWS = 5;
/** Characters of one sampled value kept. */
const SAMPLE_VALUE_CHARS = 200;

export interface MaskedCounts {
  rows: number;
  maskedValues: number;
  withheldValues: number;
}

/** A result's columns as its rows are read: each column's format and rule. */
interface ResultColumns {
  binary: boolean[];
  masks: ColumnMask[];
  noColumnRules: boolean;
}

/** The columns of results read in the formats their description gives, per description (never changed once made). */
const beganAsDescribed = new WeakMap<Described, ResultColumns>();

/**
 * `formats`: a Bind's result format codes (none = all text, one = all columns, else one per column), or undefined for
 * the formats the description itself gives.
 */
function resultColumns(described: Described, formats: number[] | undefined): ResultColumns {
  const binary: boolean[] = [];
  const masks: ColumnMask[] = [];
  let noColumnRules = true;
  for (let i = 0; i < described.length; i++) {
    const d = described[i];
    const b =
      formats === undefined
        ? d.binary
        : formats.length === 0
          ? false
          : (formats.length === 1 ? formats[0] : formats[i]) === 1;
    binary.push(b);
    masks.push({ field: d.field, form: valueForm(d.type, b), type: d.type });
    if (d.field !== undefined) noColumnRules = false;
  }
  return { binary, masks, noColumnRules };
}

/**
 * bytea's escape form (bytea_output = escape): printable ASCII as it is, a backslash doubled, any other byte as `\`
 * and three octal digits. Null for text not in that form.
 */
function unescapeBytea(text: Buffer): Buffer | null {
  const out = Buffer.allocUnsafe(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== 0x5c) out[n++] = text[i];
    else if (text[i + 1] === 0x5c) out[n++] = text[++i];
    else {
      const octal = text.toString('latin1', i + 1, i + 4);
      if (!/^[0-3][0-7]{2}$/.test(octal)) return null;
      out[n++] = Number.parseInt(octal, 8);
      i += 3;
    }
  }
  return out.subarray(0, n);
}

/** Bytes in bytea's escape form, as PostgreSQL writes it. */
function escapeBytea(bytes: Buffer): Buffer {
  let text = '';
  for (const b of bytes) {
    if (b === 0x5c) text += '\\\\';
    else if (b < 0x20 || b > 0x7e) text += `\\${b.toString(8).padStart(3, '0')}`;
    else text += String.fromCharCode(b);
  }
  return Buffer.from(text, 'latin1');
}

export class ResultMasker {
  private columns: ColumnMask[] | null = null;
  private copyColumns: ColumnMask[] | null = null;
  readonly counts: MaskedCounts = { rows: 0, maskedValues: 0, withheldValues: 0 };
  private sample: (string | null)[][] = [];
  private binary: boolean[] = [];
  /** The plan the running result's rows are masked under: the one in force when the result began. */
  private rowPlan: CompiledMasking | null = null;
  /** Whether no column of the running result has a column rule. */
  private noColumnRules = true;
  /** Descriptions resolved under describedPlan, by the RowDescription's bytes. */
  private readonly describedMemo = new Map<string, Described>();
  private describedPlan: CompiledMasking | null | undefined = undefined;
  /** The last description taken from the memo and its bytes: a connection repeating a statement skips the key. */
  private lastDescribed: { body: Buffer; described: Described } | null = null;

  constructor(
    private readonly engine: MaskingEngine,
    private readonly plan: () => CompiledMasking | null,
    private readonly names: ColumnNames,
  ) {}

  /**
   * A RowDescription read: each column's rule (resolved through the catalog), type and format. Kept for the rows of
   * this result, or — for a prepared statement's description — for every later execution of the statement, whose
   * rows come with no RowDescription of their own.
   */
  describe(frame: PgFrame): Described | Promise<Described> {
    const plan = this.plan();
    if (plan !== this.describedPlan) {
      this.describedPlan = plan;
      this.describedMemo.clear();
      this.lastDescribed = null;
    }
    const last = this.lastDescribed;
    if (last !== null && frame.body.equals(last.body)) return last.described;
    // The same statements describe the same columns again and again: a description already resolved under this plan
    // is taken as it was (the catalog's names of a table OID and column number do not change while the table exists).
    const key = frame.body.toString('latin1');
    const hit = this.describedMemo.get(key);
    if (hit) {
      this.lastDescribed = { body: Buffer.from(frame.body), described: hit };
      return hit;
    }
    return this.describeAnew(frame, plan).then((described) => {
      if (this.describedPlan === plan) {
        if (this.describedMemo.size >= DESCRIBED_MEMO_MAX) this.describedMemo.clear();
        this.describedMemo.set(key, described);
      }
      return described;
    });
  }

  private async describeAnew(frame: PgFrame, plan: CompiledMasking | null): Promise<Described> {
    const r = new BodyReader(frame.body, 'RowDescription');
    const n = r.int16();
    const described: { name: string; source: ColumnSource; type: number; binary: boolean }[] = [];
    for (let i = 0; i < n; i++) {
      const name = r.cstring();
      const source = { tableOid: r.int32() >>> 0, attnum: r.int16() };
      const type = r.int32() >>> 0;
      r.int16(); // typlen
      r.int32(); // typmod
      described.push({ name, source, type, binary: r.int16() === 1 });
    }
    r.end();
    const match = plan ? memoColumnMatcher(plan) : null;
    const tableColumns = described.filter((d) => d.source.tableOid !== 0).map((d) => d.source);
    const names =
      plan && plan.columns.length > 0 && tableColumns.length > 0 ? await this.names.resolve(tableColumns) : null;
    return described.map((d) => {
      const origin = names?.get(sourceKey(d.source));
      // The rule of the column under its own name in its table, or under the name the result gives it.
      const field = match
        ? ((origin && match(origin.column, origin.table)) ?? match(d.name, origin?.table))
        : undefined;
      return { field, type: d.type, binary: d.binary };
    });
  }

  /**
   * The rows that follow are of `described`, in `formats` (a Bind's result format codes: none = all text, one = all
   * columns, else one per column; absent = the formats the description itself gives).
   */
  begin(described: Described, formats?: number[]): void {
    // A simple Query's result is read as described: its columns are worked out once per description.
    let columns = formats === undefined ? beganAsDescribed.get(described) : undefined;
    if (!columns) {
      columns = resultColumns(described, formats);
      if (formats === undefined) beganAsDescribed.set(described, columns);
    }
    this.binary = columns.binary;
    this.columns = columns.masks;
    this.noColumnRules = columns.noColumnRules;
    this.rowPlan = this.plan();
  }

  /** The sampled rows since the last call (masked as the client got them), and starts a new sample. */
  takeSample(): (string | null)[][] {
    const s = this.sample;
    this.sample = [];
    return s;
  }

  private keepSample(body: Buffer): void {
    if (this.sample.length >= SAMPLE_ROWS) return;
    const r = new BodyReader(body, 'DataRow');
    const n = r.int16();
    const row: (string | null)[] = [];
    for (let i = 0; i < n; i++) {
      const length = r.int32();
      if (length === -1) row.push(null);
      else {
        const v = r.bytes(length);
        row.push(this.binary[i] ? `<${length} bytes, binary>` : v.toString('utf8').slice(0, SAMPLE_VALUE_CHARS));
      }
    }
    this.sample.push(row);
  }

  /** The end of a result (CommandComplete, ErrorResponse, ReadyForQuery, NoData): the next rows are described anew. */
  resultEnded(): void {
    this.columns = null;
    this.copyColumns = null;
  }

  /** Whether rows can be masked now: a described result is running, or the session masks nothing. */
  get ready(): boolean {
    if (this.columns !== null) return true;
    const plan = this.plan();
    return !plan || (plan.contentEmpty && plan.columns.length === 0);
  }

  dataRow(frame: PgFrame): Buffer {
    const out = this.maskRow(frame);
    this.counts.rows++;
    if (this.sample.length < SAMPLE_ROWS) this.keepSample(out === frame.raw ? frame.body : out.subarray(5));
    return out;
  }

  private maskRow(frame: PgFrame): Buffer {
    const columns = this.columns;
    const plan = columns ? this.rowPlan : this.plan();
    if (!plan || (plan.contentEmpty && plan.columns.length === 0)) return frame.raw;
    // Rows nobody described cannot be matched to their rules: never passed on unmasked.
    if (!columns) throw new Error('a DataRow arrived with no RowDescription the gateway knows of');
    if (plan.contentEmpty && this.noColumnRules) return frame.raw;
    const r = new BodyReader(frame.body, 'DataRow');
    const n = r.int16();
    const values: (Buffer | null)[] = [];
    let changed = false;
    for (let i = 0; i < n; i++) {
      const length = r.int32();
      const value = length === -1 ? null : r.bytes(length);
      const masked = value === null ? null : this.maskValue(value, columns[i], plan);
      if (masked !== value) changed = true;
      values.push(masked);
    }
    r.end();
    if (!changed) return frame.raw;
    return message('D', int16(n), ...values.flatMap((v) => (v === null ? [int32(-1)] : [int32(v.length), v])));
  }

  /** A value masked by its column's rule or by content; the same Buffer when nothing changed; null when withheld. */
  private maskValue(value: Buffer, column: ColumnMask | undefined, plan: CompiledMasking): Buffer | null {
    const form = column?.form ?? 'text';
    if (column?.field) {
      if (form !== 'text' && form !== 'byteaText') return this.withhold();
      this.counts.maskedValues++;
      return Buffer.from(this.engine.maskField(value, column.field));
    }
    if (plan.contentEmpty) return value;
    switch (form) {
      case 'text':
        return this.maskContent(value, plan);
      case 'byteaText':
        return this.maskByteaText(value, plan);
      case 'jsonb':
        return this.maskJsonb(value, plan);
      case 'number':
        return this.maskNumber(value, column?.type ?? 0, plan);
      case 'inert':
        return value;
      case 'opaque':
        // Could hold anything (an array of card numbers, a row): not passed unread.
        return this.withhold();
    }
  }

  /** jsonb in binary format: a version byte (1) and the JSON text; the text masked, the version byte kept. */
  private maskJsonb(value: Buffer, plan: CompiledMasking): Buffer | null {
    if (value[0] !== 1) return this.withhold(); // a version this gateway cannot read
    const text = value.subarray(1);
    const masked = this.maskContent(text, plan);
    return masked === text ? value : Buffer.concat([value.subarray(0, 1), masked]);
  }

  /**
   * A binary number, read as its decimal text for the content detectors: withheld when something is found there (a
   * masked number cannot be written back as a number) or when it cannot be read.
   */
  private maskNumber(value: Buffer, type: number, plan: CompiledMasking): Buffer | null {
    const text = BINARY_NUMBERS.get(type)?.(value) ?? null;
    if (text === null || this.engine.maskBytes(Buffer.from(text, 'latin1'), plan).findings.length > 0) {
      return this.withhold();
    }
    return value;
  }

  /** A value masked by content; the same Buffer when nothing was found. */
  private maskContent(value: Buffer, plan: CompiledMasking): Buffer {
    const r = this.engine.maskBytes(value, plan);
    if (r.findings.length === 0) return value;
    this.counts.maskedValues++;
    return Buffer.from(r.output);
  }

  /**
   * bytea in text format: its bytes decoded, masked by content, and written back in the form they came in (hex, or
   * the escape form). A value in neither form is not what PostgreSQL sends; it is withheld, as it cannot be read.
   */
  private maskByteaText(value: Buffer, plan: CompiledMasking): Buffer | null {
    const hex = value[0] === 0x5c && value[1] === 0x78; // \x
    const bytes = hex ? Buffer.from(value.toString('latin1', 2), 'hex') : unescapeBytea(value);
    // Buffer's hex decoding stops at the first pair that is not hex.
    if (bytes === null || (hex && bytes.length * 2 !== value.length - 2)) return this.withhold();
    const masked = this.maskContent(bytes, plan);
    if (masked === bytes) return value;
    return hex ? Buffer.from(`\\x${masked.toString('hex')}`, 'latin1') : escapeBytea(masked);
  }

  /** A value sent as NULL: one that must not pass and cannot be masked in its own format. */
  private withhold(): null {
    this.counts.withheldValues++;
    return null;
  }

  /**
   * CopyOutResponse of a COPY … TO STDOUT whose columns are `columns` of `table` (text format). The table's columns
   * and types come from the catalog: a column's rule is matched by its name, and a `bytea` column's text is decoded
   * for the content detectors, as in a query's rows.
   */
  async copyOut(frame: PgFrame, copy: { table: string | null; columns: string[] | null } | undefined): Promise<Buffer> {
    const plan = this.plan();
    this.copyColumns = null;
    if (!plan || !copy?.table || (plan.contentEmpty && plan.columns.length === 0)) return frame.raw;
    const match = memoColumnMatcher(plan);
    const table = copy.table;
    const typed = await this.names.tableColumns(table);
    const types = new Map(typed.map((c) => [c.name, c.type]));
    this.copyColumns = (copy.columns ?? typed.map((c) => c.name)).map((name) => {
      const type = types.get(name) ?? 0;
      return { field: match(name, table), form: type === BYTEA ? ('byteaText' as const) : ('text' as const), type };
    });
    return frame.raw;
  }

  /** One CopyData message of COPY TO (text format: tab-separated fields, `\N` for NULL, a newline at the end). */
  copyData(frame: PgFrame): Buffer {
    const plan = this.plan();
    if (!plan) return frame.raw;
    const columns = this.copyColumns;
    this.counts.rows++;
    if (!columns || columns.every((c) => c.field === undefined && c.form === 'text')) {
      if (plan.contentEmpty) return frame.raw;
      const r = this.engine.maskBytes(frame.body, plan);
      if (r.findings.length === 0) return frame.raw;
      this.counts.maskedValues++;
      return message('d', Buffer.from(r.output));
    }
    const text = frame.body.toString('utf8');
    const newline = text.endsWith('\n') ? '\n' : '';
    const fields = (newline ? text.slice(0, -1) : text).split('\t');
    let changed = false;
    const masked = fields.map((f, i) => {
      if (f === '\\N') return f;
      // COPY doubles a value's backslashes: bytea's text (`\x…`, or the escape form's `\ooo`) is read without them.
      const bytea = columns[i]?.form === 'byteaText';
      const value = bytea ? Buffer.from(f.replaceAll('\\\\', '\\'), 'latin1') : Buffer.from(f, 'utf8');
      const out = this.maskValue(value, columns[i], plan);
      if (out === null) return '\\N';
      const text = bytea ? out.toString('latin1').replaceAll('\\', '\\\\') : out.toString('utf8');
      if (text !== f) changed = true;
      return text;
    });
    if (!changed) return frame.raw;
    return message('d', Buffer.from(`${masked.join('\t')}${newline}`, 'utf8'));
  }

  /**
   * ErrorResponse / NoticeResponse: every field that can echo data masked by content. Not only the message, detail,
   * hint and context: the internal query (`q`) is text a database function built from data and ran, and a name
   * (schema, table, column, type, constraint) can be built from data by dynamic SQL. The fields of a fixed vocabulary
   * pass as they are, so that a client still reads the error's severity, code and positions.
   */
  notice(frame: PgFrame): Buffer {
    const plan = this.plan();
    if (!plan || plan.contentEmpty) return frame.raw;
    const fields = readNoticeFields(frame.body, frame.type === 'E' ? 'ErrorResponse' : 'NoticeResponse');
    let changed = false;
    for (const [code, v] of fields) {
      if (NOTICE_FIXED_FIELDS.has(code)) continue;
      const m = this.engine.maskText(v, plan);
      if (m.findings.length > 0) {
        fields.set(code, m.value);
        changed = true;
      }
    }
    return changed ? message(frame.type, noticeBody(fields)) : frame.raw;
  }

  /**
   * NotificationResponse (LISTEN/NOTIFY): its payload is data from the database like a row's (a trigger can notify a
   * whole row, and any session can notify a channel the agent listens on), masked by content. The channel is a name.
   */
  notification(frame: PgFrame): Buffer {
    return this.maskLastText(frame, 'NotificationResponse', 4, 2);
  }

  /**
   * ParameterStatus after the login: a reported setting can be set from data (`set_config('application_name', …)`
   * where a policy allows it), so its value is masked by content. The setting's name is a name.
   */
  parameterStatus(frame: PgFrame): Buffer {
    return this.maskLastText(frame, 'ParameterStatus', 0, 2);
  }

  /**
   * A message whose body is `fixedBytes` bytes, then `texts` NUL-terminated texts: the last text masked by content,
   * the rest passed as they are; the message itself when nothing in it is found.
   */
  private maskLastText(frame: PgFrame, what: string, fixedBytes: number, texts: number): Buffer {
    const plan = this.plan();
    if (!plan || plan.contentEmpty) return frame.raw;
    const r = new BodyReader(frame.body, what);
    const fixed = r.bytes(fixedBytes);
    const names: Buffer[] = [];
    for (let i = 1; i < texts; i++) names.push(cstr(r.cstring()));
    const text = r.cstring();
    r.end();
    const m = this.engine.maskText(text, plan);
    if (m.findings.length === 0) return frame.raw;
    return message(frame.type, fixed, ...names, cstr(m.value));
  }
}
