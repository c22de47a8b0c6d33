import { loadPolicy, type CompiledPolicy } from '../../extproc/policy/load.ts';
import { contextFromSample, type SampleRequest } from '../../extproc/policy/sample-request.ts';

export function policies(...sources: string[]): CompiledPolicy[] {
  return sources.map((s, i) => loadPolicy(s, i + 1)).sort((a, b) => a.doc.name.localeCompare(b.doc.name));
}

export function kubeRequest(
  k8s: SampleRequest['k8s'],
  extra: Omit<SampleRequest, 'k8s'> = {},
): ReturnType<typeof contextFromSample> {
  return contextFromSample({
    protocol: 'kubernetes',
    agent: { id: 'planner-1', groups: ['agents'], labels: { team: 'platform' } },
    target: { name: 'kube-prod', kind: 'kubernetes', labels: { env: 'prod' } },
    ...extra,
    k8s: { isResourceRequest: true, ...k8s },
  });
}
