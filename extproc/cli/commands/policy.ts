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
import { Command, Option } from 'commander';
import { AdminClientError, adminClient, CliFailure } from '../admin-client.ts';
import { formatOf, jsonAlias, outputOption, printData, printList, type OutputOptions } from '../output.ts';
import { positiveInt } from '../parse.ts';
import { EXIT, type CliIO, type CommandBuilder } from '../types.ts';

function loadFiles(files: string[]): CompiledPolicy[] {
  return files
    .map((f) => {
      try {
        return loadPolicy(readSource(f, 'policy'));
      } catch (err) {
        if (!(err instanceof PolicyLoadError)) throw err;
        throw new CliFailure(err.problems.map((p) => `${f}:${p.line}:${p.col}: ${p.message}`).join('\n'));
      }
    })
    .sort((a, b) => a.doc.name.localeCompare(b.doc.name));
}

function lint(files: string[], io: CliIO): number {
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
  return parseYaml(readSource(file, 'request')) as SampleRequest;
}

/** A file's text, or a CliFailure naming it. */
function readSource(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliFailure(`error: cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
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
  const policies = loadFiles(policyFiles);
  let passed = 0;
  let failed = 0;
  let engine: MaskingEngine | undefined;
  for (const file of testFiles) {
    const doc = parseYaml(readSource(file, 'policy test')) as { cases?: TestCase[] };
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
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory())
    throw new CliFailure(`error: ${dir} is not a directory`);
  return readdirSync(dir)
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : [p];
    })
    .sort();
}

interface PolicyVersion {
  name: string;
  version: number;
  author: string;
  time: string;
  deleted: boolean;
  rolledBackFrom?: number;
}

export const policyCommand: CommandBuilder = ({ io, run }) => {
  const cmd = new Command('policy').description(
    'Policies: offline tools for authors (lint, eval, test, schema) and the versions in force (admin API).',
  );
  cmd
    .command('lint')
    .description('validate policy files offline; problems print as FILE:LINE:COL: message (exit 1)')
    .argument('<file...>', 'policy files (YAML or JSON)')
    .action(run((files: string[]) => lint(files, io)));
  cmd
    .command('eval')
    .description('decide a sample request against policy files, offline; prints the decision as JSON')
    .requiredOption(
      '--policy <file>',
      'a policy file (repeat for several)',
      (v: string, all: string[]) => [...all, v],
      [],
    )
    .requiredOption('--request <file>', 'the sample request (JSON or YAML, see examples/requests)')
    .action(
      run((opts: { policy: string[]; request: string }) => {
        try {
          const { ctx, defaultAction } = contextFromSample(readSample(opts.request), classifyK8sSample);
          printData(io, 'json', decide(loadFiles(opts.policy), ctx, defaultAction));
          return EXIT.ok;
        } catch (err) {
          if (err instanceof SampleRequestError) throw new CliFailure(`error: ${opts.request}: ${err.message}`);
          throw err;
        }
      }),
    );
  cmd
    .command('test')
    .description('run the *_test.yaml cases beside the policies in DIR (exit 1 if any fails)')
    .argument('<dir>', 'directory holding policies and their *_test.yaml files')
    .action(run((dir: string) => runTests(dir, io)));
  cmd
    .command('schema')
    .description('print the policy JSON Schema')
    .action(
      run(() => {
        printData(io, 'json', POLICY_SCHEMA);
        return EXIT.ok;
      }),
    );
  cmd
    .command('apply')
    .description('store a new version of each policy file through the admin API')
    .argument('<file...>', 'policy files')
    .action(
      run(async (files: string[]) => {
        const client = adminClient(io.env);
        for (const file of files) {
          let v: PolicyVersion;
          try {
            v = (await client.request('POST', '/v1/policies', { source: readSource(file, 'policy') })) as PolicyVersion;
          } catch (err) {
            const problems = (err as AdminClientError).details as {
              problems?: { line: number; col: number; message: string }[];
            };
            if (!(err instanceof AdminClientError) || !problems?.problems) throw err;
            // The server's positions, in the form editors jump to.
            for (const p of problems.problems) io.stderr.write(`${file}:${p.line}:${p.col}: ${p.message}\n`);
            throw new CliFailure(`error: ${file} was not applied: ${err.apiMessage}`);
          }
          io.stdout.write(`${v.name}: version ${v.version}\n`);
        }
        return EXIT.ok;
      }),
    );
  cmd
    .command('list')
    .description('the current version of every policy')
    .addOption(outputOption())
    .addOption(jsonAlias())
    .action(
      run(async (opts: OutputOptions) => {
        const all = (await adminClient(io.env).request('GET', '/v1/policies')) as PolicyVersion[];
        printList(io, formatOf(opts), all, all, VERSION_COLUMNS, 'no policies');
        return EXIT.ok;
      }),
    );
  cmd
    .command('get')
    .description('the current version of a policy, with its source')
    .argument('<name>', 'policy name')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'yaml']).default('json'))
    .action(
      run(async (name: string, opts: { output: 'json' | 'yaml' }) => {
        printData(
          io,
          opts.output,
          await adminClient(io.env).request('GET', `/v1/policies/${encodeURIComponent(name)}`),
        );
        return EXIT.ok;
      }),
    );
  cmd
    .command('history')
    .description('every version of a policy, oldest first')
    .argument('<name>', 'policy name')
    .addOption(outputOption())
    .action(
      run(async (name: string, opts: OutputOptions) => {
        const versions = (await adminClient(io.env).request(
          'GET',
          `/v1/policies/${encodeURIComponent(name)}/versions`,
        )) as PolicyVersion[];
        printList(io, formatOf(opts), versions, versions, VERSION_COLUMNS, `policy ${name} has no versions`);
        return EXIT.ok;
      }),
    );
  cmd
    .command('diff')
    .description('line diff between two versions of a policy (default: the current version against the one before)')
    .argument('<name>', 'policy name')
    .option('--from <version>', 'older version (default: the one before --to)', positiveInt('--from'))
    .option('--to <version>', 'newer version (default: the current one)', positiveInt('--to'))
    .action(
      run(async (name: string, opts: { from?: number; to?: number }) => {
        const client = adminClient(io.env);
        const path = `/v1/policies/${encodeURIComponent(name)}`;
        const to = opts.to ?? ((await client.request('GET', path)) as PolicyVersion).version;
        const from = opts.from ?? to - 1;
        if (from < 1)
          throw new CliFailure(`error: policy ${name} has no version before ${to} to diff against (give --from)`);
        const r = (await client.request('GET', `${path}/diff?from=${from}&to=${to}`)) as { diff: string };
        io.stdout.write(`${r.diff}\n`);
        return EXIT.ok;
      }),
    );
  cmd
    .command('rollback')
    .description('make an earlier version current again (stored as a new version)')
    .argument('<name>', 'policy name')
    .requiredOption('--version <version>', 'the version to restore', positiveInt('--version'))
    .action(
      run(async (name: string, opts: { version: number }) => {
        const v = (await adminClient(io.env).request('POST', `/v1/policies/${encodeURIComponent(name)}/rollback`, {
          version: opts.version,
        })) as PolicyVersion;
        io.stdout.write(`${name}: version ${v.version} (rollback of ${opts.version})\n`);
        return EXIT.ok;
      }),
    );
  return cmd;
};

const VERSION_COLUMNS = [
  { header: 'NAME', value: (v: PolicyVersion) => v.name },
  { header: 'VERSION', value: (v: PolicyVersion) => String(v.version) },
  { header: 'TIME', value: (v: PolicyVersion) => v.time },
  { header: 'AUTHOR', value: (v: PolicyVersion) => v.author },
  {
    header: 'NOTE',
    value: (v: PolicyVersion) => (v.deleted ? 'deleted' : v.rolledBackFrom ? `rollback of ${v.rolledBackFrom}` : ''),
  },
];
