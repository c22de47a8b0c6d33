import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { checkEnvoyConfig, checkEnvoyConfigFile, formatProblems, isEnvoyBootstrap } from './config-check.ts';

const ENVOY_DIR = new URL('../../envoy/', import.meta.url).pathname;

/** Every YAML file in envoy/ that is an Envoy bootstrap (docker-compose.yaml is not). */
function bootstrapFiles(): string[] {
  return readdirSync(ENVOY_DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(ENVOY_DIR, f))
    .filter((f) => isEnvoyBootstrap(parse(readFileSync(f, 'utf8'))));
}

function portcullisConfig(): Record<string, any> {
  return parse(readFileSync(join(ENVOY_DIR, 'portcullis.yaml'), 'utf8'));
}

/** The HTTP ext_proc filter's typed_config of the kubernetes listener. */
function kubeExtProc(cfg: Record<string, any>): Record<string, any> {
  return kubeHttpFilters(cfg).find((f) => f.name === 'envoy.filters.http.ext_proc')?.typed_config;
}

function kubeHttpFilters(cfg: Record<string, any>): Record<string, any>[] {
  return cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
}

describe('envoy/ bootstrap configs against Envoy API protos', () => {
  test('envoy/ holds at least portcullis.yaml as a bootstrap, and not the compose file', () => {
    const files = bootstrapFiles().map((f) => f.slice(ENVOY_DIR.length));
    assert.ok(files.includes('portcullis.yaml'));
    assert.ok(!files.includes('docker-compose.yaml'));
  });

  for (const file of bootstrapFiles()) {
    test(`${file.slice(ENVOY_DIR.length)} passes the strict proto check`, () => {
      const problems = checkEnvoyConfigFile(file);
      assert.deepEqual(problems, [], formatProblems(problems));
    });
  }

  test('the kube ext_proc filter is configured as the architecture requires', () => {
    const cfg = portcullisConfig();
    const ep = kubeExtProc(cfg);
    assert.equal(ep.failure_mode_allow, false);
    assert.equal(ep.allow_mode_override, true);
    assert.deepEqual(ep.processing_mode, {
      request_header_mode: 'SEND',
      request_body_mode: 'BUFFERED',
      response_header_mode: 'SEND',
      response_body_mode: 'BUFFERED',
      request_trailer_mode: 'SKIP',
      response_trailer_mode: 'SKIP',
    });
    // The proxy-wasm filter (V8, local file) comes first, so what it refuses never costs a gRPC call.
    const [wasm, extProc] = kubeHttpFilters(cfg).map((f) => f.name);
    assert.deepEqual([wasm, extProc], ['envoy.filters.http.wasm', 'envoy.filters.http.ext_proc']);
    const vm = kubeHttpFilters(cfg)[0].typed_config.config.vm_config;
    assert.equal(vm.runtime, 'envoy.wasm.runtime.v8');
    assert.match(vm.code.local.filename, /filter\.wasm$/);
    const layer = cfg.layered_runtime.layers[0].static_layer;
    assert.equal(layer['envoy.reloadable_features.ext_proc_graceful_grpc_close'], true);
  });
});

