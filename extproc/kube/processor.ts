/**
 * One Kubernetes API request's worth of ext_proc processing: a processor per gRPC stream, one method per phase. The
 * state says which message it awaits next. Methods return a Reply for the loop (ext-proc-service.ts) to write; they
 * never touch the stream. Refusals are Kubernetes `Status` objects sent as immediate responses; internal faults
 * are thrown (the loop turns them into a gRPC error, so Envoy fails closed).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import {
  actionFingerprint, kubeCanonical, refusalMessage, type ActionForApproval, type ApprovalCheck,
} from '../approvals/index.ts';
import type {
  BodySendMode, HeaderValueOption, HttpBody, HttpHeaders, ProcessingMode, ProcessingRequest, ProcessingResponse,
} from '../envoy-api/index.ts';
import type { Agent, Target } from '../identity/registry.ts';
import type { SecretValue } from '../identity/vault.ts';
import type { CompiledMasking, MaskingEngine } from '../masking/index.ts';
import { EMPTY_SQL, EMPTY_SSH, type K8sContext, type RequestContext } from '../policy/context.ts';
import { decide } from '../policy/evaluate.ts';
import type { Decision } from '../policy/types.ts';
import type { RecordResult } from '../recording/index.ts';
import type { GatewayCore } from '../service/core.ts';
import { isClassifyError } from './classify-error.ts';
import { classifyKubeRequest } from './classify-request.ts';
import { CredentialError, type UpstreamCredentials } from './credentials.ts';
import { bearerOf, bytesOf, durationOf, headerMap, requestMetadata, setHeader } from './envoy-messages.ts';
import { classifyRefusal, refusal, statusDetails, statusResponse, type KubeStatus, type Refusal } from './kube-status.ts';
import type { MaskingPlans } from './masking-plans.ts';
import {
  contentKind, Findings, LogMasker, masksAnything, maskJsonBody, maskTextBody, WatchMasker, type ContentKind,
  type StreamMasker,
} from './response-masking.ts';
import { approvalSummary, maskableAccept, streamingKind } from './request-shape.ts';
import type { SeenSessions } from './seen-sessions.ts';

/** What the processors of one adapter share. */
export interface ProcessorDeps {
  core: GatewayCore;
  credentials: UpstreamCredentials;
  plans: MaskingPlans;
  sessions: SeenSessions;
  engine: () => Promise<MaskingEngine>;
  /** Envoy's max_message_timeout for this listener (0 = overrides are ignored, so no approval hold). */
  maxMessageTimeoutMs: number;
  /** The largest request body parsed for classification (Envoy's buffer limit already answers 413 above its own). */
  maxRequestBodyBytes: number;
}

export type Reply =
  /** Write `message`; `end` = no further message can come on this stream (the loop closes it with OK). */
  | { kind: 'respond'; message: ProcessingResponse; end: boolean }
  /**
   * Write `message` (an override_message_timeout), then wait for `resume()` and handle its reply. The loop aborts
   * `signal` when Envoy ends the stream first (the agent went away), and resume() then rejects without side effects.
   */
  | { kind: 'hold'; message: ProcessingResponse; resume: (signal: AbortSignal) => Promise<Reply> }
  /** End the stream with a gRPC error (Envoy fails closed). */
  | { kind: 'fail'; message: string };

export type Awaiting = 'request_headers' | 'request_body' | 'response_headers' | 'response_body' | 'nothing';

type ResponseMode = 'none' | 'buffered' | 'streamed';

/** Headers the API server honours that would change who the request runs as. */
const IMPERSONATION = /^impersonate-/;
/** Refusals whose decision event the policy path has already recorded. */
const DECIDED_BY_POLICY = new Set(['policy-deny', 'approval-required', 'approval-denied', 'approval-misconfigured', 'upstream-credential']);
/** Margin between the approval hold and the message timeout override, so our answer lands before Envoy's timer. */
const HOLD_MARGIN_MS = 1000;

export class KubeProcessor {
  private awaiting: Awaiting = 'request_headers';
  readonly requestId = `req_${randomUUID()}`;
  private logger: Logger | undefined;
  private metadataSent = false;

  private method = '';
  private path = '';
  private headers = new Map<string, string>();
  private upgrade = false;
  private agent: Agent | undefined;
  private sessionId = '';
  private plan: string = '';
  private masking: CompiledMasking | null = null;
  private responseMode: ResponseMode = 'none';
  private streaming: 'watch' | 'log' | null = null;
  private k8s: K8sContext | undefined;
  private startedAt = 0;

