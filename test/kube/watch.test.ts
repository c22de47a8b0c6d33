/**
 * Watches through the Envoy stand-in (envoy/portcullis.yaml) with the bundled policy: events reach the client while
 * the watch is still open (STREAMED, not buffered until the end), a Secret's data and PII in any watched object are
 * masked, and an event the API server writes in two chunks split mid-value (watchSplitAt) leaks nothing at the
 * boundary. Bounded: each watch is closed by the test once the events it waits for have arrived. Every wait is for an
 * event (a line on the client, a watch subscription upstream); the time limits only keep a broken build from hanging.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startKubeStack, type KubeStack } from './kube-stack.ts';
import type { EnvoyStandIn } from '../envoy/stand-in.ts';
import { waitFor } from '../harness/ports.ts';
import { findResource } from '../kube-apiserver/discovery.ts';
import type { KubectlEnv } from '../kube-apiserver/kubectl.ts';
import { DB_SECRET_PLAIN, type KubeObject } from '../kube-apiserver/objects.ts';
import type { KubeApiServer } from '../kube-apiserver/server.ts';

const UPSTREAM_TOKEN = 'watch-upstream-token-8a03';
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const ROTATED = { password: 'R0tated-Pa55w0rd!', 'admin-email': 'oncall.lead@example.com' };
const SUPPORT_EMAIL = 'support@example.com';
const NEW_EMAIL = 'escalations.desk@example.com';
/** Values the API server writes split in the middle, one in each chunk (base64 for Secrets, plain for PII). */
const SPLIT_IN = [NEW_EMAIL, b64(ROTATED.password), b64(DB_SECRET_PLAIN.password), SUPPORT_EMAIL];
/** Everything that must never reach a client, in any encoding it could travel in. */
const PLAIN = [...Object.values(DB_SECRET_PLAIN), ...Object.values(ROTATED), SUPPORT_EMAIL, NEW_EMAIL].filter(
  (v) => v.length > 3,
);
const FORBIDDEN = [...PLAIN, ...PLAIN.map(b64)];
/** Only a guard against hanging: each wait ends as soon as its event happens. */
const HANG_GUARD_MS = 60_000;

let api: KubeApiServer;
let envoy: EnvoyStandIn;
let kubectl: KubectlEnv;
let agentToken = '';
let stack: KubeStack;
const secrets = findResource('', 'v1', 'secrets')!;
const configmaps = findResource('', 'v1', 'configmaps')!;

before(async () => {
  stack = await startKubeStack({
    policies: ['examples/policies/kubernetes-guardrails.yaml'],
    agent: 'watcher',
    vaultToken: UPSTREAM_TOKEN,
    credential: 'static-token',
    redis: { appendonly: false },
    api: {
      // Mid-value: half of the value in each chunk; events without one are split in half.
      watchSplitAt: (line) => {
        const v = SPLIT_IN.find((s) => line.includes(s));
        return v ? line.indexOf(v) + Math.floor(v.length / 2) : Math.floor(line.length / 2);
      },
    },
  });
  ({ api, envoy, kubectl, agentToken } = stack);
});

after(() => stack?.close());

/** An open raw watch through the stand-in: its status and what has arrived so far, whether it has ended, a way to stop. */
interface RawWatch {
  status: () => number;
  text: () => string;
  ended: () => boolean;
  close: () => void;
}

/** Returns at once: a watch whose headers never come (a buffered response) must fail the test, not hang it. */
function rawWatch(path: string): RawWatch {
  let status = 0;
  let text = '';
  let ended = false;
  const req = https.get(
    `${envoy.url}${path}`,
    { ca: envoy.caPem, agent: false, headers: { authorization: `Bearer ${agentToken}`, accept: 'application/json' } },
    (res) => {
      status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('close', () => {
        ended = true;
      });
    },
  );
  req.on('error', () => {
    ended = true;
  });
  return { status: () => status, text: () => text, ended: () => ended, close: () => req.destroy() };
}

