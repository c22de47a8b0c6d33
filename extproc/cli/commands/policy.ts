/**
 * `portcullis policy …`: offline tools for policy authors (lint, eval, test, schema) and the admin-API ones
 * (apply, list, history, diff, rollback).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { decide } from '../../policy/evaluate.ts';
import { loadPolicy, PolicyLoadError, type CompiledPolicy } from '../../policy/load.ts';
import { classifyK8sSample } from '../../kube/index.ts';
import { contextFromSample, SampleRequestError, type SampleRequest } from '../../policy/sample-request.ts';
import { checkMasking, type MaskingExpectation } from '../../policy/masking-test.ts';
import { loadMaskingEngine, type MaskingEngine } from '../../masking/index.ts';
import { POLICY_SCHEMA } from '../../policy/schema.ts';
import type { RuleAction } from '../../policy/types.ts';
import { adminClient, parseFlags, withAdminErrors } from '../admin-client.ts';
import type { CliCommand, CliIO } from '../types.ts';

const USAGE = `usage:
  portcullis policy lint FILE...                          validate policies offline (FILE:LINE:COL: message)
  portcullis policy eval --policy FILE [--policy FILE] --request REQUEST.json
  portcullis policy test DIR                               run the *_test.yaml cases beside the policies in DIR
  portcullis policy schema                                 print the policy JSON Schema
  portcullis policy apply FILE...                          store new versions through the admin API
  portcullis policy list | get NAME | history NAME | diff NAME --from N [--to M] | rollback NAME --version N
`;

function loadFiles(files: string[]): CompiledPolicy[] {
  return files.map((f) => loadPolicy(readFileSync(f, 'utf8'))).sort((a, b) => a.doc.name.localeCompare(b.doc.name));
}

function lint(files: string[], io: CliIO): number {
  if (!files.length) {
    io.stderr.write(USAGE);
    return 2;
  }
  let bad = 0;
  for (const file of files) {
    let source: string;
    try {
      source = readFileSync(file, 'utf8');
    } catch (err) {
      io.stdout.write(`${file}:1:1: cannot read file (${(err as NodeJS.ErrnoException).code})\n`);
      bad++;
      continue;
    }
    try {
      loadPolicy(source);
    } catch (err) {
      if (!(err instanceof PolicyLoadError)) throw err;
      for (const p of err.problems) io.stdout.write(`${file}:${p.line}:${p.col}: ${p.message}\n`);
      bad++;
    }
  }
  return bad ? 1 : 0;
}

function readSample(file: string): SampleRequest {
  return parseYaml(readFileSync(file, 'utf8')) as SampleRequest;
}

interface TestCase {
  name: string;
  request: SampleRequest;
  /** The decision expected; a case may instead (or also) only assert masking. */
  expect?: { action: RuleAction; rule?: string; policy?: string };
  mask?: MaskingExpectation[];
}

/**
 * Policy tests, like `opa test`: files named *_test.yaml hold `cases:` with a request and the expected decision
 * and/or masking expectations (`mask:`, see extproc/policy/masking-test.ts).
 */
async function runTests(dir: string, io: CliIO): Promise<number> {
  const all = walk(dir);
  const policyFiles = all.filter((f) => /\.(ya?ml|json)$/.test(f) && !/_test\.ya?ml$/.test(f));
  const testFiles = all.filter((f) => /_test\.ya?ml$/.test(f));
  let policies: CompiledPolicy[];
  try {
    policies = loadFiles(policyFiles);
  } catch (err) {
    if (err instanceof PolicyLoadError) {
      io.stderr.write(`policies in ${dir} do not load:\n${err.message}\n`);
      return 1;
    }
    throw err;
  }
  let passed = 0;
  let failed = 0;
  let engine: MaskingEngine | undefined;
  for (const file of testFiles) {
    const doc = parseYaml(readFileSync(file, 'utf8')) as { cases?: TestCase[] };
    for (const c of doc.cases ?? []) {
      const { ctx, defaultAction } = contextFromSample(c.request, classifyK8sSample);
      const d = decide(policies, ctx, defaultAction);
      const problems: string[] = [];
      if (c.expect) {
        if (d.action !== c.expect.action) problems.push(`action ${d.action}, expected ${c.expect.action}`);
        if (c.expect.rule !== undefined && d.rule !== c.expect.rule)
          problems.push(`rule ${d.rule}, expected ${c.expect.rule}`);
        if (c.expect.policy !== undefined && d.policy !== c.expect.policy)
          problems.push(`policy ${d.policy}, expected ${c.expect.policy}`);
      }
      if (c.mask) {
        engine ??= await loadMaskingEngine();
        problems.push(...checkMasking(engine, policies, ctx, c.mask));
      }
      if (!c.expect && !c.mask) problems.push('the case has neither expect nor mask');
      const where = `${relative(process.cwd(), file)}: ${c.name}`;
      if (problems.length) {
        failed++;
        io.stdout.write(`FAIL ${where}: ${problems.join('; ')}\n`);
      } else {
        passed++;
        io.stdout.write(`PASS ${where}\n`);
      }
    }
  }
  io.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed || passed === 0 ? 1 : 0;
}

