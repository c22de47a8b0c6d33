/**
 * The request context every CEL condition sees. This file is the contract between the protocol adapters (which fill
 * it) and policy authors (who read it): every field is documented in docs/policy-context.md, and the CEL declarations
 * below are derived from the same shape so a condition that names an unknown field fails at load time.
 */

export type Protocol = 'kubernetes' | 'postgres' | 'ssh';
export type TargetKind = Protocol;

export interface AgentContext {
  id: string;
  groups: string[];
  labels: Record<string, string>;
}

export interface TargetContext {
  name: string;
  kind: TargetKind;
  labels: Record<string, string>;
}

export interface SessionContext {
  id: string;
  /** The plan the agent's token is scoped to, or "" when the token names none. */
  plan: string;
}

/**
 * A Kubernetes API request, classified exactly as the API server's RequestInfo and RBAC see it.
 * For non-resource requests (`/version`, `/healthz`, discovery under `/api`, `/apis`) `isResourceRequest` is false
 * and `verb` is the lower-case HTTP method, as RBAC's nonResourceURLs rules use it.
 */
export interface K8sContext {
  isResourceRequest: boolean;
  method: string;
  path: string;
  verb: string;
  /** "" for the core group. */
  group: string;
  version: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  dryRun: boolean;
  fieldSelector: string;
  labelSelector: string;
  /** Query parameters, first value of each. */
  query: Record<string, string>;
  /** The decoded request body for create/update (an object), null otherwise or when not JSON. */
  body: unknown;
  /** For patch: "json" | "merge" | "strategic" | "apply"; "" otherwise. */
  patchType: string;
  /** For patch: the patch document as sent (a JSON Patch array, or a merge/strategic/apply object); null otherwise. */
  patch: unknown;
  /**
   * The object the API server would store for this write (create, update, patch of an object, its status or scale),
   * from a dry run of the same request (docs/kubernetes.md), whatever the body's encoding or patch type; null for
   * other requests, and when no rule in scope reads `k8s.object` or `k8s.oldObject` (then no dry run is made).
   */
  object: unknown;
  /** With `object`, for an update or patch: the object as it is now (a GET before the dry run); null otherwise. */
  oldObject: unknown;
}

/**
 * One PostgreSQL action as the real Postgres parser classified it: a connection's login (`connect`), or the text of one
 * Query or one bound statement of the extended protocol (docs/postgres.md).
 */
export interface SqlContext {
  /** True for the login that opens a connection (no statement; `database` names the database). */
  connect: boolean;
  /** The database the connection is to. */
  database: string;
  text: string;
  /** Statement kinds as the parser names them, e.g. "SelectStmt", "DeleteStmt", and the kinds nested ones run. */
  statements: string[];
  readTables: string[];
  writeTables: string[];
  functions: string[];
  /** True for UPDATE/DELETE statements that have no WHERE clause. */
  unqualifiedWrite: boolean;
  /** SET ROLE, SET SESSION AUTHORIZATION or their RESET. */
  roleChange: boolean;
  /** DO or CALL, a function that runs SQL given as text, COPY to or from a program or a server file: what the gateway cannot see into. */
  opaque: boolean;
}

/** One command an SSH command line runs, as the shell will run it (extproc/ssh/command-line.ts). */
export interface SshCommand {
  /** The name the shell looks up: `rm` for `rm`, `/bin/rm` and `r\m`. */
  program: string;
  /** The arguments after quote removal, as the program receives them. */
  args: string[];
}

/** A redirection of an SSH command line: `>`, `>>`, `<`, `&>`, `>&` (fd `2`, target `1` for `2>&1`), … */
export interface SshRedirect {
  op: string;
  fd: string;
  target: string;
}

