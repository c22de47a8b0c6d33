/**
 * A whole service core (real Redis, recorder, policies, tokens, approvals, vault) with the toy shell policy, for
 * driving the spine directly: targets of kind `ssh` (the `ssh` context section), an agent, an approver.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecordingEvent } from '../../extproc/recording/index.ts';
import type { DataPathAdapter } from '../../extproc/streams/index.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

export const TOY_POLICY = `
name: toy-shell
mode: enforce
scope:
  targets:
    kinds: [ssh]
rules:
  - name: read-only
    when: ssh.kind == "exec" && (ssh.command.startsWith("cat ") || ssh.command == "whoami")
    action: allow
  - name: no-rm
    when: ssh.command.startsWith("rm ")
    action: deny
    message: Deleting files is not allowed for agents.
  - name: restarts-need-approval
    when: ssh.command.startsWith("systemctl restart ")
    action: require_approval
    message: Restarting a service needs a human.
    approval:
      group: sre
      grant: once
      ttl: 10m
      hold: 20s
masking:
  - name: pii
    entities: [EMAIL_ADDRESS, CREDIT_CARD]
    strategy: redact
`;

export interface ToyCore {
  svc: TestService;
  redis: TestRedis;
  dir: string;
  /** An agent token for `targets`. */
  token(targets?: string[]): Promise<string>;
  approverToken: string;
  /** Every recorded event of a session, once the recorder has flushed. */
  events(sessionId: string): Promise<RecordingEvent[]>;
  close(): Promise<void>;
}

export const UPSTREAM_KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\ntoy-upstream-key-7f3a\n-----END OPENSSH PRIVATE KEY-----\n';

export async function startToyCore(adapters: DataPathAdapter[] = []): Promise<ToyCore> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-spine-'));
  writeFileSync(join(dir, 'key'), UPSTREAM_KEY);
  const redis = await startRedis({ appendonly: false });
  const svc = await startTestService({
    redisUrl: redis.url,
    adapters,
    config: { bootstrap: { policies: [], targets: [] } },
  });
  const admin = svc.adminToken;
  const must = async (r: Promise<{ status: number; body: any }>): Promise<any> => {
    const res = await r;
    if (res.status >= 300) throw new Error(JSON.stringify(res.body));
    return res.body;
  };
  await must(svc.call(admin, 'POST', '/v1/policies', { source: TOY_POLICY }));
  await must(
    svc.call(admin, 'POST', '/v1/targets', {
      name: 'shell-1',
      kind: 'ssh',
      address: '127.0.0.1:22',
      credential: { kind: 'ssh-key', user: 'ops', privateKeyRef: `file:${join(dir, 'key')}` },
    }),
  );
  await must(
    svc.call(admin, 'POST', '/v1/targets', {
      name: 'shell-nokey',
      kind: 'ssh',
      address: '127.0.0.1:22',
      credential: { kind: 'ssh-key', user: 'ops', privateKeyRef: `file:${join(dir, 'missing')}` },
    }),
  );
  await must(
    svc.call(admin, 'POST', '/v1/targets', {
      name: 'shell-token',
      kind: 'ssh',
      address: '127.0.0.1:22',
      credential: { kind: 'static-token', tokenRef: `file:${join(dir, 'key')}` },
    }),
  );
  await must(svc.call(admin, 'POST', '/v1/agents', { id: 'toy-agent', groups: ['agents'] }));
  const approver = await svc.principal('alice', ['approver'], ['sre']);
  await svc.core.targets.refresh();
  await svc.core.policies.reload();
  return {
    svc,
    redis,
    dir,
    approverToken: approver.token,
    token: async (targets = ['shell-1', 'shell-nokey', 'shell-token']) =>
      (await must(svc.call(admin, 'POST', '/v1/tokens', { agent: 'toy-agent', targets, ttl: '10m' }))).token,
    async events(sessionId) {
      await svc.core.recorder.flush();
      return (await must(svc.call(admin, 'GET', `/v1/sessions/${sessionId}/events?limit=10000`))).events;
    },
    async close() {
      await svc.close();
      await redis.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
