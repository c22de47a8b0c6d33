/**
 * Masking assertions of policy test cases (`mask:` in a `*_test.yaml` case): the masking rules of the policies in
 * scope for the case's request, applied to a sample input, must give the expected output and/or findings.
 */
import type { MaskingEngine } from '../masking/index.ts';
import type { RequestContext } from './context.ts';
import type { CompiledPolicy } from './load.ts';
import { MaskingPlans } from './masking-plans.ts';

export interface MaskingExpectation {
  /** Text as the upstream would send it (a response body, query rows, terminal output). */
  input: string;
  /** Parse `input` as JSON and mask it as a document (path rules apply); `output` is then compared as JSON. */
  json?: boolean;
  /** The masked text (or JSON document) expected. */
  output?: string;
  /** How many values of each entity (or detector, or field rule) must be found; unlisted ones must not be. */
  findings?: Record<string, number>;
}

/** Problems with one case's expectations; empty when they all hold. */
export function checkMasking(
  engine: MaskingEngine,
  policies: readonly CompiledPolicy[],
  ctx: RequestContext,
  expectations: readonly MaskingExpectation[],
): string[] {
  const plan = new MaskingPlans().planFor(policies, {
    protocol: ctx.protocol,
    agent: ctx.agent,
    target: ctx.target,
    key: 'test',
  });
  const problems: string[] = [];
  expectations.forEach((e, i) => {
    const where = `mask[${i}]`;
    let output: string;
    let findings: Record<string, number> = {};
    if (!plan) {
      output = e.input;
    } else if (e.json) {
      const r = engine.maskJson(JSON.parse(e.input), plan);
      output = JSON.stringify(r.value);
      findings = Object.fromEntries(r.findings.map((f) => [f.entity, f.count]));
    } else {
      const r = engine.maskText(e.input, plan);
      output = r.value;
      findings = Object.fromEntries(r.findings.map((f) => [f.entity, f.count]));
    }
    if (e.output !== undefined) {
      const want = e.json ? JSON.stringify(JSON.parse(e.output)) : e.output;
      if (output !== want)
        problems.push(`${where}: output ${JSON.stringify(output)}, expected ${JSON.stringify(want)}`);
    }
    if (e.findings !== undefined) {
      const keys = new Set([...Object.keys(findings), ...Object.keys(e.findings)]);
      for (const k of [...keys].sort()) {
        if ((findings[k] ?? 0) !== (e.findings[k] ?? 0))
          problems.push(`${where}: ${k} found ${findings[k] ?? 0} times, expected ${e.findings[k] ?? 0}`);
      }
    }
  });
  return problems;
}
