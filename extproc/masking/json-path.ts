/**
 * The JSON paths of field rules: `$`, `.name`, `['name']`, `[0]`, `.*` / `[*]` (any member or element) and
 * `..name` (that member at any depth). Enough for Kubernetes objects (`$.data.*`,
 * `$.items[*].spec.containers[*].env[*].value`); filters and slices are refused at load.
 */
export type PathSegment =
  | { kind: 'key'; key: string }
  | { kind: 'index'; index: number }
  | { kind: 'any' }
  | { kind: 'descend'; key: string | null };

export type JsonPath = PathSegment[];

export class JsonPathError extends Error {}

export function parseJsonPath(text: string): JsonPath {
  if (!text.startsWith('$')) throw new JsonPathError('must start with $');
  const out: JsonPath = [];
  let i = 1;
  const name = /^[A-Za-z_$][\w$-]*/;
  while (i < text.length) {
    const rest = text.slice(i);
    if (rest.startsWith('..')) {
      const m = name.exec(rest.slice(2));
      if (rest[2] === '*') {
        out.push({ kind: 'descend', key: null });
        i += 3;
        continue;
      }
      if (!m) throw new JsonPathError(`expected a member name after '..' at ${i}`);
      out.push({ kind: 'descend', key: m[0] });
      i += 2 + m[0].length;
      continue;
    }
    if (rest[0] === '.') {
      if (rest[1] === '*') {
        out.push({ kind: 'any' });
        i += 2;
        continue;
      }
      const m = name.exec(rest.slice(1));
      if (!m) throw new JsonPathError(`expected a member name after '.' at ${i}`);
      out.push({ kind: 'key', key: m[0] });
      i += 1 + m[0].length;
      continue;
    }
    if (rest[0] === '[') {
      const close = rest.indexOf(']');
      if (close < 0) throw new JsonPathError(`unclosed '[' at ${i}`);
      const inner = rest.slice(1, close).trim();
      if (inner === '*') out.push({ kind: 'any' });
      else if (/^\d+$/.test(inner)) out.push({ kind: 'index', index: Number(inner) });
      else if (/^'[^']*'$/.test(inner) || /^"[^"]*"$/.test(inner)) out.push({ kind: 'key', key: inner.slice(1, -1) });
      else throw new JsonPathError(`unsupported selector [${inner}] at ${i} (use name, 'name', index or *)`);
      i += close + 1;
      continue;
    }
    throw new JsonPathError(`unexpected '${rest[0]}' at ${i}`);
  }
  return out;
}

/** Whether a concrete location (member names and array indices from the root) matches the path. */
export function matchJsonPath(path: JsonPath, location: readonly (string | number)[]): boolean {
  return matchFrom(path, 0, location, 0);
}

function matchFrom(path: JsonPath, p: number, loc: readonly (string | number)[], l: number): boolean {
  if (p === path.length) return l === loc.length;
  if (l === loc.length) return false;
  const seg = path[p];
  const here = loc[l];
  switch (seg.kind) {
    case 'key':
      return here === seg.key && matchFrom(path, p + 1, loc, l + 1);
    case 'index':
      return here === seg.index && matchFrom(path, p + 1, loc, l + 1);
    case 'any':
      return matchFrom(path, p + 1, loc, l + 1);
    case 'descend':
      for (let k = l; k < loc.length; k++) {
        if ((seg.key === null || loc[k] === seg.key) && matchFrom(path, p + 1, loc, k + 1)) return true;
      }
      return false;
    default: {
      const never: never = seg;
      return never;
    }
  }
}
