/**
 * The tracing switch and its settings: off by default; the file's `tracing` block; the OpenTelemetry SDK's standard
 * variables (and PORTCULLIS_TRACING_ENABLED) over the file, as every other environment variable; bad values named.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, loadConfig } from '../../extproc/service/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-tracing-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'tracing.yaml');
writeFileSync(
  file,
  'tracing:\n  enabled: true\n  endpoint: http://collector.observability:4318/v1/traces\n  sampleRatio: 0.25\n',
);

test('tracing is off by default, aimed at a local collector', () => {
  assert.deepEqual(loadConfig({ env: {} }).tracing, {
    enabled: false,
    endpoint: 'http://localhost:4318/v1/traces',
    serviceName: 'portcullis',
    sampleRatio: 1,
  });
});

test('the file turns it on; the standard OTEL_ variables win over the file', () => {
  assert.deepEqual(loadConfig({ file, env: {} }).tracing, {
    enabled: true,
    endpoint: 'http://collector.observability:4318/v1/traces',
    serviceName: 'portcullis',
    sampleRatio: 0.25,
  });
  const c = loadConfig({
    file,
    env: {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otel.example:4318/v1/traces',
      OTEL_SERVICE_NAME: 'portcullis-eu',
      OTEL_TRACES_SAMPLER_ARG: '0.5',
    },
  });
  assert.equal(c.tracing.endpoint, 'https://otel.example:4318/v1/traces');
  assert.equal(c.tracing.serviceName, 'portcullis-eu');
  assert.equal(c.tracing.sampleRatio, 0.5);
  assert.equal(c.tracing.enabled, true);
});

test('OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: the traces path is appended, as the SDKs do', () => {
  const c = loadConfig({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' } });
  assert.equal(c.tracing.endpoint, 'http://collector:4318/v1/traces');
  const both = loadConfig({
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4318/x' },
  });
  assert.equal(both.tracing.endpoint, 'http://t:4318/x');
});

test('PORTCULLIS_TRACING_ENABLED switches it; OTEL_SDK_DISABLED=true turns it off whatever else says', () => {
  assert.equal(loadConfig({ env: { PORTCULLIS_TRACING_ENABLED: 'true' } }).tracing.enabled, true);
  assert.equal(loadConfig({ file, env: { PORTCULLIS_TRACING_ENABLED: 'false' } }).tracing.enabled, false);
  assert.equal(loadConfig({ file, env: { OTEL_SDK_DISABLED: 'true' } }).tracing.enabled, false);
  assert.equal(
    loadConfig({ env: { PORTCULLIS_TRACING_ENABLED: 'true', OTEL_SDK_DISABLED: 'TRUE' } }).tracing.enabled,
    false,
  );
});

test('bad tracing values stop the start with a message that names them', () => {
  const cases: [NodeJS.ProcessEnv, RegExp][] = [
    [{ PORTCULLIS_TRACING_ENABLED: 'yes' }, /PORTCULLIS_TRACING_ENABLED must be true or false, got "yes"/],
    [{ OTEL_TRACES_SAMPLER_ARG: '2' }, /OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1, got "2"/],
    [{ OTEL_TRACES_SAMPLER_ARG: 'half' }, /OTEL_TRACES_SAMPLER_ARG must be a ratio/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'collector:4318' }, /\/tracing\/endpoint must match pattern/],
  ];
  for (const [env, message] of cases)
    assert.throws(
      () => loadConfig({ env }),
      (e) => e instanceof ConfigError && message.test(e.message),
    );
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'tracing: { sampleRatio: 1.5, exporter: zipkin }\n');
  assert.throws(
    () => loadConfig({ file: bad, env: {} }),
    /\/tracing\/sampleRatio must be <= 1.*must NOT have additional properties "exporter"|must NOT have additional properties "exporter".*\/tracing\/sampleRatio must be <= 1/,
  );
});
