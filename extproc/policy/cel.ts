/**
 * CEL for policy conditions: one environment declaring the typed request context (context.ts), compile-time type
 * checking, and errors that carry the offset of the offending token so the loader can report line and column.
 */
import { Environment } from '@marcbachmann/cel-js';
import { CEL_CONTEXT_SCHEMA, type RequestContext } from './context.ts';

/** The context as CEL reads it: built once per decision by celInput(), shared by every rule. */
export type CelInput = { readonly __celInput: unique symbol };
export type Condition = (input: CelInput) => boolean;

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
  const program = environment.parse(source) as unknown as (input: CelInput) => unknown;
  return {
    ok: true,
    condition: (input) => {
      const v = program(input);
      if (typeof v !== 'boolean') throw new Error(`condition evaluated to ${typeof v}, not bool`);
      return v;
    },
  };
}
