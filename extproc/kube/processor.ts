/**
 * One Kubernetes API request's worth of ext_proc processing: wire ↔ typed action, nothing else. A processor per gRPC
 * stream, one method per phase; `awaiting` names the message it accepts next (the stream loop refuses any other).
 * The spine authenticates, decides, holds, supplies the upstream credential and records; this class turns Envoy's
 * messages into the `k8s` action, and the outcome into header mutations, a `Status` or a masked body.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  bytesOf,
  type BodySendMode,
  type HeaderValueOption,
  type HttpBody,
  type HttpHeaders,
  type ProcessingMode,
  type ProcessingResponse,
} from '../envoy-api/index.ts';
import type { CompiledMasking, MaskingEngine } from '../masking/index.ts';
import {
  refusal,
  type Action,
  type ActionRun,
  type K8sContext,
  type Outcome,
  type Refusal,
  type Spine,
  type UpstreamSecret,
} from '../spine/index.ts';
import type { HttpPhase, HttpReply, HttpStreamProcessor } from '../streams/index.ts';
import { isClassifyError } from './classify-error.ts';
import { classifyKubeRequest } from './classify-request.ts';
import {
  accessReviewAnswer,
  readReview,
  reviewedAction,
  rulesReviewAnswer,
  selfReviewOf,
  type ReviewKind,
} from './access-review.ts';
import { dryRun, hasDryRunObject } from './dry-run.ts';
import { objectDiff } from './object-diff.ts';
import { bearerOf, durationOf, headerMap, requestMetadata, setHeader } from './envoy-messages.ts';
import { kubeCanonical } from './kube-fingerprint.ts';
import {
  classifyRefusal,
  jsonResponse,
  kubeStatus,
  statusDetails,
  statusResponse,
  type KubeStatus,
} from './kube-status.ts';
import {
  contentKind,
  Findings,
  LogMasker,
  masksAnything,
  maskJsonBody,
  maskTextBody,
  WatchMasker,
  type ContentKind,
  type StreamMasker,
} from './response-masking.ts';
import { approvalSummary, maskableAccept, streamingKind } from './request-shape.ts';

/** What the processors of one adapter share. */
export interface ProcessorDeps {
  spine: Spine;
  engine: () => Promise<MaskingEngine>;
  /** Envoy's max_message_timeout for this listener (0 = overrides are ignored, so no approval hold). */
  maxMessageTimeoutMs: number;
  /** The largest request body parsed for classification (Envoy's buffer limit already answers 413 above its own). */
  maxRequestBodyBytes: number;
  /** How long a dry run (current object + dry-run write) may take before the write is refused. */
  dryRunTimeoutMs: number;
}

type ResponseMode = 'none' | 'buffered' | 'streamed';
type RequestPhase = 'request_headers' | 'request_body';

