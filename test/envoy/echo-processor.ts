/**
 * A bare ExternalProcessor: every message gets an empty CONTINUE answer of the expected kind. The baseline the
 * Portcullis processor is measured against (benchmarks) and the simplest processor for stand-in tests.
 */
import * as grpc from '@grpc/grpc-js';
import { extProcServiceDefinition } from '../../extproc/envoy-api/index.ts';
import type {
  ExternalProcessorImplementation,
  ProcessingRequest,
  ProcessingResponse,
} from '../../extproc/envoy-api/index.ts';

/** The empty CONTINUE response that matches a request's kind. */
export function continueResponse(req: ProcessingRequest): ProcessingResponse {
  switch (req.request) {
    case 'request_headers':
      return { request_headers: {} };
    case 'response_headers':
      return { response_headers: {} };
    case 'request_body':
      return { request_body: {} };
    case 'response_body':
      return { response_body: {} };
    case 'request_trailers':
      return { request_trailers: {} };
    case 'response_trailers':
      return { response_trailers: {} };
    default:
      throw new Error(`unknown ProcessingRequest kind ${String(req.request)}`);
  }
}

export interface RunningProcessor {
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Starts a gRPC server on 127.0.0.1 (port 0 = any) serving `impl` as ExternalProcessor. */
export function startProcessor(impl: ExternalProcessorImplementation, port = 0): Promise<RunningProcessor> {
  return startTestGrpcServer(extProcServiceDefinition(), impl, port);
}

/** Starts a gRPC server on 127.0.0.1 (port 0 = any) serving one service. */
export async function startTestGrpcServer(
  definition: grpc.ServiceDefinition,
  impl: grpc.UntypedServiceImplementation,
  port = 0,
): Promise<RunningProcessor> {
  const server = new grpc.Server();
  server.addService(definition, impl);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${bound}`,
    port: bound,
    // Graceful first; streams a test left open must not hold the process.
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 500);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/** The echo processor: ends its side when Envoy half-closes. */
export function startEchoProcessor(port = 0): Promise<RunningProcessor> {
  return startProcessor(
    {
      Process(call) {
        call.on('data', (req: ProcessingRequest) => call.write(continueResponse(req)));
        call.on('end', () => call.end());
        call.on('error', () => {});
      },
    },
    port,
  );
}
