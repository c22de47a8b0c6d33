import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BUILTIN_ENTITIES,
  columnMatcher,
  compileMaskingRules,
  MaskingRulesError,
  validateMaskingRules,
} from '../../extproc/masking/index.ts';
import { engine, maskText } from './engine.ts';

function issues(raw: unknown): string[] {
  try {
    compileMaskingRules(raw as unknown[]);
  } catch (err) {
    assert.ok(err instanceof MaskingRulesError);
    return err.issues.map((i) => `${i.index} ${i.field}: ${i.message}`);
  }
  return [];
}

test('defaults: entities, detectors, columns, paths empty, strategy redact, keep 4', () => {
  assert.deepEqual(validateMaskingRules([{ name: 'r' }]), [
    { name: 'r', entities: [], detectors: [], columns: [], paths: [], strategy: 'redact', keep: 4 },
  ]);
  assert.deepEqual(validateMaskingRules(undefined), []);
});

test('a rule that names nothing masks nothing', () => {
  const p = compileMaskingRules([{ name: 'empty' }]);
  assert.equal(p.contentEmpty, true);
  const bytes = Buffer.from('card 4111111111111111 mail a@b.co');
  assert.deepEqual(Buffer.from(engine.maskBytes(bytes, p).output), bytes);
});

test('every problem is reported with the rule index and the field', () => {
  const got = issues([
    { name: 'ok', entities: ['CREDIT_CARD'] },
    { name: 'bad', entities: ['CREDIT_CARD', 'CARD'], strategy: 'shred', keep: -1, extra: 1 },
    {
      name: 'det',
      detectors: [
        { name: 'TICKET', kind: 'regex', pattern: '(unclosed' },
        { name: 'lower', kind: 'words', words: [] },
        { name: 'EMPTY', kind: 'regex', pattern: 'a*' },
        { name: 'X', kind: 'glob' },
      ],
    },
    { name: 'fields', columns: ['users.card', 'a.b.c.d', 'bad-name'], paths: ['$.data.*', 'data', '$.items[?(@.x)]'] },
  ]);
  assert.deepEqual(got, [
    '1 extra: unknown field',
    '1 strategy: must be one of redact, mask, partial, hash',
    '1 keep: must be an integer from 0 to 64',
    `1 entities[1]: unknown entity "CARD" (known: ${BUILTIN_ENTITIES.join(', ')})`,
    '2 detectors[1].name: must be UPPER_SNAKE_CASE (A–Z, 0–9, _; at most 48)',
    '2 detectors[1].words: must be a non-empty list',
    "2 detectors[3].kind: must be 'regex' or 'words'",
  ]);
  // Shape problems come first; compile problems (regexes, columns, paths) once the shape is right.
  assert.deepEqual(
    issues([
      {
        name: 'det',
        detectors: [
          { name: 'TICKET', kind: 'regex', pattern: '(unclosed' },
          { name: 'EMPTY', kind: 'regex', pattern: 'a*' },
        ],
      },
      {
        name: 'fields',
        columns: ['users.card', 'a.b.c.d', 'bad-name'],
        paths: ['$.data.*', 'data', '$.items[?(@.x)]'],
      },
      { name: 'dup', detectors: [{ name: 'TICKET', kind: 'words', words: ['x'] }] },
    ]),
    [
      '0 detectors[0].pattern: invalid regular expression: error parsing regexp: missing closing ): `(unclosed` (patterns run on RE2: no backreferences, lookahead or lookbehind)',
      '0 detectors[1].pattern: the pattern matches the empty string',
      '1 columns[1]: expected column, table.column or schema.table.column (letters, digits, _, $ and * wildcards)',
      '1 columns[2]: expected column, table.column or schema.table.column (letters, digits, _, $ and * wildcards)',
      '1 paths[1]: must start with $',
      "1 paths[2]: unsupported selector [?(@.x)] at 7 (use name, 'name', index or *)",
      '2 detectors[0].name: detector TICKET is already defined by masking[0]',
    ],
  );
  assert.deepEqual(issues({ not: 'a list' }), [' : masking must be a list of rules'.replace(/^/, '-1')]);
});

test('the stricter strategy wins when rules overlap', () => {
  const p = compileMaskingRules([
    { name: 'a', entities: ['CREDIT_CARD', 'EMAIL_ADDRESS'], strategy: 'partial' },
    { name: 'b', entities: ['CREDIT_CARD'], strategy: 'redact' },
  ]);
  assert.equal(maskText('4111111111111111 bob@example.com', p), '[REDACTED:CREDIT_CARD] ***@******e.com');
});

test('protocol filter: only rules for that protocol (or for all) are compiled', () => {
  const rules = [
    { name: 'pg', protocol: 'postgres', entities: ['CREDIT_CARD'] },
    { name: 'all', entities: ['EMAIL_ADDRESS'] },
  ];
  assert.equal(
    maskText('4111111111111111 a@b.co', compileMaskingRules(rules, { protocol: 'ssh' })),
    '4111111111111111 [REDACTED:EMAIL_ADDRESS]',
  );
  assert.equal(
    maskText('4111111111111111 a@b.co', compileMaskingRules(rules, { protocol: 'postgres' })),
    '[REDACTED:CREDIT_CARD] [REDACTED:EMAIL_ADDRESS]',
  );
});

