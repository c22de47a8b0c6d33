/**
 * One action of a session through the spine: record what the agent asked → decide → hold for approval → obtain the
 * upstream credential → record the outcome the agent gets. Every way out goes through finish(), which records the
 * decision; a second finish() is a bug and throws, so "recorded exactly once" is enforced, not hoped for.
 *
 * States: `undecided` → (`awaiting-approval` →) `decided`. The adapter then records the output once.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import {
  actionFingerprint,
  refusalMessage,
  type ActionForApproval,
  type BoundedApprovalCheck,
} from '../approvals/index.ts';
import type { UpstreamSecret } from '../identity/upstream-credentials.ts';
import { CredentialError } from '../identity/upstream-credentials.ts';
import type { CompiledMasking, Finding } from '../masking/index.ts';
import { EMPTY_K8S, EMPTY_SQL, EMPTY_SSH, type RequestContext } from '../policy/context.ts';
import { decide } from '../policy/evaluate.ts';
import type { ActionSectionName, DecisionCache } from '../policy/decision-cache.ts';
import type { MaskingPlans } from '../policy/masking-plans.ts';
import type { ScopedReads } from '../policy/scoped-reads.ts';
import type { Decision } from '../policy/types.ts';
import type { NewRecordingEvent, RecordedEvent, RecordingEventType, RecordResult } from '../recording/index.ts';
import type {
  Action,
  ActionMeta,
  ActionSection,
  DecideOptions,
  FinalOutcome,
  Outcome,
  UpstreamAccess,
} from './action.ts';
import type { GatewayCore } from './core.ts';
import type { DecisionMetrics } from './decision-metrics.ts';
import type { ApprovalStatus, DecisionEventData } from './decision-event.ts';
import { refusal, type Refusal } from './refusal.ts';
import type { SessionEnds } from './session-ends.ts';
import type { Session } from './session.ts';

type RunState = 'undecided' | 'awaiting-approval' | 'decided';

/** What the decision event says beyond the outcome: the policy's decision and the approval, when there was one. */
interface DecisionBasis {
  decision: Decision | null;
  approval?: DecisionEventData['approval'];
  /** The action was a question about another action, answered with `decision` (see review()). */
  review?: true;
}

const GATEWAY: DecisionBasis = { decision: null };

const SECTION_NAMES: Record<ActionSection['protocol'], ActionSectionName> = {
  kubernetes: 'k8s',
  postgres: 'sql',
  ssh: 'ssh',
};

function sectionOf(section: ActionSection): object {
  switch (section.protocol) {
    case 'kubernetes':
      return section.k8s;
    case 'postgres':
      return section.sql;
    case 'ssh':
      return section.ssh;
  }
}

export const RECORDING_UNAVAILABLE = refusal(
  'recording-unavailable',
  'session recording is unavailable and this target requires it; try again shortly',
);

const APPROVALS_UNAVAILABLE = refusal(
  'store-unavailable',
  'the approval store is unavailable, so this action cannot be checked for approval; try again shortly',
  'approvals-unavailable',
);

export class ActionRun {
  private state: RunState = 'undecided';
  private outputRecorded = false;
  /** What the decision event records of the action, when the adapter records the action with it. */
  private request: Record<string, unknown> | undefined;
  /** The decision event as buffered, when the action is recorded with it: its output may be folded into it. */
  private decisionEvent: RecordedEvent | undefined;
  private readonly startedAt = performance.now();
  private logger: Logger | undefined;

  constructor(
    private readonly core: GatewayCore,
    private readonly views: { plans: MaskingPlans; reads: ScopedReads; decisions: DecisionCache },
    private readonly metrics: DecisionMetrics,
    readonly session: Session,
    /** Minted by the adapter when the action started; every event of the action carries it. */
    readonly requestId: string,
    /** Told of the session's activity (each recorded event), so that a busy session is not ended as idle. */
    private readonly ends?: Pick<SessionEnds, 'active'>,
    private readonly meta: ActionMeta = {},
  ) {}

