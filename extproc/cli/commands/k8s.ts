/** `portcullis k8s classify METHOD PATH [--body FILE] [--content-type T] [--content-encoding E]`: prints the k8s context. */
import { readFile } from 'node:fs/promises';
import { classifyKubeRequest } from '../../kube/index.ts';
import { parseFlags } from '../admin-client.ts';
import type { CliCommand } from '../types.ts';

const USAGE =
  'usage: portcullis k8s classify METHOD PATH [--body FILE] [--content-type TYPE] [--content-encoding ENC]\n';

export const k8sCommand: CliCommand = async (argv, io) => {
  if (argv[0] !== 'classify') {
    io.stderr.write(USAGE);
    return 2;
  }
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv.slice(1));
  } catch (err) {
    io.stderr.write(`error: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { flags, positional } = parsed;
  if (positional.length !== 2) {
    io.stderr.write(USAGE);
    return 2;
  }
  let body: Uint8Array | null = null;
  if (flags.body !== undefined) {
    try {
      body = flags.body === '-' ? await readAll(io.stdin) : await readFile(flags.body);
    } catch (err) {
      io.stderr.write(`error: cannot read ${flags.body}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const result = classifyKubeRequest({
    method: positional[0].toUpperCase(),
    path: positional[1],
    contentType: flags['content-type'],
    contentEncoding: flags['content-encoding'],
    body,
  });
  if ('refused' in result) {
    io.stderr.write(`error: refused (${result.code}): ${result.message}\n`);
    return 1;
  }
  io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
};

async function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}
