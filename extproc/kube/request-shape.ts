/** What a Kubernetes request's path and headers say about how to treat it: streaming, acceptable media, a summary. */
import type { K8sContext } from '../spine/index.ts';

/** `watch` for watch requests, `log` for followed logs: their response bodies never end on their own. */
export function streamingKind(rawPath: string): 'watch' | 'log' | null {
  const q = rawPath.indexOf('?');
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : rawPath.slice(q + 1));
  const watch = query.get('watch');
  if (watch === 'true' || watch === '1' || /^\/apis?\/(?:[^/]+\/)?[^/]+\/watch\//.test(path)) return 'watch';
  if (/\/pods\/[^/]+\/log\/?$/.test(path) && query.get('follow') === 'true') return 'log';
  return null;
}

/** Accept without media types we cannot mask (protobuf, CBOR, YAML); JSON when nothing is left. */
export function maskableAccept(accept: string | undefined): string {
  if (accept === undefined || accept.trim() === '') return 'application/json';
  const kept = accept
    .split(',')
    .map((s) => s.trim())
    .filter((s) => {
      const media = s.split(';')[0].trim().toLowerCase();
      return (
        media === '*/*'
        || media === 'application/*'
        || media === 'text/plain'
        || media === 'application/json'
        || media.endsWith('+json')
      );
    });
  return kept.length === accept.split(',').length ? accept : kept.length > 0 ? kept.join(',') : 'application/json';
}

/** e.g. "PATCH deployments/web/scale in prod: replicas 20". */
export function approvalSummary(k8s: K8sContext): string {
  const obj = [k8s.resource, k8s.name, k8s.subresource].filter((s) => s !== '').join('/');
  const where = k8s.namespace ? ` in ${k8s.namespace}` : '';
  const spec = (k8s.body as { spec?: { replicas?: unknown } } | null)?.spec;
  const replicas = spec && typeof spec === 'object' && 'replicas' in spec ? `: replicas ${String(spec.replicas)}` : '';
  return `${k8s.method} ${obj || k8s.path}${where}${replicas}`;
}
