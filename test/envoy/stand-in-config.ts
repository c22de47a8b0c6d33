/**
 * Reads the Envoy stand-in's settings from the same bootstrap YAML a real Envoy loads (envoy/portcullis.yaml): the
 * HTTP ext_proc filter of one listener, its routes' timeouts, the connection buffer limit and the runtime flags.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { BodySendMode, HeaderSendMode } from '../../extproc/envoy-api/index.ts';
import { assertEnvoyConfigValid } from './config-check.ts';

/** Effective modes: header/trailer DEFAULT already resolved (SEND for headers, SKIP for trailers). */
export interface Modes {
  request_header_mode: 'SEND' | 'SKIP';
  response_header_mode: 'SEND' | 'SKIP';
  request_body_mode: BodySendMode;
  response_body_mode: BodySendMode;
  request_trailer_mode: 'SEND' | 'SKIP';
  response_trailer_mode: 'SEND' | 'SKIP';
}

export interface MutationRules {
  allow_all_routing: boolean;
  allow_envoy: boolean;
  disallow_system: boolean;
  disallow_all: boolean;
  allow_expression?: RegExp;
  disallow_expression?: RegExp;
  disallow_is_error: boolean;
}

export interface RouteMatch {
  name: string;
  prefix?: string;
  path?: string;
  regex?: RegExp;
  query: { name: string; exact?: string; present?: boolean }[];
  /** Route timeout in ms; 0 = none. Envoy's default is 15 s. */
  timeoutMs: number;
  /** Per-route stream idle timeout in ms; 0 = none. */
  idleTimeoutMs: number;
}

export interface ExtProcSettings {
  modes: Modes;
  messageTimeoutMs: number;
  maxMessageTimeoutMs: number;
  failureModeAllow: boolean;
  allowModeOverride: boolean;
  disableImmediateResponse: boolean;
  mutationRules: MutationRules;
  /** Runtime envoy.reloadable_features.ext_proc_graceful_grpc_close (default false). */
  gracefulClose: boolean;
  /** envoy.filters.http.ext_proc.remote_close_timeout_milliseconds (default 1000). */
  remoteCloseTimeoutMs: number;
  /** Listener per_connection_buffer_limit_bytes (Envoy default 1 MiB): the limit for buffered bodies. */
  bufferLimitBytes: number;
  routes: RouteMatch[];
  /** HCM upgrade_configs upgrade types, lower-case. */
  upgradeTypes: string[];
  /** grpc_service.initial_metadata: sent as gRPC call metadata on every stream, as Envoy does. */
  initialMetadata: [string, string][];
  /** metadata_options.receiving_namespaces.untyped: the dynamic-metadata namespaces the filter takes from the processor. */
  receivingNamespaces: string[];
  /** The HCM's first access log's json_format (field → Envoy format string), or null when it has none. */
  accessLogFormat: Record<string, string> | null;
}

export type SettingsOverrides = Partial<Omit<ExtProcSettings, 'modes' | 'mutationRules'>> & {
  modes?: Partial<Modes>;
  mutationRules?: Partial<MutationRules>;
};

/** Duration in YAML ("0.5s" or {seconds, nanos}) -> ms. */
export function durationMs(v: unknown, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'string') return Math.round(Number(v.slice(0, -1)) * 1000);
  const o = v as { seconds?: number | string; nanos?: number };
  return Number(o.seconds ?? 0) * 1000 + Math.round(Number(o.nanos ?? 0) / 1e6);
}

function bool(v: unknown): boolean {
  return v === true || v === 'true' || (typeof v === 'object' && v !== null && bool((v as { value?: unknown }).value));
}

function resolveModes(pm: Record<string, string> | undefined): Modes {
  const h = (v: string | undefined, dflt: 'SEND' | 'SKIP'): 'SEND' | 'SKIP' =>
    v === undefined || v === 'DEFAULT' ? dflt : (v as 'SEND' | 'SKIP');
  return {
    request_header_mode: h(pm?.request_header_mode, 'SEND'),
    response_header_mode: h(pm?.response_header_mode, 'SEND'),
    request_body_mode: (pm?.request_body_mode ?? 'NONE') as BodySendMode,
    response_body_mode: (pm?.response_body_mode ?? 'NONE') as BodySendMode,
    request_trailer_mode: h(pm?.request_trailer_mode, 'SKIP'),
    response_trailer_mode: h(pm?.response_trailer_mode, 'SKIP'),
  };
}

/** Applies a mode_override to the configured modes as Envoy does (docs/envoy-behaviour.md B.7). */
export function effectiveOverride(
  configured: Modes,
  override: Record<string, HeaderSendMode | BodySendMode | undefined>,
): Modes {
  const h = (v: unknown, base: 'SEND' | 'SKIP') => (v === undefined || v === 'DEFAULT' ? base : (v as 'SEND' | 'SKIP'));
  return {
    request_header_mode: configured.request_header_mode, // ignored in an override
    response_header_mode: h(override.response_header_mode, configured.response_header_mode),
    request_trailer_mode: h(override.request_trailer_mode, configured.request_trailer_mode),
    response_trailer_mode: h(override.response_trailer_mode, configured.response_trailer_mode),
    // Both body modes always come from the override: omitted means NONE.
    request_body_mode: (override.request_body_mode ?? 'NONE') as BodySendMode,
    response_body_mode: (override.response_body_mode ?? 'NONE') as BodySendMode,
  };
}