  /**
   * The masking plan for this session's agent and target under the policies in force now (null: nothing masks).
   * Without `action`, masking rules with a `when` all count (the most the plan can mask); with the classified action,
   * each `when` is decided on its context (a rule for Secrets only, say).
   */
  masking(action?: Pick<Action, 'section'>): CompiledMasking | null {
    return this.views.plans.planFor(
      this.core.policies.current(),
      this.session.maskingScope,
      action ? this.context(action) : undefined,
    );
  }

  /** Whether a rule in scope may read `field` of the context ("k8s.object"): an adapter fills a costly field only then. */
  reads(field: string): boolean {
    return this.views.reads.reads(this.core.policies.current(), this.session.maskingScope, field);
  }

  /**
   * The target's address, CA and credential, for a request the adapter makes itself before the decision (the
   * Kubernetes adapter's dry run). When they cannot be had, the cause is recorded and the refusal the agent gets comes
   * back; the adapter then refuses the action with it.
   */
  async upstream(credential: UpstreamSecret['kind']): Promise<{ access: UpstreamAccess } | { refusal: Refusal }> {
    const got = await this.credential({ credential, maxHoldMs: 0 });
    if ('refusal' in got) return { refusal: got.refusal };
    if (!got.secret) throw new Error('no upstream credential kind was asked for');
    const target = this.session.target;
    try {
      const ca = target.caRef ? await this.core.credentials.caFor?.(target) : undefined;
      if (target.caRef && ca === undefined) throw new CredentialError(target.name, 'no CA source is configured');
      return { access: { address: target.address, ca, credential: got.secret } };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error({ err: message }, 'upstream CA unavailable; refusing');
      this.record('error', { code: 'upstream-credential', message });
      return {
        refusal: refusal(
          'upstream-credential',
          `the gateway could not read the CA of target ${target.name}; try again shortly`,
        ),
      };
    }
  }

  get decided(): boolean {
    return this.state === 'decided';
  }

  /**
   * Refuses an action the adapter could not or would not classify (a malformed request, a protocol feature the gateway
   * refuses). `seen` is what the recording keeps of it.
   */
  refuse(r: Refusal, seen: Record<string, unknown>): FinalOutcome {
    this.record('action', seen);
    return this.finish({ kind: 'refuse', refusal: r }, GATEWAY);
  }

  /**
   * Decides a classified action. A `hold` outcome records nothing until it is resumed. The answer comes at once (no
   * promise) when nothing has to be awaited: no upstream credential asked for and no approval to consult, as for every
   * statement inside a database connection.
   */
  decide(action: Action, opts: DecideOptions): Outcome | Promise<Outcome> {
    if (this.state !== 'undecided') throw new Error(`action ${this.requestId} is already ${this.state}`);
    if (action.recordedWithDecision) {
      // Recorded with the decision (finish()); the recording is asked now whether it takes a new action, as
      // record('action') would be: a fail-closed target whose store is down or behind refuses it.
      this.request = action.recorded;
      if (!this.core.recorder.canAccept(this.session.target.name))
        return this.finish({ kind: 'refuse', refusal: RECORDING_UNAVAILABLE }, GATEWAY);
    } else if (!this.record('action', action.recorded).accepted) {
      return this.finish({ kind: 'refuse', refusal: RECORDING_UNAVAILABLE }, GATEWAY);
    }
    const policies = this.core.policies.current();
    // The fast path: a decision already made in this session for an action equal in every field a rule reads.
    const cache = this.views.decisions;
    const section = action.section;
    const key = action.reusableDecision
      ? cache.keyFor(policies, this.session, SECTION_NAMES[section.protocol], sectionOf(section))
      : null;
    let decision = key === null ? undefined : cache.get(policies, this.session, key);
    if (!decision) {
      decision = decide(policies, this.context(action), this.session.target.defaultAction);
      if (key !== null) cache.set(policies, this.session, key, decision);
    }
    this.metrics.took(this.session.protocol, (performance.now() - this.startedAt) / 1000);
    switch (decision.action) {
      case 'deny':
        return this.finish(
          { kind: 'refuse', refusal: refusal('policy-deny', decision.message, decision.reason) },
          { decision },
        );
      case 'allow': {
        if (opts.credential === null) return this.finish({ kind: 'allow', credential: null }, { decision });
        return this.credential(opts).then((credential) =>
          'refusal' in credential
            ? this.finish(credential, { decision })
            : this.finish({ kind: 'allow', credential: credential.secret }, { decision }),
        );
      }
      case 'require_approval':
        return this.requireApproval(decision, action, opts);
      default: {
        const never: never = decision.action;
        throw new Error(`unknown decision ${String(never)}`);
      }
    }
  }

