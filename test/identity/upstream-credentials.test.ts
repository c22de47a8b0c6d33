/**
 * TokenRequest upstream credentials (extproc/identity/upstream-credentials.ts) against the real API stand-in: a minted token is
 * cached and reused, re-minted at 80% of its life (an injected clock moves time), concurrent callers share one mint,
 * a failed mint throws a CredentialError and is not cached. End to end through the Envoy stand-in: a target whose mint
 * fails refuses the agent with a 503 Status and nothing reaches the API server, and the long-lived credential is only
 * ever presented to the TokenRequest endpoint.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Target } from '../../extproc/identity/registry.ts';
import { CredentialError, UpstreamCredentials } from '../../extproc/identity/upstream-credentials.ts';
import type { SecretValue } from '../../extproc/identity/vault.ts';
import { kubeExtProcAdapter } from '../../extproc/kube/index.ts';
import { startEnvoyStandIn, type EnvoyStandIn } from '../envoy/stand-in.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';
import { startKubeApiServer, type KubeApiServer } from '../kube-apiserver/server.ts';

/** The bearer token a Kubernetes target's credential yields. */
async function tokenFor(creds: UpstreamCredentials, t: Target): Promise<SecretValue> {
  const secret = await creds.credentialFor(t);
  assert.equal(secret.kind, 'bearer-token');
  return (secret as { token: SecretValue }).token;
}

const VAULT_TOKEN = 'long-lived-token-request-credential-77ab';
const TOKEN_PATH = '/api/v1/namespaces/prod/serviceaccounts/portcullis-agent/token';
let api: KubeApiServer;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-creds-'));

