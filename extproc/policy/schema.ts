/**
 * The JSON Schema of a policy document, published by `portcullis policy schema` so editors can validate as authors
 * type. The loader validates every document against it before compiling CEL.
 */
import { BUILTIN_ENTITIES, STRATEGIES } from '../masking/types.ts';

const stringList = { type: 'array', items: { type: 'string', minLength: 1 } } as const;
const labels = { type: 'object', additionalProperties: { type: 'string' } } as const;
const protocol = { enum: ['kubernetes', 'postgres', 'ssh'] } as const;
/** Go-style durations as Envoy and Kubernetes write them: "90s", "15m", "1h30m". */
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h))+$';
const duration = { type: 'string', pattern: DURATION_PATTERN } as const;

export const POLICY_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://portcullis.dev/schemas/policy-v1.json',
  title: 'Portcullis policy',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'rules'],
  properties: {
    apiVersion: { const: 'portcullis.dev/v1' },
    kind: { const: 'Policy' },
    name: {
      type: 'string',
      pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
      description: 'Unique policy name (DNS label).',
    },
    description: { type: 'string' },
    mode: {
      enum: ['enforce', 'dry-run'],
      default: 'enforce',
      description: 'dry-run: decisions are recorded, not enforced.',
    },
    scope: {
      type: 'object',
      additionalProperties: false,
      description:
        'Which agents and targets the policy applies to. Within a selector every non-empty field must match; a list matches when it contains the value.',
      properties: {
        agents: {
          type: 'object',
          additionalProperties: false,
          properties: { ids: stringList, groups: stringList, labels },
        },
        targets: {
          type: 'object',
          additionalProperties: false,
          properties: { names: stringList, kinds: { type: 'array', items: protocol }, labels },
        },
      },
    },
    rules: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'action'],
        properties: {
          name: { type: 'string', minLength: 1 },
          protocol,
          when: {
            type: 'string',
            minLength: 1,
            description: 'CEL condition over the request context; absent means always.',
          },
          action: { enum: ['allow', 'deny', 'require_approval'] },
          message: { type: 'string', description: 'Shown to the agent when the rule denies or asks for approval.' },
          approval: {
            type: 'object',
            additionalProperties: false,
            required: ['group'],
            properties: {
              group: { type: 'string', minLength: 1 },
              grant: { enum: ['once', 'window'], default: 'once' },
              window: { ...duration, description: 'For grant: window, how long the grant lasts.' },
              minApprovals: { type: 'integer', minimum: 1, maximum: 10, default: 1 },
              ttl: { ...duration, description: 'How long the request stays pending (default 15m).' },
              hold: {
                ...duration,
                description:
                  'Hold the action this long for a quick approval where the protocol allows it (default 0s).',
              },
            },
          },
        },
        allOf: [
          // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keywords, not a thenable.
          { if: { properties: { action: { const: 'require_approval' } } }, then: { required: ['approval'] } },
        ],
      },
    },
    masking: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1 },
          protocol,
          when: { type: 'string', minLength: 1 },
          entities: { type: 'array', items: { enum: [...BUILTIN_ENTITIES] } },
          detectors: {
            type: 'array',
            items: {
              oneOf: [
                {
                  type: 'object',
                  additionalProperties: false,
                  required: ['name', 'kind', 'pattern'],
                  properties: {
                    name: { type: 'string' },
                    kind: { const: 'regex' },
                    pattern: { type: 'string' },
                    flags: { type: 'string', pattern: '^[imsu]*$' },
                  },
                },
                {
                  type: 'object',
                  additionalProperties: false,
                  required: ['name', 'kind', 'words'],
                  properties: {
                    name: { type: 'string' },
                    kind: { const: 'words' },
                    words: stringList,
                    caseSensitive: { type: 'boolean' },
                  },
                },
              ],
            },
          },
          columns: stringList,
          paths: stringList,
          strategy: { enum: [...STRATEGIES], default: 'redact' },
          keep: { type: 'integer', minimum: 0, maximum: 64, default: 4 },
        },
      },
    },
  },
} as const;