  private response = { status: 0, contentType: '', bytes: 0, sentBytes: 0 };
  private bodyKind: ContentKind = 'other';
  private masker: StreamMasker | undefined;
  private readonly findings = new Findings();
  private outputRecorded = false;

  constructor(private readonly deps: ProcessorDeps, private readonly target: Target | undefined, private readonly targetName: string) {}

  /** The request's logger, made on first use: an allowed request logs nothing, and a pino child costs ~20 µs. */
  private get log(): Logger {
    return this.logger ??= this.deps.core.logger.child({ requestId: this.requestId, target: this.targetName });
  }

  get state(): Awaiting {
    return this.awaiting;
  }

  private transition(to: Awaiting): void {
    if (this.deps.core.logger.isLevelEnabled('trace')) this.log.trace({ from: this.awaiting, to }, 'kube ext_proc state');
    this.awaiting = to;
  }

  /** Dispatches one message from Envoy to its phase, refusing a phase that is not the one awaited. */
  async process(msg: ProcessingRequest): Promise<Reply> {
    switch (msg.request) {
      case 'request_headers': return this.expect('request_headers') ?? this.requestHeaders(msg.request_headers);
      case 'request_body': return this.expect('request_body') ?? this.requestBody(msg.request_body);
      case 'response_headers': return this.expect('response_headers') ?? this.responseHeaders(msg.response_headers);
      case 'response_body': return this.expect('response_body') ?? this.responseBody(msg.response_body);
      // Trailers are configured SKIP; should a deployment send them anyway, they pass unchanged.
      case 'request_trailers': return { kind: 'respond', message: { request_trailers: {} }, end: false };
      case 'response_trailers': return { kind: 'respond', message: { response_trailers: {} }, end: false };
      case undefined: return { kind: 'fail', message: 'ProcessingRequest without a kind' };
      default: {
        const never: never = msg;
        return { kind: 'fail', message: `unknown ProcessingRequest ${JSON.stringify(never)}` };
      }
    }
  }

  private expect(phase: Awaiting): Reply | undefined {
    if (this.awaiting === phase) return undefined;
    return { kind: 'fail', message: `unexpected ${phase} message while awaiting ${this.awaiting}` };
  }

  // ------------------------------------------------------------------------------------------------ request path

  async requestHeaders(h: HttpHeaders): Promise<Reply> {
    this.startedAt = performance.now();
    this.headers = headerMap(h.headers);
    this.method = this.headers.get(':method') ?? '';
    this.path = this.headers.get(':path') ?? '';
    this.upgrade = (this.headers.get('connection') ?? '').toLowerCase().includes('upgrade') && this.headers.has('upgrade');
    const hasBody = !h.end_of_stream && !this.upgrade;
    const target = this.target;
    if (!target) {
      this.log.error('ext_proc stream without a known Kubernetes target (grpc_service.initial_metadata x-portcullis-target); refusing');
      return this.refuse(refusal(500, 'InternalError', 'no-target', 'gateway misconfigured: this listener names no Kubernetes target'));
    }

    const verified = await this.deps.core.tokens.verify(bearerOf(this.headers.get('authorization')), target.name);
    if (!verified.ok) {
      const code = verified.failure === 'out_of_scope' || verified.failure === 'agent_disabled' ? 403 : 401;
      this.log.info({ failure: verified.failure }, 'agent token refused');
      return this.refuse(refusal(code, code === 401 ? 'Unauthorized' : 'Forbidden', `token-${verified.failure}`, verified.message));
    }
    this.agent = verified.agent;
    this.sessionId = verified.token.sessionId;
    this.plan = verified.token.plan;

    if (!this.deps.core.recorder.canAccept(target.name)) return this.refuseUnrecorded();
    if (this.deps.sessions.first(this.sessionId)) {
      this.record('session.start', { agent: this.agent.id, target: target.name, plan: this.plan, tokenId: verified.token.jti });
    }

    const impersonation = [...this.headers.keys()].find((k) => IMPERSONATION.test(k));
    if (impersonation) {
      this.recordAction({ method: this.method, path: this.path });
      return this.refuse(refusal(403, 'Forbidden', 'impersonation',
        `impersonation (${impersonation}) is not allowed through the gateway: requests run as the target's own identity`));
    }
    const encoding = (this.headers.get('content-encoding') ?? '').trim().toLowerCase();
    if (hasBody && encoding !== '' && encoding !== 'identity') {
      this.recordAction({ method: this.method, path: this.path });
      return this.refuse(refusal(415, 'UnsupportedMediaType', 'compressed-body',
        `request bodies with content-encoding ${JSON.stringify(encoding)} cannot be inspected; send them uncompressed`));
    }

    this.masking = this.deps.plans.planFor(this.deps.core.policies.current(), { agent: this.agentContext(), target: this.targetContext() });
    this.streaming = streamingKind(this.path);
    this.responseMode = this.upgrade || !masksAnything(this.masking) ? 'none' : this.streaming ? 'streamed' : 'buffered';

    if (hasBody) {
      // Write verbs are decided on the whole body (BUFFERED); Envoy holds the headers until then, so the header
      // mutations of the body answer still apply (envoy-facts B.3).
      this.transition('request_body');
      return this.respond({ request_headers: {}, mode_override: this.modes('BUFFERED') }, false);
    }
    return this.decideRequest(null, 'request_headers');
  }

