/**
 * Deployment files (issue 20): the kustomize overlays render with `kubectl kustomize` and every object validates
 * against the Kubernetes schemas (kubernetes-models); the pieces agree with each other and with the service (the
 * config a ConfigMap carries loads, probes and Envoy point at ports the service listens on, Envoy's bootstrap passes
 * the proto check and its files are mounted); the compose stack's structure (checked here, since `docker compose
 * config` needs the compose plugin, which this machine's docker client lacks).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../extproc/service/config.ts';
import { checkEnvoyConfigText, formatProblems } from '../envoy/config-check.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const OVERLAYS = ['bundled-redis', 'external-redis'];

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: any };

function render(overlay: string): K8sObject[] {
  const text = execFileSync('kubectl', ['kustomize', join(ROOT, 'deploy/overlays', overlay)], { encoding: 'utf8' });
  return parseAllDocuments(text).map((d) => d.toJSON() as K8sObject);
}

/** The kubernetes-models class for an object: kubernetes-models/<group>/<version>/<Kind> ("v1" for the core group). */
async function validate(obj: K8sObject): Promise<void> {
  const modulePath = `kubernetes-models/${obj.apiVersion}/${obj.kind}`;
  const mod = (await import(modulePath)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = mod[obj.kind];
  assert.ok(Model, `no schema for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

const find = (objs: K8sObject[], kind: string, name: string): K8sObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name.startsWith(name));
  assert.ok(o, `${kind} ${name}`);
  return o;
};

for (const overlay of OVERLAYS) {
  describe(`deploy/overlays/${overlay}`, () => {
    const objects = render(overlay);

    test('every object validates against the Kubernetes schemas', async () => {
      assert.ok(objects.length >= 8, `${objects.length} objects`);
      for (const o of objects) {
        try {
          await validate(o);
        } catch (err) {
          assert.fail(`${o.kind} ${o.metadata.name}: ${(err as Error).message}`);
        }
      }
    });

    test('the service config in the ConfigMap loads, and probes and the Service use its ports', () => {
      const cm = find(objects, 'ConfigMap', 'portcullis-config');
      const deployment = find(objects, 'Deployment', 'portcullis');
      const container = deployment.spec.template.spec.containers[0];
      const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'config');
      const configPath = container.env.find((e: { name: string }) => e.name === 'PORTCULLIS_CONFIG').value as string;
      assert.equal(configPath, `${mount.mountPath}/portcullis.yaml`);
      const volume = deployment.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'config');
      assert.equal(volume.configMap.name, cm.metadata.name, 'the generated (hashed) name is referenced');
      const file = join(ROOT, 'deploy/base/portcullis-config.yaml');
      const config = loadConfig({ file, env: { REDIS_URL: 'redis://:pw@redis:6379' } });
      assert.equal(readFileSync(file, 'utf8'), cm.data['portcullis.yaml']);
      assert.equal(container.readinessProbe.grpc.port, config.grpc.port);
      const ports = Object.fromEntries(
        container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
      );
      assert.deepEqual(ports, { grpc: config.grpc.port, admin: config.admin.port, metrics: config.metrics.port });
      assert.equal(config.grpc.host, '0.0.0.0');
      assert.ok(container.securityContext.allowPrivilegeEscalation === false);
      assert.ok(deployment.spec.template.spec.securityContext.runAsNonRoot);
      const redisUrl = container.env.find((e: { name: string }) => e.name === 'REDIS_URL');
      assert.deepEqual(redisUrl.valueFrom.secretKeyRef, { name: 'portcullis-redis', key: 'url' });
    });

    test("Envoy's bootstrap passes the proto check and reaches the service; its files are mounted", () => {
      const cm = find(objects, 'ConfigMap', 'envoy-bootstrap');
      const bootstrapText = cm.data['envoy.yaml'] as string;
      const problems = checkEnvoyConfigText(bootstrapText);
      assert.deepEqual(problems, [], formatProblems(problems));
      const bootstrap = parse(bootstrapText);
      const extproc = bootstrap.static_resources.clusters.find(
        (c: { name: string }) => c.name === 'portcullis_extproc',
      );
      const address = extproc.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
      const service = find(objects, 'Service', 'portcullis');
      assert.equal(address.address, service.metadata.name);
      assert.ok(service.spec.ports.some((p: { port: number }) => p.port === address.port_value));
      const envoy = find(objects, 'Deployment', 'envoy');
      const mounts: { mountPath: string }[] = envoy.spec.template.spec.containers[0].volumeMounts;
      const files = [...bootstrapText.matchAll(/(?:filename|path): (\/etc\/portcullis\/[^\s,}]+)/g)].map((m) => m[1]);
      const sds = parse(cm.data['gateway-cert.yaml'] as string);
      files.push(
        sds.resources[0].tls_certificate.certificate_chain.filename,
        sds.resources[0].tls_certificate.private_key.filename,
      );
      assert.ok(files.length >= 4, files.join(' '));
      for (const f of files)
        assert.ok(
          mounts.some((m) => f.startsWith(m.mountPath)),
          `${f} is not mounted`,
        );
      const volumes = envoy.spec.template.spec.volumes as { name: string; secret?: { secretName: string } }[];
      assert.ok(volumes.some((v) => v.secret?.secretName === 'portcullis-gateway-tls'));
      assert.equal(envoy.spec.template.spec.containers[0].image.split(':')[0], 'envoyproxy/envoy');
    });
  });
}

test('bundled-redis: Redis persists (append-only, on a claim) and requires the password from the Secret', () => {
  const redis = find(render('bundled-redis'), 'StatefulSet', 'redis');
  const c = redis.spec.template.spec.containers[0];
  assert.deepEqual(c.args.slice(0, 4), ['--requirepass', '$(REDIS_PASSWORD)', '--appendonly', 'yes']);
  assert.deepEqual(c.env[0].valueFrom.secretKeyRef, { name: 'portcullis-redis', key: 'password' });
  assert.equal(redis.spec.volumeClaimTemplates[0].metadata.name, c.volumeMounts[0].name);
});

test("the manifests' Envoy files are the ones in envoy/ (regenerate: node scripts/envoy-k8s-bootstrap.mjs)", () => {
  const r = execFileSync(process.execPath, [join(ROOT, 'scripts/envoy-k8s-bootstrap.mjs'), '--check'], {
    encoding: 'utf8',
  });
  assert.equal(r, '');
});

test("the image's own config file loads", () => {
  const config = loadConfig({
    file: join(ROOT, 'deploy/image/portcullis.yaml'),
    env: { REDIS_URL: 'redis://redis:6379' },
  });
  assert.equal(config.dataDir, '/var/lib/portcullis');
  assert.deepEqual(config.bootstrap, { policies: [], targets: [] });
});

describe('envoy/docker-compose.yaml', () => {
  const text = readFileSync(join(ROOT, 'envoy/docker-compose.yaml'), 'utf8');
  const compose = parse(text) as { services: Record<string, any>; volumes: Record<string, unknown> };

  test('every variable it uses is documented at the top, with a required-variable message where needed', () => {
    const used = new Set([...text.matchAll(/\$\{([A-Z_]+)/g)].map((m) => m[1]));
    const header = text.split('\nname:')[0];
    assert.ok(used.size >= 3);
    for (const v of used) assert.match(header, new RegExp(`#   ${v} +(required|optional) `), v);
    for (const v of ['REDIS_PASSWORD', 'PORTCULLIS_KUBE_TOKEN'])
      assert.match(text, new RegExp(`\\$\\{${v}:\\?set ${v}`), `${v} must stop compose when unset`);
  });

  test('the service runs the image built from the Dockerfile, not a bind-mounted checkout; every service is health-checked', () => {
    const svc = compose.services.portcullis;
    assert.deepEqual(svc.build, { context: '..', dockerfile: 'Dockerfile' });
    assert.ok(!('command' in svc) || !/npx|npm/.test(String(svc.command)));
    for (const v of svc.volumes as string[]) assert.doesNotMatch(v, /^\.\.:/, 'no checkout mounted as the app');
    // A one-shot (a service another waits on to complete) has nothing to health-check.
    const oneShots = new Set(
      Object.values(compose.services).flatMap((s) =>
        Object.entries((s.depends_on ?? {}) as Record<string, { condition: string }>)
          .filter(([, d]) => d.condition === 'service_completed_successfully')
          .map(([n]) => n),
      ),
    );
    for (const [name, s] of Object.entries(compose.services))
      if (!oneShots.has(name)) assert.ok(s.healthcheck?.test, `${name} has a healthcheck`);
    assert.equal(compose.services.envoy.depends_on.portcullis.condition, 'service_healthy');
    assert.equal(svc.depends_on.redis.condition, 'service_healthy');
  });

  test('Redis persists and requires a password; the service config it mounts loads', () => {
    const redis = compose.services.redis;
    assert.ok(redis.command.includes('--requirepass') && redis.command.includes('--appendonly'));
    assert.ok((redis.volumes as string[]).some((v) => v.endsWith(':/data') && v.split(':')[0] in compose.volumes));
    assert.match(compose.services.portcullis.environment.REDIS_URL, /^redis:\/\/:\$\{REDIS_PASSWORD/);
    const mounted = (compose.services.portcullis.volumes as string[]).find((v) =>
      v.includes(':/etc/portcullis/compose.yaml'),
    );
    assert.ok(mounted);
    const config = loadConfig({
      file: join(ROOT, 'envoy', mounted.split(':')[0]),
      env: { REDIS_URL: 'redis://r:6379' },
    });
    assert.equal(config.grpc.host, '0.0.0.0');
  });

  test("Envoy's admin is reachable where the stack says: rebound inside the container, published on loopback", () => {
    const envoy = compose.services.envoy;
    assert.ok((envoy.ports as string[]).includes('127.0.0.1:9901:9901'));
    const i = envoy.command.indexOf('--config-yaml');
    assert.match(envoy.command[i + 1], /address: 0\.0\.0\.0, port_value: 9901/);
    for (const dir of ['/etc/portcullis/sds', '/etc/portcullis/tls', '/etc/portcullis/kube', '/etc/portcullis/wasm'])
      assert.ok(
        (envoy.volumes as string[]).some((v) => v.split(':')[1] === dir),
        dir,
      );
    const published = Object.values(compose.services).flatMap((s) => (s.ports ?? []) as string[]);
    for (const p of published)
      if (!p.startsWith('127.0.0.1:')) assert.equal(p, '6443:6443', `${p} is published to every interface`);
  });
});
