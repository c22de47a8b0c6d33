/**
 * The Kubernetes processor driven over a real gRPC stream by scripted Envoy messages (no Envoy stand-in): each reply
 * is checked in order, and how the stream ends (OK only when nothing more can come, a gRPC error on a fault).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  newExtProcClient,
  type ExternalProcessorClient,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../extproc/envoy-api/index.ts';
import { kubeExtProcAdapter, TARGET_METADATA } from '../../extproc/kube/index.ts';
import { classifyKubeRequest, isClassifyError } from '../../extproc/kube/index.ts';
import { maskableAccept, streamingKind } from '../../extproc/kube/request-shape.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

let redis: TestRedis;
let svc: TestService;
let client: ExternalProcessorClient;
let token = '';
const dir = mkdtempSync(join(tmpdir(), 'portcullis-kube-proc-'));

before(async () => {
  redis = await startRedis({ appendonly: false });
  writeFileSync(join(dir, 'tok'), 'upstream-static-token-1234');
  svc = await startTestService({
    redisUrl: redis.url,
    adapters: [kubeExtProcAdapter()],
    config: { bootstrap: { policies: ['examples/policies/kubernetes-guardrails.yaml'], targets: [] } },
  });
  await svc.call(svc.adminToken, 'POST', '/v1/targets', {
    name: 'kube-dev',
    kind: 'kubernetes',
    address: 'https://127.0.0.1:1',
    credential: { kind: 'static-token', tokenRef: `file:${join(dir, 'tok')}` },
  });
  await svc.call(svc.adminToken, 'POST', '/v1/agents', { id: 'planner-1', groups: ['agents'] });
  await svc.core.targets.refresh();
  token = (await svc.call(svc.adminToken, 'POST', '/v1/tokens', { agent: 'planner-1', targets: ['kube-dev'] })).body
    .token;
  client = newExtProcClient(`127.0.0.1:${svc.grpcPort}`);
});
after(async () => {
  client.close();
  await svc.close();
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
});

const hdrs = (pairs: Record<string, string>, eos: boolean) => ({
  headers: { headers: Object.entries(pairs).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) },
  ...(eos ? { end_of_stream: true } : {}),
});

/** Opens a stream, sends each message after the previous reply, returns the replies and the final status. */
function script(
  target: string | null,
  steps: ProcessingRequest[],
  repliesPerStep: number[] = steps.map(() => 1),
): Promise<{ replies: ProcessingResponse[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    if (target) md.add(TARGET_METADATA, target);
    const call = client.Process(md);
    const replies: ProcessingResponse[] = [];
    let step = 0;
    let awaitingReplies = repliesPerStep[0];
    call.on('data', (r: ProcessingResponse) => {
      replies.push(r);
      if (--awaitingReplies > 0) return;
      step++;
      if (step < steps.length) {
        awaitingReplies = repliesPerStep[step];
        call.write(steps[step]);
      }
    });
    call.on('error', () => {});
    call.on('status', (status) => resolve({ replies, status }));
    call.write(steps[0]);
  });
}

const auth = () => ({ authorization: `Bearer ${token}` });
const headerOf = (r: ProcessingResponse, key: string): string | undefined => {
  const common =
    'request_headers' in r ? r.request_headers.response : 'request_body' in r ? r.request_body.response : undefined;
  const h = common?.header_mutation?.set_headers?.find((x) => x.header?.key === key);
  return h?.header?.raw_value ? Buffer.from(h.header.raw_value).toString() : undefined;
};

test('a stream without target metadata is refused 500 (fail closed) and ends', async () => {
  const { replies, status } = await script(null, [
    { request_headers: hdrs({ ':method': 'GET', ':path': '/api/v1/namespaces/dev/pods', ...auth() }, true) },
  ]);
  assert.equal(replies.length, 1);
  assert.ok('immediate_response' in replies[0]);
  const body = JSON.parse(Buffer.from(replies[0].immediate_response.body!).toString());
  assert.equal(body.code, 500);
  assert.match(body.message, /gateway misconfigured/);
  assert.equal(status.code, grpc.status.OK);
});

