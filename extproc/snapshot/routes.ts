/**
 * The admin API route the proxy-wasm filter polls (by an HTTP callout on its timer) for a fresh snapshot. Read-only,
 * for the roles that may read policies; Envoy holds a principal token with the `auditor` role for it.
 */
import type { AdminRoute } from '../admin/route.ts';
import type { CompiledPolicy } from '../policy/load.ts';
import { compileSnapshot } from './compile.ts';
import { renderSnapshot } from './wasm-snapshot.ts';

export interface SnapshotRouteDeps {
  policies: { current(): readonly CompiledPolicy[] };
  tokens: { revokedTokenIds(): string[] };
}

async function* once(text: string): AsyncIterable<string> {
  yield text;
}

export const SNAPSHOT_PATH = '/v1/wasm-filter/snapshot';

export function snapshotRoutes(deps: SnapshotRouteDeps): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: SNAPSHOT_PATH,
      roles: ['admin', 'policy-author', 'auditor'],
      tag: 'wasm-filter',
      summary:
        'The policy snapshot the proxy-wasm filter enforces in Envoy (text/plain, line-based: token shape, revoked token ids, static deny rules, masked entities); see docs/wasm-filter.md',
      handler: async () => {
        const text = renderSnapshot(compileSnapshot(deps.policies.current(), deps.tokens.revokedTokenIds()));
        return { contentType: 'text/plain; charset=utf-8', stream: once(text) };
      },
    },
  ];
}