function regexMatcher(v: unknown): RegExp | undefined {
  const r = (v as { regex?: string } | undefined)?.regex;
  return r === undefined ? undefined : new RegExp(`^(?:${r})$`);
}

/** Loads the ext_proc settings of `listener` from `file`, after checking the file like config.test.ts does. */
export function loadExtProcSettings(
  file: string,
  listener: string,
  overrides: SettingsOverrides = {},
): ExtProcSettings {
  const cfg = parse(readFileSync(file, 'utf8')) as Record<string, any>;
  assertEnvoyConfigValid(cfg, file);
  const l = (cfg.static_resources?.listeners ?? []).find((x: { name?: string }) => x.name === listener);
  if (!l) throw new Error(`${file}: no listener named ${listener}`);
  const hcm = l.filter_chains?.[0]?.filters?.find(
    (f: { name?: string }) => f.name === 'envoy.filters.network.http_connection_manager',
  )?.typed_config;
  if (!hcm) throw new Error(`${file}: listener ${listener} has no http_connection_manager`);
  const ep = (hcm.http_filters ?? []).find(
    (f: { name?: string }) => f.name === 'envoy.filters.http.ext_proc',
  )?.typed_config;
  if (!ep) throw new Error(`${file}: listener ${listener} has no envoy.filters.http.ext_proc filter`);

  const layers: Record<string, unknown>[] = (cfg.layered_runtime?.layers ?? []).map(
    (x: { static_layer?: Record<string, unknown> }) => x.static_layer ?? {},
  );
  const runtime = (key: string): unknown =>
    layers.reduce<unknown>((acc, layer) => (key in layer ? layer[key] : acc), undefined);

  const mr = ep.mutation_rules ?? {};
  const routes: RouteMatch[] = [];
  for (const vh of hcm.route_config?.virtual_hosts ?? []) {
    for (const r of vh.routes ?? []) {
      routes.push({
        name: r.name ?? '',
        prefix: r.match?.prefix,
        path: r.match?.path,
        regex: regexMatcher(r.match?.safe_regex),
        query: (r.match?.query_parameters ?? []).map(
          (q: { name: string; string_match?: { exact?: string }; present_match?: boolean }) => ({
            name: q.name,
            exact: q.string_match?.exact,
            present: q.present_match,
          }),
        ),
        timeoutMs: durationMs(r.route?.timeout, 15_000),
        idleTimeoutMs: durationMs(r.route?.idle_timeout ?? hcm.stream_idle_timeout, 300_000),
      });
    }
  }

  const base: ExtProcSettings = {
    modes: resolveModes(ep.processing_mode),
    messageTimeoutMs: durationMs(ep.message_timeout, 200),
    maxMessageTimeoutMs: durationMs(ep.max_message_timeout, 0),
    failureModeAllow: bool(ep.failure_mode_allow),
    allowModeOverride: bool(ep.allow_mode_override),
    disableImmediateResponse: bool(ep.disable_immediate_response),
    mutationRules: {
      allow_all_routing: bool(mr.allow_all_routing),
      allow_envoy: bool(mr.allow_envoy),
      disallow_system: bool(mr.disallow_system),
      disallow_all: bool(mr.disallow_all),
      allow_expression: regexMatcher(mr.allow_expression),
      disallow_expression: regexMatcher(mr.disallow_expression),
      disallow_is_error: bool(mr.disallow_is_error),
    },
    gracefulClose: bool(runtime('envoy.reloadable_features.ext_proc_graceful_grpc_close')),
    remoteCloseTimeoutMs: Number(runtime('envoy.filters.http.ext_proc.remote_close_timeout_milliseconds') ?? 1000),
    bufferLimitBytes: Number(l.per_connection_buffer_limit_bytes ?? 1024 * 1024),
    routes,
    upgradeTypes: (hcm.upgrade_configs ?? []).map((u: { upgrade_type: string }) => u.upgrade_type.toLowerCase()),
    initialMetadata: (ep.grpc_service?.initial_metadata ?? []).map(
      (m: { key: string; value: string }) => [m.key, m.value] as [string, string],
    ),
    receivingNamespaces: ep.metadata_options?.receiving_namespaces?.untyped ?? [],
    accessLogFormat: hcm.access_log?.[0]?.typed_config?.log_format?.json_format ?? null,
  };
  const { modes, mutationRules, ...rest } = overrides;
  return {
    ...base,
    ...rest,
    modes: { ...base.modes, ...modes },
    mutationRules: { ...base.mutationRules, ...mutationRules },
  };
}

/** The first route whose match fits (Envoy's first-match semantics), or undefined (Envoy: 404 NR). */
export function matchRoute(routes: RouteMatch[], path: string): RouteMatch | undefined {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : path.slice(q + 1));
  return routes.find((r) => {
    if (r.prefix !== undefined && !p.startsWith(r.prefix)) return false;
    if (r.path !== undefined && p !== r.path) return false;
    if (r.regex && !r.regex.test(p)) return false;
    return r.query.every((m) => {
      const v = params.get(m.name);
      if (v === null) return false;
      return m.exact === undefined || v === m.exact;
    });
  });
}