describe('config check rejects what Envoy rejects', () => {
  const cases: [string, (c: Record<string, any>) => void, RegExp, RegExp][] = [
    [
      'an unknown field',
      (c) => {
        kubeExtProc(c).procesing_mode = {};
      },
      /http_filters\[1\]\.typed_config\.procesing_mode$/,
      /unknown field "procesing_mode"/,
    ],
    [
      'an unknown @type',
      (c) => {
        c.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[2].typed_config['@type'] =
          'type.googleapis.com/envoy.extensions.filters.http.router.v3.Ruoter';
      },
      /http_filters\[2\]\.typed_config\.@type$/,
      /unknown @type .*Ruoter/,
    ],
    [
      'a bad enum name',
      (c) => {
        kubeExtProc(c).processing_mode.request_body_mode = 'FULL_DUPLEX_STREAMED';
      },
      /processing_mode\.request_body_mode$/,
      /bad enum value "FULL_DUPLEX_STREAMED"/,
    ],
    [
      'a field newer than the 1.31 API',
      (c) => {
        kubeExtProc(c).status_on_error = { code: 503 };
      },
      /typed_config\.status_on_error$/,
      /unknown field/,
    ],
    [
      'two members of a oneof',
      (c) => {
        kubeExtProc(c).grpc_service.google_grpc = { target_uri: 'x:1', stat_prefix: 'x' };
      },
      /http_filters\[1\]\.typed_config\.grpc_service$/,
      /oneof "target_specifier" has more than one member/,
    ],
    [
      'an empty stat_prefix',
      (c) => {
        c.static_resources.listeners[2].filter_chains[0].filters[1].typed_config.stat_prefix = '';
      },
      /listeners\[2\]\.filter_chains\[0\]\.filters\[1\]\.typed_config\.stat_prefix$/,
      /must not be empty/,
    ],
    [
      'a missing required message',
      (c) => {
        delete kubeExtProc(c).grpc_service;
      },
      /http_filters\[1\]\.typed_config\.grpc_service$/,
      /is required/,
    ],
    [
      'a bad duration',
      (c) => {
        kubeExtProc(c).message_timeout = '500ms';
      },
      /typed_config\.message_timeout$/,
      /bad duration/,
    ],
    [
      'a duration over its bound',
      (c) => {
        kubeExtProc(c).max_message_timeout = '7200s';
      },
      /typed_config\.max_message_timeout$/,
      /duration must be lte/,
    ],
    [
      'an unknown field in the network ext_proc (project proto)',
      (c) => {
        c.static_resources.listeners[1].filter_chains[0].filters[0].typed_config.process_new_connection = true;
      },
      /listeners\[1\]\.filter_chains\[0\]\.filters\[0\]\.typed_config\.process_new_connection$/,
      /unknown field/,
    ],
  ];
  for (const [name, mutate, pathRe, messageRe] of cases) {
    test(name, () => {
      const cfg = portcullisConfig();
      mutate(cfg);
      const problems = checkEnvoyConfig(cfg);
      assert.ok(
        problems.some((p) => pathRe.test(p.path) && messageRe.test(p.message)),
        `expected a problem at ${pathRe} matching ${messageRe}, got:\n${formatProblems(problems)}`,
      );
    });
  }

  test("accepts Envoy's lenient forms: quoted bools, {seconds} durations, a single value for a list", () => {
    const cfg = portcullisConfig();
    const ep = kubeExtProc(cfg);
    ep.failure_mode_allow = 'false';
    ep.max_message_timeout = { seconds: 60 };
    ep.message_timeout = { seconds: '0', nanos: 500000000 };
    cfg.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context.alpn_protocols =
      'h2';
    const problems = checkEnvoyConfig(cfg);
    assert.deepEqual(problems, [], formatProblems(problems));
  });
});

describe('envoy --mode validate', () => {
  const hasEnvoy = spawnSync('sh', ['-c', 'command -v envoy'], { encoding: 'utf8' }).status === 0;
  for (const file of bootstrapFiles()) {
    test(`envoy --mode validate ${file.slice(ENVOY_DIR.length)}`, (t) => {
      if (!hasEnvoy) {
        t.skip('no envoy binary on PATH');
        return;
      }
      // Envoy reads the certificate files while validating: point the config at throwaway ones.
      const dir = mkdtempSync(join(tmpdir(), 'portcullis-envoy-validate-'));
      try {
        mkdirSync(join(dir, 'tls'));
        mkdirSync(join(dir, 'kube'));
        execFileSync('sh', [join(ENVOY_DIR, 'make-cert.sh'), join(dir, 'tls')]);
        writeFileSync(join(dir, 'kube', 'ca.crt'), readFileSync(join(dir, 'tls', 'tls.crt')));
        const cfgFile = join(dir, 'envoy.yaml');
        writeFileSync(cfgFile, readFileSync(file, 'utf8').replaceAll('/etc/portcullis/', `${dir}/`));
        const r = spawnSync('envoy', ['--mode', 'validate', '-c', cfgFile], { encoding: 'utf8' });
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