/** Subresources the API server serves over an upgraded connection (SPDY or WebSocket). */
const UPGRADABLE = new Set(['exec', 'attach', 'portforward', 'proxy']);
/** Headers the API server honours that would change who the request runs as. */
const IMPERSONATION = /^impersonate-/;
/** Margin between the approval hold and the message timeout override, so our answer lands before Envoy's timer. */
const HOLD_MARGIN_MS = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class KubeProcessor implements HttpStreamProcessor {
  private phase: HttpPhase | 'nothing' = 'request_headers';
  /**
   * Minted here, or taken from `x-request-id` when it is a UUID: Envoy's HCM (and the proxy-wasm filter before this
   * one, which always replaces it) set it, so access logs, the filter's refusals and the recording share one id.
   */
  requestId = `req_${randomUUID()}`;
  private logger: Logger | undefined;
  private metadataSent = false;

  private method = '';
  private path = '';
  private headers = new Map<string, string>();
  private upgrade = false;
  /** The action through the spine, once the agent is authenticated. */
  private run: ActionRun | undefined;
  private masking: CompiledMasking | null = null;
  private responseMode: ResponseMode = 'none';
  private streaming: 'watch' | 'log' | null = null;
  private k8s: K8sContext | undefined;

  private response = { status: 0, contentType: '', bytes: 0, sentBytes: 0 };
  private bodyKind: ContentKind = 'other';
  private masker: StreamMasker | undefined;
  private readonly findings = new Findings();

  constructor(
    private readonly deps: ProcessorDeps,
    private readonly targetName: string,
  ) {}

  get awaiting(): HttpPhase | 'nothing' {
    return this.phase;
  }

  /** The request's logger, made on first use: an allowed request logs nothing, and a pino child costs ~20 µs. */
  private get log(): Logger {
    this.logger ??= this.deps.spine.logger.child({ requestId: this.requestId, target: this.targetName });
    return this.logger;
  }

  /** The action through the spine; every phase after the request headers has one (the loop enforces the order). */
  private get action(): ActionRun {
    if (!this.run) throw new Error(`no authenticated action while awaiting ${this.phase}`);
    return this.run;
  }

  /** The masking plan of a response that is masked (responseMode is not 'none' only when there is one). */
  private get plan(): CompiledMasking {
    if (!this.masking) throw new Error('masking a response without a masking plan');
    return this.masking;
  }

  /** The masker of a STREAMED response, made at its headers. */
  private get streamMasker(): StreamMasker {
    if (!this.masker) throw new Error('a streamed body before its headers');
    return this.masker;
  }

  private transition(to: HttpPhase | 'nothing'): void {
    if (this.deps.spine.logger.isLevelEnabled('trace')) this.log.trace({ from: this.phase, to }, 'kube ext_proc state');
    this.phase = to;
  }

  // ------------------------------------------------------------------------------------------------ request path

  async requestHeaders(h: HttpHeaders): Promise<HttpReply> {
    this.headers = headerMap(h.headers);
    this.method = this.headers.get(':method') ?? '';
    this.path = this.headers.get(':path') ?? '';
    const envoyId = this.headers.get('x-request-id') ?? '';
    if (UUID.test(envoyId)) this.requestId = `req_${envoyId.toLowerCase()}`;
    this.upgrade =
      (this.headers.get('connection') ?? '').toLowerCase().includes('upgrade') && this.headers.has('upgrade');
    const hasBody = !h.end_of_stream && !this.upgrade;
    const token = bearerOf(this.headers.get('authorization'));

    const auth = await this.deps.spine.authenticate({ protocol: 'kubernetes', target: this.targetName, token });
    if (!auth.ok) return this.refuse(auth.refusal);
    // W3C trace context: with tracing on, the decision's span is a child of the agent's (or Envoy's) span.
    this.run = this.deps.spine.begin(auth.session, this.requestId, { traceparent: this.headers.get('traceparent') });

    const impersonation = [...this.headers.keys()].find((k) => IMPERSONATION.test(k));
    if (impersonation) {
      return this.refuseUnclassified(
        refusal(
          'unsupported',
          `impersonation (${impersonation}) is not allowed through the gateway: requests run as the target's own identity`,
          'impersonation',
        ),
      );
    }
    const encoding = (this.headers.get('content-encoding') ?? '').trim().toLowerCase();
    if (hasBody && encoding !== '' && encoding !== 'identity') {
      return this.refuseUnclassified(
        refusal(
          'unsupported-media',
          `request bodies with content-encoding ${JSON.stringify(encoding)} cannot be inspected; send them uncompressed`,
          'compressed-body',
        ),
      );
    }

    const leaked = token === undefined ? null : this.tokenElsewhere(token);
    if (leaked) {
      return this.refuseUnclassified(
        refusal(
          'bad-request',
          `the agent token was found in ${leaked}; send it only as the Authorization bearer token (the API server never sees it)`,
          'token-elsewhere',
        ),
      );
    }

    this.masking = this.run.masking();
    if (hasBody) {
      // A write answers with an object (or a Status): buffered, masked when anything masks. The body modes must be
      // chosen in this headers answer (docs/envoy-behaviour.md B.7), before the request can be classified.
      this.responseMode = masksAnything(this.masking) ? 'buffered' : 'none';
      // Write verbs are decided on the whole body (BUFFERED); Envoy holds the headers until then, so the header
      // mutations of the body answer still apply (docs/envoy-behaviour.md B.3).
      this.transition('request_body');
      return this.respond({ request_headers: {}, mode_override: this.modes('BUFFERED') }, false);
    }
    return this.decideRequest(null, 'request_headers');
  }

  async requestBody(b: HttpBody): Promise<HttpReply> {
    const body = bytesOf(b.body);
    if (body.length > this.deps.maxRequestBodyBytes) {
      return this.refuseUnclassified(
        refusal(
          'too-large',
          `request bodies over ${this.deps.maxRequestBodyBytes} bytes are not accepted by the gateway`,
          'body-too-large',
        ),
        body.length,
      );
    }
    return this.decideRequest(body, 'request_body');
  }

  private async decideRequest(body: Buffer | null, phase: RequestPhase): Promise<HttpReply> {
    const k8s = classifyKubeRequest({
      method: this.method,
      path: this.path,
      contentType: this.headers.get('content-type'),
      contentEncoding: this.headers.get('content-encoding'),
      body,
    });
    if (isClassifyError(k8s)) return this.refuseUnclassified(classifyRefusal(k8s));
    this.k8s = k8s;
    if (this.upgrade && !UPGRADABLE.has(k8s.subresource)) {
      // Masking must never depend on a header the agent controls: only the subresources the API server upgrades
      // (exec, attach, portforward, proxy) may ask for it; anything else with upgrade headers is refused.
      return this.refuseUnclassified(
        refusal(
          'bad-request',
          `an upgrade (Connection: Upgrade) is accepted only on the exec, attach, portforward and proxy subresources, not on ${k8s.verb} ${k8s.resource || k8s.path}`,
          'upgrade-not-allowed',
        ),
      );
    }
    // The masking rules whose `when` holds for this request (a rule for Secrets only, say).
    this.masking = this.action.masking({ section: { protocol: 'kubernetes', k8s } });
    if (phase === 'request_headers') {
      // Everything about the response's shape comes from the one classified view of the request, read as the API
      // server reads it: `watch` and `follow` with its boolean conversion, the path after decoding.
      this.streaming = streamingKind(k8s);
      this.responseMode =
        this.upgrade || !masksAnything(this.masking) ? 'none' : this.streaming ? 'streamed' : 'buffered';
    }
    const review = selfReviewOf(k8s);
    if (review) return this.answerReview(review, k8s, body);
    if (body !== null && body.length > 0 && k8s.body === null && k8s.patch === null && this.action.reads('k8s.body')) {
      // A protobuf body: the gateway never decodes it, so a rule over k8s.body cannot be given what it reads.
      return this.refuseClassified(
        refusal(
          'unsupported-media',
          `request bodies of type ${JSON.stringify(this.headers.get('content-type') ?? '')} cannot be read by this target's rules on k8s.body; send JSON (rules on k8s.object see every encoding)`,
          'opaque-body',
        ),
        k8s,
        body,
      );
    }
    if (hasDryRunObject(k8s) && (this.action.reads('k8s.object') || this.action.reads('k8s.oldObject'))) {
      return this.decideOnObject(k8s, body, phase);
    }
    return this.render(await this.decideAction(k8s, body, this.deps.maxMessageTimeoutMs - HOLD_MARGIN_MS), phase);
  }

  private async decideAction(k8s: K8sContext, body: Buffer | null, maxHoldMs: number): Promise<Outcome> {
    const recorded = await this.recordedAction(k8s, body);
    const action = new KubeAction(k8s, this.method, this.path, body, recorded, () => effectOf(k8s, recorded));
    return this.action.decide(action, { maxHoldMs: Math.max(0, maxHoldMs), credential: 'bearer-token' });
  }

  /**
   * A write a rule decides on the stored object: the dry run first (docs/kubernetes.md, "Decisions on the object"),
   * then the decision with `k8s.object`. The dry run can outlast Envoy's message timeout, so the message is held once
   * for the listener's whole max_message_timeout; an approval hold that follows waits within the same override (Envoy
   * honours one override per message).
   */
  private decideOnObject(k8s: K8sContext, body: Buffer | null, phase: RequestPhase): HttpReply | Promise<HttpReply> {
    const max = this.deps.maxMessageTimeoutMs;
    if (max <= 2 * HOLD_MARGIN_MS) return this.dryRunThenDecide(k8s, body, phase, null, 0);
    const deadline = Date.now() + max - HOLD_MARGIN_MS;
    return {
      kind: 'hold',
      message: { override_message_timeout: durationOf(max) },
      resume: (signal) => this.dryRunThenDecide(k8s, body, phase, signal, deadline),
    };
  }

  private async dryRunThenDecide(
    k8s: K8sContext,
    body: Buffer | null,
    phase: RequestPhase,
    signal: AbortSignal | null,
    deadline: number,
  ): Promise<HttpReply> {
    const upstream = await this.action.upstream('bearer-token');
    if ('refusal' in upstream) return this.refuseClassified(upstream.refusal, k8s, body);
    const timeoutMs = Math.max(1, Math.min(this.deps.dryRunTimeoutMs, signal ? deadline - Date.now() : Infinity));
    const result = await dryRun(
      upstream.access,
      {
        method: this.method,
        path: this.path,
        contentType: this.headers.get('content-type'),
        body,
        withOldObject: k8s.verb !== 'create',
      },
      { timeoutMs, ...(signal ? { signal } : {}) },
    );
    switch (result.kind) {
      case 'failed':
        this.log.warn({ err: result.message }, 'dry run failed; refusing the write');
        return this.refuseClassified(
          refusal(
            'internal',
            'the gateway could not learn what this write would store (its dry run against the API server failed); the write is refused',
            'dry-run-failed',
          ),
          k8s,
          body,
          { dryRunError: result.message },
        );
      case 'refused':
        return this.upstreamRefusal(k8s, body, result.status, result.body);
      case 'object': {
        this.k8s = { ...k8s, object: result.object, oldObject: result.oldObject };
        this.masking = this.action.masking({ section: { protocol: 'kubernetes', k8s: this.k8s } });
        const remaining = signal ? deadline - Date.now() - HOLD_MARGIN_MS : 0;
        const outcome = await this.decideAction(this.k8s, body, remaining);
        // Already under this message's one override: an approval hold waits within it, without a second override.
        if (outcome.kind === 'hold' && signal) return this.render(await outcome.resume(signal), phase);
        return this.render(outcome, phase);
      }
      default: {
        const never: never = result;
        throw new Error(`unknown dry run result ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * `kubectl auth can-i`: a self access review is answered from policy for this agent (access-review.ts), never
   * forwarded, since the gateway's own credential is not what the agent may use. Recorded as the action asked about.
   */
  private async answerReview(kind: ReviewKind, k8s: K8sContext, body: Buffer | null): Promise<HttpReply> {
    const read = readReview(kind, k8s.version, k8s, body, this.headers.get('content-type'));
    if ('error' in read)
      return this.refuseClassified(refusal('bad-request', read.error, 'bad-access-review'), k8s, body);
    let answer: object;
    if (read.kind === 'SelfSubjectRulesReview') {
      this.action.refuse(
        refusal(
          'unsupported',
          'rules reviews are answered as incomplete: policy conditions cannot be listed',
          'rules-review',
        ),
        await this.recordedAction(k8s, body),
      );
      answer = rulesReviewAnswer(read.spec);
    } else {
      const asked = reviewedAction(read.spec);
      if ('error' in asked)
        return this.refuseClassified(refusal('bad-request', asked.error, 'bad-access-review'), k8s, body);
      const { method: _m, path: _p, ...question } = asked;
      const recorded = { method: this.method, path: k8s.path, review: kind, k8s: question };
      const decision = this.action.review(new KubeAction(asked, '', '', null, recorded, () => []));
      answer = accessReviewAnswer(read.spec, asked, decision);
    }
    const out = Buffer.from(JSON.stringify(answer));
    this.run?.output({ status: 201, answeredBy: 'gateway', review: kind, bytes: out.length });
    this.transition('nothing');
    return this.respond({ immediate_response: jsonResponse(201, out, 'access_review', this.requestId) }, true);
  }

  /**
   * The API server refused the dry run itself (invalid object, conflict, not found…): the real write would meet the
   * same answer, so the agent gets the API server's own Status (masked like any response), and the recording says so.
   */
  private async upstreamRefusal(
    k8s: K8sContext,
    body: Buffer | null,
    status: number,
    answer: Buffer,
  ): Promise<HttpReply> {
    let reason = '';
    try {
      reason = String((JSON.parse(answer.toString('utf8')) as { reason?: unknown }).reason ?? '');
    } catch {
      // jsonObject() already parsed it; unreachable in practice.
    }
    const r = refusal(
      'bad-request',
      `the API server refused this write (HTTP ${status} ${reason}) when the gateway tried it with dryRun=All`,
      'dry-run-refused',
    );
    this.action.refuse(r, await this.recordedAction(k8s, body));
    const masked = this.masking
      ? maskJsonBody(await this.deps.engine(), this.masking, answer, k8s.resource, this.findings)
      : null;
    const out = masked ? Buffer.from(masked) : answer;
    this.run?.output({ status, refusedBy: 'api-server-dry-run', reason, masked: this.findings.list() });
    this.transition('nothing');
    return this.respond({ immediate_response: jsonResponse(status, out, r.detail, this.requestId) }, true);
  }

  /** The spine's outcome in Envoy's terms: continue with the target's identity, a Status, or a held answer. */
  private render(outcome: Outcome, phase: RequestPhase): HttpReply {
    switch (outcome.kind) {
      case 'allow':
        return this.allow(phase, outcome.credential);
      case 'refuse':
        return this.refuse(outcome.refusal, this.k8s ? statusDetails(this.k8s) : undefined);
      case 'hold':
        // Envoy honours one override per message, and ignores the rest of the response that carries it (B.3).
        return {
          kind: 'hold',
          message: { override_message_timeout: durationOf(outcome.holdMs + HOLD_MARGIN_MS) },
          resume: async (signal) => this.render(await outcome.resume(signal), phase),
        };
      default: {
        const never: never = outcome;
        throw new Error(`unknown outcome ${JSON.stringify(never)}`);
      }
    }
  }

  /** Continue upstream as the target's identity: the agent's token replaced, the response made maskable. */
  private allow(phase: RequestPhase, credential: UpstreamSecret | null): HttpReply {
    if (credential?.kind !== 'bearer-token')
      throw new Error('the spine allowed a Kubernetes request without a bearer token');
    const set: HeaderValueOption[] = [setHeader('authorization', `Bearer ${credential.token.reveal()}`)];
    if (this.responseMode !== 'none') {
      // The body must reach us as plain JSON or text: no compression, no protobuf/CBOR we could not mask.
      set.push(setHeader('accept-encoding', 'identity'));
      const accept = maskableAccept(this.headers.get('accept'));
      if (accept !== this.headers.get('accept')) set.push(setHeader('accept', accept));
    }
    const remove = [...this.headers.keys()].filter(
      (k) => k === 'x-remote-user' || k === 'x-remote-group' || k.startsWith('x-remote-extra-'),
    );
    const response = { header_mutation: { set_headers: set, ...(remove.length ? { remove_headers: remove } : {}) } };
    this.transition('response_headers');
    if (phase === 'request_headers') {
      return this.respond({ request_headers: { response }, mode_override: this.modes('NONE') }, false);
    }
    return this.respond({ request_body: { response } }, false);
  }

  /** Body modes for both directions (an override always sets both, docs/envoy-behaviour.md B.7). */
  private modes(request: BodySendMode): ProcessingMode {
    const response: BodySendMode =
      this.responseMode === 'none' ? 'NONE' : this.responseMode === 'streamed' ? 'STREAMED' : 'BUFFERED';
    return { request_body_mode: this.upgrade ? 'NONE' : request, response_body_mode: response };
  }

  // ------------------------------------------------------------------------------------------------ response path

  async responseHeaders(h: HttpHeaders): Promise<HttpReply> {
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
    const encoding = (headers.get('content-encoding') ?? '').trim().toLowerCase();
    if (encoding !== '' && encoding !== 'identity') {
      // The gateway asked for identity; a compressed answer cannot be masked, so it never reaches the agent.
      this.action.error({ code: 'unmaskable-response', status: this.response.status, contentEncoding: encoding });
      return this.refuse(
        refusal(
          'unmaskable-response',
          `the API server answered with content-encoding ${JSON.stringify(encoding)} although the gateway asked for identity; the response cannot be masked`,
        ),
      );
    }
    if (this.bodyKind === 'other') {
      this.action.error({
        code: 'unmaskable-response',
        status: this.response.status,
        contentType: this.response.contentType,
      });
      return this.refuse(
        refusal(
          'unmaskable-response',
          `the API server answered with content type ${JSON.stringify(this.response.contentType)}, which the gateway cannot mask; ask for JSON`,
        ),
      );
    }
    const engine = await this.deps.engine();
    if (this.responseMode === 'streamed') {
      this.masker =
        this.bodyKind === 'json' && this.streaming === 'watch'
          ? new WatchMasker(engine, this.plan, this.resource(), this.findings)
          : new LogMasker(engine, this.plan, this.findings);
    }
    this.transition('response_body');
    // The masked body may differ in length: drop content-length now, in the same headers answer (B.14).
    return this.respond(
      { response_headers: { response: { header_mutation: { remove_headers: ['content-length'] } } } },
      false,
    );
  }

  async responseBody(b: HttpBody): Promise<HttpReply> {
    const chunk = bytesOf(b.body);
    this.response.bytes += chunk.length;
    const engine = await this.deps.engine();
    if (this.responseMode === 'buffered') {
      // A write's mode was chosen on its headers with every masking rule; the rules whose `when` held for the
      // classified request may mask nothing.
      const masked = !masksAnything(this.masking)
        ? null
        : this.bodyKind === 'json'
          ? maskJsonBody(engine, this.plan, chunk, this.resource(), this.findings)
          : maskTextBody(engine, this.plan, chunk, this.findings);
      this.response.sentBytes = masked ? masked.length : chunk.length;
      this.recordOutput(true);
      this.transition('nothing');
      // BUFFERED: one body message; trailers are SKIP, so nothing follows it.
      return this.respond({ response_body: { response: masked ? { body_mutation: { body: masked } } : {} } }, true);
    }
    let out = Buffer.from(this.streamMasker.push(chunk));
    if (b.end_of_stream) out = Buffer.concat([out, Buffer.from(this.streamMasker.end())]);
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
    if (this.phase === 'response_body' || this.phase === 'response_headers') this.recordOutput(false);
    this.transition('nothing');
  }

  /** An internal fault: recorded through the spine (when the agent is known) and logged; the loop fails the stream. */
  fault(err: unknown): void {
    if (this.run) this.run.fault(err);
    else
      this.log.error(
        { err: err instanceof Error ? err.message : String(err), awaiting: this.phase },
        'kube ext_proc internal fault; failing the stream closed',
      );
    this.transition('nothing');
  }

  // ------------------------------------------------------------------------------------------------ helpers

  private respond(message: ProcessingResponse, end: boolean): HttpReply {
    if (!this.metadataSent) {
      this.metadataSent = true;
      message.dynamic_metadata = requestMetadata(
        this.requestId,
        this.run?.session.id ?? '',
        this.run?.session.agent.id,
      );
    }
    return { kind: 'respond', message, end };
  }

  /** Refuses a classified request the spine did not decide (it records the action as classified, and the refusal). */
  private async refuseClassified(
    r: Refusal,
    k8s: K8sContext,
    body: Buffer | null,
    extra: Record<string, unknown> = {},
  ): Promise<HttpReply> {
    this.action.refuse(r, { ...(await this.recordedAction(k8s, body)), ...extra });
    return this.refuse(r, statusDetails(k8s));
  }

  /** Refuses a request before it could be classified: the spine records what was seen and the refusal. */
  private refuseUnclassified(r: Refusal, bytes?: number): HttpReply {
    this.action.refuse(r, {
      method: this.method,
      path: this.path.split('?')[0],
      ...(bytes === undefined ? {} : { bytes }),
    });
    return this.refuse(r);
  }

  /** Answers with a Status and ends the stream; the spine has already recorded the decision, this records the output. */
  private refuse(r: Refusal, details?: KubeStatus['details']): HttpReply {
    this.log.info(
      { code: r.code, detail: r.detail, method: this.method, path: this.path.split('?')[0] },
      'kube request refused',
    );
    const status = kubeStatus(r, details);
    this.run?.output({ status: status.code, refusedBy: 'gateway', reason: status.reason, message: r.message });
    this.transition('nothing');
    return this.respond({ immediate_response: statusResponse(status, r, this.requestId) }, true);
  }

  /**
   * Where, other than the Authorization header, the request carries the agent's own token (a query parameter such as
   * `access_token`, another header such as a WebSocket bearer protocol): it would reach the API server and its logs.
   */
  private tokenElsewhere(token: string): string | null {
    const q = this.path.indexOf('?');
    if (q >= 0) {
      const query = this.path.slice(q + 1);
      let decoded = query;
      try {
        decoded = decodeURIComponent(query.replace(/\+/g, ' '));
      } catch {
        // A malformed escape: the raw query is still searched; the classifier refuses it anyway.
      }
      if (query.includes(token) || decoded.includes(token)) return 'the query string';
    }
    for (const [name, value] of this.headers) {
      if (name !== 'authorization' && value.includes(token)) return `the ${name} header`;
    }
    return null;
  }

  /**
   * The classified request for the recording, minus anything secret: a Secret's body is left out, other bodies are
   * masked. Its method and path are the action's own `method` and `path`, recorded once there rather than under `k8s`.
   */
  private async recordedAction(k8s: K8sContext, body: Buffer | null): Promise<Record<string, unknown>> {
    const { method: _method, path: _path, ...rest } = k8s;
    const recorded: Record<string, unknown> = rest;
    const documents = ['body', 'patch', 'object', 'oldObject'] as const;
    if (k8s.resource === 'secrets' || k8s.resource === 'serviceaccounts') {
      for (const d of documents) recorded[d] = k8s[d] === null ? null : '[omitted: secret]';
    } else if (masksAnything(this.masking) && documents.some((d) => k8s[d] !== null)) {
      const engine = await this.deps.engine();
      for (const d of documents) recorded[d] = engine.maskJson(k8s[d], this.masking).value;
    }
    return { method: this.method, path: k8s.path, k8s: recorded, bodyBytes: body?.length ?? 0 };
  }

  private recordOutput(complete: boolean): void {
    const { status, contentType, bytes, sentBytes } = this.response;
    this.run?.output({
      status,
      contentType,
      bytes,
      sentBytes,
      complete,
      mode: this.responseMode,
      masked: this.findings.list(),
    });
  }

  private resource(): string {
    return this.k8s?.resource ?? '';
  }
}

/**
 * A dry-run write's effect for approvers: old → new as the recording keeps them (masked by the plan); a Secret's or
 * service account's changed paths only, never their values.
 */
function effectOf(k8s: K8sContext, recorded: Record<string, unknown>): string[] {
  if (k8s.object === null) return [];
  if (k8s.resource === 'secrets' || k8s.resource === 'serviceaccounts')
    return objectDiff(k8s.oldObject, k8s.object, { values: false });
  const masked = recorded.k8s as { object: unknown; oldObject: unknown };
  return objectDiff(masked.oldObject, masked.object);
}

/** A classified request as the spine's typed action; the approval key and summary are only made when a rule asks. */
export class KubeAction implements Action {
  readonly section: Action['section'];

  constructor(
    private readonly k8s: K8sContext,
    private readonly method: string,
    private readonly rawPath: string,
    private readonly body: Buffer | null,
    readonly recorded: Record<string, unknown>,
    readonly effect: () => string[],
  ) {
    this.section = { protocol: 'kubernetes', k8s };
  }

  canonical(): string {
    const { k8s, rawPath, body } = this;
    const q = rawPath.indexOf('?');
    return kubeCanonical({
      method: this.method,
      path: k8s.path,
      query: new URLSearchParams(q < 0 ? '' : rawPath.slice(q + 1)),
      patchType: k8s.patchType,
      body: (k8s.patchType !== '' ? k8s.patch : k8s.body) ?? (body && body.length > 0 ? body : null),
    });
  }

  summary(): string {
    return approvalSummary(this.k8s);
  }
}
