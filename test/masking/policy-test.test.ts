import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { policyCommand } from '../../extproc/cli/commands/policy.ts';
import { runCommand } from '../harness/cli.ts';

async function policyTest(files: Record<string, string>): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-mask-policy-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const r = await runCommand(policyCommand, ['test', dir], {});
  return { code: r.code, out: r.out + r.err };
}

const POLICY = `apiVersion: portcullis.dev/v1
kind: Policy
name: pii
mode: enforce
scope: { targets: { kinds: [kubernetes] } }
rules:
  - { name: reads, when: k8s.verb == "get", action: allow }
masking:
  - name: cards
    entities: [CREDIT_CARD, IBAN_CODE]
    strategy: partial
    keep: 4
  - name: secret-values
    paths: ["$.data.*"]
`;
const REQUEST = 'request: { k8s: { isResourceRequest: true, verb: get, resource: pods, namespace: dev, version: v1 } }';

test('policy test cases assert masking outcomes: output, findings, JSON documents', async () => {
  const r = await policyTest({
    'pii.yaml': POLICY,
    'pii_test.yaml': `cases:
  - name: cards keep their last four digits
    ${REQUEST}
    expect: { action: allow }
    mask:
      - input: "card 4111 1111 1111 1111, iban DE89-3704-0044-0532-0130-00"
        output: "card **** **** **** 1111, iban ****-****-****-****-**30-00"
  - name: counted
    ${REQUEST}
    mask:
      - input: "4111111111111111 and 5555555555554444, mail bob@example.com"
        findings: { CREDIT_CARD: 2 }
  - name: a secret's data is masked whole
    ${REQUEST}
    mask:
      - input: '{"kind":"Secret","data":{"token":"c2VjcmV0"}}'
        json: true
        output: '{"kind":"Secret","data":{"token":"[REDACTED:secret-values]"}}'
`,
  });
  assert.match(r.out, /PASS .*cards keep their last four digits/);
  assert.match(r.out, /PASS .*counted/);
  assert.match(r.out, /PASS .*a secret's data is masked whole/);
  assert.match(r.out, /3 passed, 0 failed/);
  assert.equal(r.code, 0);
});

test('a wrong masking expectation fails with what was found', async () => {
  const r = await policyTest({
    'pii.yaml': POLICY,
    'pii_test.yaml': `cases:
  - name: emails are not masked by this policy
    ${REQUEST}
    mask:
      - input: "card 4111111111111111 mail bob@example.com"
        output: "card ************1111 mail bob@example.com"
        findings: { CREDIT_CARD: 1, EMAIL_ADDRESS: 1 }
`,
  });
  assert.equal(r.code, 1);
  assert.match(r.out, /mask\[0\]: EMAIL_ADDRESS found 0 times, expected 1/);
  assert.doesNotMatch(r.out, /output/);
});
