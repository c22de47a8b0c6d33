/**
 * `portcullis serve` runs the SSH gateway from the service configuration: its host key under the data directory,
 * generated once and the same after a restart, served on GET /v1/listeners.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { dataPathAdapters } from '../../extproc/service/adapters.ts';
import { loadConfig } from '../../extproc/service/config.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService } from '../harness/service.ts';

let redis: TestRedis;
let dataDir: string;
before(async () => {
  redis = await startRedis();
  dataDir = mkdtempSync(join(tmpdir(), 'portcullis-serve-ssh-'));
});
after(async () => {
  await redis?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function gatewayKey(): Promise<{ hostKey: string; fingerprint: string }> {
  const config = loadConfig({ env: { PORTCULLIS_SSH_PORT: '0' }, overrides: { dataDir } });
  const svc = await startTestService({
    redisUrl: redis.url,
    adapters: dataPathAdapters(config),
    config: { bootstrap: { policies: [], targets: [] } },
  });
  try {
    const r = await svc.call(svc.adminToken, 'GET', '/v1/listeners');
    const ssh = (r.body as { name: string; address: string; details: { hostKey: string; fingerprint: string } }[]).find(
      (l) => l.name === 'ssh',
    );
    assert.ok(ssh, JSON.stringify(r.body));
    assert.match(ssh.address, /^127\.0\.0\.1:\d+$/);
    return ssh.details;
  } finally {
    await svc.close();
  }
}

test('the configured gateway keeps its host key in the data directory across restarts', async () => {
  const first = await gatewayKey();
  assert.ok(existsSync(join(dataDir, 'ssh', 'host_ed25519_key')));
  assert.match(first.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  const second = await gatewayKey();
  assert.deepEqual(second, first);
});
