/**
 * CEL for policy conditions: one environment declaring the typed request context (context.ts), compile-time type
 * checking, and errors that carry the offset of the offending token so the loader can report line and column.
 */
import { Environment } from '@marcbachmann/cel-js';
import { CEL_CONTEXT_SCHEMA, type RequestContext } from './context.ts';

export type Condition = (ctx: RequestContext) => boolean;

export interface CelProblem {
  message: string;
  /** Offset into the expression source. */
  offset: number;
}

const environment = (() => {
  const env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false });
  for (const [name, type] of Object.entries(CEL_CONTEXT_SCHEMA)) {
    if (typeof type === 'string') env.registerVariable(name, type);
    else env.registerVariable({ name, schema: type as Record<string, string> });
  }
  return env;
})();

interface CelErrorLike { summary?: string; message: string; range?: { start: number } }

function problemOf(err: unknown): CelProblem {
  const e = err as CelErrorLike;
  return { message: e.summary ?? e.message.split('\n')[0], offset: e.range?.start ?? 0 };
}

/** Compiles and type-checks a condition; it must be a bool expression. */
export function compileCondition(source: string): { ok: true; condition: Condition } | { ok: false; problem: CelProblem } {
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
  const program = environment.parse(source) as unknown as (ctx: RequestContext) => unknown;
  return {
    ok: true,
    condition: (ctx) => {
      const v = program(ctx);
      if (typeof v !== 'boolean') throw new Error(`condition evaluated to ${typeof v}, not bool`);
      return v;
    },
  };
}

/** The names and types CEL sees, for docs and `portcullis policy context`. */
export function celDeclarations(): unknown {
  return environment.getDefinitions();
}
