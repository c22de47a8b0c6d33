/**
 * A bare NetworkExternalProcessor: every chunk is answered with the same bytes and end_of_stream, in the same
 * direction (Envoy injects exactly what the answer carries, so a processor that changes nothing must still echo).
 * The baseline the Portcullis network processor is measured against, and the simplest processor for stand-in tests.
 */
import { networkExtProcServiceDefinition } from '../../extproc/envoy-api/index.ts';
import { type RunningProcessor, startTestGrpcServer } from './echo-processor.ts';
import type {
  NetworkExternalProcessorImplementation,
  NetworkProcessingRequest,
  NetworkProcessingResponse,
} from '../../extproc/envoy-api/index.ts';

/** The answer that leaves a chunk as it is. */
export function echoResponse(req: NetworkProcessingRequest): NetworkProcessingResponse {
  if (req.read_data)
    return { read_data: { data: req.read_data.data, end_of_stream: req.read_data.end_of_stream === true } };
  if (req.write_data)
    return { write_data: { data: req.write_data.data, end_of_stream: req.write_data.end_of_stream === true } };
  return {};
}

export type RunningNetworkProcessor = RunningProcessor;

/** Starts a gRPC server on 127.0.0.1 (port 0 = any) serving `impl` as NetworkExternalProcessor. */
export function startNetworkProcessor(
  impl: NetworkExternalProcessorImplementation,
  port = 0,
): Promise<RunningNetworkProcessor> {
  return startTestGrpcServer(networkExtProcServiceDefinition(), impl, port);
}

/** The network echo processor: ends its side when Envoy half-closes. */
export function startNetworkEchoProcessor(port = 0): Promise<RunningNetworkProcessor> {
  return startNetworkProcessor(
    {
      Process(call) {
        call.on('data', (req: NetworkProcessingRequest) => call.write(echoResponse(req)));
        call.on('end', () => call.end());
        call.on('error', () => {});
      },
    },
    port,
  );
}
