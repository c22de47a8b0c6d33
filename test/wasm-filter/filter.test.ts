/**
 * The proxy-wasm filter (wasm-filter/build/filter.wasm) on the TypeScript proxy-wasm host: local replies from the
 * snapshot that never reach ext_proc, allowed requests passed unchanged, streamed masking across chunks, snapshot
 * refresh keeping the last good one, and random bytes in every buffer never trapping the VM.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { renderPluginConfiguration, renderSnapshot, type WasmSnapshot } from '../../extproc/snapshot/wasm-snapshot.ts';
import { type CalloutAnswer, type Headers, ProxyWasmHost } from '../wasm-host/proxy-wasm-host.ts';

const FILTER = fileURLToPath(new URL('../../wasm-filter/build/filter.wasm', import.meta.url));

const b64u = (s: string) => Buffer.from(s).toString('base64url');
const jwt = (jti: string) =>
  `${b64u('{"alg":"EdDSA","typ":"portcullis-agent+jwt"}')}.${b64u(`{"sub":"agent-1","jti":"${jti}","sid":"s1"}`)}.${b64u('signature-bytes-here')}`;

const SNAPSHOT: WasmSnapshot = {
  version: 'v1-test',
  tokenRequired: true,
  revokedTokenIds: ['tok-revoked-1'],
  denies: [
    { code: 403, method: '*', pattern: '/api/v1/namespaces/*/pods/*/exec', message: 'exec into pods is not allowed' },
    { code: 403, method: 'DELETE', pattern: '/api/v1/namespaces/*', message: 'deleting namespaces is "never" allowed' },
  ],
  masking: [{ entity: 0, strategy: 'partial', keep: 4 }],
};

function request(method: string, path: string, token?: string): Headers {
  const h: Headers = [
    [':authority', 'kube.example'],
    [':path', path],
    [':method', method],
    [':scheme', 'https'],
    ['x-request-id', 'agent-chosen-id'],
  ];
  if (token !== undefined) h.push(['authorization', `Bearer ${token}`]);
  return h;
}

async function startFilter(
  snapshot: WasmSnapshot | null = SNAPSHOT,
  dispatch?: (c: unknown) => CalloutAnswer | Promise<CalloutAnswer>,
) {
  return ProxyWasmHost.start(FILTER, {
    pluginConfiguration: renderPluginConfiguration(
      dispatch
        ? {
            cluster: 'portcullis_admin',
            authority: 'admin',
            path: '/v1/wasm-filter/snapshot',
            token: { env: 'REFRESH_TOKEN' },
            periodMs: 1000,
          }
        : undefined,
      snapshot ?? undefined,
    ),
    clusters: ['portcullis_admin'],
    environment: { HOME: '/', REFRESH_TOKEN: 'tkn' },
    dispatch,
  });
}

function status(body: Buffer) {
  return JSON.parse(body.toString()) as { kind: string; reason: string; message: string; code: number };
}

describe('local replies from the snapshot', () => {
  test('no token: 401 Status, never continues to ext_proc', async () => {
    const host = await startFilter();
    const s = host.newStream();
    const r = s.onRequestHeaders(request('GET', '/api/v1/namespaces/default/pods'), true);
    assert.equal(r.envoy, 'StopIteration'); // the local reply stops the chain: ext_proc is never called
    assert.equal(r.localReply?.status, 401);
    const body = status(r.localReply!.body);
    assert.deepEqual([body.kind, body.reason, body.code], ['Status', 'Unauthorized', 401]);
    assert.match(body.message, /no Portcullis agent token/);
    assert.equal(host.metric('portcullis.denied_locally'), 1n);
  });

  test('a bearer value that is not token-shaped: 401', async () => {
    const host = await startFilter();
    const r = host.newStream().onRequestHeaders(request('GET', '/api', 'not-a-jwt'), true);
    assert.equal(r.localReply?.status, 401);
    assert.match(status(r.localReply!.body).message, /not a Portcullis agent token/);
  });

  test('a revoked token id: 401 naming it', async () => {
    const host = await startFilter();
    const r = host.newStream().onRequestHeaders(request('GET', '/api', jwt('tok-revoked-1')), true);
    assert.equal(r.localReply?.status, 401);
    assert.equal(status(r.localReply!.body).message, 'the agent token tok-revoked-1 has been revoked');
  });

  test('exec and namespace deletion: 403 with the rule message, JSON-escaped, and the request id', async () => {
    const host = await startFilter();
    const exec = host
      .newStream()
      .onRequestHeaders(
        request('POST', '/api/v1/namespaces/prod/pods/web-1/exec?command=sh&stdin=true', jwt('ok-1')),
        true,
      );
    assert.equal(exec.localReply?.status, 403);
    const body = status(exec.localReply!.body);
    assert.deepEqual([body.reason, body.message, body.code], ['Forbidden', 'exec into pods is not allowed', 403]);
    assert.equal(exec.localReply?.details, 'portcullis_wasm_policy_deny');
    const id = exec.localReply?.headers.find(([k]) => k === 'x-portcullis-request-id')?.[1];
    assert.match(id ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const del = host.newStream().onRequestHeaders(request('DELETE', '/api/v1/namespaces/prod', jwt('ok-1')), true);
    assert.equal(status(del.localReply!.body).message, 'deleting namespaces is "never" allowed');
    // the rule names DELETE only, and a whole segment for `*`
    const get = host.newStream().onRequestHeaders(request('GET', '/api/v1/namespaces/prod', jwt('ok-1')), true);
    assert.equal(get.localReply, undefined);
    const deeper = host
      .newStream()
      .onRequestHeaders(request('DELETE', '/api/v1/namespaces/prod/pods/x', jwt('ok-1')), true);
    assert.equal(deeper.localReply, undefined);
    assert.equal(host.metric('portcullis.denied_locally'), 2n);
  });

  test('an allowed request passes unchanged except for the request id the filter sets', async () => {
    const host = await startFilter();
    const sent = request('GET', '/api/v1/namespaces/prod/pods?limit=500', jwt('ok-1'));
    const s = host.newStream();
    const r = s.onRequestHeaders(sent, true);
    assert.equal(r.envoy, 'Continue');
    assert.equal(r.localReply, undefined);
    const ids = s.requestHeaders.filter(([k]) => k === 'x-request-id');
    assert.equal(ids.length, 1, 'one x-request-id: the agent cannot choose it');
    assert.notEqual(ids[0][1], 'agent-chosen-id');
    assert.deepEqual(
      s.requestHeaders.filter(([k]) => k !== 'x-request-id'),
      sent.filter(([k]) => k !== 'x-request-id'),
    );
    assert.equal(host.metric('portcullis.requests_seen'), 1n);
  });

  test('without a snapshot every request continues (ext_proc is the authority)', async () => {
    const host = await startFilter(null);
    const r = host.newStream().onRequestHeaders(request('POST', '/api/v1/namespaces/p/pods/x/exec'), true);
    assert.equal(r.localReply, undefined);
  });

  test('an invalid snapshot in the plugin configuration is refused at configure time', async () => {
    await assert.rejects(
      ProxyWasmHost.start(FILTER, { pluginConfiguration: `${renderSnapshot(SNAPSHOT).replace('end\n', '')}` }),
      /plugin configuration rejected/,
    );
  });
});

describe('streamed masking', () => {
  const CARD = '4111111111111111';

  async function follow(host: ProxyWasmHost, chunks: string[], path = '/api/v1/namespaces/p/pods/web/log?follow=true') {
    const s = host.newStream();
    assert.equal(s.onRequestHeaders(request('GET', path, jwt('ok-1')), true).status, 0);
    assert.equal(
      s.onResponseHeaders(
        [
          [':status', '200'],
          ['content-type', 'text/plain'],
        ],
        false,
      ).status,
      0,
    );
    chunks.forEach((c, i) => {
      s.onResponseBody(Buffer.from(c), i === chunks.length - 1);
    });
    s.finish();
    return { s, text: Buffer.concat(s.responseOut).toString() };
  }

  test('a card number split across two chunks comes out masked', async () => {
    const host = await startFilter();
    const { text } = await follow(host, [`paid with ${CARD.slice(0, 7)}`, `${CARD.slice(7)} today\n`, '']);
    assert.equal(text, 'paid with ************1111 today\n');
    assert.ok((host.metric('portcullis.bytes_masked') ?? 0n) > 0n);
  });

  test('every split offset, and watches too', async () => {
    const host = await startFilter();
    const line = `{"type":"ADDED","object":{"card":"${CARD}"}}\n`;
    for (let cut = 0; cut <= line.length; cut++) {
      const { text } = await follow(
        host,
        [line.slice(0, cut), line.slice(cut), ''],
        '/api/v1/namespaces/p/pods?watch=1',
      );
      assert.equal(text, line.replace(CARD, '************1111'), `cut at ${cut}`);
    }
  });

  test('a private key longer than the carry cap stays masked to its END line while another stream interleaves', async () => {
    const host = await startFilter({
      ...SNAPSHOT,
      masking: [...SNAPSHOT.masking, { entity: 7, strategy: 'redact', keep: 0 }],
    });
    const open = (path: string) => {
      const s = host.newStream();
      s.onRequestHeaders(request('GET', path, jwt('ok-1')), true);
      s.onResponseHeaders([[':status', '200']], false);
      return s;
    };
    const a = open('/api/v1/namespaces/p/pods/vault/log?follow=true');
    const b = open('/api/v1/namespaces/p/pods/shop/log?follow=true');
    const bodyLines = Array.from({ length: 200 }, (_, i) => `MIIEow${String(i).padStart(4, '0')}${'QK'.repeat(29)}\n`);
    const key = `-----BEGIN RSA PRIVATE KEY-----\n${bodyLines.join('')}-----END RSA PRIVATE KEY-----\nafter the key\n`;
    assert.ok(key.length > 12_000);
    for (let at = 0; at < key.length; at += 1500) {
      a.onResponseBody(Buffer.from(key.slice(at, at + 1500)), false);
      b.onResponseBody(Buffer.from(`order ${at} card ${CARD}\n`), false);
    }
    a.onResponseBody(Buffer.alloc(0), true);
    b.onResponseBody(Buffer.alloc(0), true);
    const outA = Buffer.concat(a.responseOut).toString();
    const outB = Buffer.concat(b.responseOut).toString();
    for (const line of bodyLines) assert.ok(!outA.includes(line.trim()), `key line leaked: ${line.trim()}`);
    assert.match(outA, /after the key\n$/);
    assert.ok(!outB.includes(CARD) && outB.includes('************1111'));
  });

  test('plain lines are passed on at once, not held back', async () => {
    const host = await startFilter();
    const s = host.newStream();
    s.onRequestHeaders(request('GET', '/api/v1/namespaces/p/pods/web/log?follow=true', jwt('ok-1')), true);
    s.onResponseHeaders([[':status', '200']], false);
    assert.equal(s.onResponseBody(Buffer.from('starting server\n'), false).out.toString(), 'starting server\n');
  });

  test('a non-streamed response is not touched', async () => {
    const host = await startFilter();
    const s = host.newStream();
    s.onRequestHeaders(request('GET', '/api/v1/namespaces/p/configmaps', jwt('ok-1')), true);
    s.onResponseHeaders([[':status', '200']], false);
    assert.equal(s.onResponseBody(Buffer.from(CARD), true).out.toString(), CARD);
  });

  test('an encoded streamed response is refused (406) rather than passed unmasked', async () => {
    const host = await startFilter();
    const s = host.newStream();
    s.onRequestHeaders(request('GET', '/api/v1/namespaces/p/pods/web/log?follow=true', jwt('ok-1')), true);
    assert.ok(s.requestHeaders.some(([k, v]) => k === 'accept-encoding' && v === 'identity'));
    const r = s.onResponseHeaders(
      [
        [':status', '200'],
        ['content-encoding', 'gzip'],
      ],
      false,
    );
    assert.equal(r.localReply?.status, 406);
  });
});

describe('snapshot refresh', () => {
  test('a good answer replaces the snapshot; a failed or truncated one keeps the last good', async () => {
    let answer: CalloutAnswer = {
      kind: 'response',
      status: 200,
      body: renderSnapshot({ ...SNAPSHOT, version: 'v2', denies: [] }),
    };
    const host = await startFilter(SNAPSHOT, () => answer);
    assert.equal(host.tickPeriodMs, 1000);
    const exec = () =>
      host.newStream().onRequestHeaders(request('POST', '/api/v1/namespaces/p/pods/x/exec', jwt('ok-1')), true)
        .localReply?.status;
    assert.equal(exec(), 403);
    host.tick();
    await host.settle();
    const call = host.callouts[0];
    assert.equal(call.cluster, 'portcullis_admin');
    assert.deepEqual(
      call.headers.filter(([k]) => [':method', ':path', 'authorization'].includes(k)),
      [
        [':method', 'GET'],
        [':path', '/v1/wasm-filter/snapshot'],
        ['authorization', 'Bearer tkn'],
      ],
    );
    assert.equal(exec(), undefined, 'v2 has no deny rules');
    assert.equal(host.metric('portcullis.snapshot_refreshed'), 1n);

    // back to v1's rules, then failures of every kind: the v1 rules stay
    answer = { kind: 'response', status: 200, body: renderSnapshot(SNAPSHOT) };
    host.tick();
    await host.settle();
    assert.equal(exec(), 403);
    const failures: CalloutAnswer[] = [
      { kind: 'reset' },
      { kind: 'timeout' },
      { kind: 'no-healthy-upstream' },
      { kind: 'response', status: 401, body: '{"code":"unauthenticated"}' },
      { kind: 'response', status: 200, body: renderSnapshot({ ...SNAPSHOT, denies: [] }).replace('end\n', '') },
      { kind: 'response', status: 200, body: 'garbage' },
    ];
    for (const f of failures) {
      answer = f;
      host.tick();
      await host.settle();
      assert.equal(exec(), 403, `after ${JSON.stringify(f)}`);
    }
    assert.equal(host.metric('portcullis.snapshot_refresh_failed'), BigInt(failures.length));
    assert.ok(host.logs.some((l) => l.message.includes('keeping version v1-test')));
    assert.equal(host.dead, false);
  });
});

describe('never traps', () => {
  test('random bytes in every header, body, configuration and callout answer', async () => {
    const rnd = (max: number) => randomBytes(Math.floor(Math.random() * max));
    const latin = (max: number) => rnd(max).toString('latin1');
    // random plugin configurations: refused or accepted, never a trap
    for (let i = 0; i < 200; i++) {
      const garbage = Math.random() < 0.5 ? rnd(300) : Buffer.from(`${renderSnapshot(SNAPSHOT)}`.slice(0, i * 2));
      try {
        const h = await ProxyWasmHost.start(FILTER, { pluginConfiguration: garbage });
        assert.equal(h.dead, false);
      } catch (err) {
        assert.match(String(err), /configuration rejected/);
      }
    }
    let answer: CalloutAnswer = { kind: 'reset' };
    const host = await startFilter(SNAPSHOT, () => answer);
    const paths = ['/api/v1/namespaces/p/pods/w/log?follow=1', '/apis/apps/v1/watch/deployments', '/api'];
    for (let i = 0; i < 400; i++) {
      const s = host.newStream();
      const h: Headers = [
        [':path', Math.random() < 0.5 ? paths[i % 3] + latin(40) : latin(200)],
        [':method', Math.random() < 0.7 ? 'GET' : latin(8)],
        ['authorization', Math.random() < 0.5 ? `Bearer ${jwt(latin(20))}` : latin(300)],
        [latin(20).toLowerCase(), latin(100)],
      ];
      s.onRequestHeaders(h, Math.random() < 0.5);
      s.onResponseHeaders(
        [
          [':status', latin(4)],
          ['content-encoding', Math.random() < 0.2 ? latin(8) : 'identity'],
        ],
        false,
      );
      for (let c = 0; c < 4; c++) s.onResponseBody(rnd(Math.random() < 0.1 ? 200_000 : 2000), c === 3);
      if (Math.random() < 0.2) s.onResponseTrailers([[latin(10), latin(10)]]);
      s.finish();
      answer =
        Math.random() < 0.5
          ? {
              kind: 'response',
              status: 200,
              body: Math.random() < 0.5 ? rnd(5000) : renderSnapshot(SNAPSHOT) + latin(50),
            }
          : { kind: 'response', status: Math.floor(Math.random() * 600), body: rnd(100) };
      host.tick();
      await host.settle();
      assert.equal(host.dead, false, `trapped: ${String(host.trap)}`);
    }
    assert.equal(host.metric('portcullis.requests_seen'), 400n);
  });
});

test('a refresh credential missing from the environment: starts, says so, never calls out', async () => {
  const host = await ProxyWasmHost.start(FILTER, {
    pluginConfiguration: renderPluginConfiguration(
      { cluster: 'portcullis_admin', authority: 'a', path: '/p', token: { env: 'UNSET_TOKEN' }, periodMs: 1000 },
      SNAPSHOT,
    ),
    clusters: ['portcullis_admin'],
  });
  assert.equal(host.tickPeriodMs, 0);
  assert.ok(host.logs.some((l) => l.level === 4 && l.message.includes('never refreshed')));
  host.tick();
  assert.equal(host.callouts.length, 0);
});

test('a policy refusal is reported to the service on the root context; a token refusal is not', async () => {
  const reports: { contextId: number; path: string; body: Record<string, unknown> }[] = [];
  const host = await ProxyWasmHost.start(FILTER, {
    pluginConfiguration: renderPluginConfiguration(
      {
        cluster: 'portcullis_admin',
        authority: 'admin',
        path: '/v1/wasm-filter/snapshot',
        token: { value: 'tkn' },
        periodMs: 1000,
        report: { path: '/v1/wasm-filter/refusals', target: 'kube-dev' },
      },
      SNAPSHOT,
    ),
    clusters: ['portcullis_admin'],
    dispatch: (c) => {
      reports.push({
        contextId: c.contextId,
        path: c.headers.find(([k]) => k === ':path')?.[1] ?? '',
        body: JSON.parse(c.body.toString()),
      });
      return { kind: 'response', status: 202, body: '{"recorded":true}' };
    },
  });
  const token = jwt('ok-1');
  const s = host.newStream();
  const r = s.onRequestHeaders(request('POST', '/api/v1/namespaces/prod/pods/web-1/exec?command=ls', token), true);
  assert.equal(r.localReply?.status, 403);
  s.finish(); // the refused stream ends at once: a callout made on it would be cancelled
  host.newStream().onRequestHeaders(request('GET', '/api'), true); // no token: nothing to record it in
  await host.settle();
  assert.equal(reports.length, 1);
  const id = s.requestHeaders.find(([k]) => k === 'x-request-id')?.[1];
  assert.deepEqual(reports[0], {
    contextId: host.rootId,
    path: '/v1/wasm-filter/refusals',
    body: {
      target: 'kube-dev',
      requestId: id,
      method: 'POST',
      path: '/api/v1/namespaces/prod/pods/web-1/exec?command=ls',
      token,
      message: 'exec into pods is not allowed',
      status: 403,
    },
  });
  assert.equal(host.metric('portcullis.refusal_reports_failed'), 0n);
});

test('a refresh call never answered does not stop later refreshes', async () => {
  let answer: (a: CalloutAnswer) => void = () => {};
  const host = await startFilter(
    SNAPSHOT,
    () =>
      new Promise<CalloutAnswer>((resolve) => {
        answer = resolve;
      }),
  );
  for (let i = 0; i < 10; i++) host.tick();
  assert.equal(host.callouts.length, 1, 'one call in flight at a time');
  host.tick();
  assert.equal(host.callouts.length, 2, 'ten ticks without an answer: a new call');
  answer({ kind: 'reset' });
});