  async requestBody(b: HttpBody): Promise<Reply> {
    const body = bytesOf(b.body);
    if (body.length > this.deps.maxRequestBodyBytes) {
      this.recordAction({ method: this.method, path: this.path, bytes: body.length });
      return this.refuse(refusal(413, 'BadRequest', 'body-too-large', `request bodies over ${this.deps.maxRequestBodyBytes} bytes are not accepted by the gateway`));
    }
    return this.decideRequest(body, 'request_body');
  }

  private async decideRequest(body: Buffer | null, phase: 'request_headers' | 'request_body'): Promise<Reply> {
    const target = this.target!;
    const k8s = classifyKubeRequest({
      method: this.method, path: this.path, contentType: this.headers.get('content-type'),
      contentEncoding: this.headers.get('content-encoding'), body,
    });
    if (isClassifyError(k8s)) {
      this.recordAction({ method: this.method, path: this.path });
      return this.refuse(classifyRefusal(k8s));
    }
    this.k8s = k8s;
    const accepted = await this.recordActionOf(k8s, body);
    if (!accepted.accepted) return this.refuseUnrecorded();

    const ctx: RequestContext = {
      protocol: 'kubernetes', agent: this.agentContext(), target: this.targetContext(),
      session: { id: this.sessionId, plan: this.plan }, time: new Date(), k8s, sql: EMPTY_SQL, ssh: EMPTY_SSH,
    };
    const decision = decide(this.deps.core.policies.current(), ctx, target.defaultAction);
    const metrics = this.deps.core.metrics;
    metrics.decisions.inc({ protocol: 'kubernetes', action: decision.action, reason: decision.reason });
    metrics.decisionSeconds.observe({ protocol: 'kubernetes' }, (performance.now() - this.startedAt) / 1000);

    switch (decision.action) {
      case 'allow': {
        this.recordDecision(decision);
        const upstream = await this.upstreamToken();
        return upstream.ok ? this.allow(phase, upstream.token) : upstream.reply;
      }
      case 'deny':
        this.recordDecision(decision);
        return this.refuse(refusal(403, 'Forbidden', 'policy-deny', decision.message), statusDetails(k8s));
      case 'require_approval':
        return this.requireApproval(decision, ctx, body, phase);
      default: {
        const never: never = decision.action;
        throw new Error(`unknown decision ${String(never)}`);
      }
    }
  }

