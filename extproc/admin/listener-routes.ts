/**
 * `GET /v1/listeners`: the service's own TCP listeners (the SSH gateway) with what clients need to know of them —
 * the gateway's host key and its fingerprint, for agents to pin.
 */
import { ROLES } from '../identity/principal.ts';
import type { AdminRoute } from './route.ts';

export interface ListenerInfo {
  name: string;
  address: string;
  details: Record<string, string>;
}

export function listenerRoutes(listeners: readonly ListenerInfo[]): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/listeners',
      roles: ROLES,
      tag: 'listeners',
      summary: "The service's TCP listeners (the SSH gateway: address, host key and its SHA256 fingerprint)",
      response: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'address', 'details'],
          properties: {
            name: { type: 'string' },
            address: { type: 'string' },
            details: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
      },
      handler: async () => ({ body: listeners }),
    },
  ];
}
