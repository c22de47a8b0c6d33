import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { AGENT_TOKEN_TYPE, AgentTokens, VERIFIED_TTL_MS } from '../../extproc/identity/agent-tokens.ts';
import { Registry } from '../../extproc/identity/registry.ts';
import { ALG, SigningKeys } from '../../extproc/identity/signing-keys.ts';
import { waitFor } from '../harness/ports.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';

let redis: TestRedis;
const clients: Redis[] = [];
const client = (): Redis => {
  const c = new Redis(redis.url);
  clients.push(c);
  return c;
};
const started: AgentTokens[] = [];

async function tokenService(now: () => number = Date.now): Promise<AgentTokens> {
  const keys = new SigningKeys(client());
  await keys.load();
  const t = new AgentTokens(
    client(),
    client(),
    keys,
    new Registry(client()),
    { defaultTtlSeconds: 900, maxTtlSeconds: 3600 },
    undefined,
    now,
  );
  await t.start();
  started.push(t);
  return t;
}

before(async () => {
  redis = await startRedis();
  const registry = new Registry(client());
  await registry.putAgent({
    id: 'planner',
    groups: ['agents'],
    labels: {},
    disabled: false,
    createdAt: new Date().toISOString(),
  });
  for (const name of ['kube-dev', 'kube-prod']) {
    await registry.putTarget({
      name,
      kind: 'kubernetes',
      address: 'https://127.0.0.1:1',
      labels: {},
      defaultAction: 'deny',
      recording: 'fail-closed',
    });
  }
});
after(async () => {
  for (const t of started) await t.stop();
  for (const c of clients) c.disconnect();
  await redis.close();
});

test('a token verifies for its targets only, and carries its agent and session', async () => {
  const tokens = await tokenService();
  const { token, record } = await tokens.issue({ agent: 'planner', targets: ['kube-dev'], issuedBy: 'admin' });
  const ok = await tokens.verify(token, 'kube-dev');
  assert.ok(ok.ok);
  assert.equal(ok.agent.id, 'planner');
  assert.equal(ok.token.sessionId, record.sessionId);
  const other = await tokens.verify(token, 'kube-prod');
  assert.deepEqual(other.ok ? null : other.failure, 'out_of_scope');
  assert.ok(!other.ok && other.message.includes('kube-prod'));
});

test('an expired token is refused as expired; lifetimes above the ceiling are refused at issue', async () => {
  const past = Date.now() - 3600_000;
  const oldTokens = await tokenService(() => past);
  const { token } = await oldTokens.issue({
    agent: 'planner',
    targets: ['kube-dev'],
    ttlSeconds: 600,
    issuedBy: 'admin',
  });
  const tokens = await tokenService();
  const res = await tokens.verify(token, 'kube-dev');
  assert.equal(res.ok ? 'ok' : res.failure, 'expired');
  await assert.rejects(
    tokens.issue({ agent: 'planner', targets: ['kube-dev'], ttlSeconds: 7200, issuedBy: 'admin' }),
    /between 1s and 3600s/,
  );
});

test('revocation by id reaches every replica; the token itself is never stored', async () => {
  const a = await tokenService();
  const b = await tokenService();
  const { token, record } = await a.issue({ agent: 'planner', targets: ['kube-dev'], issuedBy: 'admin' });
  assert.ok((await b.verify(token, 'kube-dev')).ok);
  await a.revoke(record.jti);
  await waitFor(
    async () => {
      const r = await b.verify(token, 'kube-dev');
      return !r.ok && r.failure === 'revoked';
    },
    1000,
    'revocation on replica b',
  );
  const c = client();
  const keys = await c.keys('*');
  for (const k of keys) {
    const type = await c.type(k);
    const dump =
      type === 'string'
        ? await c.get(k)
        : type === 'hash'
          ? JSON.stringify(await c.hgetall(k))
          : type === 'zset'
            ? JSON.stringify(await c.zrange(k, 0, -1))
            : type === 'list'
              ? JSON.stringify(await c.lrange(k, 0, -1))
              : '';
    assert.ok(!String(dump).includes(token), `token stored in clear under ${k}`);
  }
});

test('key rotation keeps tokens in flight valid, and new tokens use the new key', async () => {
  const tokens = await tokenService();
  const { token: before } = await tokens.issue({ agent: 'planner', targets: ['kube-dev'], issuedBy: 'admin' });
  const keys = new SigningKeys(client());
  await keys.load();
  await keys.rotate(3600_000);
  const fresh = await tokenService();
  const { token: afterRotation } = await fresh.issue({ agent: 'planner', targets: ['kube-dev'], issuedBy: 'admin' });
  // The first replica has never seen the new key: it loads it on demand.
  assert.ok((await tokens.verify(afterRotation, 'kube-dev')).ok);
  assert.ok((await fresh.verify(before, 'kube-dev')).ok);
});

