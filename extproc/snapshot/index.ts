/** The proxy-wasm filter's policy snapshot: compiled from the policies, rendered as the filter reads it, served. */
export { compileSnapshot, parseConjunction, requestShapes } from './compile.ts';
export { REFUSALS_PATH, type RefusalReport, SNAPSHOT_PATH, snapshotRoutes } from './routes.ts';
export {
  type RefreshSettings,
  renderPluginConfiguration,
  renderSnapshot,
  SNAPSHOT_MAGIC,
  SnapshotError,
  type StaticDenyRule,
  type StreamMasking,
  type WasmSnapshot,
} from './wasm-snapshot.ts';
