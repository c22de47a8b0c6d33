/** `portcullis k8s classify METHOD PATH [--body FILE|-] [--content-type T] [--content-encoding E]`: the k8s context. */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { classifyKubeRequest } from '../../kube/index.ts';
import { CliFailure } from '../admin-client.ts';
import { printData } from '../output.ts';
import { EXIT, type CommandBuilder } from '../types.ts';

/** kubectl's patch type (`kubectl scale`, `kubectl patch` without --type): what a body-less PATCH is classified as. */
const KUBECTL_PATCH_TYPE = 'application/merge-patch+json';

export const k8sCommand: CommandBuilder = ({ io, run }) => {
  const cmd = new Command('k8s').description('Kubernetes API tools');
  cmd
    .command('classify')
    .description('print the `k8s` policy context of a Kubernetes API request, offline (docs/k8s-context.md)')
    .argument('<method>', 'HTTP method (GET, PATCH, …)')
    .argument('<path>', "request path with its query, e.g. '/api/v1/namespaces/prod/pods?watch=1'")
    .option(
      '--body <file>',
      'request body from a file, or - for stdin (default: none; a PATCH is then an empty merge patch)',
    )
    .option('--content-type <type>', `body content type (default for PATCH: ${KUBECTL_PATCH_TYPE})`)
    .option('--content-encoding <encoding>', 'body content encoding (gzip, …)')
    .action(
      run(
        async (
          method: string,
          path: string,
          opts: { body?: string; contentType?: string; contentEncoding?: string },
        ) => {
          let body: Uint8Array | null = null;
          if (opts.body !== undefined) {
            try {
              body = opts.body === '-' ? await readAll(io.stdin) : await readFile(opts.body);
            } catch (err) {
              throw new CliFailure(
                `error: cannot read the body file ${opts.body}: ${(err as NodeJS.ErrnoException).code}`,
              );
            }
          }
          const upper = method.toUpperCase();
          const result = classifyKubeRequest({
            method: upper,
            path,
            contentType: opts.contentType ?? (upper === 'PATCH' ? KUBECTL_PATCH_TYPE : undefined),
            contentEncoding: opts.contentEncoding,
            body: body ?? (upper === 'PATCH' && opts.body === undefined ? Buffer.from('{}') : null),
          });
          if ('refused' in result) throw new CliFailure(`error: refused (${result.code}): ${result.message}`);
          printData(io, 'json', result);
          return EXIT.ok;
        },
      ),
    );
  return cmd;
};

async function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}
