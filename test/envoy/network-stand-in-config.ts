/**
 * Reads the network Envoy stand-in's settings from the same bootstrap YAML a real Envoy loads (envoy/portcullis.yaml):
 * the `envoy.filters.network.ext_proc` filter of one TCP listener and the `tcp_proxy` after it.
 * See docs/envoy-behaviour.md C.2 and its Appendix for the filter's fields and defaults.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { assertEnvoyConfigValid } from './config-check.ts';
import { durationMs } from './stand-in-config.ts';

export type DataSendMode = 'STREAMED' | 'SKIP';

export interface NetworkExtProcSettings {
  /** stat_prefix: Envoy's counters are network_ext_proc.<stat_prefix>.<name>. */
  statPrefix: string;
  failureModeAllow: boolean;
  /** processing_mode.process_read (downstream -> upstream bytes), default STREAMED. */
  processRead: DataSendMode;
  /** processing_mode.process_write (upstream -> downstream bytes), default STREAMED. */
  processWrite: DataSendMode;
  /** message_timeout in ms, default 200; 0 = no timer (unlike the HTTP filter). */
  messageTimeoutMs: number;
  /** grpc_service.initial_metadata: sent as gRPC call metadata on every stream, as Envoy does. */
  initialMetadata: [string, string][];
  /** tcp_proxy idle_timeout in ms (Envoy's default 1 h); 0 = none. */
  idleTimeoutMs: number;
  /**
   * Stand-in switch, not an Envoy setting: reproduce the write-timer bug of Envoy before envoyproxy/envoy#43167
   * (1.35–1.37 at least): a write_data answer stops the READ timer, so the write timer is never stopped and fires
   * message_timeout after the last upstream→client chunk was sent to the processor. Default false (fixed Envoy).
   */
  writeTimerBug: boolean;
}

export type NetworkSettingsOverrides = Partial<NetworkExtProcSettings>;

const EXT_PROC = 'envoy.filters.network.ext_proc';
const TCP_PROXY = 'envoy.filters.network.tcp_proxy';

function bool(v: unknown): boolean {
  return v === true || v === 'true' || (typeof v === 'object' && v !== null && bool((v as { value?: unknown }).value));
}

function mode(v: unknown, what: string): DataSendMode {
  if (v === undefined || v === null || v === 'STREAMED' || v === 0) return 'STREAMED';
  if (v === 'SKIP' || v === 1) return 'SKIP';
  throw new Error(`${what}: unknown DataSendMode ${String(v)}`);
}

/**
 * Loads the network ext_proc settings of `listener` from `file` (after checking the file like config.test.ts does).
 * The listener's first filter chain must hold the network ext_proc filter followed by tcp_proxy.
 */
export function loadNetworkExtProcSettings(
  file: string,
  listener: string,
  overrides: NetworkSettingsOverrides = {},
): NetworkExtProcSettings {
  const cfg = parse(readFileSync(file, 'utf8')) as Record<string, any>;
  assertEnvoyConfigValid(cfg, file);
  const l = (cfg.static_resources?.listeners ?? []).find((x: { name?: string }) => x.name === listener);
  if (!l) throw new Error(`${file}: no listener named ${listener}`);
  const filters: { name?: string; typed_config?: Record<string, any> }[] = l.filter_chains?.[0]?.filters ?? [];
  const epIndex = filters.findIndex((f) => f.name === EXT_PROC);
  const tpIndex = filters.findIndex((f) => f.name === TCP_PROXY);
  if (epIndex < 0) throw new Error(`${file}: listener ${listener} has no ${EXT_PROC} filter`);
  if (tpIndex < 0) throw new Error(`${file}: listener ${listener} has no ${TCP_PROXY} filter`);
  if (tpIndex < epIndex) throw new Error(`${file}: listener ${listener}: ${EXT_PROC} must come before ${TCP_PROXY}`);
  const ep = filters[epIndex].typed_config ?? {};
  const tp = filters[tpIndex].typed_config ?? {};

  const base: NetworkExtProcSettings = {
    statPrefix: String(ep.stat_prefix ?? ''),
    failureModeAllow: bool(ep.failure_mode_allow),
    processRead: mode(ep.processing_mode?.process_read, `${listener} processing_mode.process_read`),
    processWrite: mode(ep.processing_mode?.process_write, `${listener} processing_mode.process_write`),
    messageTimeoutMs: durationMs(ep.message_timeout, 200),
    initialMetadata: (ep.grpc_service?.initial_metadata ?? []).map(
      (m: { key: string; value: string }) => [m.key, m.value] as [string, string],
    ),
    idleTimeoutMs: durationMs(tp.idle_timeout, 3_600_000),
    writeTimerBug: false,
  };
  return { ...base, ...overrides };
}
