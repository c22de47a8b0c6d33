/**
 * OpenTelemetry traces of decisions: one span per decided action, ended at the spine's single exit and exported over
 * OTLP/HTTP (JSON) in batches. The span is the child of the `traceparent` the client sent (W3C trace context), so an
 * agent's own trace shows where the gateway decided; without one it is a root. Built only when tracing is enabled: when
 * it is not, the core has no tracer and the data path makes no span object at all.
 *
 * Attributes are the decision event's identifiers and verdict, never a statement, body, masked or unmasked value,
 * message or token. The sampler is parent-based (W3C `sampled` flag honoured), with `sampleRatio` for root spans.
 * Export never blocks or fails an action: spans wait in a bounded queue and are dropped when the collector is slow.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, parseTraceParent, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import type { DecisionEventData, DecisionTracer, TracedAction, TraceIds } from '../spine/index.ts';

export interface TracingConfig {
  /** Off by default: no tracer is built and the data path makes no span. */
  enabled: boolean;
  /** The collector's OTLP/HTTP traces URL (`http://collector:4318/v1/traces`). */
  endpoint: string;
  /** The `service.name` resource attribute. */
  serviceName: string;
  /** Fraction of root spans (actions that came without a `traceparent`) kept; a parent's sampled flag decides the rest. */
  sampleRatio: number;
}

/** The instrumentation scope spans are reported under. */
const SCOPE = 'portcullis.spine';

export class OtlpDecisionTracer implements DecisionTracer {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private failed = false;

  constructor(
    config: TracingConfig,
    private readonly logger: Logger,
  ) {
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      // Headers (OTEL_EXPORTER_OTLP_HEADERS), timeout and compression come from the standard OTEL_ variables; the
      // queue's bounds from OTEL_BSP_*.
      spanProcessors: [
        new BatchSpanProcessor(new LoggedExporter(new OTLPTraceExporter({ url: config.endpoint }), config, logger)),
      ],
    });
    this.tracer = this.provider.getTracer(SCOPE);
    logger.info(
      { endpoint: shownEndpoint(config.endpoint), sampleRatio: config.sampleRatio },
      'tracing: a span per decision, exported over OTLP/HTTP',
    );
  }

  decided(action: TracedAction, decision: DecisionEventData): TraceIds | null {
    try {
      const parent = action.traceparent === undefined ? null : parseTraceParent(action.traceparent.trim());
      const ctx = parent ? trace.setSpanContext(ROOT_CONTEXT, { ...parent, isRemote: true }) : ROOT_CONTEXT;
      const span = this.tracer.startSpan(
        `decide ${action.protocol}`,
        { kind: SpanKind.INTERNAL, startTime: action.startedAtMs },
        ctx,
      );
      // Not sampled: a non-recording span, nothing is exported and the decision event names no trace. (The samplers
      // in use read no attributes, so they are built only for a span that is kept.)
      if (!span.isRecording()) return null;
      span.setAttributes(attributes(action, decision));
      if (decision.code === 'internal') span.setStatus({ code: SpanStatusCode.ERROR, message: 'internal fault' });
      span.end();
      const { traceId, spanId } = span.spanContext();
      return { traceId, spanId };
    } catch (err) {
      // Tracing is observability only: a fault here never changes what the agent gets.
      if (!this.failed) this.logger.error({ err: (err as Error).message }, 'tracing a decision failed; continuing');
      this.failed = true;
      return null;
    }
  }

  /** Exports what is queued (tests; shutdown does it too). */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  /** Exports what is queued, then stops; a collector that cannot take them is logged, never thrown at the caller. */
  async shutdown(): Promise<void> {
    await this.provider.shutdown().catch((err: Error) => {
      this.logger.warn({ err: err.message }, 'tracing: the last spans could not be exported at shutdown');
    });
  }
}

/**
 * The OTLP exporter, with its failures in our log: the SDK reports them only to its own diagnostics (off by default),
 * and an operator must learn that spans are being lost. Logged when exports start failing and when they recover, not
 * for every batch.
 */
class LoggedExporter implements SpanExporter {
  private failing = false;

  constructor(
    private readonly inner: OTLPTraceExporter,
    private readonly config: TracingConfig,
    private readonly logger: Logger,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS && !this.failing) {
        this.failing = true;
        this.logger.warn(
          { endpoint: shownEndpoint(this.config.endpoint), err: result.error?.message, spans: spans.length },
          'tracing: spans could not be exported to the collector (tracing.endpoint); dropping them until it answers',
        );
      } else if (result.code === ExportResultCode.SUCCESS && this.failing) {
        this.failing = false;
        this.logger.info({ endpoint: shownEndpoint(this.config.endpoint) }, 'tracing: the collector takes spans again');
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
}

/** The endpoint as logs may show it: a user and password in the URL are left out. */
function shownEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    u.username = '';
    u.password = '';
    return u.href;
  } catch {
    return '(unparsable tracing.endpoint)';
  }
}

/** The decision event's fields a trace backend may index: identifiers and the verdict, nothing the agent sent. */
function attributes(action: TracedAction, d: DecisionEventData): Attributes {
  const a: Attributes = {
    'portcullis.protocol': action.protocol,
    'portcullis.target': action.target,
    'portcullis.agent': action.agent,
    'portcullis.session.id': action.sessionId,
    'portcullis.request.id': action.requestId,
    'portcullis.decision.action': d.action,
    'portcullis.decision.reason': d.reason,
    'portcullis.decision.latency_ms': d.latencyMs,
  };
  if (d.code !== null) a['portcullis.decision.code'] = d.code;
  if (d.detail !== undefined) a['portcullis.decision.detail'] = d.detail;
  if (d.rule !== null) a['portcullis.decision.rule'] = d.rule;
  if (d.policy !== null) a['portcullis.decision.policy'] = d.policy;
  if (d.policyVersion !== null) a['portcullis.decision.policy_version'] = d.policyVersion;
  if (d.policyAction !== undefined) a['portcullis.decision.policy_action'] = d.policyAction;
  if (d.approval) a['portcullis.approval.status'] = d.approval.status;
  if (d.dryRun) a['portcullis.dry_run.action'] = d.dryRun.action;
  return a;
}
