/** OpenTelemetry traces of the spine's decisions (docs/operations.md, "Traces"). */
export { OtlpDecisionTracer, type TracingConfig } from './decision-tracer.ts';
