/**
 * `kubectl auth can-i`, answered by policy: a SelfSubjectAccessReview asks "may I do this?", and the only true answer
 * for an agent behind the gateway is what the gateway's policy decides for it, not what the gateway's own credential
 * may do. So reviews are never forwarded: the action the review describes is decided with the data path's decide()
 * and the answer comes back as the API server would give it. A SelfSubjectRulesReview (`can-i --list`) is answered
 * as incomplete: conditions in CEL cannot be listed as RBAC rules.
 */
import { EMPTY_K8S, type Decision, type K8sContext } from '../spine/index.ts';
import { bodyMediaType } from './request-body.ts';
import { decodeKubeProtobuf } from './protobuf.ts';

const GROUP = 'authorization.k8s.io';
const API_VERSION = `${GROUP}/v1`;
const KINDS = {
  selfsubjectaccessreviews: 'SelfSubjectAccessReview',
  selfsubjectrulesreviews: 'SelfSubjectRulesReview',
} as const;
export type ReviewKind = (typeof KINDS)[keyof typeof KINDS];

/** The self-review a request creates, or null when it is not one. */
export function selfReviewOf(k8s: K8sContext): ReviewKind | null {
  if (!k8s.isResourceRequest || k8s.group !== GROUP || k8s.verb !== 'create' || k8s.subresource !== '') return null;
  return KINDS[k8s.resource as keyof typeof KINDS] ?? null;
}

interface ResourceAttributes {
  namespace?: string;
  verb?: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

export interface ReadReview {
  kind: ReviewKind;
  /** The review's spec as sent (echoed back, as the API server does). */
  spec: Record<string, unknown>;
}

/** The review in the body (JSON, or protobuf as kubectl sends it), or why it cannot be read. */
export function readReview(
  kind: ReviewKind,
  version: string,
  k8s: K8sContext,
  body: Buffer | null,
  contentType: string | undefined,
): ReadReview | { error: string } {
  if (version !== 'v1') return { error: `${GROUP}/${version} reviews are not answered; use ${API_VERSION}` };
  let review: unknown = k8s.body;
  if (bodyMediaType(contentType) === 'application/vnd.kubernetes.protobuf') {
    try {
      review = decodeKubeProtobuf(body ?? Buffer.alloc(0), API_VERSION, kind);
    } catch (err) {
      return { error: `the ${kind} could not be read: ${(err as Error).message}` };
    }
  }
  const r = review as { kind?: unknown; spec?: unknown } | null;
  if (typeof r !== 'object' || r === null || (r.kind !== undefined && r.kind !== kind))
    return { error: `the body is not a ${kind}` };
  const spec = r.spec;
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return { error: `the ${kind} has no spec` };
  return { kind, spec: spec as Record<string, unknown> };
}

/** The action a SelfSubjectAccessReview asks about, as the classifier would have described the request itself. */
export function reviewedAction(spec: Record<string, unknown>): K8sContext | { error: string } {
  const resource = spec.resourceAttributes as ResourceAttributes | undefined;
  const nonResource = spec.nonResourceAttributes as { path?: string; verb?: string } | undefined;
  if (resource && typeof resource === 'object') {
    const s = (v: unknown): string => (typeof v === 'string' ? v : '');
    const verb = s(resource.verb);
    if (verb === '') return { error: 'spec.resourceAttributes.verb is required' };
    return {
      ...EMPTY_K8S,
      isResourceRequest: true,
      verb,
      group: s(resource.group),
      version: s(resource.version),
      resource: s(resource.resource),
      subresource: s(resource.subresource),
      namespace: s(resource.namespace),
      name: s(resource.name),
    };
  }
  if (nonResource && typeof nonResource === 'object' && typeof nonResource.path === 'string') {
    return {
      ...EMPTY_K8S,
      path: nonResource.path,
      verb: typeof nonResource.verb === 'string' ? nonResource.verb : '',
    };
  }
  return { error: 'spec must give resourceAttributes or nonResourceAttributes' };
}

/**
 * The answer: allowed only when policy allows outright. An action that needs approval is "no" (with the reason),
 * as is anything denied. Rules on `k8s.object` see no object in a review (there is no write to dry-run), so for
 * writes the answer is about the request line only; the object is still decided when the write comes.
 */
export function accessReviewAnswer(spec: Record<string, unknown>, asked: K8sContext, d: Decision): object {
  const where = d.rule ? `policy ${d.policy} rule ${d.rule}` : 'the target default';
  const reason =
    d.action === 'allow'
      ? `allowed by ${where}${asked.isResourceRequest && isWrite(asked.verb) ? '; rules on the object written are decided when the write is made' : ''}`
      : d.action === 'require_approval'
        ? `needs a human's approval (${where}, approver group ${d.approval?.group ?? '?'})${d.message ? `: ${d.message}` : ''}`
        : d.message || `denied by ${where}`;
  return {
    kind: 'SelfSubjectAccessReview',
    apiVersion: API_VERSION,
    metadata: { creationTimestamp: null },
    spec,
    status: { allowed: d.action === 'allow', ...(d.action === 'deny' ? { denied: true } : {}), reason },
  };
}

export function rulesReviewAnswer(spec: Record<string, unknown>): object {
  return {
    kind: 'SelfSubjectRulesReview',
    apiVersion: API_VERSION,
    metadata: { creationTimestamp: null },
    spec,
    status: {
      resourceRules: [],
      nonResourceRules: [],
      incomplete: true,
      evaluationError:
        'the gateway decides with policy conditions (CEL), which cannot be listed as rules; ask about one action with `kubectl auth can-i VERB RESOURCE`',
    },
  };
}

function isWrite(verb: string): boolean {
  return verb === 'create' || verb === 'update' || verb === 'patch';
}
