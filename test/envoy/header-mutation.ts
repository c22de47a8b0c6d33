/**
 * Header maps as the ext_proc filter sees them, and header mutations applied under Envoy's mutation rules
 * (docs/envoy-behaviour.md B.8): routing headers, `host` and `x-envoy-*` are not modifiable by default and such changes are
 * silently ignored (counted as rejected_header_mutations) unless disallow_is_error; bad characters or too many
 * entries are errors.
 */
import type { HeaderMap, HeaderMutation, HeaderValue } from '../../extproc/envoy-api/index.ts';
import type { MutationRules } from './stand-in-config.ts';

/** Ordered header list: lower-case names (pseudo-headers first), values as latin1 strings of the raw bytes. */
export type HeaderList = [string, string][];

/** HCM's default max_request_headers_count. */
const MAX_HEADERS = 100;

export function get(h: HeaderList, name: string): string | undefined {
  return h.find(([k]) => k === name)?.[1];
}

export function remove(h: HeaderList, name: string): HeaderList {
  return h.filter(([k]) => k !== name);
}

export function setHeader(h: HeaderList, name: string, value: string): HeaderList {
  return [...remove(h, name), [name, value]];
}

export function toHeaderMap(h: HeaderList): HeaderMap {
  return { headers: h.map(([key, v]) => ({ key, raw_value: Buffer.from(v, 'latin1') })) };
}

export class MutationError extends Error {}

const TOKEN = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const BAD_VALUE = /[\0\r\n]/;
const ROUTING = new Set([':authority', 'host', ':scheme', ':method']);

type Verdict = 'allow' | 'disallow';

function check(name: string, rules: MutationRules): Verdict {
  if (rules.disallow_all) return 'disallow';
  const system = name.startsWith(':') || name === 'host';
  if (system && rules.disallow_system) return 'disallow';
  if (ROUTING.has(name)) return rules.allow_all_routing ? 'allow' : 'disallow';
  if (name.startsWith('x-envoy-') && !rules.allow_envoy) return 'disallow';
  if (rules.allow_expression?.test(name)) return 'allow';
  if (rules.disallow_expression?.test(name)) return 'disallow';
  return 'allow';
}

export interface MutationContext {
  rules: MutationRules;
  /** Envoy removes content-length in this direction (STREAMED etc.): sets of it are skipped. */
  contentLengthRemoved: boolean;
  onRejected(): void;
}

function headerValueOf(hv: HeaderValue): string {
  if (hv.value !== undefined && hv.value !== '' && hv.raw_value !== undefined && hv.raw_value.length > 0) {
    throw new MutationError(`header ${hv.key}: both value and raw_value set`);
  }
  // Envoy reads raw_value; a header sent with only `value` becomes empty.
  return hv.raw_value ? Buffer.from(hv.raw_value).toString('latin1') : '';
}

/** Applies `m` to `h` under the rules; throws MutationError for what Envoy turns into a local reply. */
export function applyHeaderMutation(h: HeaderList, m: HeaderMutation | undefined, ctx: MutationContext): HeaderList {
  if (!m) return h;
  const sets = m.set_headers ?? [];
  const removes = m.remove_headers ?? [];
  if (sets.length + removes.length > MAX_HEADERS) throw new MutationError('too many header mutations');
  let out = h;
  for (const name0 of removes) {
    const name = name0.toLowerCase();
    if (!TOKEN.test(name)) throw new MutationError(`invalid header name in remove_headers: ${JSON.stringify(name0)}`);
    // Removing system headers is ignored.
    if (name.startsWith(':') || name === 'host') continue;
    if (check(name, ctx.rules) === 'disallow') {
      if (ctx.rules.disallow_is_error) throw new MutationError(`removal of ${name} is not allowed`);
      ctx.onRejected();
      continue;
    }
    out = remove(out, name);
  }
  for (const opt of sets) {
    const hv = opt.header;
    if (!hv) continue;
    const name = hv.key.toLowerCase();
    if (!TOKEN.test(name)) throw new MutationError(`invalid header name: ${JSON.stringify(hv.key)}`);
    const value = headerValueOf(hv);
    if (BAD_VALUE.test(value)) throw new MutationError(`invalid value for header ${name}`);
    if (name === 'content-length' && ctx.contentLengthRemoved) continue;
    if (check(name, ctx.rules) === 'disallow') {
      if (ctx.rules.disallow_is_error) throw new MutationError(`mutation of ${name} is not allowed`);
      ctx.onRejected();
      continue;
    }
    // `append` (BoolValue, default false) only; append_action is ignored by the ext_proc filter.
    out = opt.append?.value ? [...out, [name, value]] : setHeader(out, name, value);
  }
  if (out.length > MAX_HEADERS) throw new MutationError('too many headers after mutation');
  return out;
}
