/**
 * The Kubernetes adapter's classification for the policy tools (policy test/eval and the evaluate endpoint): a
 * request as kubectl sends it → the `k8s` section, or the refusal's message. Wired in by the composition root.
 */
import type { K8sContext } from '../spine/index.ts';
import { isClassifyError } from './classify-error.ts';
import { classifyKubeRequest } from './classify-request.ts';

export function classifyK8sSample(request: {
  method: string;
  path: string;
  body: unknown;
  contentType: string;
}): K8sContext | string {
  const { method, path, body, contentType } = request;
  const bytes = body === null ? null : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const r = classifyKubeRequest({ method, path, contentType, body: bytes });
  return isClassifyError(r) ? r.message : r;
}