  private async requireApproval(decision: Decision, ctx: RequestContext, body: Buffer | null, phase: 'request_headers' | 'request_body'): Promise<Reply> {
    const k8s = ctx.k8s;
    const requirement = decision.approval;
    if (!requirement || !decision.rule || !decision.policy) {
      this.recordDecision(decision);
      return this.refuse(refusal(403, 'Forbidden', 'approval-misconfigured', decision.message), statusDetails(k8s));
    }
    const query = new URLSearchParams(this.path.includes('?') ? this.path.slice(this.path.indexOf('?') + 1) : '');
    const decoded = k8s.patchType !== '' ? k8s.patch : k8s.body;
    const action: ActionForApproval = {
      agent: { id: ctx.agent.id, groups: ctx.agent.groups, ...(this.agent?.owner ? { owner: this.agent.owner } : {}) },
      target: ctx.target.name,
      protocol: 'kubernetes',
      sessionId: this.sessionId,
      fingerprint: actionFingerprint({
        protocol: 'kubernetes', target: ctx.target.name,
        canonical: kubeCanonical({ method: this.method, path: k8s.path, query, body: decoded ?? (body && body.length > 0 ? body : null) }),
      }),
      summary: approvalSummary(k8s),
      policy: decision.policy,
      policyVersion: decision.policyVersion,
      rule: decision.rule,
      requirement,
    };
    const upstream = await this.upstreamToken();
    if (!upstream.ok) {
      this.recordDecision(decision);
      return upstream.reply;
    }
    const token = upstream.token;
    const holdMs = Math.min(requirement.holdSeconds * 1000, this.deps.maxMessageTimeoutMs - HOLD_MARGIN_MS);
    const settle = async (check: ApprovalCheck, mayHold: boolean): Promise<Reply> => {
      switch (check.status) {
        case 'granted':
          this.recordDecision(decision, { approval: { requestId: check.requestId, status: 'granted', grant: check.grant } });
          return this.allow(phase, token);
        case 'pending':
          if (mayHold && holdMs > 0) {
            // Envoy honours one override per message, and ignores the rest of the response that carries it (B.3).
            return {
              kind: 'hold',
              message: { override_message_timeout: durationOf(holdMs + HOLD_MARGIN_MS) },
              resume: async (signal) => {
                try {
                  return settle(await this.deps.core.approvals.waitForDecision(action, check.requestId, holdMs, signal), false);
                } catch (err) {
                  // The agent went away while held: nothing was consumed, the request stays for its retry.
                  if (signal.aborted) this.recordDecision(decision, { approval: { requestId: check.requestId, status: 'abandoned' } });
                  throw err;
                }
              },
            };
          }
          this.recordDecision(decision, { approval: { requestId: check.requestId, status: 'pending', expiresAt: check.expiresAt } });
          return this.refuse(refusal(403, 'Forbidden', 'approval-required', refusalMessage(check, action, decision.message)), statusDetails(k8s));
        case 'denied':
          this.recordDecision(decision, { approval: { requestId: check.requestId, status: 'denied' } });
          return this.refuse(refusal(403, 'Forbidden', 'approval-denied', refusalMessage(check, action)), statusDetails(k8s));
        default: {
          const never: never = check;
          throw new Error(`unknown approval check ${JSON.stringify(never)}`);
        }
      }
    };
    return settle(await this.deps.core.approvals.check(action), true);
  }

  /**
   * The target's upstream credential, or the refusal to send when the gateway cannot obtain it. Fetched before an
   * approval is consulted, so a grant is never used up by a request that could not have gone upstream.
   */
  private async upstreamToken(): Promise<{ ok: true; token: SecretValue } | { ok: false; reply: Reply }> {
    try {
      return { ok: true, token: await this.deps.credentials.tokenFor(this.target!) };
    } catch (err) {
      if (!(err instanceof CredentialError)) throw err;
      // Fail closed in Kubernetes terms: never upstream without the target's own credential. The detail goes to the
      // log and the recording; the agent learns only that the gateway has no credential right now.
      this.log.error({ err: err.message }, 'upstream credential unavailable; refusing');
      this.record('error', { code: 'upstream-credential', message: err.message });
      return { ok: false, reply: this.refuse(refusal(503, 'ServiceUnavailable', 'upstream-credential',
        `the gateway could not obtain its upstream credential for target ${this.target!.name}; try again shortly`)) };
    }
  }

  /** Continue upstream as the target's identity: the agent's token replaced, the response made maskable. */
  private allow(phase: 'request_headers' | 'request_body', token: SecretValue): Reply {
    const set: HeaderValueOption[] = [setHeader('authorization', `Bearer ${token.reveal()}`)];
    if (this.responseMode !== 'none') {
      // The body must reach us as plain JSON or text: no compression, no protobuf/CBOR we could not mask.
      set.push(setHeader('accept-encoding', 'identity'));
      const accept = maskableAccept(this.headers.get('accept'));
      if (accept !== this.headers.get('accept')) set.push(setHeader('accept', accept));
    }
    const remove = [...this.headers.keys()].filter((k) => k === 'x-remote-user' || k === 'x-remote-group' || k.startsWith('x-remote-extra-'));
    const response = { header_mutation: { set_headers: set, ...(remove.length ? { remove_headers: remove } : {}) } };
    this.transition('response_headers');
    if (phase === 'request_headers') {
      return this.respond({ request_headers: { response }, mode_override: this.modes('NONE') }, false);
    }
    return this.respond({ request_body: { response } }, false);
  }

