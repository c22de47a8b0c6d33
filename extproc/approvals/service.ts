/**
 * The approval workflow the data paths call for `require_approval`: find or raise the request for an action, consume
 * grants, take humans' decisions, expire what is overdue. Every state change is written with a compare-and-set
 * (store.ts), then reported once to `audit` and to the notifier (which never blocks).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AdminError } from '../admin/errors.ts';
import type { Principal } from '../identity/principal.ts';
import { assertCanDecide, assertCanRevoke, assertCanView, canSeeAll } from './authorize.ts';
import { transition } from './state-machine.ts';
import { createApprovalStore, deadlineOf, type StoredRequest } from './store.ts';
import type {
  ActionForApproval, ApprovalAuditEvent, ApprovalCheck, ApprovalEventType, ApprovalRequest, Approvals, ApprovalVote,
  Notifier,
} from './types.ts';

export interface ApprovalsOptions {
  redis: Redis;
  /** A connection for pub/sub (waitForDecision); default: a duplicate of `redis`, made on first use. */
  subscriber?: Redis;
  audit: (e: ApprovalAuditEvent) => void;
  notifier?: Notifier;
  now?: () => number;
  logger?: Logger;
  /** Redis key prefix (default `portcullis:approvals:`). */
  prefix?: string;
  /** How long a final request (consumed, denied, expired, revoked) is kept in Redis; default 30 days. */
  retentionSeconds?: number;
}

/** Compare-and-set retries before giving up; each retry means another writer won a race, so few are ever needed. */
const MAX_ATTEMPTS = 16;

