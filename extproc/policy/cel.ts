/**
 * CEL for policy conditions: one environment declaring the typed request context (context.ts), compile-time type
 * checking, and errors that carry the offset of the offending token so the loader can report line and column.
 */
import { Environment } from '@marcbachmann/cel-js';
import { compileRe2 } from '../masking/custom-detectors.ts';
import { CEL_CONTEXT_SCHEMA, type RequestContext } from './context.ts';

/** The context as CEL reads it: built once per decision by celInput(), shared by every rule. */
export type CelInput = { readonly __celInput: unique symbol };
/**
 * A compiled condition, and the context fields it can read (`k8s.object`; `k8s.*` when it uses a section whole or
 * indexes it with a computed key; `time`, `protocol`): an adapter pays for an expensive field (a Kubernetes dry run)
 * only when a rule in scope reads it, and a decision is reused only for an action equal in every field read
 * (decision-cache.ts). Over-approximated, never under.
 */
export type Condition = ((input: CelInput) => boolean) & { readonly reads: ReadonlySet<string> };

export interface CelProblem {
  message: string;
  /** Offset into the expression source. */
  offset: number;
}

/**
 * Each object section of the context is a registered CEL type with its own class. Wrapping the plain objects in
 * these classes once per decision lets every rule read them directly; plain objects would be converted again by
 * every rule (measured: about 2× slower per condition, bench/policy.bench.ts).
 */
type Section = new (plain: object) => object;
const sections = new Map<string, Section>();

const environment = (() => {
  const env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false });
  for (const [name, type] of Object.entries(CEL_CONTEXT_SCHEMA)) {
    if (typeof type === 'string') {
      env.registerVariable(name, type);
      continue;
    }
    const typeName = `portcullis.${name}`;
    const ctor = {
      [typeName]: class {
        constructor(plain: object) {
          Object.assign(this, plain);
        }
      },
    }[typeName] as Section;
    env.registerType(typeName, { ctor, fields: type as Record<string, string> });
    env.registerVariable(name, typeName);
    sections.set(name, ctor);
  }
  return env;
})();

/**
 * `matches()` on RE2: linear time in the input whatever the pattern, so an agent that picks a resource name cannot
 * stall the process through a pattern with nested quantifiers. Compiled patterns are cached (patterns are few: mostly
 * constants of the policies in force). A pattern RE2 refuses is an evaluation error, and evaluation errors fail closed.
 */
const patterns = new Map<string, ReturnType<typeof compileRe2>>();
function re2Matches(text: string, pattern: string): boolean {
  let re = patterns.get(pattern);
  if (!re) {
    re = RE2_COMPILE(pattern);
    if (patterns.size >= 1000) patterns.clear();
    patterns.set(pattern, re);
  }
  return re.matcher(text).find();
}

/** RE2 without the empty-match rule of masking detectors: `matches("")` is true in CEL. */
function RE2_COMPILE(pattern: string): ReturnType<typeof compileRe2> {
  return compileRe2(pattern, '', { allowEmpty: true });
}

interface FunctionDecl {
  name: string;
  receiverType: unknown;
  handler: (...a: unknown[]) => unknown;
}

interface AstNode {
  op: string;
  args: unknown;
  start: number;
  candidates?: { declarations: FunctionDecl[] };
}

(() => {
  environment.registerFunction('matches(string, string): bool', re2Matches);
  // cel-js has no public way to replace a built-in overload: registering string.matches(string) again is refused as
  // an overlap, and declarations are frozen. This environment's candidate list for the method (its own since the
  // registration above; nothing is registered after this) gets a copy of the declaration with the RE2 handler. The
  // check below fails at start if a cel-js upgrade stops this from working, rather than silently backtracking again.
  const probe = environment.parse('"".matches("")') as unknown as { ast: AstNode; check(): { valid: boolean } };
  probe.check();
  const declarations = probe.ast.candidates?.declarations ?? [];
  declarations.forEach((decl, i) => {
    if (decl.name !== 'matches' || !decl.receiverType) return;
    const Declaration = decl.constructor as new (d: object) => FunctionDecl;
    declarations[i] = new Declaration({ ...decl, handler: (s: string, p: string) => re2Matches(s, p) });
  });
  // `(?i)` is RE2 syntax that JavaScript's RegExp refuses.
  const check = environment.parse('"X".matches("(?i)x") && matches("X", "(?i)x")') as unknown as () => unknown;
  if (check() !== true) throw new Error('CEL matches() is not running on RE2');
})();