function walk(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : [p];
    })
    .sort();
}

export const policyCommand: CliCommand = async (argv, io) => {
  const [sub, ...rest] = argv;
  const json = (v: unknown): void => {
    io.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
  };
  switch (sub) {
    case 'lint':
      return lint(rest, io);
    case 'schema':
      json(POLICY_SCHEMA);
      return 0;
    case 'test':
      if (rest.length !== 1) {
        io.stderr.write(USAGE);
        return 2;
      }
      return runTests(rest[0], io);
    case 'eval': {
      const files: string[] = [];
      let request: string | undefined;
      for (let i = 0; i < rest.length; i++) {
        if (rest[i] === '--policy') files.push(rest[++i]);
        else if (rest[i] === '--request') request = rest[++i];
      }
      if (!files.length || !request) {
        io.stderr.write(USAGE);
        return 2;
      }
      try {
        const { ctx, defaultAction } = contextFromSample(readSample(request), classifyK8sSample);
        json(decide(loadFiles(files), ctx, defaultAction));
        return 0;
      } catch (err) {
        if (err instanceof PolicyLoadError || err instanceof SampleRequestError) {
          io.stderr.write(`${err.message}\n`);
          return 1;
        }
        throw err;
      }
    }
    case 'apply':
      return withAdminErrors(io, async () => {
        const client = adminClient(io.env);
        for (const file of rest) {
          const v = (await client.request('POST', '/v1/policies', { source: readFileSync(file, 'utf8') })) as {
            name: string;
            version: number;
          };
          io.stdout.write(`${v.name}: version ${v.version}\n`);
        }
        return 0;
      });
    case 'list':
    case 'get':
    case 'history':
    case 'diff':
    case 'rollback':
      return withAdminErrors(io, async () => {
        const client = adminClient(io.env);
        const { flags, positional } = parseFlags(rest);
        const name = encodeURIComponent(positional[0] ?? '');
        if (sub === 'list') {
          json(await client.request('GET', '/v1/policies'));
          return 0;
        }
        if (!positional[0]) {
          io.stderr.write(USAGE);
          return 2;
        }
        if (sub === 'get') json(await client.request('GET', `/v1/policies/${name}`));
        if (sub === 'history') {
          for (const v of (await client.request('GET', `/v1/policies/${name}/versions`)) as {
            version: number;
            author: string;
            time: string;
            deleted: boolean;
            rolledBackFrom?: number;
          }[]) {
            io.stdout.write(
              `${v.version}\t${v.time}\t${v.author}${v.deleted ? '\tdeleted' : ''}${v.rolledBackFrom ? `\trollback of ${v.rolledBackFrom}` : ''}\n`,
            );
          }
        }
        if (sub === 'diff') {
          const q = `from=${Number(flags.from)}${flags.to ? `&to=${Number(flags.to)}` : ''}`;
          io.stdout.write(
            `${((await client.request('GET', `/v1/policies/${name}/diff?${q}`)) as { diff: string }).diff}\n`,
          );
        }
        if (sub === 'rollback') {
          const v = (await client.request('POST', `/v1/policies/${name}/rollback`, {
            version: Number(flags.version),
          })) as { version: number };
          io.stdout.write(`${positional[0]}: version ${v.version} (rollback of ${flags.version})\n`);
        }
        return 0;
      });
    default:
      io.stderr.write(USAGE);
      return 2;
  }
};
