/**
 * meta.k8s.io/v1 Table responses, which kubectl asks for first (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
 * Columns follow the real server's printers for these kinds; each row carries the object as PartialObjectMetadata
 * (the default, `includeObject=Metadata`), in full (`Object`) or not at all (`None`).
 */
import type { ResourceDef } from './discovery.ts';
import type { KubeObject } from './objects.ts';

interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}
const col = (name: string, type = 'string', priority = 0, format = ''): Column => ({
  name,
  type,
  format,
  description: name,
  priority,
});

const NAME: Column = { ...col('Name', 'string', 0, 'name'), description: 'Name must be unique within a namespace.' };
const AGE = col('Age');

type Cells = (o: KubeObject) => unknown[];
const get = (o: unknown, ...path: string[]): any => path.reduce((v: any, k) => (v == null ? undefined : v[k]), o);

const PRINTERS: Record<string, { columns: Column[]; cells: Cells }> = {
  namespaces: {
    columns: [NAME, col('Status'), AGE],
    cells: (o) => [o.metadata.name, get(o, 'status', 'phase') ?? 'Active', age(o)],
  },
  pods: {
    columns: [
      NAME,
      col('Ready'),
      col('Status'),
      col('Restarts', 'string'),
      AGE,
      col('IP', 'string', 1),
      col('Node', 'string', 1),
      col('Nominated Node', 'string', 1),
      col('Readiness Gates', 'string', 1),
    ],
    cells: (o) => {
      const cs: any[] = get(o, 'status', 'containerStatuses') ?? [];
      const ready = cs.filter((c) => c.ready).length;
      const restarts = cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
      return [
        o.metadata.name,
        `${ready}/${(get(o, 'spec', 'containers') ?? []).length}`,
        get(o, 'status', 'phase') ?? 'Pending',
        String(restarts),
        age(o),
        get(o, 'status', 'podIP') ?? '<none>',
        get(o, 'spec', 'nodeName') ?? '<none>',
        '<none>',
        '<none>',
      ];
    },
  },
  secrets: {
    columns: [NAME, col('Type'), col('Data', 'string'), AGE],
    cells: (o) => [o.metadata.name, (o as any).type ?? 'Opaque', Object.keys((o as any).data ?? {}).length, age(o)],
  },
  configmaps: {
    columns: [NAME, col('Data', 'string'), AGE],
    cells: (o) => [o.metadata.name, Object.keys((o as any).data ?? {}).length, age(o)],
  },
  serviceaccounts: {
    columns: [NAME, col('Secrets', 'string'), AGE],
    cells: (o) => [o.metadata.name, ((o as any).secrets ?? []).length, age(o)],
  },
  deployments: {
    columns: [
      NAME,
      col('Ready'),
      col('Up-to-date', 'string'),
      col('Available', 'string'),
      AGE,
      col('Containers', 'string', 1),
      col('Images', 'string', 1),
      col('Selector', 'string', 1),
    ],
    cells: (o) => {
      const containers: any[] = get(o, 'spec', 'template', 'spec', 'containers') ?? [];
      const sel = get(o, 'spec', 'selector', 'matchLabels') ?? {};
      return [
        o.metadata.name,
        `${get(o, 'status', 'readyReplicas') ?? 0}/${get(o, 'spec', 'replicas') ?? 1}`,
        get(o, 'status', 'updatedReplicas') ?? 0,
        get(o, 'status', 'availableReplicas') ?? 0,
        age(o),
        containers.map((c) => c.name).join(','),
        containers.map((c) => c.image).join(','),
        Object.entries(sel)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      ];
    },
  },
};

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function wantsTable(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((t) => /;\s*as=Table/.test(t) && /;\s*g=meta\.k8s\.io/.test(t));
}

export function toTable(
  def: ResourceDef,
  objects: KubeObject[],
  resourceVersion: string,
  include: IncludeObject,
  withColumns = true,
): object {
  const p = PRINTERS[def.resource];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: withColumns ? p.columns : null,
    rows: objects.map((o) => {
      const row: Record<string, unknown> = { cells: p.cells(o) };
      if (include === 'Object') row.object = o;
      else if (include === 'Metadata')
        row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
      return row;
    }),
  };
}

function age(o: KubeObject): string {
  const t = Date.parse(o.metadata.creationTimestamp ?? '');
  if (Number.isNaN(t)) return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