/** Patterns given as string constants to matches(), checked for RE2 at load: where each is, and why it is refused. */
function constantPatternProblems(ast: AstNode): CelProblem[] {
  const out: CelProblem[] = [];
  const literal = (n: unknown): AstNode | null =>
    typeof n === 'object' && n !== null && (n as AstNode).op === 'value' && typeof (n as AstNode).args === 'string'
      ? (n as AstNode)
      : null;
  const visit = (n: unknown): void => {
    if (Array.isArray(n)) {
      for (const x of n) visit(x);
      return;
    }
    if (typeof n !== 'object' || n === null || typeof (n as AstNode).op !== 'string') return;
    const node = n as AstNode;
    const args = node.args as unknown[];
    let pattern: AstNode | null = null;
    if (node.op === 'rcall' && args[0] === 'matches') pattern = literal((args[2] as unknown[])?.[0]);
    else if (node.op === 'call' && args[0] === 'matches') pattern = literal((args[1] as unknown[])?.[1]);
    if (pattern) {
      try {
        RE2_COMPILE(pattern.args as string);
      } catch (err) {
        out.push({ message: `matches(): ${(err as Error).message}`, offset: pattern.start });
      }
    }
    if (Array.isArray(node.args)) visit(node.args);
  };
  visit(ast);
  return out;
}

/** The context's variables that are not object sections (`protocol`, `time`). */
const SCALARS = new Set(
  Object.entries(CEL_CONTEXT_SCHEMA)
    .filter(([, type]) => typeof type === 'string')
    .map(([name]) => name),
);

/**
 * The `section.field` names the expression reads from the context's object sections, and the names of the other
 * context variables it reads (`time`: a decision that reads it may differ from one moment to the next) (see
 * Condition).
 */
function fieldsRead(ast: AstNode): ReadonlySet<string> {
  const out = new Set<string>();
  const isNode = (n: unknown): n is AstNode =>
    typeof n === 'object' && n !== null && typeof (n as AstNode).op === 'string';
  const visit = (n: unknown, parent: AstNode | null): void => {
    if (Array.isArray(n)) {
      for (const x of n) visit(x, parent);
      return;
    }
    if (!isNode(n)) return;
    // A comprehension's own variable of the same name is counted too: over-approximated, never under.
    if (n.op === 'id' && typeof n.args === 'string' && SCALARS.has(n.args)) {
      out.add(n.args);
      return;
    }
    if (n.op === 'id' && typeof n.args === 'string' && sections.has(n.args)) {
      const pargs = parent?.args as unknown[] | undefined;
      const key =
        parent && pargs?.[0] === n
          ? parent.op === '.' || parent.op === '.?'
            ? pargs[1]
            : parent.op === '[]' || parent.op === '[?]'
              ? isNode(pargs[1]) && pargs[1].op === 'value'
                ? pargs[1].args
                : undefined
              : undefined
          : undefined;
      out.add(`${n.args}.${typeof key === 'string' ? key : '*'}`);
      return;
    }
    if (Array.isArray(n.args)) for (const x of n.args) visit(x, n);
  };
  visit(ast, null);
  return out;
}

export function celInput(ctx: RequestContext): CelInput {
  const input: Record<string, unknown> = { ...ctx };
  for (const [name, ctor] of sections) input[name] = new ctor((ctx as unknown as Record<string, object>)[name]);
  return input as unknown as CelInput;
}

interface CelErrorLike {
  summary?: string;
  message: string;
  range?: { start: number };
}

function problemOf(err: unknown): CelProblem {
  const e = err as CelErrorLike;
  return { message: e.summary ?? e.message.split('\n')[0], offset: e.range?.start ?? 0 };
}

/** Compiles and type-checks a condition; it must be a bool expression. */
export function compileCondition(
  source: string,
): { ok: true; condition: Condition } | { ok: false; problem: CelProblem } {
  let checked: { valid: boolean; type?: string; error?: unknown };
  try {
    checked = environment.check(source) as typeof checked;
  } catch (err) {
    return { ok: false, problem: problemOf(err) };
  }
  if (!checked.valid) return { ok: false, problem: problemOf(checked.error) };
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return { ok: false, problem: { message: `condition must be a bool expression, not ${checked.type}`, offset: 0 } };
  }
  const program = environment.parse(source) as unknown as ((input: CelInput) => unknown) & { ast: AstNode };
  const refused = constantPatternProblems(program.ast);
  if (refused.length) return { ok: false, problem: refused[0] };
  const condition = (input: CelInput): boolean => {
    const v = program(input);
    if (typeof v !== 'boolean') throw new Error(`condition evaluated to ${typeof v}, not bool`);
    return v;
  };
  return { ok: true, condition: Object.assign(condition, { reads: fieldsRead(program.ast) }) };
}