export function createApprovals(opts: ApprovalsOptions): Approvals {
  const store = createApprovalStore(opts.redis, { prefix: opts.prefix, retentionSeconds: opts.retentionSeconds ?? 30 * 86_400 });
  const now = opts.now ?? Date.now;
  const iso = (): string => new Date(now()).toISOString();
  const log = opts.logger;

  const report = (type: ApprovalEventType, req: ApprovalRequest, data: Record<string, unknown> = {}, notify = true): void => {
    const event: ApprovalAuditEvent = {
      type, sessionId: req.sessionId, agent: req.agent, target: req.target, protocol: req.protocol, requestId: req.id,
      data: {
        state: req.state, summary: req.summary, fingerprint: req.fingerprint, policy: req.policy,
        policyVersion: req.policyVersion, rule: req.rule, group: req.group, grant: req.grant, ...data,
      },
    };
    try {
      opts.audit(event);
    } catch (err) {
      log?.error({ err, approval: req.id, type }, 'approval audit sink failed');
    }
    if (notify) opts.notifier?.notify({ type, request: req });
  };

  const isDue = (req: ApprovalRequest): boolean => {
    const d = deadlineOf(req);
    return d !== null && now() >= d;
  };

  /** Moves an overdue request to expired; false when someone else changed it first. */
  const expire = async (s: StoredRequest): Promise<boolean> => {
    const next = transition(s.req, 'expired', iso(), null, {}, log);
    if (!(await store.save(next, s.rev))) return false;
    report('approval.expired', next, { was: s.req.state });
    return true;
  };

  /** Reads a request, expiring it first when it is overdue (lazy expiry). */
  const load = async (id: string): Promise<StoredRequest | null> => {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const s = await store.get(id);
      if (!s || !isDue(s.req)) return s;
      await expire(s);
    }
    throw new Error(`approval ${id}: could not settle its state`);
  };

  const coverKey = (a: ActionForApproval): string => {
    const parts = a.requirement.grant === 'window'
      ? ['window', a.policy, a.rule, a.agent.id, a.target]
      : ['once', a.agent.id, a.target, a.fingerprint];
    const h = createHash('sha256');
    for (const p of parts) h.update(`${Buffer.byteLength(p)}:${p}`);
    return `${parts[0]}:${h.digest('hex')}`;
  };

  const newRequest = (a: ActionForApproval): ApprovalRequest => {
    const t = now();
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
  };

  const check = async (a: ActionForApproval): Promise<ApprovalCheck> => {
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
              report('approval.used', req, { fingerprint: a.fingerprint, summary: a.summary, sessionId: a.sessionId }, false);
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
            if (now() < until) return { status: 'denied', requestId: req.id, reason: req.denial?.reason ?? 'denied by an approver' };
            break;
          }
          case 'consumed': case 'expired': case 'revoked':
            break;
          default: {
            const never: never = req.state;
            throw new Error(`unknown approval state ${String(never)}`);
          }
        }
      }
      const fresh = newRequest(a);
      const r = await store.create(key, id, fresh);
      if (!r.created) continue; // a concurrent check raised or replaced the request: use theirs
      report('approval.requested', fresh, { expiresAt: fresh.expiresAt, minApprovals: fresh.minApprovals });
      return { status: 'pending', requestId: fresh.id, expiresAt: fresh.expiresAt };
    }
    throw new Error(`approval check for ${a.agent.id}@${a.target} did not settle after ${MAX_ATTEMPTS} attempts`);
  };

  /** Reads, applies `change` and writes with compare-and-set, retrying when another writer got there first. */
  const update = async (
    id: string,
    change: (req: ApprovalRequest) => { next: ApprovalRequest; type: ApprovalEventType; data: Record<string, unknown> },
  ): Promise<ApprovalRequest> => {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const s = await load(id);
      if (!s) throw new AdminError('not_found', `no approval request ${id}`);
      const { next, type, data } = change(s.req);
      if (!(await store.save(next, s.rev))) continue;
      report(type, next, data);
      return next;
    }
    throw new AdminError('unavailable', `approval ${id} is changing too often; try again`);
  };

  const vote = (p: Principal, reason: string | undefined): ApprovalVote =>
    ({ by: p.id, name: p.name, at: iso(), reason: reason?.trim() || null });

  const conflictUnless = (req: ApprovalRequest, ...states: ApprovalRequest['state'][]): void => {
    if (!states.includes(req.state)) {
      throw new AdminError('conflict', `approval ${req.id} is ${req.state}`, { state: req.state });
    }
  };

  // Pub/sub for waitForDecision: one subscription, fanned out in-process to the waiters of each request.
  const waiters = new Map<string, Set<(state: string) => void>>();
  let subscriber: Redis | null = null;
  let subscribed: Promise<void> | null = null;
  const subscribe = (): Promise<void> => {
    subscribed ??= (async () => {
      subscriber = opts.subscriber ?? opts.redis.duplicate();
      subscriber.on('message', (channel: string, message: string) => {
        if (channel !== store.channel) return;
        let event: { id: string; state: string };
        try {
          event = JSON.parse(message) as { id: string; state: string };
        } catch {
          return; // not ours: the channel is only written by store.ts
        }
        for (const w of waiters.get(event.id) ?? []) w(event.state);
      });
      await subscriber.subscribe(store.channel);
    })();
    // A failed subscription is retried by the next waiter rather than failing every wait from now on.
    subscribed.catch(() => {
      if (!opts.subscriber) (subscriber as Redis | null)?.disconnect();
      subscriber = null;
      subscribed = null;
    });
    return subscribed;
  };

  let sweeper: NodeJS.Timeout | null = null;
  let sweeping = false;

  const approvals: Approvals = {
    check,

    async waitForDecision(a, requestId, timeoutMs, signal) {
      signal?.throwIfAborted();
      await subscribe();
      await new Promise<void>((resolve, reject) => {
        let set = waiters.get(requestId);
        if (!set) waiters.set(requestId, (set = new Set()));
        const finish = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          set!.delete(onState);
          if (set!.size === 0) waiters.delete(requestId);
        };
        const done = (): void => { finish(); resolve(); };
        const onAbort = (): void => { finish(); reject(signal!.reason); };
        const onState = (state: string): void => { if (state !== 'pending') done(); };
        set.add(onState);
        const timer = setTimeout(done, Math.max(0, timeoutMs));
        signal?.addEventListener('abort', onAbort, { once: true });
        // Subscribed before this read, so a decision made in between is seen either here or as a message.
        load(requestId).then((s) => { if (!s || s.req.state !== 'pending') done(); }, () => done());
      });
      return check(a);
    },

    approve(requestId, approver, reason) {
      return update(requestId, (req) => {
        assertCanDecide(approver, req);
        conflictUnless(req, 'pending');
        if (req.approvals.some((v) => v.by === approver.id)) {
          throw new AdminError('conflict', `you have already approved ${req.id}; approvals must come from distinct approvers`);
        }
        const v = vote(approver, reason);
        const approvals = [...req.approvals, v];
        const data = { approver: v.by, reason: v.reason, approvals: approvals.length, required: req.minApprovals };
        if (approvals.length < req.minApprovals) {
          // Quorum not met yet: the vote is recorded and notified, the state stays pending.
          return { next: { ...req, approvals }, type: 'approval.approved', data: { ...data, quorumMet: false } };
        }
        const lifetime = req.grant === 'window' ? req.windowSeconds : req.ttlSeconds;
        const next = transition(req, 'approved', v.at, v.by, {
          approvals, decidedAt: v.at, grantExpiresAt: new Date(Date.parse(v.at) + lifetime * 1000).toISOString(),
        }, log);
        return { next, type: 'approval.approved', data: { ...data, quorumMet: true, grantExpiresAt: next.grantExpiresAt } };
      });
    },

    deny(requestId, approver, reason) {
      return update(requestId, (req) => {
        assertCanDecide(approver, req);
        conflictUnless(req, 'pending');
        const v = vote(approver, reason);
        const next = transition(req, 'denied', v.at, v.by, { denial: v, decidedAt: v.at }, log);
        return { next, type: 'approval.denied', data: { approver: v.by, reason: v.reason } };
      });
    },

    revoke(requestId, by, reason) {
      return update(requestId, (req) => {
        assertCanRevoke(by, req);
        conflictUnless(req, 'pending', 'approved');
        const v = vote(by, reason);
        const next = transition(req, 'revoked', v.at, v.by, { revocation: v }, log);
        return { next, type: 'approval.revoked', data: { by: v.by, reason: v.reason, was: req.state } };
      });
    },

    async list(filter, viewer) {
      if (!canSeeAll(viewer) && !viewer.roles.includes('approver')) {
        throw new AdminError('forbidden', 'listing approvals needs the approver, admin or auditor role');
      }
      const limit = Math.min(Math.max(1, filter.limit ?? 100), 1000);
      const visible = (r: ApprovalRequest): boolean => canSeeAll(viewer) || viewer.groups.includes(r.group);
      const out: ApprovalRequest[] = [];
      const batch = 200;
      for (let offset = 0; out.length < limit; offset += batch) {
        const ids = await store.page(filter.state === 'pending' ? 'pending' : 'all', offset, batch);
        if (ids.length === 0) break;
        const found = await store.getMany(ids);
        const present = new Set(found.map((s) => s.req.id));
        await store.forget(ids.filter((id) => !present.has(id)));
        for (const s of found) {
          const r = isDue(s.req) ? (await load(s.req.id))?.req : s.req;
          if (!r || !visible(r)) continue;
          if (filter.state && r.state !== filter.state) continue;
          if (filter.agent && r.agent !== filter.agent) continue;
          if (filter.target && r.target !== filter.target) continue;
          out.push(r);
          if (out.length >= limit) break;
        }
        if (ids.length < batch) break;
      }
      return out;
    },

    async get(id, viewer) {
      const s = await load(id);
      if (!s) throw new AdminError('not_found', `no approval request ${id}`);
      assertCanView(viewer, s.req);
      return s.req;
    },

    async sweep() {
      let changed = 0;
      for (;;) {
        const ids = await store.due(now(), 100);
        let progressed = false;
        for (const id of ids) {
          const s = await store.get(id);
          if (!s) { await store.forget([id]); progressed = true; continue; }
          if (isDue(s.req) && (await expire(s))) { changed++; progressed = true; }
        }
        if (ids.length < 100 || !progressed) return changed;
      }
    },

    startExpirySweeper(intervalMs) {
      if (sweeper) return;
      sweeper = setInterval(() => {
        if (sweeping) return;
        sweeping = true;
        approvals.sweep()
          .catch((err: unknown) => log?.error({ err }, 'approval expiry sweep failed'))
          .finally(() => { sweeping = false; });
      }, intervalMs);
      sweeper.unref();
    },

    async close() {
      if (sweeper) clearInterval(sweeper);
      sweeper = null;
      for (const set of waiters.values()) for (const w of set) w('closed');
      if (subscribed) {
        await subscribed.catch(() => undefined);
        const sub = subscriber as Redis | null;
        if (sub && !opts.subscriber) sub.disconnect();
        else if (sub) await sub.unsubscribe(store.channel);
      }
      subscribed = null;
      subscriber = null;
    },
  };
  return approvals;
}
