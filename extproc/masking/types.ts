/** Masking vocabulary shared by policies, the wasm engine binding and the protocol adapters. */

/**
 * Built-in detectors of the AssemblyScript engine (wasm-filter/assembly/masking); index = engine entity id (at most
 * 32). New entities are appended so ids never move. Names follow Microsoft Presidio's where it has one.
 */
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
  'IP_ADDRESS',
  'URL_CREDENTIALS',
  'CRYPTO',
  'US_ITIN',
  'US_PASSPORT',
  'ABA_ROUTING_NUMBER',
  'UK_NHS',
  'UK_NINO',
  'AWS_SECRET_KEY',
  'GITHUB_TOKEN',
  'GITLAB_TOKEN',
  'SLACK_TOKEN',
  'STRIPE_KEY',
  'OPENAI_API_KEY',
] as const;
export type BuiltinEntity = (typeof BUILTIN_ENTITIES)[number];

/** What a finding of each built-in entity has passed (for `portcullis mask --explain`; docs/masking.md says more). */
export const ENTITY_VALIDATION: Record<BuiltinEntity, string> = {
  CREDIT_CARD: 'ISO/IEC 7812 issuer range and length, Luhn check digit',
  US_SSN: 'SSA rules: area not 000/666/900-999, group not 00, serial not 0000',
  EMAIL_ADDRESS: 'RFC 5322 local part, RFC 5321/5890 domain (LDH or IDN labels), alphabetic or A-label TLD',
  PHONE_NUMBER: 'E.164 length (8-15 digits) or a national grouping',
  IBAN_CODE: 'SWIFT IBAN registry country length, ISO 13616 mod-97',
  JWT: 'three base64url segments, header decodes to JSON with "alg"',
  AWS_ACCESS_KEY: 'AKIA/ASIA prefix, 20 characters',
  PRIVATE_KEY: 'PEM block labelled PRIVATE KEY (RFC 7468)',
  BEARER_TOKEN: 'Bearer/Authorization credential (RFC 6750/9110), token-shaped',
  PASSWORD: 'value of a key naming a password',
  IP_ADDRESS: 'IPv4 dotted decimal (octets 0-255) or RFC 4291 IPv6 text form',
  URL_CREDENTIALS: 'RFC 3986 userinfo password (or JDBC thin user/password)',
  CRYPTO: 'Bitcoin base58check or BIP 173/350 bech32 checksum, or 0x + 40 hex (Ethereum)',
  US_ITIN: 'IRS ITIN: area 9xx, group 50-65/70-88/90-92/94-99',
  US_PASSPORT: 'after "passport": 9 digits or a letter and 8 digits',
  ABA_ROUTING_NUMBER: 'after "routing"/"ABA"/"RTN": ABA prefix and 3-7-1 checksum',
  UK_NHS: 'NHS number modulus 11 check digit',
  UK_NINO: 'HMRC prefix letters, 6 digits, suffix A-D',
  AWS_SECRET_KEY: 'after an AWS secret access key name: 40 base64 characters',
  GITHUB_TOKEN: 'gh*_ prefix with CRC32 checksum, or github_pat_ shape',
  GITLAB_TOKEN: 'GitLab token prefix (glpat- …), 20+ characters',
  SLACK_TOKEN: 'xox*- or xapp- prefix',
  STRIPE_KEY: 'sk_/rk_ live or test prefix (or whsec_), 24+ characters',
  OPENAI_API_KEY: 'sk- prefix, 20+ characters with letters and digits',
};

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
