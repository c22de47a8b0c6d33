/**
 * Masking detector names are scoped to their policy: two policies that each define a detector of the same name are
 * both accepted when written, and the masking plan for an agent and target in scope of both compiles and runs both
 * detectors (before, every action in that scope failed closed: "detector … is already defined").
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compileMaskingRules, MaskingRulesError } from '../../extproc/masking/index.ts';
import { Spine } from '../../extproc/spine/index.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';
import { maskText } from '../masking/engine.ts';

const policy = (name: string, pattern: string): string => `name: ${name}
rules:
  - { name: all, action: allow }
masking:
  - name: ids
    detectors:
      - { name: INTERNAL_ID, kind: regex, pattern: "${pattern}" }
`;

let redis: TestRedis;
let svc: TestService;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-detectors-'));

before(async () => {
  redis = await startRedis({ appendonly: false });
  svc = await startTestService({ redisUrl: redis.url, config: { bootstrap: { policies: [], targets: [] } } });
});
after(async () => {
  await svc.close();
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
});

test('two policies may each define a detector of the same name: both apply, and both mask', async () => {
  const admin = svc.adminToken;
  for (const source of [policy('team-a', 'EMP-[0-9]{6}'), policy('team-b', 'CUST-[0-9]{4}')]) {
    const res = await svc.call(admin, 'POST', '/v1/policies', { source });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  writeFileSync(join(dir, 'tok'), 'upstream-static-token-1234');
  await svc.call(admin, 'POST', '/v1/targets', {
    name: 'kube-dev',
    kind: 'kubernetes',
    address: 'https://127.0.0.1:1',
    credential: { kind: 'static-token', tokenRef: `file:${join(dir, 'tok')}` },
  });
  await svc.call(admin, 'POST', '/v1/agents', { id: 'planner-1', groups: ['agents'] });
  await svc.core.targets.refresh();
  await svc.core.policies.reload();
  const token = (await svc.call(admin, 'POST', '/v1/tokens', { agent: 'planner-1', targets: ['kube-dev'] })).body.token;
  const spine = new Spine(svc.core);
  const auth = await spine.authenticate({ protocol: 'kubernetes', target: 'kube-dev', token });
  assert.ok(auth.ok, JSON.stringify(auth));
  const plan = spine.begin(auth.session, 'req_detectors').masking();
  assert.ok(plan, 'a masking plan, not an error');
  assert.equal(
    maskText('owner EMP-123456 of CUST-0042', plan),
    'owner [REDACTED:INTERNAL_ID] of [REDACTED:INTERNAL_ID]',
  );
});

test('within one policy a detector name is still defined once', () => {
  const rules = [
    { name: 'a', detectors: [{ name: 'INTERNAL_ID', kind: 'regex', pattern: 'A-[0-9]+' }] },
    { name: 'b', detectors: [{ name: 'INTERNAL_ID', kind: 'regex', pattern: 'B-[0-9]+' }] },
  ];
  assert.throws(() => compileMaskingRules(rules), MaskingRulesError);
  assert.throws(() => compileMaskingRules(rules, { owners: ['p', 'p'] }), MaskingRulesError);
  assert.equal(compileMaskingRules(rules, { owners: ['p', 'q'] }).custom.length, 2);
});

test('policies that together hold more custom detectors than one plan takes are refused at apply, with the position', async () => {
  const many = (name: string, n: number): string =>
    `name: ${name}\nrules:\n  - { name: all, action: allow }\nmasking:\n  - name: ids\n    detectors:\n${Array.from(
      { length: n },
      (_, i) => `      - { name: ID_${i}, kind: regex, pattern: "${name}-${i}-[0-9]{6}" }\n`,
    ).join('')}`;
  const admin = svc.adminToken;
  const first = await svc.call(admin, 'POST', '/v1/policies', { source: many('capacity-a', 20) });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  await svc.core.policies.reload();
  // Alone it fits; with capacity-a's 20 (and the policies above) the scope's plan would not compile.
  const second = await svc.call(admin, 'POST', '/v1/policies', { source: many('capacity-b', 20) });
  assert.equal(second.status, 422, JSON.stringify(second.body));
  const [problem] = second.body.details.problems as { line: number; col: number; path: string; message: string }[];
  assert.equal(problem.path, '/masking/0/detectors');
  assert.equal(problem.line, 7); // the list's first detector
  assert.match(problem.message, /at most 31/);
  // The running set still compiles a plan for the scope, and a smaller policy fits.
  const third = await svc.call(admin, 'POST', '/v1/policies', { source: many('capacity-c', 5) });
  assert.equal(third.status, 201, JSON.stringify(third.body));
});
