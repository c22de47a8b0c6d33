/**
 * An authenticate function for admin-server tests that maps fixed bearer tokens to principals. It refuses agent
 * tokens by shape first, as Principals.authenticate does, so route tests see the same refusals as the service.
 */
import { AdminError } from '../../extproc/admin/errors.ts';
import type { Authenticate } from '../../extproc/admin/server.ts';
import { looksLikeAgentToken } from '../../extproc/identity/agent-tokens.ts';
import type { Principal } from '../../extproc/identity/principal.ts';

export function tokenTable(principals: Record<string, Principal>): Authenticate {
  return async (bearer) => {
    if (!bearer) throw new AdminError('unauthenticated', 'a bearer token is required');
    if (looksLikeAgentToken(bearer))
      throw new AdminError('unauthenticated', 'agent tokens are not accepted by the admin API');
    const p = principals[bearer];
    if (!p) throw new AdminError('unauthenticated', 'unknown token');
    return p;
  };
}