  /**
   * Answers a question about `action` ("may I?") with the same decide() as the data path, without acting on it: no
   * approval is requested, no credential fetched, nothing goes upstream. Recorded as the action asked about and a
   * decision marked `review`, whose `action` is the answer.
   */
  review(action: Action): Decision {
    if (this.state !== 'undecided') throw new Error(`action ${this.requestId} is already ${this.state}`);
    this.record('action', action.recorded);
    const decision = decide(this.core.policies.current(), this.context(action), this.session.target.defaultAction);
    this.finish({ kind: 'allow', credential: null }, { decision, review: true });
    return decision;
  }

  /**
   * Records what came back to the agent, once (later calls are ignored: the first is what the agent got). `masked`
   * lists what masking replaced in it, by entity (counted in the metrics too).
   */
  output(data: Record<string, unknown> & { masked?: readonly Finding[] }): void {
    if (this.outputRecorded) return;
    this.outputRecorded = true;
    if (data.masked) this.metrics.masked(this.session.protocol, data.masked);
    // An action recorded with its decision may have its output folded into it too (NewRecordingEvent.into).
    this.record('output', data, this.decisionEvent);
  }

  /**
   * Records one piece of a terminal's output (`{stream: 'stdout' | 'stderr', text}`, already masked): a shell is one
   * action whose output is many events, replayed in order as an asciicast. Only after an allow.
   */
  terminalOutput(data: { stream: 'stdout' | 'stderr'; text: string }): void {
    if (this.state !== 'decided') throw new Error(`action ${this.requestId} is not decided`);
    this.record('output', data);
  }

  /** Records a problem with the action after its decision (e.g. a response the gateway could not mask). */
  error(data: { code: string } & Record<string, unknown>): void {
    this.record('error', data);
  }

  /**
   * An internal fault: the agent gets the protocol's internal error. An undecided action is recorded as refused with
   * code `internal` (that is what the agent got); a decided one gets an `error` event.
   */
  fault(err: unknown): void {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : 'internal error';
    this.log.error({ err: message, state: this.state }, 'internal fault; failing the action closed');
    if (this.state === 'decided') this.record('error', { code: 'internal', message });
    else this.finish({ kind: 'refuse', refusal: refusal('internal', 'internal error in the gateway') }, GATEWAY);
  }