test('an allowed read: token swapped, request id as dynamic metadata, stream ends OK after the response body', async () => {
  const { replies, status } = await script('kube-dev', [
    {
      request_headers: hdrs(
        {
          ':method': 'GET',
          ':path': '/api/v1/namespaces/dev/configmaps/app-config',
          accept: 'application/vnd.kubernetes.protobuf',
          ...auth(),
        },
        true,
      ),
    },
    { response_headers: hdrs({ ':status': '200', 'content-type': 'application/json', 'content-length': '60' }, false) },
    {
      response_body: {
        body: Buffer.from('{"kind":"ConfigMap","data":{"owner":"dba@example.com"}}'),
        end_of_stream: true,
      },
    },
  ]);
  assert.equal(replies.length, 3);
  const first = replies[0];
  assert.equal(headerOf(first, 'authorization'), 'Bearer upstream-static-token-1234');
  assert.equal(headerOf(first, 'accept-encoding'), 'identity');
  assert.equal(headerOf(first, 'accept'), 'application/json');
  assert.deepEqual(first.mode_override, { request_body_mode: 'NONE', response_body_mode: 'BUFFERED' });
  // google.protobuf.Value decodes with camelCase names (protobufjs's built-in descriptor), keepCase or not.
  const md = (first.dynamic_metadata as any)?.fields?.['envoy.filters.http.ext_proc']?.structValue?.fields;
  assert.match(md?.request_id?.stringValue ?? '', /^req_/);
  assert.equal(md?.agent?.stringValue, 'planner-1');
  assert.ok('response_headers' in replies[1]);
  assert.deepEqual(replies[1].response_headers.response?.header_mutation?.remove_headers, ['content-length']);
  assert.ok('response_body' in replies[2]);
  const m = replies[2].response_body.response?.body_mutation;
  assert.ok(m && 'body' in m);
  const out = Buffer.from(m.body).toString();
  assert.ok(!out.includes('dba@example.com'), out);
  assert.equal(status.code, grpc.status.OK);
});

test('impersonation headers are refused 403 with a Status', async () => {
  const { replies } = await script('kube-dev', [
    {
      request_headers: hdrs(
        { ':method': 'GET', ':path': '/api/v1/namespaces/dev/pods', 'impersonate-user': 'admin', ...auth() },
        true,
      ),
    },
  ]);
  assert.ok('immediate_response' in replies[0]);
  const body = JSON.parse(Buffer.from(replies[0].immediate_response.body!).toString());
  assert.deepEqual([body.kind, body.code, body.reason], ['Status', 403, 'Forbidden']);
  assert.match(body.message, /impersonation/);
});

test('a compressed write body is refused 415', async () => {
  const { replies } = await script('kube-dev', [
    {
      request_headers: hdrs(
        { ':method': 'POST', ':path': '/api/v1/namespaces/dev/configmaps', 'content-encoding': 'gzip', ...auth() },
        false,
      ),
    },
  ]);
  const body = JSON.parse(
    Buffer.from((replies[0] as { immediate_response: { body: Buffer } }).immediate_response.body).toString(),
  );
  assert.equal(body.code, 415);
});

test('followed logs are STREAMED and masked chunk by chunk, a card split across chunks included', async () => {
  const { replies, status } = await script('kube-dev', [
    {
      request_headers: hdrs(
        { ':method': 'GET', ':path': '/api/v1/namespaces/prod/pods/web-1/log?follow=true', ...auth() },
        true,
      ),
    },
    { response_headers: hdrs({ ':status': '200', 'content-type': 'text/plain' }, false) },
    { response_body: { body: Buffer.from('line 1 ok\npaid with card=4111 1111 ') } },
    { response_body: { body: Buffer.from('1111 1111 today\n') } },
    { response_body: { end_of_stream: true } },
  ]);
  assert.deepEqual(replies[0].mode_override, { request_body_mode: 'NONE', response_body_mode: 'STREAMED' });
  const text = replies
    .slice(2)
    .map((r) => {
      const m = (r as { response_body: { response?: { body_mutation?: { body?: Buffer } } } }).response_body.response
        ?.body_mutation;
      return m?.body ? Buffer.from(m.body).toString() : '';
    })
    .join('');
  assert.match(text, /^line 1 ok\n/);
  assert.ok(!text.replace(/\s/g, '').includes('4111111111111111'), text);
  assert.equal(status.code, grpc.status.OK);
});

test('a message in the wrong phase fails the stream with a gRPC error (Envoy fails closed)', async () => {
  const { status } = await script('kube-dev', [{ response_body: { body: Buffer.from('x'), end_of_stream: true } }]);
  assert.equal(status.code, grpc.status.INTERNAL);
});

test('after an allowed request, a second request_headers is refused by the loop, not decided again', async () => {
  const { replies, status } = await script('kube-dev', [
    { request_headers: hdrs({ ':method': 'GET', ':path': '/api/v1/namespaces/dev/pods', ...auth() }, true) },
    { request_headers: hdrs({ ':method': 'DELETE', ':path': '/api/v1/namespaces/prod', ...auth() }, true) },
  ]);
  assert.equal(replies.length, 1, 'only the first request was answered');
  assert.equal(status.code, grpc.status.INTERNAL);
  assert.match(status.details, /unexpected request_headers message while awaiting response_headers/);
});

/** The response shape of a GET, read from the classified request exactly as the gateway reads it. */
const shapeOf = (path: string): 'watch' | 'log' | null => {
  const k8s = classifyKubeRequest({ method: 'GET', path });
  assert.ok(!isClassifyError(k8s), path);
  return streamingKind(k8s);
};

