/** Masking vocabulary shared by policies, the wasm engine binding and the protocol adapters. */

/** Built-in detectors of the AssemblyScript engine (wasm-filter/assembly/masking). */
export const BUILTIN_ENTITIES = [
  'CREDIT_CARD',
  'US_SSN',
  'EMAIL_ADDRESS',
  'PHONE_NUMBER',
  'IBAN_CODE',
  'JWT',
  'AWS_ACCESS_KEY',
  'PRIVATE_KEY',
  'BEARER_TOKEN',
  'PASSWORD',
] as const;
export type BuiltinEntity = (typeof BUILTIN_ENTITIES)[number];

export const STRATEGIES = ['redact', 'mask', 'partial', 'hash'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** A detector a policy author defines; runs in Node only (regular expressions and word lists). */
export type CustomDetector =
  | { name: string; kind: 'regex'; pattern: string; flags?: string }
  | { name: string; kind: 'words'; words: string[]; caseSensitive?: boolean };

/**
 * One masking rule of a policy. Content rules (`entities`, `detectors`) mask what a detector finds wherever it is;
 * field rules (`columns`, `paths`) mask a whole value regardless of its content.
 */
export interface MaskingRule {
  name: string;
  /** Restrict the rule to one protocol; absent = every protocol. */
  protocol?: 'kubernetes' | 'postgres' | 'ssh';
  /** A CEL condition over the request context (as rules have), compiled by the policy loader; absent = always. */
  when?: string;
  entities: BuiltinEntity[];
  detectors: CustomDetector[];
  /** Postgres column names or `table.column` patterns (`*` wildcards). */
  columns: string[];
  /** JSON paths such as `$.data.*` or `$.items[*].spec.containers[*].env[*].value`. */
  paths: string[];
  strategy: Strategy;
  /** For `partial`: how many trailing characters stay visible (default 4). */
  keep: number;
}
