/**
 * Just enough of apimachinery's field selector grammar (k8s.io/apimachinery/pkg/fields/selector.go) to answer
 * `RequiresExactMatch(field)`, which RequestInfo uses to take a list's name from `metadata.name=<name>`.
 */

/**
 * The value an `=`/`==` term requires for `field`, or undefined when no term does or the selector does not parse.
 * Terms are split on unescaped commas and sorted before the search, as the API server does, so with two
 * `metadata.name` terms the lexically smaller term wins.
 */
export function exactFieldMatch(selector: string, field: string): string | undefined {
  const terms = splitTerms(selector).sort();
  let found: string | undefined;
  for (const term of terms) {
    if (term === '') continue;
    const split = splitTerm(term);
    if (!split) return undefined;
    const value = unescapeValue(split.rhs);
    if (value === undefined) return undefined;
    if (found === undefined && split.op !== '!=' && split.lhs === field) found = value;
  }
  return found;
}

function splitTerms(s: string): string[] {
  if (s === '') return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === '\\') inSlash = true;
    else if (c === ',') {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

/** The first occurrence of an operator splits the term; "!=" and "==" are tried before "=" at each position. */
function splitTerm(term: string): { lhs: string; op: string; rhs: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of ['!=', '==', '=']) {
      if (term.startsWith(op, i)) return { lhs: term.slice(0, i), op, rhs: term.slice(i + op.length) };
    }
  }
  return undefined;
}

function unescapeValue(s: string): string | undefined {
  let out = '';
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c !== '\\' && c !== ',' && c !== '=') return undefined;
      out += c;
      inSlash = false;
      continue;
    }
    if (c === '\\') inSlash = true;
    else if (c === ',' || c === '=') return undefined;
    else out += c;
  }
  return inSlash ? undefined : out;
}
