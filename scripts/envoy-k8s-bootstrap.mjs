#!/usr/bin/env node
// Writes the Envoy files of the Kubernetes manifests (deploy/base/) from the ones in envoy/, which stay the only
// place to edit them: kustomize cannot read files outside its directory. The one change: the Kubernetes API server
// is the cluster's own (kubernetes.default.svc:443, CA from the kube-root-ca.crt ConfigMap) instead of the compose
// stack's `kube-apiserver:6443`. test/deploy/manifests.test.ts fails when the copies are stale: run this script.
//   node scripts/envoy-k8s-bootstrap.mjs [--check]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';

const root = new URL('..', import.meta.url).pathname;
const HEADER = '# Generated from envoy/%s by scripts/envoy-k8s-bootstrap.mjs: edit that file, then run the script.\n';

export function kubernetesBootstrap() {
  const doc = parseDocument(readFileSync(join(root, 'envoy/portcullis.yaml'), 'utf8'));
  const clusters = doc.getIn(['static_resources', 'clusters']);
  const apiServer = clusters.items.find((c) => c.get('name') === 'kube-apiserver');
  if (!apiServer) throw new Error('envoy/portcullis.yaml has no kube-apiserver cluster');
  const address = ['load_assignment', 'endpoints', 0, 'lb_endpoints', 0, 'endpoint', 'address', 'socket_address'];
  apiServer.setIn([...address, 'address'], 'kubernetes.default.svc');
  apiServer.setIn([...address, 'port_value'], 443);
  return HEADER.replace('%s', 'portcullis.yaml') + doc.toString({ lineWidth: 0 });
}

export function sdsFile() {
  return (
    HEADER.replace('%s', 'sds/gateway-cert.yaml') + readFileSync(join(root, 'envoy/sds/gateway-cert.yaml'), 'utf8')
  );
}

export const OUTPUTS = {
  'deploy/base/envoy-bootstrap.yaml': kubernetesBootstrap,
  'deploy/base/envoy-sds-gateway-cert.yaml': sdsFile,
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [file, make] of Object.entries(OUTPUTS)) {
    const text = make();
    if (!check) writeFileSync(join(root, file), text);
    else if (readFileSync(join(root, file), 'utf8') !== text) {
      console.error(`${file} is stale: run node scripts/envoy-k8s-bootstrap.mjs`);
      stale++;
    }
  }
  process.exit(stale ? 1 : 0);
}
