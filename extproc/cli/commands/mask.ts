/**
 * `portcullis mask [--entities LIST] [--strategy S] [--keep N] [--policy FILE] [--protocol P] [--stats] [--explain]`:
 * masks stdin to stdout through the streaming engine. --explain lists each value found on stderr (entity, byte
 * offsets in the input, what it passed), never the value. Without --entities every built-in entity is detected.
 * --policy takes the `masking:` rules of a policy file (YAML or JSON). The hash key comes from
 * PORTCULLIS_MASK_HASH_KEY (otherwise a random key: hashes are then stable only within one run).
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import {
  BUILTIN_ENTITIES,
  compileMaskingRules,
  loadMaskingEngine,
  MaskingRulesError,
  STRATEGIES,
  type CompiledMasking,
  type MaskingRule,
} from '../../masking/index.ts';
import { Command, Option } from 'commander';
import { CliFailure } from '../admin-client.ts';
import { positiveInt } from '../parse.ts';
import { EXIT, type CliIO, type CommandBuilder } from '../types.ts';

interface MaskOptions {
  entities?: string;
  strategy?: string;
  keep?: number;
  policy?: string;
  protocol?: MaskingRule['protocol'];
  stats?: boolean;
  explain?: boolean;
}

export const maskCommand: CommandBuilder = ({ io, run }) =>
  new Command('mask')
    .description('mask stdin to stdout through the streaming masking engine')
    .option('--entities <list>', `comma-separated entities (default: all): ${BUILTIN_ENTITIES.join(',')}`)
    .addOption(
      new Option('--strategy <strategy>', 'how a finding is replaced (default: redact)').choices([...STRATEGIES]),
    )
    .option('--keep <n>', 'characters kept by partial strategies (default: 4)', positiveInt('--keep'))
    .option('--policy <file>', 'use the `masking:` rules of a policy file (YAML or JSON)')
    .addOption(
      new Option('--protocol <protocol>', 'apply the rules scoped to this protocol').choices([
        'kubernetes',
        'postgres',
        'ssh',
      ]),
    )
    .option('--stats', 'print the count of findings per entity on stderr')
    .option('--explain', 'print each finding on stderr (entity, byte offsets, what it passed), never the value')
    .addHelpText(
      'after',
      '\nThe hash strategy keys on PORTCULLIS_MASK_HASH_KEY (else a random key: hashes are stable within one run only).',
    )
    .action(run((opts: MaskOptions) => mask(opts, io)));

async function mask(opts: MaskOptions, io: CliIO): Promise<number> {
  let plan: CompiledMasking;
  try {
    plan = compileMaskingRules(await rulesFrom(opts), opts.protocol ? { protocol: opts.protocol } : {});
  } catch (err) {
    if (!(err instanceof MaskingRulesError)) throw err;
    const where = opts.policy ?? 'the command line';
    throw new CliFailure(
      err.issues
        .map((i) => `error: ${where}: masking[${i.index}]${i.field ? `.${i.field}` : ''}: ${i.message}`)
        .join('\n'),
      EXIT.usage,
    );
  }
  const key = io.env.PORTCULLIS_MASK_HASH_KEY;
  const engine = await loadMaskingEngine(key ? { hashKey: Buffer.from(key, 'utf8') } : {});
  const stream = engine.createStream(plan, { explain: opts.explain === true });
  for await (const chunk of io.stdin) {
    await write(io, stream.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)));
  }
  await write(io, stream.end());
  for (const d of stream.detections()) io.stderr.write(`${d.entity}\t${d.start}-${d.end}\t${d.validation}\n`);
  if (opts.stats) {
    for (const f of stream.findings()) io.stderr.write(`${f.entity}\t${f.count}\n`);
  }
  return EXIT.ok;
}

/** The rules: the policy's `masking:` list, plus one rule from --entities/--strategy/--keep (all entities by default). */
async function rulesFrom(flags: MaskOptions): Promise<unknown[]> {
  const rules: unknown[] = [];
  if (flags.policy !== undefined) {
    let text: string;
    try {
      text = await readFile(flags.policy, 'utf8');
    } catch (err) {
      throw new CliFailure(
        `error: cannot read the policy file ${flags.policy}: ${(err as NodeJS.ErrnoException).code}`,
      );
    }
    const doc = parseYaml(text) as { masking?: unknown } | null;
    const masking = doc?.masking ?? [];
    if (!Array.isArray(masking)) throw new CliFailure(`error: ${flags.policy}: masking must be a list`, EXIT.usage);
    rules.push(...masking);
  }
  if (flags.policy === undefined || flags.entities !== undefined || flags.strategy !== undefined) {
    const entities =
      flags.entities === undefined
        ? [...BUILTIN_ENTITIES]
        : flags.entities
            .split(',')
            .map((e) => e.trim())
            .filter(Boolean);
    const keep = flags.keep ?? 4;
    rules.push({ name: 'cli', entities, strategy: flags.strategy ?? 'redact', keep });
  }
  return rules;
}

async function write(io: CliIO, bytes: Uint8Array): Promise<void> {
  if (bytes.length === 0) return;
  if (!io.stdout.write(bytes)) await once(io.stdout, 'drain');
}