before(async () => {
  writeFileSync(join(dir, 'vault-token'), VAULT_TOKEN);
  writeFileSync(join(dir, 'wrong-token'), 'not-the-token-request-credential');
  api = await startKubeApiServer({ tls: true, tokenRequestToken: VAULT_TOKEN });
});
after(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

function target(
  over: { serviceAccount?: string; tokenFile?: string; ttlSeconds?: number; address?: string; name?: string } = {},
): Target {
  return {
    name: over.name ?? 'kube-prod',
    kind: 'kubernetes',
    address: over.address ?? api.url,
    labels: {},
    defaultAction: 'deny',
    caRef: `file:${api.caPath}`,
    recording: 'best-effort',
    credential: {
      kind: 'token-request',
      tokenRef: `file:${join(dir, over.tokenFile ?? 'vault-token')}`,
      namespace: 'prod',
      serviceAccount: over.serviceAccount ?? 'portcullis-agent',
      ttlSeconds: over.ttlSeconds ?? 600,
    },
  };
}

/** A clock the test moves; it starts at the real time, since the stand-in stamps real expiry times. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = Date.now();
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

const mintsSince = (n: number) => api.mintedTokens.slice(n);

test('a minted token is cached and reused while it is fresh', async () => {
  const before = api.mintedTokens.length;
  const creds = new UpstreamCredentials(clock().now);
  const t = target();
  const first = (await tokenFor(creds, t)).reveal();
  const second = (await tokenFor(creds, t)).reveal();
  assert.deepEqual(mintsSince(before), [first], 'one TokenRequest');
  assert.equal(second, first);
  assert.notEqual(first, VAULT_TOKEN);
});

test('the token is re-minted at 80% of its life, not before', async () => {
  const before = api.mintedTokens.length;
  const c = clock();
  const creds = new UpstreamCredentials(c.now);
  const t = target({ ttlSeconds: 600 });
  const first = (await tokenFor(creds, t)).reveal();
  // 600 s of life (the stand-in's expiry is stamped in whole seconds, so a little under): renewal due at ~480 s.
  c.advance(470_000);
  assert.equal((await tokenFor(creds, t)).reveal(), first, 'still fresh at 470 s');
  assert.equal(mintsSince(before).length, 1);
  c.advance(15_000);
  const renewed = (await tokenFor(creds, t)).reveal();
  assert.notEqual(renewed, first, 're-minted at 485 s, well before expiry at 600 s');
  assert.deepEqual(mintsSince(before), [first, renewed]);
  assert.equal((await tokenFor(creds, t)).reveal(), renewed, 'the new token is cached in turn');
});

test('concurrent callers share one mint, for the first token and for a renewal', async () => {
  const before = api.mintedTokens.length;
  const c = clock();
  const creds = new UpstreamCredentials(c.now);
  const t = target();
  const firsts = await Promise.all(Array.from({ length: 8 }, () => tokenFor(creds, t)));
  assert.equal(new Set(firsts.map((s) => s.reveal())).size, 1);
  c.advance(590_000);
  const renewals = await Promise.all(Array.from({ length: 8 }, () => tokenFor(creds, t)));
  assert.equal(new Set(renewals.map((s) => s.reveal())).size, 1);
  assert.equal(mintsSince(before).length, 2, 'two TokenRequests for sixteen callers');
});

test('a failed mint throws a CredentialError that says why, and is retried on the next call (not cached)', async () => {
  const creds = new UpstreamCredentials();
  await assert.rejects(tokenFor(creds, target({ serviceAccount: 'no-such-sa' })), (err: unknown) => {
    assert.ok(err instanceof CredentialError);
    assert.match(err.message, /TokenRequest for prod\/no-such-sa on target kube-prod failed with HTTP 404/);
    return true;
  });
  await assert.rejects(tokenFor(creds, target({ tokenFile: 'wrong-token' })), /failed with HTTP 401/);
  await assert.rejects(tokenFor(creds, target({ tokenFile: 'missing-file' })), CredentialError);
  // Nothing listens on port 1: a network failure is a CredentialError too, naming the target.
  await assert.rejects(tokenFor(creds, target({ address: 'https://127.0.0.1:1' })), (err: unknown) => {
    assert.ok(err instanceof CredentialError, String(err));
    assert.match(err.message, /kube-prod/);
    return true;
  });
  const before = api.mintedTokens.length;
  const t = target({ name: 'kube-flaky', tokenFile: 'flaky-token' });
  writeFileSync(join(dir, 'flaky-token'), 'wrong');
  await assert.rejects(tokenFor(creds, t), CredentialError);
  writeFileSync(join(dir, 'flaky-token'), VAULT_TOKEN);
  const ok = await tokenFor(creds, t);
  assert.deepEqual(mintsSince(before), [ok.reveal()], 'the failure was not cached');
});

test('through the Envoy stand-in: a failed mint refuses the agent with a 503 Status; the long-lived credential only ever reaches TokenRequest', async (t) => {
  const redis: TestRedis = await startRedis({ appendonly: false });
  const svc: TestService = await startTestService({
    redisUrl: redis.url,
    adapters: [kubeExtProcAdapter()],
    config: { bootstrap: { policies: ['examples/policies/kubernetes-guardrails.yaml'], targets: [] } },
  });
  const envoys: EnvoyStandIn[] = [];
  t.after(async () => {
    for (const e of envoys) await e.close();
    await svc.close();
    await redis.close();
  });
  const admin = svc.adminToken;
  for (const [name, serviceAccount] of [
    ['kube-good', 'portcullis-agent'],
    ['kube-broken', 'no-such-sa'],
  ]) {
    const put = await svc.call(admin, 'POST', '/v1/targets', {
      name,
      kind: 'kubernetes',
      address: api.url,
      caRef: `file:${api.caPath}`,
      credential: {
        kind: 'token-request',
        tokenRef: `file:${join(dir, 'vault-token')}`,
        namespace: 'prod',
        serviceAccount,
        ttlSeconds: 3600,
      },
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
  }
  assert.equal((await svc.call(admin, 'POST', '/v1/agents', { id: 'reader', groups: ['agents'] })).status, 201);
  await svc.core.targets.refresh();
  const agentToken = (
    await svc.call(admin, 'POST', '/v1/tokens', { agent: 'reader', targets: ['kube-good', 'kube-broken'], ttl: '30m' })
  ).body.token;
  // One listener per target, as operators wire it (grpc_service.initial_metadata names the target).
  const standIn = async (name: string): Promise<EnvoyStandIn> => {
    const e = await startEnvoyStandIn({
      processorAddress: `127.0.0.1:${svc.grpcPort}`,
      upstream: { url: api.url, ca: api.caPem },
      // Not a test of timers: the first request waits for a TokenRequest mint before it is answered, which a loaded
      // machine can stretch past the listener's message_timeout; everything else stays as envoy/portcullis.yaml has it.
      overrides: { initialMetadata: [['x-portcullis-target', name]], messageTimeoutMs: 60_000 },
    });
    envoys.push(e);
    return e;
  };
  const good = await standIn('kube-good');
  const broken = await standIn('kube-broken');
  const seenBefore = api.requests.length;

  const ok = await get(good, '/api/v1/namespaces/dev/pods', agentToken);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.kind, 'PodList');

  for (let i = 0; i < 2; i++) {
    const r = await get(broken, '/api/v1/namespaces/dev/pods', agentToken);
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.deepEqual([r.body.kind, r.body.reason, r.body.code], ['Status', 'ServiceUnavailable', 503]);
    assert.match(r.body.message, /could not obtain .*credential for target kube-broken/);
    assert.ok(!r.body.message.includes(VAULT_TOKEN));
  }

  const seen = api.requests.slice(seenBefore);
  const pods = seen.filter((q) => q.path.startsWith('/api/v1/namespaces/dev/pods'));
  assert.equal(pods.length, 1, 'only the request on the working target reached the API server');
  assert.ok(
    pods[0].authorization !== undefined && api.mintedTokens.includes(pods[0].authorization.replace(/^Bearer /, '')),
    'it carried a minted token',
  );
  for (const q of seen) {
    assert.ok(!q.authorization?.includes(agentToken), 'the agent token reached the upstream');
    if (q.authorization === `Bearer ${VAULT_TOKEN}`) {
      assert.equal(q.method, 'POST');
      assert.match(
        q.path,
        /^\/api\/v1\/namespaces\/prod\/serviceaccounts\/[^/]+\/token$/,
        `the long-lived credential was sent to ${q.method} ${q.path}`,
      );
    }
  }
  assert.ok(
    seen.some((q) => q.path === TOKEN_PATH),
    'the working target minted its token',
  );
  const logs = svc.logs();
  assert.ok(
    !logs.includes(VAULT_TOKEN) && !api.mintedTokens.some((m) => logs.includes(m)),
    'no credential in the service log',
  );
  assert.match(logs, /no-such-sa/, 'the log says which TokenRequest failed');
});

function get(envoy: EnvoyStandIn, path: string, token: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    https
      .get(
        `${envoy.url}${path}`,
        { ca: envoy.caPem, agent: false, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } },
        (res) => {
          let text = '';
          res
            .setEncoding('utf8')
            .on('data', (c: string) => {
              text += c;
            })
            .on('end', () => {
              let body: unknown = text;
              try {
                body = JSON.parse(text);
              } catch {
                /* a stand-in local reply is plain text */
              }
              resolve({ status: res.statusCode ?? 0, body });
            });
        },
      )
      .on('error', reject);
  });
}
