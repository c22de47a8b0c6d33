/** The stand-in's in-memory objects: realistic seed data, a resourceVersion counter, and watch subscribers. */
import { randomUUID } from 'node:crypto';
import { RESOURCES, apiVersionOf, type ResourceDef } from './discovery.ts';

/** A Kubernetes object as JSON. Only `metadata` is typed; the rest is whatever the kind holds. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface WatchEvent {
  type: WatchEventType;
  def: ResourceDef;
  object: KubeObject;
}
type Listener = (e: WatchEvent) => void;

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** The values seeded into Secret prod/db, exported so masking tests can assert they never leak. */
export const DB_SECRET_PLAIN = {
  username: 'app',
  password: 'S3cr3t-Pa55w0rd!',
  'card-number': '4111111111111111',
  'admin-email': 'dba@example.com',
} as const;

export class ObjectStore {
  private rv = 1000;
  /** key: `${group}/${resource}` → `${namespace}/${name}` → object */
  private readonly byResource = new Map<string, Map<string, KubeObject>>();
  private readonly listeners = new Set<Listener>();
  private readonly created = new Date(Date.now() - 3 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');

  constructor() {
    for (const d of RESOURCES) this.byResource.set(key(d), new Map());
    seed(this);
  }

  resourceVersion(): string {
    return String(this.rv);
  }

  list(def: ResourceDef, namespace: string): KubeObject[] {
    const all = [...this.table(def).values()];
    const items = def.namespaced && namespace !== '' ? all.filter((o) => o.metadata.namespace === namespace) : all;
    return items.sort((a, b) =>
      `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(
        `${b.metadata.namespace ?? ''}/${b.metadata.name}`,
      ),
    );
  }

  get(def: ResourceDef, namespace: string, name: string): KubeObject | undefined {
    return this.table(def).get(`${def.namespaced ? namespace : ''}/${name}`);
  }

  /** Inserts or replaces, stamping uid, creationTimestamp and a new resourceVersion; emits ADDED or MODIFIED. */
  put(def: ResourceDef, obj: KubeObject): KubeObject {
    const ns = def.namespaced ? (obj.metadata.namespace ?? '') : '';
    const k = `${ns}/${obj.metadata.name}`;
    const prev = this.table(def).get(k);
    const stored: KubeObject = structuredClone(obj);
    stored.apiVersion = apiVersionOf(def);
    stored.kind = def.kind;
    stored.metadata.uid = prev?.metadata.uid ?? stored.metadata.uid ?? randomUUID();
    stored.metadata.creationTimestamp =
      prev?.metadata.creationTimestamp ?? stored.metadata.creationTimestamp ?? this.created;
    stored.metadata.resourceVersion = String(++this.rv);
    if (!def.namespaced) delete stored.metadata.namespace;
    this.table(def).set(k, stored);
    this.emit({ type: prev ? 'MODIFIED' : 'ADDED', def, object: stored });
    return stored;
  }

  delete(def: ResourceDef, namespace: string, name: string): KubeObject | undefined {
    const k = `${def.namespaced ? namespace : ''}/${name}`;
    const prev = this.table(def).get(k);
    if (!prev) return undefined;
    this.table(def).delete(k);
    const gone = structuredClone(prev);
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit({ type: 'DELETED', def, object: gone });
    if (def.resource === 'namespaces') {
      // Namespace deletion takes everything in it; the real server does this asynchronously while "Terminating".
      for (const d of RESOURCES)
        if (d.namespaced) for (const o of this.list(d, name)) this.delete(d, name, o.metadata.name);
    }
    return gone;
  }

  /** Watch subscriptions made so far (never decreases): a test waits for a client's watch to be live, not a while. */
  subscriptions = 0;

  subscribe(listener: Listener): () => void {
    this.subscriptions++;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: WatchEvent): void {
    for (const l of this.listeners) l(e);
  }

  private table(def: ResourceDef): Map<string, KubeObject> {
    return this.byResource.get(key(def))!;
  }
}

function key(d: ResourceDef): string {
  return `${d.group}/${d.resource}`;
}

function def(resource: string): ResourceDef {
  return RESOURCES.find((r) => r.resource === resource)!;
}

function pod(namespace: string, name: string, app: string, image: string, podIP: string): KubeObject {
  const started = new Date(Date.now() - 2 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app }, annotations: {} },
    spec: {
      containers: [
        {
          name: app,
          image,
          ports: [{ containerPort: 8080, protocol: 'TCP' }],
          resources: { requests: { cpu: '100m', memory: '128Mi' } },
          imagePullPolicy: 'IfNotPresent',
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
        },
      ],
      nodeName: 'node-1',
      serviceAccountName: 'default',
      restartPolicy: 'Always',
      dnsPolicy: 'ClusterFirst',
      schedulerName: 'default-scheduler',
      terminationGracePeriodSeconds: 30,
    },
    status: {
      phase: 'Running',
      hostIP: '10.0.0.11',
      podIP,
      podIPs: [{ ip: podIP }],
      startTime: started,
      qosClass: 'Burstable',
      conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({
        type,
        status: 'True',
        lastTransitionTime: started,
      })),
      containerStatuses: [
        {
          name: app,
          ready: true,
          started: true,
          restartCount: 0,
          image,
          imageID: `${image}@sha256:${'ab'.repeat(32)}`,
          containerID: `containerd://${'cd'.repeat(32)}`,
          state: { running: { startedAt: started } },
        },
      ],
    },
  };
}

function seed(store: ObjectStore): void {
  for (const ns of ['default', 'dev', 'prod']) {
    store.put(def('namespaces'), {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    });
    store.put(def('serviceaccounts'), {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default', namespace: ns },
    });
  }
  store.put(def('serviceaccounts'), {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'portcullis-agent', namespace: 'prod' },
  });
  store.put(def('pods'), pod('dev', 'api-7c9d8f6b5-x2x4k', 'api', 'ghcr.io/example/api:1.4.2', '10.244.1.12'));
  store.put(def('pods'), pod('dev', 'worker-0', 'worker', 'ghcr.io/example/worker:1.4.2', '10.244.1.13'));
  store.put(def('pods'), pod('prod', 'web-5d8f7c6b9d-abcde', 'web', 'ghcr.io/example/web:2.0.1', '10.244.2.21'));
  store.put(def('pods'), pod('prod', 'web-5d8f7c6b9d-fghij', 'web', 'ghcr.io/example/web:2.0.1', '10.244.2.22'));
  store.put(def('secrets'), {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: 'db', namespace: 'prod', labels: { app: 'web' } },
    data: Object.fromEntries(Object.entries(DB_SECRET_PLAIN).map(([k, v]) => [k, b64(v)])),
  });
  store.put(def('secrets'), {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: 'api-keys', namespace: 'dev' },
    data: { 'stripe-key': b64('sk_test_51Hstandin0000') },
  });
  for (const ns of ['dev', 'prod']) {
    store.put(def('configmaps'), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'app-config', namespace: ns },
      data: { LOG_LEVEL: ns === 'prod' ? 'info' : 'debug', SUPPORT_EMAIL: 'support@example.com' },
    });
  }
  store.put(def('deployments'), {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'prod', labels: { app: 'web' }, generation: 1 },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [
            { name: 'web', image: 'ghcr.io/example/web:2.0.1', ports: [{ containerPort: 8080, protocol: 'TCP' }] },
          ],
        },
      },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
    },
    status: { observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 },
  });
}
