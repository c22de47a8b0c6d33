/**
 * How a concern exposes admin API endpoints: a table of routes, each naming the roles that may call it and the JSON
 * Schemas of its payloads. The server (server.ts) authenticates, checks roles, parses JSON and turns AdminError into
 * `{code, message, details}`; the OpenAPI document (openapi.ts) is generated from the same table.
 */
import type { IncomingMessage } from 'node:http';
import type { Principal, Role } from '../identity/principal.ts';

export type JsonSchema = Record<string, unknown>;

export interface QueryParam {
  description: string;
  schema: JsonSchema;
}
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface AdminRequest {
  principal: Principal;
  /** Path parameters, from `{name}` segments of the route path. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** Parsed JSON body (undefined when there is none). */
  body: unknown;
  /** Aborted when the client goes away (for streaming replies). */
  signal: AbortSignal;
  raw: IncomingMessage;
}

export type AdminReply =
  | { status?: number; body: unknown }
  /** A streamed reply (JSON Lines, asciicast, server-sent events): chunks are written as they come. */
  | { status?: number; contentType: string; stream: AsyncIterable<string | Uint8Array>; filename?: string };

export interface AdminRoute {
  method: HttpMethod;
  /** e.g. `/v1/sessions/{id}/events` */
  path: string;
  /** Roles allowed to call; `admin` is not implied — list it where admins may call. */
  roles: readonly Role[];
  summary: string;
  tag: string;
  /** The query parameters the handler reads (for the OpenAPI document; the handler validates them). */
  query?: Record<string, QueryParam>;
  request?: JsonSchema;
  response?: JsonSchema;
  handler(req: AdminRequest): Promise<AdminReply>;
}
