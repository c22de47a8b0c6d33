/** Patches applied by the stand-in: RFC 7386 merge (also used, simplified, for strategic and apply) and RFC 6902. */

type Json = unknown;

export function mergePatch(target: Json, patch: Json): Json {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, Json> =
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, Json>) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class PatchError extends Error {}

export function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON Patch must be an array');
  let root = structuredClone(doc);
  for (const op of ops as { op: string; path: string; value?: Json; from?: string }[]) {
    const tokens = pointer(op.path);
    if (op.op === 'test') {
      if (JSON.stringify(resolve(root, tokens)) !== JSON.stringify(op.value))
        throw new PatchError(`test failed at ${op.path}`);
      continue;
    }
    if (tokens.length === 0) {
      if (op.op === 'add' || op.op === 'replace') {
        root = structuredClone(op.value);
        continue;
      }
      throw new PatchError(`cannot ${op.op} the root`);
    }
    const parent = resolve(root, tokens.slice(0, -1)) as Record<string, Json> | Json[];
    const last = tokens[tokens.length - 1];
    if (typeof parent !== 'object' || parent === null) throw new PatchError(`no parent for ${op.path}`);
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new PatchError(`bad index in ${op.path}`);
      if (op.op === 'add') parent.splice(i, 0, structuredClone(op.value));
      else if (op.op === 'replace') parent[i] = structuredClone(op.value);
      else if (op.op === 'remove') parent.splice(i, 1);
      else throw new PatchError(`unsupported op ${op.op}`);
    } else {
      if (op.op === 'add' || op.op === 'replace') {
        if (op.op === 'replace' && !(last in parent)) throw new PatchError(`missing ${op.path}`);
        parent[last] = structuredClone(op.value);
      } else if (op.op === 'remove') {
        if (!(last in parent)) throw new PatchError(`missing ${op.path}`);
        delete parent[last];
      } else throw new PatchError(`unsupported op ${op.op}`);
    }
  }
  return root;
}

function pointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new PatchError(`bad JSON pointer ${p}`);
  return p
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function resolve(doc: Json, tokens: string[]): Json {
  let v: any = doc;
  for (const t of tokens) {
    if (v == null || typeof v !== 'object' || !(t in v)) throw new PatchError(`path not found: /${tokens.join('/')}`);
    v = v[t];
  }
  return v;
}
