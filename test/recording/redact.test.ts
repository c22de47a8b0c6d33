import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { canonicalJson, createRecorder, redact, REDACTED, SecretRegistry } from '../../extproc/recording/index.ts';
import { redactJwts, redactToCanonical } from '../../extproc/recording/redact.ts';
import { seededRandom } from '../harness/seeded-random.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';

const run = promisify(execFile);
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const AGENT_TOKEN = `${b64({ alg: 'EdDSA', typ: 'portcullis-agent+jwt', kid: 'k1' })}.${b64({ sub: 'agent-1', exp: 1 })}.c2lnbmF0dXJlLXNpZw`;
const VAULT_VALUE = 'vault-Pa55w0rd-upstream-9f3c';
const OPAQUE_TOKEN = 'pcat_7d1f0c2e9b8a4f6e';

describe('redact', () => {
  it('removes credential headers in every shape adapters use', () => {
    assert.deepEqual(
      redact({
        headers: {
          Authorization: `Bearer ${AGENT_TOKEN}`,
          'proxy-authorization': 'Basic dXNlcjpwYXNz',
          cookie: 'a=b',
          'set-cookie': ['s=1'],
          accept: 'application/json',
        },
        headerList: [
          { key: 'authorization', value: 'Bearer x' },
          { key: 'host', value: 'api' },
        ],
        rawHeaders: [
          ['Cookie', 'sid=1'],
          ['Host', 'api'],
        ],
      }),
      {
        headers: {
          Authorization: REDACTED,
          'proxy-authorization': REDACTED,
          cookie: REDACTED,
          'set-cookie': REDACTED,
          accept: 'application/json',
        },
        headerList: [
          { key: 'authorization', value: REDACTED },
          { key: 'host', value: 'api' },
        ],
        rawHeaders: [
          ['Cookie', REDACTED],
          ['Host', 'api'],
        ],
      },
    );
  });

  it('removes members named like credentials, keeping counts and flags', () => {
    assert.deepEqual(
      redact({
        message: { type: 'PasswordMessage', password: 'hunter2' },
        client_secret: 'x',
        apiKey: 'k',
        'private-key': 'p',
        accessToken: 't',
        tokenCount: 3,
        passwordSet: true,
        user: 'app',
        bypass: 'kept',
        compass: 'kept',
      }),
      {
        message: { type: 'PasswordMessage', password: REDACTED },
        client_secret: REDACTED,
        apiKey: REDACTED,
        'private-key': REDACTED,
        accessToken: REDACTED,
        tokenCount: 3,
        passwordSet: true,
        user: 'app',
        bypass: 'kept',
        compass: 'kept',
      },
    );
  });

  it('removes bearer tokens and JWTs inside any string, and registered secret values', () => {
    const secrets = new SecretRegistry();
    secrets.add(VAULT_VALUE);
    const out = redact(
      {
        command: `curl -H "Authorization: Bearer abc.def-ghi" https://x`,
        log: `token=${AGENT_TOKEN} end`,
        sql: `ALTER ROLE app PASSWORD '${VAULT_VALUE}'`,
      },
      secrets,
    ) as Record<string, string>;
    assert.equal(out.command, `curl -H "Authorization: Bearer ${REDACTED}" https://x`);
    assert.equal(out.log, `token=${REDACTED} end`);
    assert.equal(out.sql, `ALTER ROLE app PASSWORD '${REDACTED}'`);
  });

  it('finds JWTs exactly where the regular expression for them does, on generated strings', () => {
    // The one-pass scanner against the expression it stands for, on strings built from the pieces that matter: the
    // header, the separators, word and non-word characters around them.
    const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
    const pieces = ['eyJ', 'eyJhbGci', '-', '.', '_', 'a', 'Z9', ' ', '"', 'é', 'abcde', '..', 'xeyJ'];
    const random = seededRandom(17);
    for (let n = 0; n < 20_000; n++) {
      let text = '';
      const length = 1 + Math.floor(random() * 14);
      for (let k = 0; k < length; k++) text += pieces[Math.floor(random() * pieces.length)];
      assert.equal(redactJwts(text), text.replace(JWT, REDACTED), JSON.stringify(text));
    }
    assert.equal(redactJwts(`a ${AGENT_TOKEN}, b-${AGENT_TOKEN}`), `a ${REDACTED}, b-${REDACTED}`);
  });

  it('a string made to slow the JWT search down is redacted in one pass', async () => {
    // 4 MB of `-eyJabcd`: each `-eyJ` is a place a JWT could start, and a search that reads the rest of the run from
    // each (the regular expression's way) takes hours on it; read once, milliseconds. Run in a child process with a
    // deadline, so that a search gone quadratic fails this test instead of holding the suite.
    const module = new URL('../../extproc/recording/redact.ts', import.meta.url).href;
    const code = [
      `const { redact, REDACTED } = await import(${JSON.stringify(module)});`,
      "const attack = '-eyJabcd'.repeat(1 << 19);",
      'const plain = redact({ sql: attack }).sql === attack;',
      "const token = redact({ sql: attack + '.payload.sig' }).sql === '-' + REDACTED;",
      'console.log(JSON.stringify({ plain, token }));',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      timeout: 60_000,
    });
    assert.deepEqual(JSON.parse(stdout), { plain: true, token: true });
  });

  it('the one-pass form the recorder uses equals canonical JSON of the redacted copy', () => {
    const secrets = new SecretRegistry();
    secrets.add(VAULT_VALUE);
    const samples: unknown[] = [
      {
        z: 1,
        a: [1, 'two', null, undefined, { y: true, b: 'Bearer abcdefghijklmnopqrstuvwxyz' }],
        m: { password: 'p', n: 1.5 },
      },
      {
        headers: [
          ['Authorization', 'x'],
          ['Host', 'h'],
        ],
        list: [{ name: 'Cookie', value: 'c' }],
        'é': 'ünïcode "quoted"\n',
      },
      {
        sql: { text: `select '${VAULT_VALUE}'` },
        big: 12345678901234567890n,
        date: new Date(0),
        fn: () => 1,
        bytes: Buffer.from('hi'),
      },
      {
        n: [-0, 0.1, 1e21, 1e-7, -3, NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER],
        b: [true, false],
        tokenCount: 2,
        passwordSet: false,
      },
    ];
    for (const s of samples) {
      const texts: string[] = [];
      assert.equal(redactToCanonical(s, secrets, texts), canonicalJson(redact(s, secrets)));
    }
  });

  it('frozen data, serialized once, is redacted again when a secret is registered after', () => {
    const secrets = new SecretRegistry();
    const shared = Object.freeze([
      Object.freeze({ kind: 'SelectStmt', tables: Object.freeze([OPAQUE_TOKEN, 'orders']) }),
    ]);
    const event = (): Record<string, unknown> => ({ statement: 'select 1', classification: shared });
    const first: string[] = [];
    const before = redactToCanonical(event(), secrets, first);
    assert.ok(before.includes(OPAQUE_TOKEN));
    const again: string[] = [];
    assert.equal(redactToCanonical(event(), secrets, again), before);
    assert.deepEqual(again, first, 'the search texts of a kept serialization are collected too');
    secrets.add(OPAQUE_TOKEN);
    const after = redactToCanonical(event(), secrets, null);
    assert.ok(!after.includes(OPAQUE_TOKEN));
    assert.equal(after, canonicalJson(redact(event(), secrets)));
    // A frozen object holding one that is not frozen may change through it: it is serialized anew each time.
    const inner = { table: 'orders' };
    const shallow = Object.freeze({ inner });
    assert.equal(redactToCanonical(shallow, secrets, null), '{"inner":{"table":"orders"}}');
    inner.table = VAULT_VALUE;
    secrets.add(VAULT_VALUE);
    assert.equal(redactToCanonical(shallow, secrets, null), `{"inner":{"table":"${REDACTED}"}}`);
    const unregistered = new SecretRegistry();
    assert.equal(redactToCanonical(shallow, unregistered, null), `{"inner":{"table":"${VAULT_VALUE}"}}`);
  });
});

