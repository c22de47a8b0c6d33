/**
 * Kubernetes `Status` objects (k8s.io/apimachinery meta/v1 Status) for the refusals the gateway answers itself, as
 * Envoy immediate responses: kubectl prints `Error from server (<Reason>): <message>` for them, like the API server's.
 */
import type { ImmediateResponse } from '../envoy-api/index.ts';
import type { K8sContext } from '../policy/context.ts';
import type { ClassifyError } from './classify-error.ts';

export type StatusReason =
  | 'Unauthorized' | 'Forbidden' | 'BadRequest' | 'MethodNotAllowed' | 'UnsupportedMediaType' | 'NotAcceptable'
  | 'ServiceUnavailable' | 'InternalError';

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

export interface Refusal {
  code: number;
  reason: StatusReason;
  message: string;
  /** Short machine-readable cause, for logs, metrics and the recording (never shown beyond the message). */
  cause: string;
}

export function refusal(code: number, reason: StatusReason, cause: string, message: string): Refusal {
  return { code, reason, cause, message };
}

export function kubeStatus(r: Refusal, details?: KubeStatus['details']): KubeStatus {
  const s: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: r.message, reason: r.reason, code: r.code };
  if (details && Object.keys(details).length > 0) s.details = details;
  return s;
}

/** The immediate_response that carries a Status; the request id lets the agent (and support) find the recording. */
export function statusResponse(r: Refusal, requestId: string, details?: KubeStatus['details']): ImmediateResponse {
  return {
    status: { code: r.code },
    headers: {
      set_headers: [
        { header: { key: 'content-type', raw_value: Buffer.from('application/json') } },
        { header: { key: 'cache-control', raw_value: Buffer.from('no-cache, private') } },
        { header: { key: 'x-portcullis-request-id', raw_value: Buffer.from(requestId) } },
      ],
    },
    body: Buffer.from(JSON.stringify(kubeStatus(r, details))),
    details: `portcullis_${r.cause}`,
  };
}

export function classifyRefusal(e: ClassifyError): Refusal {
  switch (e.code) {
    case 'bad-path':
    case 'bad-query':
    case 'bad-body':
      return refusal(400, 'BadRequest', e.code, e.message);
    case 'ambiguous-path':
    case 'unsupported-method':
      return refusal(403, 'Forbidden', e.code, e.message);
    case 'unsupported-content-type':
    case 'unsupported-content-encoding':
      return refusal(415, 'UnsupportedMediaType', e.code, e.message);
    default: {
      const never: never = e.code;
      return refusal(400, 'BadRequest', 'bad-request', `request refused (${String(never)})`);
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
