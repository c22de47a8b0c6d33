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
import { parseFlags } from '../admin-client.ts';
import type { CliCommand, CliIO } from '../types.ts';

const USAGE = `usage: portcullis mask [--entities LIST] [--strategy ${STRATEGIES.join('|')}] [--keep N] [--policy FILE] [--protocol kubernetes|postgres|ssh] [--stats] [--explain]
  entities: ${BUILTIN_ENTITIES.join(',')} (default: all)
`;

export const maskCommand: CliCommand = async (argv, io) => {
  let flags: Record<string, string>;
  try {
    const parsed = parseFlags(argv, ['stats', 'explain', 'help']);
    flags = parsed.flags;
    if (parsed.positional.length > 0) throw new Error(`unexpected argument ${parsed.positional[0]}`);
  } catch (err) {
    io.stderr.write(`error: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  let plan: CompiledMasking;
  try {
    plan = compileMaskingRules(
      await rulesFrom(flags),
      flags.protocol ? { protocol: flags.protocol as MaskingRule['protocol'] } : {},
    );
  } catch (err) {
    if (err instanceof MaskingRulesError) {
      for (const i of err.issues)
        io.stderr.write(`error: masking[${i.index}]${i.field ? `.${i.field}` : ''}: ${i.message}\n`);
      return 2;
    }
    io.stderr.write(`error: ${(err as Error).message}\n`);
    return 2;
  }
  const key = io.env.PORTCULLIS_MASK_HASH_KEY;
  const engine = await loadMaskingEngine(key ? { hashKey: Buffer.from(key, 'utf8') } : {});
  const stream = engine.createStream(plan, { explain: flags.explain !== undefined });
  for await (const chunk of io.stdin) {
    await write(io, stream.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)));
  }
  await write(io, stream.end());
  for (const d of stream.detections()) io.stderr.write(`${d.entity}\t${d.start}-${d.end}\t${d.validation}\n`);
  if (flags.stats) {
    for (const f of stream.findings()) io.stderr.write(`${f.entity}\t${f.count}\n`);
  }
  return 0;
};

/** The rules: the policy's `masking:` list, plus one rule from --entities/--strategy/--keep (all entities by default). */
async function rulesFrom(flags: Record<string, string>): Promise<unknown[]> {
  const rules: unknown[] = [];
  if (flags.policy !== undefined) {
    const doc = parseYaml(await readFile(flags.policy, 'utf8')) as { masking?: unknown } | null;
    const masking = doc?.masking ?? [];
    if (!Array.isArray(masking)) throw new Error(`${flags.policy}: masking must be a list`);
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
    const keep = flags.keep === undefined ? 4 : Number(flags.keep);
    rules.push({ name: 'cli', entities, strategy: flags.strategy ?? 'redact', keep });
  }
  return rules;
}

async function write(io: CliIO, bytes: Uint8Array): Promise<void> {
  if (bytes.length === 0) return;
  if (!io.stdout.write(bytes)) await once(io.stdout, 'drain');
}
