/**
 * Reading requests, for approvers and auditors: list (most recent first, filtered, only what the viewer may see) and
 * get. Both settle overdue requests on the way (lazy expiry), so a listing never shows a stale pending request.
 */
import { AdminError } from '../admin/errors.ts';
import { assertCanView, canSeeAll } from './authorize.ts';
import type { ApprovalsCore } from './core.ts';
import type { ApprovalRequest, Approvals } from './types.ts';

/** Ids read from an index per round trip while filling a listing. */
const PAGE = 200;

export function createReads(core: ApprovalsCore): Pick<Approvals, 'list' | 'get'> {
  const { store, isDue, load } = core;
  return {
    async list(filter, viewer) {
      if (!canSeeAll(viewer) && !viewer.roles.includes('approver')) {
        throw new AdminError('forbidden', 'listing approvals needs the approver, admin or auditor role');
      }
      const limit = Math.min(Math.max(1, filter.limit ?? 100), 1000);
      const visible = (r: ApprovalRequest): boolean => canSeeAll(viewer) || viewer.groups.includes(r.group);
      const out: ApprovalRequest[] = [];
      for (let offset = 0; out.length < limit; offset += PAGE) {
        const ids = await store.page(filter.state === 'pending' ? 'pending' : 'all', offset, PAGE);
        if (ids.length === 0) break;
        const found = await store.getMany(ids);
        // Requests past their retention are gone from Redis but still in the indexes: drop them there.
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
        if (ids.length < PAGE) break;
      }
      return out;
    },

    async get(id, viewer) {
      const s = await load(id);
      if (!s) throw new AdminError('not_found', `no approval request ${id}`);
      assertCanView(viewer, s.req);
      return s.req;
    },
  };
}
