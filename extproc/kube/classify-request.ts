/**
 * Wire → policy input for the Kubernetes API: one pure function from a request's method, raw path, content type and
 * (capped) body to the `k8s` section of the policy context, or a refusal with a reason the agent may read.
 */
import type { K8sContext } from '../spine/index.ts';
import type { ClassifyError } from './classify-error.ts';
import { refuse } from './classify-error.ts';
import { exactFieldMatch } from './field-selector.ts';
import { parseKubePath } from './kube-path.ts';
import { decodePatch } from './patch.ts';
import { bodyMediaType, decodeJson, decodeYaml } from './request-body.ts';
import { resolveRequestInfo } from './request-info.ts';

export interface KubeRequest {
  method: string;
  /** The raw `:path`, query included, as Envoy forwards it. */
  path: string;
  contentType?: string;
  contentEncoding?: string;
  /** The request body, already capped by the caller; null or empty when there is none. */
  body?: Uint8Array | null;
}

/**
 * kubectl's encoding for built-in types. Never decoded here: `k8s.body` stays null, and a rule that reads it refuses
 * such a request; the object it writes reaches policy as `k8s.object`, from the API server's own dry run.
 */
const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** Write verbs whose `dryRun` option the API server honours, on the object itself or these subresources only. */
const DRY_RUN_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const DRY_RUN_SUBRESOURCES = new Set(['', 'status', 'scale']);

export function classifyKubeRequest(req: KubeRequest): K8sContext | ClassifyError {
  const parsed = parseKubePath(req.path);
  if ('refused' in parsed) return parsed;
  const info = resolveRequestInfo(req.method, parsed.path, parsed.query);
  if ('refused' in info) return info;

  const bytes = req.body ?? new Uint8Array(0);
  const encoding = (req.contentEncoding ?? '').trim().toLowerCase();
  if (bytes.length > 0 && encoding !== '' && encoding !== 'identity') {
    return refuse(
      'unsupported-content-encoding',
      `request bodies with content-encoding ${JSON.stringify(encoding)} cannot be inspected`,
    );
  }

  let body: unknown = null;
  let patch: unknown = null;
  let patchType = '';
  if (info.isResourceRequest && req.method === 'PATCH') {
    const decoded = decodePatch(req.contentType, bytes);
    if ('refused' in decoded) return decoded;
    ({ body, patch, patchType } = decoded);
  } else if (
    info.isResourceRequest
    && bytes.length > 0
    && (req.method === 'POST' || req.method === 'PUT' || req.method === 'DELETE')
  ) {
    const mediaType = bodyMediaType(req.contentType);
    let decoded: { value: unknown } | ClassifyError;
    if (mediaType === 'application/json') decoded = decodeJson(bytes, 'request body');
    else if (mediaType === 'application/yaml') decoded = decodeYaml(bytes, 'request body');
    else if (mediaType === PROTOBUF) decoded = { value: null };
    else
      return refuse(
        'unsupported-content-type',
        `request bodies of type ${JSON.stringify(mediaType)} cannot be inspected; send JSON`,
      );
    if ('refused' in decoded) return decoded;
    body = decoded.value;
  }

  const query: Record<string, string> = {};
  for (const [k, v] of parsed.query) query[k] = v[0];

  return {
    isResourceRequest: info.isResourceRequest,
    method: req.method,
    path: info.path,
    verb: info.verb,
    group: info.group,
    version: info.version,
    resource: info.resource,
    subresource: info.subresource,
    namespace: namespaceOf(info),
    name: info.name,
    dryRun: isDryRun(info.isResourceRequest, info.verb, info.subresource, req.method, body, parsed.query),
    fieldSelector: info.fieldSelector,
    labelSelector: info.labelSelector,
    query,
    body,
    patchType,
    patch,
    // Filled by the adapter from a dry run, only when a rule reads them.
    object: null,
    oldObject: null,
  };
}

/**
 * True only when the API server will certainly not persist the write: a write verb on an object (or its status or
 * scale), with every `dryRun` value "All" (the server rejects other values). A DELETE with a body takes its options
 * from the body (DeleteOptions) and ignores the query, as the API server does. Connect subresources (exec, attach,
 * portforward, proxy) and the other subresources ignore dryRun, so it is false there: a rule that relaxes for dry
 * runs must never relax an exec.
 */
function isDryRun(
  isResource: boolean,
  verb: string,
  subresource: string,
  method: string,
  body: unknown,
  query: Map<string, string[]>,
): boolean {
  if (!isResource || !DRY_RUN_VERBS.has(verb) || !DRY_RUN_SUBRESOURCES.has(subresource)) return false;
  let values: unknown = query.get('dryRun') ?? [];
  if (method === 'DELETE' && body !== null) {
    values = typeof body === 'object' && !Array.isArray(body) ? ((body as { dryRun?: unknown }).dryRun ?? []) : [];
  }
  return Array.isArray(values) && values.length > 0 && values.every((v) => v === 'All');
}

/** Verbs whose scope a field selector can narrow. */
const SELECTING_VERBS = new Set(['list', 'watch', 'deletecollection']);

/**
 * The one namespace whose objects the request touches. For a request on a namespaced path it is the path's, as
 * RequestInfo has it. A cluster-wide list, watch or deletecollection whose field selector requires
 * `metadata.namespace=X` exactly only ever touches X's objects, and policies see X: "no Secrets in prod" then also
 * catches `GET /api/v1/secrets?fieldSelector=metadata.namespace=prod`. RBAC would call it cluster-wide (which is
 * stricter still: a rule written for `namespace == ""` does not match it, so it falls to the default, deny).
 */
function namespaceOf(info: { namespace: string; verb: string; fieldSelector: string }): string {
  if (info.namespace !== '' || !SELECTING_VERBS.has(info.verb) || info.fieldSelector === '') return info.namespace;
  return exactFieldMatch(info.fieldSelector, 'metadata.namespace') ?? '';
}
