/**
 * What a Kubernetes write would change, for approvers: the dry run's old → new object as one line per changed leaf,
 * e.g. `spec.replicas: 3 → 20`. The objects given are already masked; fields the API server itself maintains on every
 * write (resourceVersion, managedFields…) are left out, and the list is capped so a large object stays readable.
 */

/** Fields that change on every write and say nothing about its effect. */
const BOOKKEEPING = new Set([
  'metadata.resourceVersion',
  'metadata.managedFields',
  'metadata.generation',
  'metadata.uid',
  'metadata.creationTimestamp',
  'metadata.selfLink',
]);
const MAX_LINES = 40;
const MAX_VALUE = 80;
const ABSENT = Symbol('absent');

/** `values: false` names the changed paths only (a Secret's, whose values must not reach an approver). */
export function objectDiff(
  oldObject: unknown,
  newObject: unknown,
  opts: { values: boolean } = { values: true },
): string[] {
  const lines: string[] = [];
  let more = 0;
  const emit = (path: string, before: unknown, after: unknown): void => {
    const change = opts.values
      ? `${show(before)} → ${show(after)}`
      : before === ABSENT
        ? 'added'
        : after === ABSENT
          ? 'removed'
          : 'changed';
    if (lines.length < MAX_LINES) lines.push(`${path || '(object)'}: ${change}`);
    else more++;
  };
  const walk = (path: string, a: unknown, b: unknown): void => {
    if (BOOKKEEPING.has(path)) return;
    if (isRecord(a) && isRecord(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        walk(path ? `${path}.${k}` : k, k in a ? a[k] : ABSENT, k in b ? b[k] : ABSENT);
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++)
        walk(`${path}[${i}]`, i < a.length ? a[i] : ABSENT, i < b.length ? b[i] : ABSENT);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) emit(path, a, b);
  };
  walk('', oldObject ?? ABSENT, newObject ?? ABSENT);
  if (more > 0) lines.push(`… and ${more} more change${more === 1 ? '' : 's'}`);
  return lines;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (v === ABSENT) return '(none)';
  const text = JSON.stringify(v) ?? 'null';
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}
