/** Kubernetes `Status` objects (k8s.io/apimachinery/pkg/apis/meta/v1 Status), as the real API server writes errors. */

export type StatusReason =
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'BadRequest'
  | 'MethodNotAllowed'
  | 'UnsupportedMediaType'
  | 'Invalid'
  | 'NotAcceptable'
  | 'InternalError'
  | 'ServiceUnavailable';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

export function failure(code: number, reason: StatusReason, message: string, details?: StatusDetails): KubeStatus {
  const s: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) s.details = details;
  return s;
}

export function success(details?: StatusDetails): KubeStatus {
  const s: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 };
  if (details) s.details = details;
  return s;
}

/** `pods "x" not found`, with the group-qualified resource as the real server words it. */
export function notFound(resource: string, group: string, name: string): KubeStatus {
  const qualified = group === '' ? resource : `${resource}.${group}`;
  return failure(404, 'NotFound', `${qualified} "${name}" not found`, {
    name,
    group: group || undefined,
    kind: resource,
  });
}

export function alreadyExists(resource: string, group: string, name: string): KubeStatus {
  const qualified = group === '' ? resource : `${resource}.${group}`;
  return failure(409, 'AlreadyExists', `${qualified} "${name}" already exists`, {
    name,
    group: group || undefined,
    kind: resource,
  });
}
