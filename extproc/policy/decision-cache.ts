/**
 * The decision fast path: a session's actions that agree in every context field the rules in scope can read get the
 * same decision, so it is evaluated once and reused. A PostgreSQL client sends the same few statement shapes again
 * and again (`… WHERE aid = 1`, `… WHERE aid = 2`): their classifications are equal, and unless a rule reads the text
 * itself, so are their decisions.
 *
 * Valid because decide() is a pure function of the policies, the context and the target's default action:
 *   - the policies: decisions are kept per policy set (PolicySet.current() is a new array whenever a policy changes),
 *     so a change drops them all;
 *   - agent, target, session, protocol and default action: fixed for one Session object, and decisions are kept per
 *     Session object;
 *   - the action's own section: the key is the values of every field of it that a rule in scope may read (conditions
 *     and masking `when`s of enforced and dry-run policies, ScopedReads, over-approximated), so two actions that
 *     differ in such a field never share a decision;
 *   - the time: a rule that reads `time` (or a rule that reads the whole section, or indexes it with a computed key)
 *     turns the fast path off for its scope.
 */
import type { RequestContext } from './context.ts';
import type { CompiledPolicy } from './load.ts';
import type { MaskingScope } from './masking-plans.ts';
import type { ScopedReads } from './scoped-reads.ts';
import type { Decision } from './types.ts';

/** The section of the context an action fills. */
export type ActionSectionName = 'k8s' | 'sql' | 'ssh';

/** Decisions kept per session; past this the session's decisions are dropped and kept anew. */
const PER_SESSION_MAX = 1024;

interface SessionDecisions {
  policies: readonly CompiledPolicy[];
  byKey: Map<string, Decision>;
}

export class DecisionCache {
  /** Per set of fields read: the section's members to key on, sorted; null when the set rules the fast path out. */
  private readonly keyMembers = new WeakMap<ReadonlySet<string>, Map<ActionSectionName, string[] | null>>();
  private readonly bySession = new WeakMap<object, SessionDecisions>();
  private readonly lastKey = new WeakMap<object, { members: string[]; values: unknown[]; key: string }>();
  hits = 0;
  misses = 0;

  constructor(private readonly reads: ScopedReads) {}

  /**
   * The key of an action of `session` whose context section is `section`: the values of every member of it a rule in
   * scope may read. Null when the fast path is off for the scope (a rule reads the time, or the whole section).
   */
  keyFor(
    policies: readonly CompiledPolicy[],
    session: { readonly maskingScope: MaskingScope },
    sectionName: ActionSectionName,
    section: object,
  ): string | null {
    const members = this.membersFor(policies, session.maskingScope, sectionName);
    if (members === null) return null;
    const values = section as Record<string, unknown>;
    // The last key of the session again when every member holds the same value (a statement of the shape before it:
    // its lists are the same frozen arrays), without serializing them anew.
    const last = this.lastKey.get(session);
    if (last && last.members === members && sameValues(last.values, values, members)) return last.key;
    const picked: unknown[] = [];
    const kept: unknown[] = [];
    for (const m of members) {
      const v = values[m];
      kept.push(v);
      // JSON has no bigint (ssh.forwardPort); a member is of one type, so its string form cannot meet a string's.
      picked.push(typeof v === 'bigint' ? `${v}n` : v);
    }
    const key = JSON.stringify(picked);
    this.lastKey.set(session, { members, values: kept, key });
    return key;
  }

  /** The decision kept for `key` in `session` under `policies`, if any. */
  get(policies: readonly CompiledPolicy[], session: object, key: string): Decision | undefined {
    const kept = this.bySession.get(session);
    const hit = kept?.policies === policies ? kept.byKey.get(key) : undefined;
    if (hit) this.hits++;
    else this.misses++;
    return hit;
  }

  /** Keeps `decision`, made by decide() for the action of `key` in `session` under `policies`. */
  set(policies: readonly CompiledPolicy[], session: object, key: string, decision: Decision): void {
    let kept = this.bySession.get(session);
    if (!kept || kept.policies !== policies) {
      kept = { policies, byKey: new Map() };
      this.bySession.set(session, kept);
    }
    if (kept.byKey.size >= PER_SESSION_MAX) kept.byKey.clear();
    kept.byKey.set(key, decision);
  }

  private membersFor(
    policies: readonly CompiledPolicy[],
    scope: MaskingScope,
    sectionName: ActionSectionName,
  ): string[] | null {
    const fields = this.reads.fieldsFor(policies, scope);
    let bySection = this.keyMembers.get(fields);
    if (!bySection) {
      bySection = new Map();
      this.keyMembers.set(fields, bySection);
    }
    let members = bySection.get(sectionName);
    if (members === undefined) {
      members = keyMembersOf(fields, sectionName);
      bySection.set(sectionName, members);
    }
    return members;
  }
}

/**
 * Whether `values` holds what `kept` held, member by member: equal primitives, or the same frozen array of primitives
 * (which cannot have changed since).
 */
function sameValues(kept: unknown[], values: Record<string, unknown>, members: string[]): boolean {
  for (let i = 0; i < members.length; i++) {
    const v = values[members[i]];
    if (v !== kept[i]) return false;
    if (typeof v === 'object' && v !== null && !frozenPrimitives(v)) return false;
  }
  return true;
}

function frozenPrimitives(v: object): boolean {
  if (!Array.isArray(v) || !Object.isFrozen(v)) return false;
  // Indexed: a for-of here allocated an iterator for every statement of the fast path.
  for (let i = 0; i < v.length; i++) if (typeof v[i] === 'object' && v[i] !== null) return false;
  return true;
}

/** Context variables besides the object sections: a read of any but `protocol` (fixed per session) varies per action. */
const PER_SESSION_SCALARS: ReadonlySet<keyof RequestContext> = new Set(['protocol']);
const SECTIONS: ReadonlySet<string> = new Set(['agent', 'target', 'session', 'k8s', 'sql', 'ssh']);

function keyMembersOf(fields: ReadonlySet<string>, sectionName: ActionSectionName): string[] | null {
  const members: string[] = [];
  for (const f of fields) {
    const dot = f.indexOf('.');
    if (dot < 0) {
      // `time`, or a variable added to the context later: not known to be fixed per session.
      if (!PER_SESSION_SCALARS.has(f as keyof RequestContext)) return null;
      continue;
    }
    const section = f.slice(0, dot);
    if (!SECTIONS.has(section)) return null;
    if (section !== sectionName) continue;
    const member = f.slice(dot + 1);
    if (member === '*') return null;
    members.push(member);
  }
  return members.sort();
}