  /** Body modes for both directions (an override always sets both, envoy-facts B.7). */
  private modes(request: BodySendMode): ProcessingMode {
    const response: BodySendMode = this.responseMode === 'none' ? 'NONE' : this.responseMode === 'streamed' ? 'STREAMED' : 'BUFFERED';
    return { request_body_mode: this.upgrade ? 'NONE' : request, response_body_mode: response };
  }

  // ------------------------------------------------------------------------------------------------ response path

  async responseHeaders(h: HttpHeaders): Promise<Reply> {
    const headers = headerMap(h.headers);
    this.response.status = Number(headers.get(':status') ?? 0);
    this.response.contentType = headers.get('content-type') ?? '';
    const length = Number(headers.get('content-length') ?? NaN);
    if (this.responseMode === 'none' || h.end_of_stream) {
      if (Number.isFinite(length)) this.response.bytes = this.response.sentBytes = length;
      this.recordOutput(true);
      this.transition('nothing');
      return this.respond({ response_headers: {} }, true);
    }
    this.bodyKind = contentKind(this.response.contentType);
    if (this.bodyKind === 'other') {
      this.record('error', { code: 'unmaskable-response', status: this.response.status, contentType: this.response.contentType });
      this.transition('nothing');
      return this.refuse(refusal(406, 'NotAcceptable', 'unmaskable-response',
        `the API server answered with content type ${JSON.stringify(this.response.contentType)}, which the gateway cannot mask; ask for JSON`));
    }
    const engine = await this.deps.engine();
    if (this.responseMode === 'streamed') {
      this.masker = this.bodyKind === 'json' && this.streaming === 'watch'
        ? new WatchMasker(engine, this.masking!, this.resource(), this.findings)
        : new LogMasker(engine, this.masking!, this.findings);
    }
    this.transition('response_body');
    // The masked body may differ in length: drop content-length now, in the same headers answer (envoy-facts B.14).
    return this.respond({ response_headers: { response: { header_mutation: { remove_headers: ['content-length'] } } } }, false);
  }

  async responseBody(b: HttpBody): Promise<Reply> {
    const chunk = bytesOf(b.body);
    this.response.bytes += chunk.length;
    const engine = await this.deps.engine();
    if (this.responseMode === 'buffered') {
      const masked = this.bodyKind === 'json'
        ? maskJsonBody(engine, this.masking!, chunk, this.resource(), this.findings)
        : maskTextBody(engine, this.masking!, chunk, this.findings);
      this.response.sentBytes = masked ? masked.length : chunk.length;
      this.recordOutput(true);
      this.transition('nothing');
      // BUFFERED: one body message; trailers are SKIP, so nothing follows it.
      return this.respond({ response_body: { response: masked ? { body_mutation: { body: masked } } : {} } }, true);
    }
    let out = Buffer.from(this.masker!.push(chunk));
    if (b.end_of_stream) out = Buffer.concat([out, Buffer.from(this.masker!.end())]);
    this.response.sentBytes += out.length;
    // An empty `body` could be dropped on the wire and let the original chunk through: clear it explicitly.
    const body_mutation = out.length > 0 ? { body: out } : { clear_body: true };
    if (!b.end_of_stream) return this.respond({ response_body: { response: { body_mutation } } }, false);
    this.recordOutput(true);
    this.transition('nothing');
    return this.respond({ response_body: { response: { body_mutation } } }, true);
  }

  /** The stream ended before the response did (client went away, Envoy reset): the output is recorded as cut. */
  streamClosed(): void {
    if (this.awaiting === 'response_body' || this.awaiting === 'response_headers') this.recordOutput(false);
    this.transition('nothing');
  }

  /** An internal fault: recorded (when the session is known) and logged; the loop fails the stream. */
  fault(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.log.error({ err: message, awaiting: this.awaiting }, 'kube ext_proc internal fault; failing the stream closed');
    if (this.agent) this.record('error', { code: 'internal', message: err instanceof Error ? `${err.name}: ${err.message}` : 'internal error' });
    this.transition('nothing');
  }

  // ------------------------------------------------------------------------------------------------ helpers