test('column rules: name, table.column, schema.table.column, wildcards, case-insensitive', () => {
  const match = columnMatcher(
    compileMaskingRules([
      { name: 'cards', columns: ['card_number', 'billing.*_token'], strategy: 'partial' },
      { name: 'pii', columns: ['public.users.ssn', 'Customers.Email'], strategy: 'hash' },
    ]),
  );
  assert.equal(match('card_number')?.label, 'cards');
  assert.equal(match('CARD_NUMBER', 'orders')?.strategy, 'partial');
  assert.equal(match('stripe_token', 'billing')?.label, 'cards');
  assert.equal(match('stripe_token', 'public.billing')?.label, 'cards');
  assert.equal(match('stripe_token', 'shipping'), undefined);
  assert.equal(match('stripe_token')?.label, 'cards', 'an unknown table matches on the column part alone');
  assert.equal(match('ssn', 'public.users')?.label, 'pii');
  assert.equal(match('ssn', 'users'), undefined, 'schema given in the pattern must match');
  assert.equal(match('email', 'customers')?.strategy, 'hash');
  assert.equal(match('name', 'customers'), undefined);
});

test('maskJson: path rules mask whole values, other strings by content, counts per entity and rule', () => {
  const p = compileMaskingRules([
    { name: 'secret-data', paths: ['$.data.*', '$.items[*].spec.containers[*].env[*].value'] },
    { name: 'notes', paths: ['$..annotations'], strategy: 'mask' },
    { name: 'pii', entities: ['EMAIL_ADDRESS', 'CREDIT_CARD'] },
  ]);
  const input = {
    data: { user: 'admin', port: 5432, on: true, nothing: null },
    items: [
      {
        spec: {
          containers: [
            {
              env: [
                { name: 'A', value: 'x1' },
                { name: 'B', value: 'mail a@b.co' },
              ],
            },
          ],
        },
      },
    ],
    metadata: { annotations: { owner: 'bob', n: ['ab', 'c'] } },
    message: 'contact bob@example.com, card 4111111111111111',
    untouched: 'plain text',
  };
  const copy = structuredClone(input);
  const r = engine.maskJson(input, p);
  assert.deepEqual(input, copy, 'the input is not modified');
  assert.deepEqual(r.value, {
    data: {
      user: '[REDACTED:secret-data]',
      port: '[REDACTED:secret-data]',
      on: '[REDACTED:secret-data]',
      nothing: null,
    },
    items: [
      {
        spec: {
          containers: [
            {
              env: [
                { name: 'A', value: '[REDACTED:secret-data]' },
                { name: 'B', value: '[REDACTED:secret-data]' },
              ],
            },
          ],
        },
      },
    ],
    metadata: { annotations: { owner: '***', n: ['**', '*'] } },
    message: 'contact [REDACTED:EMAIL_ADDRESS], card [REDACTED:CREDIT_CARD]',
    untouched: 'plain text',
  });
  assert.deepEqual(
    new Map(r.findings.map((f) => [f.entity, f.count])),
    new Map([
      ['secret-data', 5],
      ['notes', 3],
      ['EMAIL_ADDRESS', 1],
      ['CREDIT_CARD', 1],
    ]),
  );
});

test('Kubernetes Secret data: base64 values decoded, masked, re-encoded; clean values untouched', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const p = compileMaskingRules([{ name: 'content', entities: ['PASSWORD', 'PRIVATE_KEY', 'AWS_ACCESS_KEY'] }]);
  const secret = {
    kind: 'Secret',
    data: {
      'config.env': b64('DB_HOST=db\nDB_PASSWORD=s3cret\n'),
      'aws': b64('AKIAIOSFODNN7EXAMPLE'),
      'plain': b64('just a hostname'),
      'not-base64': 'password=x!',
    },
  };
  const r = engine.maskJson(secret, p, { base64Paths: ['$.data.*'] });
  const data = (r.value as typeof secret).data;
  assert.equal(Buffer.from(data['config.env'], 'base64').toString(), 'DB_HOST=db\nDB_PASSWORD=[REDACTED:PASSWORD]\n');
  assert.equal(Buffer.from(data.aws, 'base64').toString(), '[REDACTED:AWS_ACCESS_KEY]');
  assert.equal(data.plain, secret.data.plain);
  assert.equal(data['not-base64'], 'password=[REDACTED:PASSWORD]');

  const whole = engine.maskBase64Value(b64('anything'), p, { label: 'secret', strategy: 'redact', keep: 4 });
  assert.equal(Buffer.from(whole.value, 'base64').toString(), '[REDACTED:secret]');
  assert.deepEqual(whole.findings, [{ entity: 'secret', count: 1 }]);
  const both = engine.maskJson(
    secret,
    compileMaskingRules([{ name: 'all-data', paths: ['$.data.*'], strategy: 'partial', keep: 2 }]),
    { base64Paths: ['$.data.*'] },
  );
  assert.equal(Buffer.from((both.value as typeof secret).data.aws, 'base64').toString(), '******************LE');
});