test('streaming kinds: every spelling of watch and follow the API server accepts (issue 15)', () => {
  // apimachinery's query boolean: absent, "0" and "false" in any case are false; anything else, even "", is true.
  const watches = ['true', '1', 'True', 'TRUE', 't', 'yes', '', 'on', '2'];
  for (const v of watches) assert.equal(shapeOf(`/api/v1/namespaces/prod/secrets?watch=${v}`), 'watch', `watch=${v}`);
  for (const v of ['0', 'false', 'FALSE', 'False'])
    assert.equal(shapeOf(`/api/v1/namespaces/prod/secrets?watch=${v}`), null, `watch=${v}`);
  assert.equal(shapeOf('/api/v1/namespaces/prod/secrets?watch=1&watch=false'), 'watch', 'the first value counts');
  assert.equal(shapeOf('/api/v1/namespaces/prod/secrets?%77atch=1'), 'watch', 'a percent-encoded parameter name');
  assert.equal(shapeOf('/api/v1/watch/namespaces/prod/secrets'), 'watch');
  assert.equal(shapeOf('/api/v1/%77atch/namespaces/prod/secrets'), 'watch', 'a percent-encoded /watch/ segment');
  assert.equal(shapeOf('/api/v1/secrets?watch=true'), 'watch', 'cluster-wide');
  for (const v of ['true', '1', 'T', '', 'x'])
    assert.equal(shapeOf(`/api/v1/namespaces/prod/pods/web-1/log?follow=${v}`), 'log', `follow=${v}`);
  assert.equal(shapeOf('/api/v1/namespaces/prod/pods/web-1/%6Cog?follow=true'), 'log', 'a percent-encoded subresource');
  assert.equal(shapeOf('/api/v1/namespaces/prod/pods/web-1/log?follow=0'), null);
  assert.equal(shapeOf('/api/v1/namespaces/prod/pods/web-1/log'), null);
});

test('maskable Accept headers', () => {
  assert.equal(
    maskableAccept('application/json;as=Table;v=v1;g=meta.k8s.io,application/json'),
    'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
  );
  assert.equal(maskableAccept('application/vnd.kubernetes.protobuf,application/json'), 'application/json');
  assert.equal(maskableAccept(undefined), 'application/json');
});

test('upgrade headers on a plain GET are refused, never a way around masking (issue 15)', async () => {
  const { replies } = await script('kube-dev', [
    {
      request_headers: hdrs(
        {
          ':method': 'GET',
          ':path': '/api/v1/namespaces/prod/secrets',
          connection: 'Upgrade',
          upgrade: 'websocket',
          ...auth(),
        },
        true,
      ),
    },
  ]);
  const body = JSON.parse(
    Buffer.from((replies[0] as { immediate_response: { body: Buffer } }).immediate_response.body).toString(),
  );
  assert.deepEqual([body.code, body.reason], [400, 'BadRequest']);
  assert.match(body.message, /upgrade .* accepted only on the exec, attach, portforward and proxy subresources/);
});

test('the agent token anywhere but Authorization is refused before it can reach the API server (issue 15)', async () => {
  const spellings: Record<string, string>[] = [
    { ':path': `/api/v1/namespaces/dev/pods?access_token=${token}` },
    { ':path': `/api/v1/namespaces/dev/pods?access_token=${encodeURIComponent(token).replace(/\./g, '%2E')}` },
    { 'sec-websocket-protocol': `base64url.bearer.authorization.k8s.io.${token}` },
    { 'x-debug': `token=${token}` },
  ];
  for (const extra of spellings) {
    const { replies } = await script('kube-dev', [
      {
        request_headers: hdrs({ ':method': 'GET', ':path': '/api/v1/namespaces/dev/pods', ...auth(), ...extra }, true),
      },
    ]);
    const body = JSON.parse(
      Buffer.from((replies[0] as { immediate_response: { body: Buffer } }).immediate_response.body).toString(),
    );
    assert.equal(body.code, 400, JSON.stringify(extra));
    assert.match(body.message, /agent token was found in/);
    assert.ok(!body.message.includes(token), 'the refusal does not echo the token');
  }
});

test('an upstream that answers compressed although the gateway asked for identity is refused, not passed unmasked (issue 15)', async () => {
  const { replies, status } = await script('kube-dev', [
    {
      request_headers: hdrs(
        { ':method': 'GET', ':path': '/api/v1/namespaces/dev/configmaps/app-config', ...auth() },
        true,
      ),
    },
    {
      response_headers: hdrs(
        { ':status': '200', 'content-type': 'application/json', 'content-encoding': 'gzip' },
        false,
      ),
    },
  ]);
  assert.ok('immediate_response' in replies[1]);
  const body = JSON.parse(Buffer.from(replies[1].immediate_response.body!).toString());
  assert.deepEqual([body.code, body.reason], [406, 'NotAcceptable']);
  assert.equal(status.code, grpc.status.OK);
});
