/** Humans who use the admin API, and the roles that separate their duties. Agents are never principals. */

export const ROLES = ['admin', 'policy-author', 'approver', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  id: string;
  name: string;
  roles: Role[];
  /** Approver groups this human belongs to (matched against a rule's `approval.group`). */
  groups: string[];
}
