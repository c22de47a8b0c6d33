/**
 * Kubernetes RequestInfo: verb, group, version, resource, subresource, namespace and name of a request, derived from
 * its method, decoded path and query with the same rules as the API server's `RequestInfoFactory.NewRequestInfo`
 * (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go, with the AuthorizeWithSelectors gate on, as from 1.32).
 * RBAC and admission see exactly these values, so a policy written against them means what an RBAC rule means.
 */
import type { ClassifyError } from './classify-error.ts';
import { refuse } from './classify-error.ts';
import { exactFieldMatch } from './field-selector.ts';

export interface RequestInfo {
  isResourceRequest: boolean;
  path: string;
  verb: string;
  apiPrefix: string;
  group: string;
  version: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  fieldSelector: string;
  labelSelector: string;
  /** True when the verb came from a legacy `/watch/` or `/proxy/` path prefix. */
  verbViaPathPrefix: boolean;
}

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_API_PREFIXES = new Set(['api']);
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
/** Subresources of a namespace; anything else after /namespaces/{ns}/ is a namespaced resource. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
const VERBS_WITH_SELECTORS = new Set(['list', 'watch', 'deletecollection']);
const METHOD_VERBS: Record<string, string> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/**
 * `path` must already be decoded and checked (see kube-path.ts). A resource request with a method RequestInfo maps to
 * no verb (OPTIONS, lower-case `get`, …) is refused: the API server would authorize it with verb "" and route it
 * nowhere, and a rule written against verbs could not say anything sensible about it.
 */
export function resolveRequestInfo(
  method: string,
  path: string,
  query: Map<string, string[]>,
): RequestInfo | ClassifyError {
  const info: RequestInfo = {
    isResourceRequest: false,
    path,
    verb: method.toLowerCase(),
    apiPrefix: '',
    group: '',
    version: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    fieldSelector: '',
    labelSelector: '',
    verbViaPathPrefix: false,
  };
  let parts = splitPath(path);
  if (parts.length < 3 || !API_PREFIXES.has(parts[0])) return info;
  info.apiPrefix = parts[0];
  parts = parts.slice(1);
  if (!GROUPLESS_API_PREFIXES.has(info.apiPrefix)) {
    if (parts.length < 3) return info;
    info.group = parts[0];
    parts = parts.slice(1);
  }
  info.isResourceRequest = true;
  info.version = parts[0];
  parts = parts.slice(1);

  if (SPECIAL_VERBS.has(parts[0])) {
    if (parts.length < 2) return refuse('bad-path', 'unable to determine kind and namespace from the URL');
    info.verb = parts[0];
    info.verbViaPathPrefix = true;
    parts = parts.slice(1);
  } else {
    const verb = METHOD_VERBS[method];
    if (verb === undefined)
      return refuse('unsupported-method', `method ${JSON.stringify(method)} has no Kubernetes verb`);
    info.verb = verb;
  }

  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      info.namespace = parts[1];
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2])) parts = parts.slice(2);
    }
  }

  // parts: resource/name/subresource/anything-else-is-not-interpreted
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(info.verb)) info.subresource = parts[2];
  if (parts.length >= 2) info.name = parts[1];
  if (parts.length >= 1) info.resource = parts[0];

  if (info.name === '' && info.verb === 'get') {
    const list = decodeListOptions(query);
    info.verb = list.watch ? 'watch' : 'list';
    if (list.ok && list.fieldSelector !== undefined) {
      const name = exactFieldMatch(list.fieldSelector, 'metadata.name');
      if (name !== undefined && isValidPathSegmentName(name)) info.name = name;
    }
  }
  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';

  if (!info.verbViaPathPrefix && VERBS_WITH_SELECTORS.has(info.verb)) {
    info.fieldSelector = query.get('fieldSelector')?.[0] ?? '';
    info.labelSelector = query.get('labelSelector')?.[0] ?? '';
  }
  return info;
}

/** As RequestInfo's splitPath: leading and trailing slashes trimmed, then split on "/". */
function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

/**
 * A boolean query parameter as apimachinery's Convert_Slice_string_To_bool reads its first value: absent, `0` and
 * `false` (any case) are false; anything else, the empty string included, is true.
 */
export function queryBool(first: string | undefined): boolean {
  return first !== undefined && first !== '0' && first.toLowerCase() !== 'false';
}

/**
 * The parts of ListOptions that decide the verb and the name. The API server decodes all of ListOptions at once:
 * when any parameter fails to decode (a non-integer `limit`, a malformed `fieldSelector`), it still honours `watch`
 * but drops the field selector, so no name is taken from it.
 */
function decodeListOptions(query: Map<string, string[]>): { ok: boolean; watch: boolean; fieldSelector?: string } {
  const watch = queryBool(query.get('watch')?.[0]);
  for (const intParam of ['timeoutSeconds', 'limit']) {
    const v = query.get(intParam)?.[0];
    if (v !== undefined && !isGoInt64(v)) return { ok: false, watch };
  }
  return { ok: true, watch, fieldSelector: query.get('fieldSelector')?.[0] };
}

/** strconv.ParseInt(s, 10, 64): optional sign, decimal digits, in range. */
function isGoInt64(s: string): boolean {
  if (!/^[+-]?[0-9]+$/.test(s)) return false;
  const n = BigInt(s);
  return n >= -(2n ** 63n) && n < 2n ** 63n;
}

/** apimachinery's IsPathSegmentName: not "." or "..", and no "/" or "%". */
function isValidPathSegmentName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}