  private async requireApproval(decision: Decision, action: Action, opts: DecideOptions): Promise<Outcome> {
    const requirement = decision.approval;
    if (!requirement || !decision.rule || !decision.policy) {
      return this.finish(
        { kind: 'refuse', refusal: refusal('policy-deny', decision.message, 'approval-misconfigured') },
        { decision },
      );
    }
    const { agent, target } = this.session;
    const forApproval: ActionForApproval = {
      agent: { id: agent.id, groups: agent.groups, ...(agent.owner ? { owner: agent.owner } : {}) },
      target: target.name,
      protocol: this.session.protocol,
      sessionId: this.session.id,
      fingerprint: actionFingerprint({
        protocol: this.session.protocol,
        target: target.name,
        canonical: action.canonical(),
      }),
      summary: action.summary(),
      ...(action.effect ? { effect: action.effect() } : {}),
      policy: decision.policy,
      policyVersion: decision.policyVersion,
      rule: decision.rule,
      requirement,
    };
    // The credential comes before the approval is consulted: a grant is never used up by an action that could not
    // have gone upstream.
    const credential = await this.credential(opts);
    if ('refusal' in credential) return this.finish(credential, { decision });
    const holdMs = Math.min(requirement.holdSeconds * 1000, opts.maxHoldMs);
    const approvals = this.core.approvals;

    const settle = (check: BoundedApprovalCheck, mayHold: boolean): Outcome => {
      // Fail closed: without the approval's state nothing is known, and the agent may retry.
      if (check.status === 'unavailable')
        return this.finish({ kind: 'refuse', refusal: APPROVALS_UNAVAILABLE }, { decision });
      const approval = (status: ApprovalStatus, extra: Partial<NonNullable<DecisionEventData['approval']>> = {}) => ({
        decision,
        approval: { requestId: check.requestId, status, ...extra },
      });
      switch (check.status) {
        case 'granted':
          return this.finish(
            { kind: 'allow', credential: credential.secret },
            approval('granted', { grant: check.grant }),
          );
        case 'pending':
          if (mayHold && holdMs > 0) {
            this.state = 'awaiting-approval';
            return {
              kind: 'hold',
              holdMs,
              resume: async (signal) => {
                try {
                  return settle(
                    await approvals.waitForDecision(forApproval, check.requestId, holdMs, signal),
                    false,
                  ) as FinalOutcome;
                } catch (err) {
                  // The agent went away while held: nothing was consumed, the request stays for its retry.
                  if (signal.aborted && this.state !== 'decided') {
                    this.finish(
                      {
                        kind: 'refuse',
                        refusal: refusal(
                          'approval-required',
                          'the agent went away while waiting for approval',
                          'abandoned',
                        ),
                      },
                      approval('abandoned'),
                    );
                  }
                  throw err;
                }
              },
            };
          }
          return this.finish(
            {
              kind: 'refuse',
              refusal: refusal('approval-required', refusalMessage(check, forApproval, decision.message)),
            },
            approval('pending', { expiresAt: check.expiresAt }),
          );
        case 'denied':
          return this.finish(
            { kind: 'refuse', refusal: refusal('approval-denied', refusalMessage(check, forApproval)) },
            approval('denied'),
          );
        default: {
          const never: never = check;
          throw new Error(`unknown approval check ${JSON.stringify(never)}`);
        }
      }
    };
    return settle(await approvals.check(forApproval), true);
  }

  /** The target's upstream credential, or the refusal the agent gets when the gateway cannot obtain it. */
  private async credential(
    opts: DecideOptions,
  ): Promise<{ secret: UpstreamSecret | null } | { kind: 'refuse'; refusal: Refusal }> {
    if (opts.credential === null) return { secret: null };
    const target = this.session.target;
    try {
      const secret = await this.core.credentials.credentialFor(target);
      if (secret.kind !== opts.credential) {
        throw new CredentialError(
          target.name,
          `target ${target.name} has a ${secret.kind} credential; ${this.session.protocol} needs a ${opts.credential}`,
        );
      }
      return { secret };
    } catch (err) {
      if (!(err instanceof CredentialError)) throw err;
      // Fail closed: never upstream without the target's own credential. The cause goes to the log and the recording;
      // the agent learns only that the gateway has no credential right now.
      this.log.error({ err: err.message }, 'upstream credential unavailable; refusing');
      this.record('error', { code: 'upstream-credential', message: err.message });
      return {
        kind: 'refuse',
        refusal: refusal(
          'upstream-credential',
          `the gateway could not obtain its upstream credential for target ${target.name}; try again shortly`,
        ),
      };
    }
  }

