/**
 * Kubernetes `Status` objects (k8s.io/apimachinery meta/v1 Status) for the refusals the gateway answers itself, as
 * Envoy immediate responses: kubectl prints `Error from server (<Reason>): <message>` for them, like the API server's.
 * Every refusal code of the spine maps to the HTTP status and StatusReason the API server itself uses for that case.
 */
import type { ImmediateResponse } from '../envoy-api/index.ts';
import type { K8sContext, Refusal, RefusalCode } from '../spine/index.ts';
import type { ClassifyError } from './classify-error.ts';
import { refusal } from '../spine/index.ts';

export type StatusReason =
  | 'Unauthorized'
  | 'Forbidden'
  | 'BadRequest'
  | 'UnsupportedMediaType'
  | 'NotAcceptable'
  | 'RequestEntityTooLarge'
  | 'ServiceUnavailable'
  | 'InternalError';

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details?: { name?: string; group?: string; kind?: string };
  code: number;
}

/** The HTTP status and Status reason of each refusal code (apimachinery's StatusReason* constants). */
export function statusOf(code: RefusalCode): { code: number; reason: StatusReason } {
  switch (code) {
    case 'unauthenticated':
      return { code: 401, reason: 'Unauthorized' };
    case 'forbidden':
    case 'unsupported':
    case 'policy-deny':
    case 'approval-required':
    case 'approval-denied':
      return { code: 403, reason: 'Forbidden' };
    case 'bad-request':
      return { code: 400, reason: 'BadRequest' };
    case 'unsupported-media':
      return { code: 415, reason: 'UnsupportedMediaType' };
    case 'too-large':
      return { code: 413, reason: 'RequestEntityTooLarge' };
    case 'unmaskable-response':
      return { code: 406, reason: 'NotAcceptable' };
    case 'recording-unavailable':
    case 'store-unavailable':
    case 'upstream-credential':
      return { code: 503, reason: 'ServiceUnavailable' };
    case 'misconfigured':
    case 'internal':
      return { code: 500, reason: 'InternalError' };
    default: {
      const never: never = code;
      return { code: 500, reason: `InternalError${String(never)}` as never };
    }
  }
}

export function kubeStatus(r: Refusal, details?: KubeStatus['details']): KubeStatus {
  const { code, reason } = statusOf(r.code);
  const s: KubeStatus = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: r.message,
    reason,
    code,
  };
  if (details && Object.keys(details).length > 0) s.details = details;
  return s;
}

/**
 * The immediate_response that carries a refusal's Status (from kubeStatus); the request id lets the agent (and
 * support) find the recording.
 */
export function statusResponse(status: KubeStatus, r: Refusal, requestId: string): ImmediateResponse {
  return jsonResponse(status.code, Buffer.from(JSON.stringify(status)), r.detail, requestId);
}

/** An immediate JSON answer: a Status of ours (statusResponse) or one the API server gave (a refused dry run). */
export function jsonResponse(code: number, body: Buffer, detail: string, requestId: string): ImmediateResponse {
  return {
    status: { code },
    headers: {
      set_headers: [
        { header: { key: 'content-type', raw_value: Buffer.from('application/json') } },
        { header: { key: 'cache-control', raw_value: Buffer.from('no-cache, private') } },
        { header: { key: 'x-portcullis-request-id', raw_value: Buffer.from(requestId) } },
      ],
    },
    body,
    details: `portcullis_${detail}`,
  };
}

/** A request the classifier could not read, as the refusal the API server would give for it. */
export function classifyRefusal(e: ClassifyError): Refusal {
  switch (e.code) {
    case 'bad-path':
    case 'bad-query':
    case 'bad-body':
      return refusal('bad-request', e.message, e.code);
    case 'ambiguous-path':
    case 'unsupported-method':
      return refusal('unsupported', e.message, e.code);
    case 'unsupported-content-type':
    case 'unsupported-content-encoding':
      return refusal('unsupported-media', e.message, e.code);
    default: {
      const never: never = e.code;
      return refusal('bad-request', `request refused (${String(never)})`);
    }
  }
}

export function statusDetails(k8s: K8sContext): KubeStatus['details'] {
  return {
    ...(k8s.name ? { name: k8s.name } : {}),
    ...(k8s.group ? { group: k8s.group } : {}),
    ...(k8s.resource ? { kind: k8s.resource } : {}),
  };
}