test('malformed, foreign and missing tokens are refused with a reason; a disabled agent is refused', async () => {
  const tokens = await tokenService();
  assert.equal(((await tokens.verify(undefined, 'kube-dev')) as { failure: string }).failure, 'missing');
  assert.equal(((await tokens.verify('not-a-jwt', 'kube-dev')) as { failure: string }).failure, 'malformed');
  const { token } = await tokens.issue({ agent: 'planner', targets: ['kube-dev'], issuedBy: 'admin' });
  const [h, p, s] = token.split('.');
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), aud: ['kube-prod'] })).toString('base64url')}.${s}`;
  assert.equal(((await tokens.verify(tampered, 'kube-prod')) as { failure: string }).failure, 'invalid');
  const registry = new Registry(client());
  await registry.putAgent({
    id: 'planner',
    groups: ['agents'],
    labels: {},
    disabled: true,
    createdAt: new Date().toISOString(),
  });
  const fresh = await tokenService();
  assert.equal(((await fresh.verify(token, 'kube-dev')) as { failure: string }).failure, 'agent_disabled');
  await registry.putAgent({
    id: 'planner',
    groups: ['agents'],
    labels: {},
    disabled: false,
    createdAt: new Date().toISOString(),
  });
});

// The verified-token cache (a signature is re-checked at most every VERIFIED_TTL_MS) must never let through what the
// full check would refuse: these guard revocation, expiry and scope on a token whose verification is remembered.
test('verified-token cache: revocation wins at once on this replica and within the pub/sub delay on others', async () => {
  const a = await tokenService();
  const b = await tokenService();
  const { token, record } = await a.issue({ agent: 'planner', targets: ['kube-dev'], issuedBy: 'admin' });
  for (const t of [a, b]) {
    assert.ok((await t.verify(token, 'kube-dev')).ok);
    assert.ok((await t.verify(token, 'kube-dev')).ok); // now served from the cache
    const scope = await t.verify(token, 'kube-prod');
    assert.equal(scope.ok ? 'ok' : scope.failure, 'out_of_scope');
  }
  await a.revoke(record.jti);
  const here = await a.verify(token, 'kube-dev');
  assert.equal(here.ok ? 'ok' : here.failure, 'revoked', 'the revoking replica refuses with no delay');
  await waitFor(
    async () => {
      const r = await b.verify(token, 'kube-dev');
      return !r.ok && r.failure === 'revoked';
    },
    1000,
    'revocation on replica b',
  );
  assert.ok(VERIFIED_TTL_MS > 1000, 'replica b was refused before its cache entry could have lapsed');
});

test('verified-token cache: expiry wins over a remembered verification', async () => {
  let clock = Date.now();
  const tokens = await tokenService(() => clock);
  const { token, record } = await tokens.issue({
    agent: 'planner',
    targets: ['kube-dev'],
    ttlSeconds: 2,
    issuedBy: 'admin',
  });
  const exp = Date.parse(record.expiresAt);
  assert.ok((await tokens.verify(token, 'kube-dev')).ok);
  clock = exp - 1; // still inside the cache's own window (VERIFIED_TTL_MS), and the token's last valid millisecond
  assert.ok(exp - 1 - Date.now() < VERIFIED_TTL_MS);
  assert.ok((await tokens.verify(token, 'kube-dev')).ok);
  clock = exp;
  const res = await tokens.verify(token, 'kube-dev');
  assert.equal(res.ok ? 'ok' : res.failure, 'expired');
});

test('a correctly signed token without an expiry is refused: every token this gateway accepts expires (issue 15)', async () => {
  const t = await tokenService();
  const keys = new SigningKeys(client());
  await keys.load();
  const { kid, key } = keys.current();
  const forever = await new SignJWT({ sid: 'ses_forever' })
    .setProtectedHeader({ alg: ALG, kid, typ: AGENT_TOKEN_TYPE })
    .setIssuer('portcullis')
    .setSubject('planner')
    .setAudience(['kube-dev'])
    .setJti('no-exp')
    .setIssuedAt()
    .sign(key);
  const v = await t.verify(forever, 'kube-dev');
  assert.deepEqual(v.ok ? 'accepted' : v.failure, 'invalid');
  // The same claims with an expiry verify: the signature and the key were right, only the expiry was missing.
  const withExp = await new SignJWT({ sid: 'ses_forever' })
    .setProtectedHeader({ alg: ALG, kid, typ: AGENT_TOKEN_TYPE })
    .setIssuer('portcullis')
    .setSubject('planner')
    .setAudience(['kube-dev'])
    .setJti('with-exp')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);
  assert.equal((await t.verify(withExp, 'kube-dev')).ok, true);
});