/** An SSH channel request: one `exec`, shell, shell line, subsystem or forwarding request (docs/ssh.md). */
export interface SshContext {
  /** "exec" | "shell" | "shell-line" | "subsystem" | "port-forward" | "remote-forward" | "x11" | "agent-forwarding" */
  kind: string;
  /** The command line as the agent sent it (`exec`), or the line reconstructed from a shell's input (`shell-line`). */
  command: string;
  /** Every command `command` runs, through pipes, lists, subshells and `sh -c` strings; empty for other kinds. */
  commands: SshCommand[];
  /** The `program` of each of `commands`, in order. */
  programs: string[];
  redirects: SshRedirect[];
  /** Whether the channel has a pseudo-terminal. */
  pty: boolean;
  /** The subsystem requested (`sftp`), or "". */
  subsystem: string;
  /** The login user on the target (from the target's credential). */
  user: string;
  /** Where a forwarding goes (`port-forward`: the host the agent asked to reach; `remote-forward`: the bind address). */
  forwardHost: string;
  forwardPort: bigint;
}

export interface RequestContext {
  protocol: Protocol;
  agent: AgentContext;
  target: TargetContext;
  session: SessionContext;
  time: Date;
  /** Exactly one protocol section is meaningful; the others hold zero values so CEL never trips over a missing key. */
  k8s: K8sContext;
  sql: SqlContext;
  ssh: SshContext;
}

export const EMPTY_K8S: K8sContext = Object.freeze({
  isResourceRequest: false,
  method: '',
  path: '',
  verb: '',
  group: '',
  version: '',
  resource: '',
  subresource: '',
  namespace: '',
  name: '',
  dryRun: false,
  fieldSelector: '',
  labelSelector: '',
  query: {},
  body: null,
  patchType: '',
  patch: null,
  object: null,
  oldObject: null,
}) as K8sContext;

export const EMPTY_SQL: SqlContext = Object.freeze({
  connect: false,
  database: '',
  text: '',
  statements: [],
  readTables: [],
  writeTables: [],
  functions: [],
  unqualifiedWrite: false,
  roleChange: false,
  opaque: false,
}) as SqlContext;

export const EMPTY_SSH: SshContext = Object.freeze({
  kind: '',
  command: '',
  commands: [],
  programs: [],
  redirects: [],
  pty: false,
  subsystem: '',
  user: '',
  forwardHost: '',
  forwardPort: 0n,
}) as SshContext;

/**
 * CEL type declarations of the context, one entry per variable. Kept beside the TypeScript types above; the test
 * test/policy/context.test.ts checks that both list the same fields.
 */
export const CEL_CONTEXT_SCHEMA = {
  protocol: 'string',
  agent: { id: 'string', groups: 'list<string>', labels: 'map<string, string>' },
  target: { name: 'string', kind: 'string', labels: 'map<string, string>' },
  session: { id: 'string', plan: 'string' },
  time: 'google.protobuf.Timestamp',
  k8s: {
    isResourceRequest: 'bool',
    method: 'string',
    path: 'string',
    verb: 'string',
    group: 'string',
    version: 'string',
    resource: 'string',
    subresource: 'string',
    namespace: 'string',
    name: 'string',
    dryRun: 'bool',
    fieldSelector: 'string',
    labelSelector: 'string',
    query: 'map<string, string>',
    body: 'dyn',
    patchType: 'string',
    patch: 'dyn',
    object: 'dyn',
    oldObject: 'dyn',
  },
  sql: {
    connect: 'bool',
    database: 'string',
    text: 'string',
    statements: 'list<string>',
    readTables: 'list<string>',
    writeTables: 'list<string>',
    functions: 'list<string>',
    unqualifiedWrite: 'bool',
    roleChange: 'bool',
    opaque: 'bool',
  },
  ssh: {
    kind: 'string',
    command: 'string',
    commands: 'list<dyn>',
    programs: 'list<string>',
    redirects: 'list<dyn>',
    pty: 'bool',
    subsystem: 'string',
    user: 'string',
    forwardHost: 'string',
    forwardPort: 'int',
  },
} as const;
