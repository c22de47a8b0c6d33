/** The Kubernetes adapter's classification, as the policy tools' sample classifier (see contextFromSample). */
import { isClassifyError } from './classify-error.ts';
import { classifyKubeRequest } from './classify-request.ts';
import type { K8sSampleClassifier } from '../policy/sample-request.ts';

export const classifyK8sSample: K8sSampleClassifier = ({ method, path, body, contentType }) => {
  const bytes = body === null ? null : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const r = classifyKubeRequest({ method, path, contentType, body: bytes });
  return isClassifyError(r) ? r.message : r;
};