/** Complete event lines received so far, parsed (a partial last line is left out). */
function eventsOf(text: string): { type: string; object: KubeObject }[] {
  return text
    .split('\n')
    .slice(0, -1)
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

function assertNothingLeaks(text: string): void {
  for (const v of FORBIDDEN) assert.ok(!text.includes(v), `a watched value reached the client: ${v.slice(0, 4)}…`);
}

function assertSecretMasked(o: KubeObject): void {
  const data = o.data as Record<string, string>;
  assert.ok(Object.keys(data).length > 0);
  for (const [k, v] of Object.entries(data))
    assert.match(Buffer.from(v, 'base64').toString('utf8'), /REDACTED/, `data.${k}`);
}

test('a raw Secret watch streams events as they happen, each split mid-value upstream, with every data value masked', async () => {
  const w = rawWatch('/api/v1/namespaces/prod/secrets?watch=true');
  try {
    await waitFor(
      () => eventsOf(w.text()).some((e) => e.type === 'ADDED' && e.object.metadata.name === 'db'),
      HANG_GUARD_MS,
      'the ADDED event for prod/db',
    );
    // The ADDED event is written right after the response headers; if both halves arrive before the processor has
    // answered the response headers, Envoy (and the stand-in) sends them as one chunk (B.14). The MODIFIED event
    // comes once the watch is streaming, so its halves reach the processor as two messages whatever the timing.
    const sentBefore = envoy.counters.get('stream_msgs_sent');
    const db = structuredClone(api.store.get(secrets, 'prod', 'db')!);
    db.metadata.labels = { ...db.metadata.labels, rotated: 'yes' };
    db.data = {
      ...(db.data as Record<string, string>),
      password: b64(ROTATED.password),
      'admin-email': b64(ROTATED['admin-email']),
    };
    api.store.put(secrets, db);
    const modified = (await waitFor(
      () => eventsOf(w.text()).find((e) => e.type === 'MODIFIED'),
      HANG_GUARD_MS,
      'the MODIFIED event',
    ))!;
    assert.ok(!w.ended(), 'the MODIFIED event arrived while the watch was still open');
    assert.equal(w.status(), 200);
    assert.equal(modified.object.metadata.labels?.rotated, 'yes');
    // The MODIFIED event reached the processor as (at least) two body chunks: the split was really there to mask across.
    const sent = envoy.counters.get('stream_msgs_sent') - sentBefore;
    assert.ok(sent >= 2, `${sent} ext_proc messages for the split MODIFIED event`);

    const events = eventsOf(w.text());
    for (const e of events) assertSecretMasked(e.object);
    assertNothingLeaks(w.text());
  } finally {
    w.close();
  }
});

test('PII in a watched ConfigMap is masked, an e-mail address split across chunks included', async () => {
  const w = rawWatch('/api/v1/namespaces/prod/configmaps?watch=1');
  try {
    await waitFor(
      () => eventsOf(w.text()).some((e) => e.object.metadata.name === 'app-config'),
      HANG_GUARD_MS,
      'the ADDED event for app-config',
    );
    const cm = structuredClone(api.store.get(configmaps, 'prod', 'app-config')!);
    // Outside `data` (which the path rule redacts whole): only PII detection can catch it.
    cm.metadata.annotations = { team: 'payments', contact: NEW_EMAIL };
    api.store.put(configmaps, cm);
    const modified = (await waitFor(
      () => eventsOf(w.text()).find((e) => e.type === 'MODIFIED'),
      HANG_GUARD_MS,
      'the MODIFIED event',
    ))!;
    assert.ok(!w.ended(), 'the MODIFIED event arrived while the watch was still open');
    assert.equal(w.status(), 200);
    const annotations = modified.object.metadata.annotations!;
    assert.equal(annotations.team, 'payments', 'values without PII pass unchanged');
    assert.notEqual(annotations.contact, NEW_EMAIL);
    assert.match(annotations.contact, /\*{4}/, 'masked by the e-mail rule (partial)');
    assertNothingLeaks(w.text());
  } finally {
    w.close();
  }
});

/** A running `kubectl … -w`: its output so far, and a way to stop it (a watch never ends on its own). */
interface KubectlWatch {
  stdout: () => string;
  /** True once kubectl's watch is subscribed at the API server (so a change from now on reaches it). */
  live: () => boolean;
  stop: () => Promise<{ stdout: string; stderr: string }>;
}

function kubectlWatch(args: string[]): KubectlWatch {
  const subscriptionsBefore = api.store.subscriptions;
  const child = spawn('kubectl', ['--kubeconfig', kubectl.kubeconfig, ...args], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: kubectl.dir,
      KUBECACHEDIR: join(kubectl.dir, 'cache'),
      KUBECONFIG: kubectl.kubeconfig,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    stdout: () => stdout,
    live: () => api.store.subscriptions > subscriptionsBefore,
    stop: async () => {
      child.kill('SIGTERM');
      await closed;
      return { stdout, stderr };
    },
  };
}

/**
 * kubectl lists first, then watches from the list's resourceVersion; the stand-in replays nothing from there, so the
 * change is made once kubectl's watch is subscribed at the API server (not merely requested: the subscription comes
 * after the request is read), and then it is waited for on kubectl's output.
 */
async function changeWhenLive(w: KubectlWatch, change: () => void, seen: (stdout: string) => boolean): Promise<void> {
  await waitFor(() => w.live(), HANG_GUARD_MS, "kubectl's watch to be subscribed upstream");
  change();
  try {
    await waitFor(() => seen(w.stdout()), HANG_GUARD_MS, "the change on kubectl's output");
  } catch (err) {
    throw new Error(`${(err as Error).message}\nstdout: ${w.stdout()}`);
  }
}

test('kubectl get secrets -n prod -w -o json: streamed events, Secret data masked', async () => {
  const w = kubectlWatch(['get', 'secrets', '-n', 'prod', '-w', '-o', 'json']);
  let out: { stdout: string; stderr: string };
  try {
    await changeWhenLive(
      w,
      () => {
        const db = structuredClone(api.store.get(secrets, 'prod', 'db')!);
        db.metadata.labels = { ...db.metadata.labels, 'rotated-by': 'kubectl-watch' };
        db.data = { ...(db.data as Record<string, string>), password: b64(ROTATED.password) };
        api.store.put(secrets, db);
      },
      (stdout) => stdout.includes('"rotated-by": "kubectl-watch"'),
    );
  } finally {
    out = await w.stop();
  }
  assertNothingLeaks(out.stdout);
  const passwords = [...out.stdout.matchAll(/"password": "([^"]+)"/g)].map((m) =>
    Buffer.from(m[1], 'base64').toString('utf8'),
  );
  assert.ok(passwords.length >= 2, `the listed Secret and at least one watch event: ${out.stdout}`);
  for (const v of passwords) assert.match(v, /REDACTED/);
});

test('kubectl get secrets -n prod -w: table rows stream, a change appears while the watch runs', async () => {
  const w = kubectlWatch(['get', 'secrets', '-n', 'prod', '-w']);
  let out: { stdout: string; stderr: string };
  try {
    await changeWhenLive(
      w,
      () => {
        const db = structuredClone(api.store.get(secrets, 'prod', 'db')!);
        db.metadata.labels = { ...db.metadata.labels, touched: 'yes' };
        api.store.put(secrets, db);
      },
      (stdout) => (stdout.match(/^db\s/gm) ?? []).length >= 2,
    );
  } finally {
    out = await w.stop();
  }
  assert.match(out.stdout, /^NAME\s+TYPE\s+DATA\s+AGE/m);
  assertNothingLeaks(out.stdout);
});
