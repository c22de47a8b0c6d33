/**
 * The Kubernetes listener's access log joins recordings: its request_id, session_id and agent fields read the dynamic
 * metadata the processor returns (namespace and keys as extproc/kube/envoy-messages.ts writes them, in a namespace
 * the ext_proc filter accepts), so a kubectl request's log line carries the request id its recording carries.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { METADATA_NAMESPACE } from '../../extproc/kube/index.ts';
import { requestMetadata } from '../../extproc/kube/envoy-messages.ts';

const config = parse(readFileSync(new URL('../../envoy/portcullis.yaml', import.meta.url), 'utf8'));
const kube = config.static_resources.listeners.find((l: { name: string }) => l.name === 'kubernetes');
const hcm = kube.filter_chains[0].filters.find(
  (f: { name: string }) => f.name === 'envoy.filters.network.http_connection_manager',
).typed_config;

/** What Envoy's %DYNAMIC_METADATA(ns:key)% yields for a value the processor sent (null when absent, like "-"). */
function substitute(format: string, metadata: ReturnType<typeof requestMetadata>): string | null {
  const m = /^%DYNAMIC_METADATA\(([^:]+):([^)]+)\)%$/.exec(format);
  if (!m) return format;
  const ns = (metadata as any).fields?.[m[1]]?.structValue?.fields;
  return ns?.[m[2]]?.stringValue ?? null;
}

test('the JSON access log carries the request id, session and agent the processor returns', () => {
  const log = hcm.access_log[0].typed_config.log_format.json_format as Record<string, string>;
  const sent = requestMetadata('req_4f1c', 'ses_77', 'planner-1');
  assert.equal(substitute(log.request_id, sent), 'req_4f1c');
  assert.equal(substitute(log.session_id, sent), 'ses_77');
  assert.equal(substitute(log.agent, sent), 'planner-1');
  assert.equal(log.envoy_request_id, '%REQ(X-REQUEST-ID)%');
});

test('the ext_proc filter accepts metadata in the namespace the processor writes', () => {
  const extproc = hcm.http_filters.find((f: { name: string }) => f.name === 'envoy.filters.http.ext_proc').typed_config;
  assert.ok(extproc.metadata_options.receiving_namespaces.untyped.includes(METADATA_NAMESPACE));
  const log = hcm.access_log[0].typed_config.log_format.json_format as Record<string, string>;
  for (const field of ['request_id', 'session_id', 'agent']) assert.ok(log[field].includes(`(${METADATA_NAMESPACE}:`));
});
