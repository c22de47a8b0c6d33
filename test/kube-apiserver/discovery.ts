/**
 * Discovery documents and the resource registry of the stand-in. Only the legacy (unaggregated) forms are served:
 * kubectl asks for aggregated discovery first and falls back when the answer's Content-Type is plain JSON, as it does
 * against any server that lacks it.
 */

export interface ResourceDef {
  /** Plural resource name, e.g. "pods". */
  resource: string;
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  singularName: string;
  verbs: string[];
}

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const RESOURCES: ResourceDef[] = [
  {
    resource: 'namespaces',
    group: '',
    version: 'v1',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    singularName: 'namespace',
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
  },
  {
    resource: 'pods',
    group: '',
    version: 'v1',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    singularName: 'pod',
    verbs: RW,
  },
  {
    resource: 'secrets',
    group: '',
    version: 'v1',
    kind: 'Secret',
    namespaced: true,
    singularName: 'secret',
    verbs: RW,
  },
  {
    resource: 'configmaps',
    group: '',
    version: 'v1',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
    singularName: 'configmap',
    verbs: RW,
  },
  {
    resource: 'serviceaccounts',
    group: '',
    version: 'v1',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
    singularName: 'serviceaccount',
    verbs: RW,
  },
  {
    resource: 'deployments',
    group: 'apps',
    version: 'v1',
    kind: 'Deployment',
    namespaced: true,
    shortNames: ['deploy'],
    singularName: 'deployment',
    verbs: RW,
  },
];

export function findResource(group: string, version: string, resource: string): ResourceDef | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

export function apiVersionOf(def: { group: string; version: string }): string {
  return def.group === '' ? def.version : `${def.group}/${def.version}`;
}

interface APIResource {
  name: string;
  singularName: string;
  namespaced: boolean;
  kind: string;
  verbs: string[];
  shortNames?: string[];
  group?: string;
  version?: string;
}

function resourceEntry(d: ResourceDef): APIResource {
  const e: APIResource = {
    name: d.resource,
    singularName: d.singularName,
    namespaced: d.namespaced,
    kind: d.kind,
    verbs: d.verbs,
  };
  if (d.shortNames) e.shortNames = d.shortNames;
  return e;
}

/** Subresources listed in discovery, as the real server lists them. */
const SUBRESOURCES: Record<string, APIResource[]> = {
  v1: [
    {
      name: 'namespaces/status',
      singularName: '',
      namespaced: false,
      kind: 'Namespace',
      verbs: ['get', 'patch', 'update'],
    },
    { name: 'pods/attach', singularName: '', namespaced: true, kind: 'PodAttachOptions', verbs: ['create', 'get'] },
    { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
    { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
    {
      name: 'pods/portforward',
      singularName: '',
      namespaced: true,
      kind: 'PodPortForwardOptions',
      verbs: ['create', 'get'],
    },
    { name: 'pods/status', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'patch', 'update'] },
    {
      name: 'serviceaccounts/token',
      singularName: '',
      namespaced: true,
      group: 'authentication.k8s.io',
      version: 'v1',
      kind: 'TokenRequest',
      verbs: ['create'],
    },
  ],
  'apps/v1': [
    {
      name: 'deployments/scale',
      singularName: '',
      namespaced: true,
      group: 'autoscaling',
      version: 'v1',
      kind: 'Scale',
      verbs: ['get', 'patch', 'update'],
    },
    {
      name: 'deployments/status',
      singularName: '',
      namespaced: true,
      kind: 'Deployment',
      verbs: ['get', 'patch', 'update'],
    },
  ],
};

export function versionInfo(): object {
  return {
    major: '1',
    minor: '32',
    gitVersion: 'v1.32.0-portcullis-standin',
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-01-01T00:00:00Z',
    goVersion: 'go1.23.4',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function apiVersions(serverAddress: string): object {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

export function apiGroupList(): object {
  const gv = { groupVersion: 'apps/v1', version: 'v1' };
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [{ name: 'apps', versions: [gv], preferredVersion: gv }] };
}

export function apiGroup(group: string): object | undefined {
  if (group !== 'apps') return undefined;
  const gv = { groupVersion: 'apps/v1', version: 'v1' };
  return { kind: 'APIGroup', apiVersion: 'v1', name: 'apps', versions: [gv], preferredVersion: gv };
}

/** The APIResourceList of a group version ("v1" or "apps/v1"), or undefined when not served. */
export function apiResourceList(groupVersion: string): object | undefined {
  const subs = SUBRESOURCES[groupVersion];
  if (!subs) return undefined;
  const own = RESOURCES.filter((r) => apiVersionOf(r) === groupVersion).map(resourceEntry);
  const resources = [...own, ...subs].sort((a, b) => a.name.localeCompare(b.name));
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}