  private respond(message: ProcessingResponse, end: boolean): Reply {
    if (!this.metadataSent) {
      this.metadataSent = true;
      message.dynamic_metadata = requestMetadata(this.requestId, this.sessionId, this.agent?.id);
    }
    return { kind: 'respond', message, end };
  }

  private refuse(r: Refusal, details?: KubeStatus['details']): Reply {
    this.log.info({ status: r.code, cause: r.cause, method: this.method, path: this.path.split('?')[0] }, 'kube request refused');
    if (this.awaiting !== 'nothing' && !DECIDED_BY_POLICY.has(r.cause)) {
      this.deps.core.metrics.decisions.inc({ protocol: 'kubernetes', action: 'deny', reason: r.cause });
      if (this.agent) this.recordDecisionData({ action: 'deny', rule: null, policy: null, policyVersion: null, reason: r.cause, message: r.message });
    }
    if (this.agent && !this.outputRecorded) {
      this.outputRecorded = true;
      this.record('output', { status: r.code, refusedBy: 'gateway', reason: r.reason, message: r.message });
    }
    this.transition('nothing');
    return this.respond({ immediate_response: statusResponse(r, this.requestId, details) }, true);
  }

  private refuseUnrecorded(): Reply {
    return this.refuse(refusal(503, 'ServiceUnavailable', 'recording-unavailable',
      'session recording is unavailable and this target requires it; try again shortly'));
  }

  private record(type: 'session.start' | 'action' | 'decision' | 'output' | 'error', data: Record<string, unknown>): RecordResult {
    return this.deps.core.recorder.record({
      type, sessionId: this.sessionId, agent: this.agent!.id, target: this.target!.name, protocol: 'kubernetes',
      requestId: this.requestId, data,
    });
  }

  private recordAction(data: Record<string, unknown>): RecordResult {
    return this.record('action', { ...data, path: String(data.path ?? '').split('?')[0] });
  }

  /**
   * The classified request, minus anything secret: a Secret's body is left out, other bodies are masked. Its method
   * and path are the action's own `method` and `path`, recorded once there rather than again under `k8s`.
   */
  private async recordActionOf(k8s: K8sContext, body: Buffer | null): Promise<RecordResult> {
    const { method: _method, path: _path, ...rest } = k8s;
    const recorded: Record<string, unknown> = rest;
    if (k8s.resource === 'secrets' || k8s.resource === 'serviceaccounts') {
      recorded.body = k8s.body === null ? null : '[omitted: secret]';
      recorded.patch = k8s.patch === null ? null : '[omitted: secret]';
    } else if (masksAnything(this.masking) && (k8s.body !== null || k8s.patch !== null)) {
      const engine = await this.deps.engine();
      recorded.body = engine.maskJson(k8s.body, this.masking).value;
      recorded.patch = engine.maskJson(k8s.patch, this.masking).value;
    }
    return this.record('action', { method: this.method, path: k8s.path, k8s: recorded, bodyBytes: body?.length ?? 0 });
  }

  private recordDecision(d: Decision, extra: Record<string, unknown> = {}): void {
    this.recordDecisionData({
      action: d.action, rule: d.rule, policy: d.policy, policyVersion: d.policyVersion, reason: d.reason, message: d.message,
      ...(d.dryRun ? { dryRun: { action: d.dryRun.action, rule: d.dryRun.rule, policy: d.dryRun.policy, policyVersion: d.dryRun.policyVersion } } : {}),
      ...extra,
    });
  }

  private recordDecisionData(data: Record<string, unknown>): void {
    this.record('decision', { ...data, latencyMs: Math.round((performance.now() - this.startedAt) * 1000) / 1000 });
  }

  private recordOutput(complete: boolean): void {
    if (this.outputRecorded || !this.agent) return;
    this.outputRecorded = true;
    const { status, contentType, bytes, sentBytes } = this.response;
    this.record('output', {
      status, contentType, bytes, sentBytes, complete, mode: this.responseMode,
      masked: this.findings.list(),
    });
  }

  private resource(): string {
    return this.k8s?.resource ?? '';
  }

  private agentContext(): RequestContext['agent'] {
    return { id: this.agent!.id, groups: this.agent!.groups, labels: this.agent!.labels };
  }

  private targetContext(): RequestContext['target'] {
    const t = this.target!;
    return { name: t.name, kind: t.kind, labels: t.labels };
  }
}
