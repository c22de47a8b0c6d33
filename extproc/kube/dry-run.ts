/**
 * Admission-grade decisions: the object the API server would store for a write, obtained the way an admission webhook
 * sees it, by sending the same request upstream with `dryRun=All` (the API server decodes any body, applies any patch
 * type, defaults and validates, and persists nothing). For an update or patch the current object is read first, as
 * `oldObject`. Both go with the target's own credential and ask for JSON, so the gateway never decodes protobuf.
 *
 * Three outcomes: the objects; the API server's own refusal (a `Status`, which goes back to the agent as is, since the
 * real write would have met the same answer); or a failure of any other kind, which fails the write closed.
 */
import http from 'node:http';
import https from 'node:https';
import type { K8sContext, UpstreamAccess } from '../spine/index.ts';

/** Write verbs whose `dryRun` the API server honours, on the object itself or these subresources. */
const DRY_RUN_VERBS = new Set(['create', 'update', 'patch']);
const DRY_RUN_SUBRESOURCES = new Set(['', 'status', 'scale']);
/** Larger answers are a failure: no Kubernetes object comes near it (etcd's limit is 1.5 MiB). */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/** Whether a classified request is a write the API server can dry-run (and so has an `object` to show policy). */
export function hasDryRunObject(k8s: K8sContext): boolean {
  return k8s.isResourceRequest && DRY_RUN_VERBS.has(k8s.verb) && DRY_RUN_SUBRESOURCES.has(k8s.subresource);
}

export interface DryRunRequest {
  method: string;
  /** The raw `:path` as the agent sent it, query included. */
  path: string;
  contentType: string | undefined;
  body: Buffer | null;
  /** Read the current object first (update, patch). */
  withOldObject: boolean;
}

export type DryRunResult =
  | { kind: 'object'; object: unknown; oldObject: unknown }
  /** The API server refused the write itself: its HTTP status and its `Status` body, unchanged. */
  | { kind: 'refused'; status: number; body: Buffer }
  /** Anything else: the gateway cannot know what the write would store. `message` holds no secret. */
  | { kind: 'failed'; message: string };

interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
}

export async function dryRun(
  access: UpstreamAccess,
  req: DryRunRequest,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<DryRunResult> {
  if (access.credential.kind !== 'bearer-token') {
    return { kind: 'failed', message: `the target's credential is a ${access.credential.kind}, not a bearer token` };
  }
  const bearer = `Bearer ${access.credential.token.reveal()}`;
  const q = req.path.indexOf('?');
  const pathOnly = q < 0 ? req.path : req.path.slice(0, q);
  try {
    let oldObject: unknown = null;
    if (req.withOldObject) {
      const current = await send(access, bearer, { method: 'GET', path: pathOnly }, opts);
      if (current.status === 200) {
        const parsed = jsonObject(current);
        if (parsed === undefined) return { kind: 'failed', message: 'the current object is not a JSON object' };
        oldObject = parsed;
      } else if (current.status !== 404) {
        return { kind: 'failed', message: `reading the current object answered HTTP ${current.status}` };
      }
    }
    // The agent's own query (fieldManager, force, fieldValidation…) with dryRun=All added: a dryRun value the agent
    // already sent stays, and a value the API server rejects makes it refuse this request as it would the real one.
    const path = `${req.path}${q < 0 ? '?' : '&'}dryRun=All`;
    const answer = await send(
      access,
      bearer,
      { method: req.method, path, contentType: req.contentType, body: req.body },
      opts,
    );
    if (answer.status >= 200 && answer.status < 300) {
      const object = jsonObject(answer);
      if (object === undefined) return { kind: 'failed', message: 'the dry run did not answer with a JSON object' };
      return { kind: 'object', object, oldObject };
    }
    // 401 means the gateway's own credential was refused: the gateway's problem, not an answer about the write.
    if (answer.status >= 400 && answer.status < 500 && answer.status !== 401) {
      const status = jsonObject(answer) as { kind?: unknown } | undefined;
      if (status?.kind === 'Status') return { kind: 'refused', status: answer.status, body: answer.body };
    }
    return { kind: 'failed', message: `the dry run answered HTTP ${answer.status}` };
  } catch (err) {
    return { kind: 'failed', message: err instanceof Error ? err.message : String(err) };
  }
}

function jsonObject(a: Answer): object | undefined {
  if (!/^application\/json\s*(;|$)/i.test(a.contentType)) return undefined;
  try {
    const v = JSON.parse(a.body.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function send(
  access: UpstreamAccess,
  authorization: string,
  req: { method: string; path: string; contentType?: string; body?: Buffer | null },
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<Answer> {
  const url = new URL(req.path, access.address);
  const headers: Record<string, string | number> = {
    accept: 'application/json',
    'accept-encoding': 'identity',
    authorization,
  };
  if (req.body && req.body.length > 0) {
    headers['content-type'] = req.contentType ?? 'application/json';
    headers['content-length'] = req.body.length;
  }
  const options = { method: req.method, headers, timeout: opts.timeoutMs, signal: opts.signal };
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_ANSWER_BYTES) {
          r.destroy(new Error('the dry run answer is too large'));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          body: Buffer.concat(chunks),
        }),
      );
      res.on('error', reject);
    };
    const r =
      url.protocol === 'https:'
        ? https.request(url, { ...options, ...(access.ca ? { ca: access.ca } : {}) }, onResponse)
        : http.request(url, options, onResponse);
    r.on('timeout', () => r.destroy(new Error(`the dry run took longer than ${opts.timeoutMs} ms`)));
    r.on('error', (err) => reject(new Error(`the dry run could not reach the API server: ${err.message}`)));
    r.end(req.body && req.body.length > 0 ? req.body : undefined);
  });
}
