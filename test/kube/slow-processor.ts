/**
 * A deliberately slow ExternalProcessor for fault tests: it relays every stream to the real processor (call metadata
 * included) and holds chosen replies back until Envoy gives up on the stream (its message_timeout fires, it resets the
 * stream), so the timeout fires on them however fast or slow the machine is. Which replies: those of kind `kind` on
 * streams whose request :path matches `paths`; every other stream is relayed at once.
 */
import * as grpc from '@grpc/grpc-js';
import { newExtProcClient } from '../../extproc/envoy-api/index.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/envoy-api/index.ts';
import { startProcessor, type RunningProcessor } from '../envoy/echo-processor.ts';

export interface SlowRule {
  paths: RegExp;
  /** The reply to hold back: 'request_headers' (nothing reaches the upstream) or 'response_body' (nothing reaches the client). */
  kind: 'request_headers' | 'response_body';
}

export async function startSlowProcessor(
  target: string,
  rule: SlowRule,
): Promise<RunningProcessor & { delayed: () => number }> {
  const client = newExtProcClient(target);
  let delayed = 0;
  const running = await startProcessor({
    Process(call) {
      const metadata = new grpc.Metadata();
      for (const v of call.metadata.get('x-portcullis-target')) metadata.add('x-portcullis-target', v);
      const upstream = client.Process(metadata);
      let slow = false;
      let gone = false;
      let markGone!: () => void;
      const goneNow = new Promise<void>((resolve) => {
        markGone = resolve;
      });
      const leave = () => {
        gone = true;
        markGone();
        upstream.cancel();
      };
      // Replies leave in order, a held one only when the stream is gone (so never); the end (OK or error) only after them, since an OK close
      // before an answer would make Envoy pass the rest through unprocessed.
      let queue: Promise<void> = Promise.resolve();
      const then = (fn: () => void | Promise<void>) => {
        queue = queue.then(async () => {
          if (!gone) await fn();
        });
      };
      call.on('data', (req: ProcessingRequest) => {
        if ('request_headers' in req && req.request_headers) {
          const path = req.request_headers.headers?.headers?.find((h) => h.key === ':path');
          slow = rule.paths.test(Buffer.from(path?.raw_value ?? '').toString('latin1'));
        }
        upstream.write(req);
      });
      call.on('end', () => upstream.end());
      call.on('cancelled', leave);
      call.on('error', leave);
      upstream.on('data', (res: ProcessingResponse) => {
        const hold = slow && (res as Record<string, unknown>)[rule.kind] != null;
        then(async () => {
          if (hold) {
            delayed++;
            await goneNow; // never answered: only Envoy's timeout (then its reset) ends this stream
          }
          if (!gone) call.write(res);
        });
      });
      upstream.on('end', () =>
        then(() => {
          call.end();
        }),
      );
      upstream.on('error', (err: grpc.ServiceError) =>
        then(() => {
          call.emit('error', { code: err.code, details: err.details });
        }),
      );
    },
  });
  return {
    ...running,
    /** Replies held back so far. */
    delayed: () => delayed,
    close: async () => {
      await running.close();
      client.close();
    },
  };
}
