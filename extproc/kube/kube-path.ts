/**
 * The raw `:path` of a Kubernetes API request, split into a decoded path and query parameters the way the API server
 * (Go's net/url, then RequestInfoFactory) will read them — or refused when a spelling could be read two ways.
 *
 * The gateway sees the bytes Envoy forwards; the API server decodes them again. Anything whose meaning could differ
 * between us, Envoy's optional normalisation (`normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action`)
 * and Go is refused rather than guessed: an agent that knows this code must not find a spelling we classify as one
 * request while the API server serves another.
 */
import type { ClassifyError } from './classify-error.ts';
import { refuse } from './classify-error.ts';

export interface ParsedKubePath {
  /** The path with percent-encoded unreserved characters decoded, as Go's `URL.Path` holds it. */
  path: string;
  /** Every value of every query parameter, in order, as Go's `URL.Query()` holds them. */
  query: Map<string, string[]>;
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * Splits and decodes a raw `:path`. Refused:
 * - fragments (`#`), which no HTTP client sends and Envoy rejects;
 * - percent-encodings of anything but unreserved characters (`%2F`, `%5C`, `%25`, `%00`, non-ASCII): Go decodes
 *   `%2F` into a segment separator after Envoy routed on the encoded form, and Envoy may be configured to keep,
 *   unescape or reject it, so no single reading is right;
 * - invalid escapes (`%zz`, a lone `%`): Go answers 400;
 * - empty segments (`//`) and dot segments (`.`, `..`, also spelled `%2e`): Envoy's `merge_slashes` and
 *   `normalize_path` rewrite them while Go's API server takes them literally, so the reading depends on the config;
 * - control characters, spaces and backslashes in the path.
 * Leading and one trailing slash are as RequestInfo's `strings.Trim(path, "/")` sees them and are accepted.
 */
export function parseKubePath(rawPath: string): ParsedKubePath | ClassifyError {
  if (rawPath.includes('#')) return refuse('bad-path', 'the request path contains a fragment');
  const q = rawPath.indexOf('?');
  const rawP = q < 0 ? rawPath : rawPath.slice(0, q);
  const rawQ = q < 0 ? '' : rawPath.slice(q + 1);
  if (!rawP.startsWith('/')) return refuse('bad-path', 'the request path must start with "/"');

  let path = '';
  for (let i = 0; i < rawP.length; i++) {
    const c = rawP[i];
    if (c === '%') {
      const hex = rawP.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return refuse('bad-path', 'the request path has an invalid percent-encoding');
      const decoded = String.fromCharCode(parseInt(hex, 16));
      if (!UNRESERVED.test(decoded)) {
        return refuse(
          'ambiguous-path',
          `the request path percent-encodes a reserved character (%${hex.toUpperCase()})`,
        );
      }
      path += decoded;
      i += 2;
      continue;
    }
    const code = c.charCodeAt(0);
    if (code <= 0x20 || code >= 0x7f || c === '\\')
      return refuse('bad-path', 'the request path contains a character that must be percent-encoded');
    path += c;
  }

  // A single trailing slash is trimmed by RequestInfo and ignored by the API server's router; anything more is not.
  const inner = path.length > 1 && path.endsWith('/') ? path.slice(1, -1) : path.slice(1);
  if (inner !== '') {
    for (const seg of inner.split('/')) {
      if (seg === '') return refuse('ambiguous-path', 'the request path contains an empty segment ("//")');
      if (seg === '.' || seg === '..')
        return refuse('ambiguous-path', 'the request path contains a dot segment ("." or "..")');
    }
  }

  const query = parseQuery(rawQ);
  if ('refused' in query) return query;
  return { path, query };
}

/**
 * Query parameters as Go's `url.ParseQuery`: `&`-separated, `+` is a space, percent-escapes decoded. Go skips pairs
 * it cannot parse (a `;`, a bad escape) and serves the request with the rest; we refuse instead, so a parameter we
 * did not see can never be one the API server acted on.
 */
function parseQuery(raw: string): Map<string, string[]> | ClassifyError {
  const out = new Map<string, string[]>();
  if (raw === '') return out;
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    if (pair.includes(';')) return refuse('bad-query', 'the query string contains ";", which the API server ignores');
    const eq = pair.indexOf('=');
    const k = queryUnescape(eq < 0 ? pair : pair.slice(0, eq));
    const v = queryUnescape(eq < 0 ? '' : pair.slice(eq + 1));
    if (k === null || v === null) return refuse('bad-query', 'the query string has an invalid percent-encoding');
    const list = out.get(k);
    if (list) list.push(v);
    else out.set(k, [v]);
  }
  return out;
}

function queryUnescape(s: string): string | null {
  if (/%(?![0-9A-Fa-f]{2})/.test(s)) return null;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    // Not UTF-8 after decoding: Go would keep the raw bytes; we cannot compare them faithfully.
    return null;
  }
}
