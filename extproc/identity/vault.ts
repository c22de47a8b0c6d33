/**
 * The credential vault: targets hold references (`file:/path`, `env:NAME`), resolved at the moment of use so a rotated
 * file is picked up without restart. A resolved value is wrapped in `SecretValue`, whose string and JSON forms are
 * "[secret]" — a secret that reaches a log line, an error or a recording by mistake prints as that, not its value.
 */
import { readFile } from 'node:fs/promises';

export class SecretValue {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The only way to read the value: name the place that needs it. */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[secret]';
  }
  toJSON(): string {
    return '[secret]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[secret]';
  }
}

export const VAULT_REF_PATTERN = '^(file:/.+|env:[A-Za-z_][A-Za-z0-9_]*)$';

export class VaultError extends Error {
  constructor(
    readonly ref: string,
    message: string,
  ) {
    super(message);
    this.name = 'VaultError';
  }
}

export async function resolveSecret(ref: string, env: NodeJS.ProcessEnv = process.env): Promise<SecretValue> {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const v = env[name];
    if (v === undefined || v === '')
      throw new VaultError(ref, `vault reference ${ref}: environment variable ${name} is not set`);
    return new SecretValue(v);
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    try {
      return new SecretValue((await readFile(path, 'utf8')).trim());
    } catch (err) {
      throw new VaultError(
        ref,
        `vault reference ${ref}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  throw new VaultError(ref, `vault reference must be file:/path or env:NAME`);
}
