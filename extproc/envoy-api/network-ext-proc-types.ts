/**
 * TypeScript shapes of envoy.service.network_ext_proc.v3 (protos/envoy/service/network_ext_proc/v3/), with the same
 * proto-loader options and conventions as ext-proc-types.ts (snake_case, enum names, absent defaults, Buffers).
 */
import type { Metadata, Struct } from './ext-proc-types.ts';

export interface NetworkData {
  data?: Buffer | Uint8Array;
  end_of_stream?: boolean;
}

/** Envoy -> processor: `read_data` (downstream -> upstream) or `write_data` (upstream -> downstream). */
export interface NetworkProcessingRequest {
  read_data?: NetworkData;
  write_data?: NetworkData;
  metadata?: Metadata;
}

export type DataProcessedStatus = 'UNKNOWN' | 'UNMODIFIED' | 'MODIFIED';
export type ConnectionStatus = 'CONTINUE' | 'CLOSE' | 'CLOSE_RST';

/** Processor -> Envoy. Always echo the bytes, even unmodified: Envoy injects exactly what the response carries. */
export interface NetworkProcessingResponse {
  read_data?: NetworkData;
  write_data?: NetworkData;
  data_processing_status?: DataProcessedStatus;
  connection_status?: ConnectionStatus;
  dynamic_metadata?: Struct;
}
