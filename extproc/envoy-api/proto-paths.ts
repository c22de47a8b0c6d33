import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { packageFile } from '../common/package-files.ts';

const require = createRequire(import.meta.url);

/** Envoy's API protos as shipped by @grpc/grpc-js-xds (the Envoy 1.31 API, see docs/envoy-behaviour.md A). */
const xdsDeps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/** Protos written in the project: network ext_proc (newer than the shipped copy) and grpc.health.v1. */
export const projectProtoDir = packageFile('extproc/envoy-api/protos', 'protos');

/**
 * Include directories, searched in order. protobufjs' own folder supplies google/protobuf/descriptor.proto
 * (the other well-known types are built into protobufjs).
 */
export const protoIncludeDirs: readonly string[] = [
  join(xdsDeps, 'envoy-api'),
  join(xdsDeps, 'xds'),
  join(xdsDeps, 'googleapis'),
  join(xdsDeps, 'protoc-gen-validate'),
  projectProtoDir,
  dirname(require.resolve('protobufjs/package.json')),
];

/** The absolute path of an import such as "envoy/config/core/v3/base.proto", or the name unchanged if not found. */
export function resolveProtoImport(target: string): string {
  for (const dir of protoIncludeDirs) {
    const file = join(dir, target);
    if (existsSync(file)) return file;
  }
  return target;
}