describe('nothing secret reaches Redis', () => {
  let server: TestRedis;
  let redis: Redis;
  before(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    await redis.ping();
  });
  after(async () => {
    redis.disconnect();
    await server.close();
  });

  it('a vault value and agent tokens never appear in any key, stream or index', async () => {
    const secrets = new SecretRegistry();
    secrets.add(VAULT_VALUE);
    secrets.add(OPAQUE_TOKEN);
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed', secrets });
    const base = { sessionId: 'sec-1', agent: 'agent-1', target: 'db1', protocol: 'postgres' as const };
    rec.record({
      ...base,
      type: 'session.start',
      data: { startup: { user: 'agent-1', database: 'app' }, token: AGENT_TOKEN },
    });
    rec.record({ ...base, type: 'action', data: { message: { type: 'PasswordMessage', password: AGENT_TOKEN } } });
    rec.record({
      ...base,
      type: 'action',
      data: { upstream: { type: 'SASLResponse', data: `n,,n=app,r=x,p=${VAULT_VALUE}` } },
    });
    rec.record({ ...base, type: 'action', data: { sql: { text: `SELECT '${VAULT_VALUE}', '${OPAQUE_TOKEN}'` } } });
    rec.record({ ...base, type: 'output', data: { rows: [[VAULT_VALUE], [`Bearer ${OPAQUE_TOKEN}`]] } });
    rec.record({
      ...base,
      protocol: 'kubernetes',
      type: 'action',
      data: { method: 'GET', path: '/api', headers: { authorization: `Bearer ${AGENT_TOKEN}` } },
    });
    rec.record({ ...base, type: 'error', data: { message: `auth failed for ${AGENT_TOKEN}` } });
    rec.record({ ...base, type: 'session.end', data: {} });
    await rec.flush();
    await rec.close();

    let dump = '';
    let n = 0;
    for (const key of await redis.keys('*')) {
      n++;
      dump += `${key}\n`;
      const type = await redis.type(key);
      if (type === 'stream') dump += JSON.stringify(await redis.xrange(key, '-', '+'));
      else if (type === 'hash') dump += JSON.stringify(await redis.hgetall(key));
      else if (type === 'zset') dump += JSON.stringify(await redis.zrange(key, 0, -1));
      else if (type === 'string') dump += await redis.get(key);
      else assert.fail(`unexpected key type ${type} for ${key}`);
    }
    assert.ok(n > 5 && dump.includes('SELECT'), 'the dump holds the recording');
    for (const secret of [VAULT_VALUE, OPAQUE_TOKEN, AGENT_TOKEN, AGENT_TOKEN.split('.')[1], 'c2lnbmF0dXJlLXNpZw']) {
      assert.equal(dump.includes(secret), false, `secret found in Redis: ${secret.slice(0, 12)}…`);
    }
  });
});
