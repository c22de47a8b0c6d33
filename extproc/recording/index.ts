/** Session recording: the recorder every data path writes to, and the auditor's read side. */
export type {
  RecordingEventType,
  NewRecordingEvent,
  RecordingEvent,
  FailureMode,
  Recorder,
  RecorderStats,
  RecordResult,
  RecordedEvent,
  SessionSummary,
  VerifyResult,
} from './types.ts';
export { RECORDING_EVENT_TYPES } from './types.ts';
export type { Protocol } from '../policy/context.ts';
export {
  createRecorder,
  type RecorderOptions,
  type RecorderExtendedStats,
  type RecorderWithStats,
} from './recorder.ts';
export { redact, SecretRegistry, REDACTED } from './redact.ts';
export { GENESIS_HASH, hashEvent, ChainVerifier } from './hash-chain.ts';
export { loadAnchorKey, anchorOf } from './anchor.ts';
export { valueDigester, valueDigestKey, valueDigestOf } from './value-digest.ts';
export {
  sessionEndClaims,
  type SessionEndClaims,
  type SessionEndReason,
  type EndClaim,
} from './session-end-claims.ts';
export { canonicalJson } from '../common/canonical-json.ts';
export { keys as recordingKeys } from './keys.ts';
export {
  listSessions,
  getSession,
  readEvents,
  verifySession,
  tailEvents,
  type SessionFilter,
  type SessionPage,
  type StoredEvent,
} from './queries.ts';
export { recordingRoutes, filterOf, RECORDING_EVENT_SCHEMA, type RecordingRouteDeps } from './routes.ts';
export {
  applyRetention,
  startRetention,
  removeSession,
  type RetentionOptions,
  type RetentionResult,
} from './retention.ts';
export { toAsciicast, terminalOf, type AsciicastHeader } from './asciicast.ts';
