/**
 * The data path's question: may this action go ahead? Finds the latest request covering the action and answers from
 * its state, consuming a once grant (atomically: of two concurrent checks exactly one gets it), or raises a new
 * pending request when none covers the action any more.
 */
import { createHash, randomBytes } from 'node:crypto';
import { MAX_ATTEMPTS, type ApprovalsCore } from './core.ts';
import { transition } from './state-machine.ts';
import type { ActionForApproval, ApprovalCheck, ApprovalRequest } from './types.ts';

/**
 * Which actions one request covers: a once grant the exact action (agent, target, fingerprint); a window grant every
 * action its rule matches for that agent and target. Parts are length-prefixed, so no two part lists are confused.
 */
function coverKey(a: ActionForApproval): string {
  const parts =
    a.requirement.grant === 'window'
      ? ['window', a.policy, a.rule, a.agent.id, a.target]
      : ['once', a.agent.id, a.target, a.fingerprint];
  const h = createHash('sha256');
  for (const p of parts) h.update(`${Buffer.byteLength(p)}:${p}`);
  return `${parts[0]}:${h.digest('hex')}`;
}

/** A new pending request for `a`, created at `t` (ms). */
function newRequest(a: ActionForApproval, t: number): ApprovalRequest {
  const r = a.requirement;
  return {
    id: `apr_${randomBytes(10).toString('hex')}`,
    state: 'pending',
    agent: a.agent.id,
    agentGroups: a.agent.groups,
    agentOwner: a.agent.owner ?? null,
    target: a.target,
    protocol: a.protocol,
    sessionId: a.sessionId,
    summary: a.summary,
    ...(a.effect?.length ? { effect: a.effect } : {}),
    fingerprint: a.fingerprint,
    policy: a.policy,
    policyVersion: a.policyVersion,
    rule: a.rule,
    group: r.group,
    grant: r.grant,
    windowSeconds: r.windowSeconds,
    minApprovals: Math.max(1, r.minApprovals),
    ttlSeconds: r.ttlSeconds,
    createdAt: new Date(t).toISOString(),
    expiresAt: new Date(t + r.ttlSeconds * 1000).toISOString(),
    approvals: [],
    denial: null,
    revocation: null,
    decidedAt: null,
    grantExpiresAt: null,
    consumedAt: null,
    history: [],
  };
}

export function createCheck(core: ApprovalsCore): (a: ActionForApproval) => Promise<ApprovalCheck> {
  const { store, now, iso, log, report, load } = core;
  return async (a) => {
    const key = coverKey(a);
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const id = await store.pointer(key);
      const s = id ? await load(id) : null;
      if (s) {
        const req = s.req;
        switch (req.state) {
          case 'pending':
            return { status: 'pending', requestId: req.id, expiresAt: req.expiresAt };
          case 'approved': {
            if (req.grant === 'window') {
              // Not a state change: a window grant covers many actions; each use is recorded, not notified.
              report(
                'approval.used',
                req,
                { fingerprint: a.fingerprint, summary: a.summary, sessionId: a.sessionId },
                false,
              );
              return { status: 'granted', requestId: req.id, grant: 'window' };
            }
            const at = iso();
            const next = transition(req, 'consumed', at, null, { consumedAt: at }, log);
            if (!(await store.save(next, s.rev))) continue; // another retry consumed it (or it changed): look again
            report('approval.consumed', next, { sessionId: a.sessionId });
            return { status: 'granted', requestId: req.id, grant: 'once' };
          }
          case 'denied': {
            // A denial sticks for the rule's ttl, so an agent retrying in a loop cannot flood approvers.
            const until = Date.parse(req.decidedAt ?? req.createdAt) + req.ttlSeconds * 1000;
            if (now() < until)
              return { status: 'denied', requestId: req.id, reason: req.denial?.reason ?? 'denied by an approver' };
            break;
          }
          case 'consumed':
          case 'expired':
          case 'revoked':
            break;
          default: {
            const never: never = req.state;
            throw new Error(`unknown approval state ${String(never)}`);
          }
        }
      }
      const fresh = newRequest(a, now());
      const r = await store.create(key, id, fresh);
      if (!r.created) continue; // a concurrent check raised or replaced the request: use theirs
      report('approval.requested', fresh, { expiresAt: fresh.expiresAt, minApprovals: fresh.minApprovals });
      return { status: 'pending', requestId: fresh.id, expiresAt: fresh.expiresAt };
    }
    throw new Error(`approval check for ${a.agent.id}@${a.target} did not settle after ${MAX_ATTEMPTS} attempts`);
  };
}