  /** The one exit: records the decision the agent got, counts it, and returns the outcome. */
  private finish(outcome: FinalOutcome, basis: DecisionBasis): FinalOutcome {
    if (this.state === 'decided') throw new Error(`action ${this.requestId} decided twice`);
    this.state = 'decided';
    const d = basis.decision;
    const refused = outcome.kind === 'refuse' ? outcome.refusal : null;
    const enforced: DecisionEventData['action'] =
      basis.review && d
        ? d.action
        : refused === null
          ? 'allow'
          : refused.code === 'approval-required'
            ? 'require_approval'
            : 'deny';
    const byPolicy =
      d !== null
      && (refused === null
        || refused.code === 'policy-deny'
        || refused.code === 'approval-required'
        || refused.code === 'approval-denied');
    // Optional members are assigned, not spread: a spread of `{}` or `{x}` per member cost every action its
    // temporary objects. The recording sorts members, so the order they are added in does not show.
    const data: DecisionEventData = {
      action: enforced,
      code: refused?.code ?? null,
      reason: byPolicy ? d.reason : 'gateway',
      policy: d?.policy ?? null,
      policyVersion: d?.policyVersion ?? null,
      rule: d?.rule ?? null,
      message: refused?.message ?? '',
      latencyMs: Math.round((performance.now() - this.startedAt) * 1000) / 1000,
    };
    if (refused && refused.detail !== refused.code && refused.detail !== d?.reason) data.detail = refused.detail;
    if (d && d.action !== enforced) data.policyAction = d.action;
    if (d?.dryRun) {
      const { action, rule, policy, policyVersion } = d.dryRun;
      data.dryRun = { action, rule, policy, policyVersion };
    }
    if (basis.approval) data.approval = basis.approval;
    if (basis.review) data.review = true;
    if (this.request) data.request = this.request;
    const tracer = this.core.tracer;
    if (tracer) {
      const s = this.session;
      const ids = tracer.decided(
        {
          traceparent: this.meta.traceparent,
          startedAtMs: performance.timeOrigin + this.startedAt,
          protocol: s.protocol,
          target: s.target.name,
          agent: s.agent.id,
          sessionId: s.id,
          requestId: this.requestId,
        },
        data,
      );
      if (ids) data.trace = ids;
    }
    this.metrics.decided(
      this.session.protocol,
      enforced,
      data.reason === 'gateway' ? (data.code ?? 'gateway') : data.reason,
    );
    if (refused) this.log.info({ code: refused.code, detail: refused.detail }, 'action refused');
    // An allowed action recorded with its decision has its output recorded into it (output()).
    const outputFollows = this.request !== undefined && refused === null;
    const recorded = this.record('decision', data as unknown as Record<string, unknown>, undefined, outputFollows);
    if (this.request && recorded.accepted) this.decisionEvent = recorded.event;
    return outcome;
  }

  private context(action: Pick<Action, 'section'>): RequestContext {
    const s = this.session;
    const section = action.section;
    return {
      protocol: section.protocol,
      agent: s.agentContext,
      target: s.targetContext,
      session: { id: s.id, plan: s.plan },
      time: new Date(),
      k8s: section.protocol === 'kubernetes' ? section.k8s : EMPTY_K8S,
      sql: section.protocol === 'postgres' ? section.sql : EMPTY_SQL,
      ssh: section.protocol === 'ssh' ? section.ssh : EMPTY_SSH,
    };
  }

  private record(
    type: RecordingEventType,
    data: Record<string, unknown>,
    into?: RecordedEvent,
    outputFollows = false,
  ): RecordResult {
    const s = this.session;
    this.ends?.active(s.id);
    const event: NewRecordingEvent = {
      type,
      sessionId: s.id,
      agent: s.agent.id,
      target: s.target.name,
      protocol: s.protocol,
      requestId: this.requestId,
      data,
      into,
    };
    if (outputFollows) event.outputFollows = true;
    return this.core.recorder.record(event);
  }

  /** The action's logger, made on first use: an allowed action logs nothing, and a pino child costs ~20 µs. */
  private get log(): Logger {
    this.logger ??= this.core.logger.child({
      requestId: this.requestId,
      target: this.session.target.name,
      protocol: this.session.protocol,
    });
    return this.logger;
  }
}
