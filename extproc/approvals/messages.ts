/**
 * The words an agent reads when its action waits for a human, shared so the three data paths say the same thing
 * (each adapter wraps them in its own protocol: a Kubernetes Status, a Postgres ErrorResponse, an SSH stderr line).
 */
import type { ActionForApproval, ApprovalCheck } from './types.ts';

/** `ruleMessage`, the policy rule's own words for the agent, leads when the rule has one. */
export function refusalMessage(
  check: Exclude<ApprovalCheck, { status: 'granted' }>,
  action: ActionForApproval,
  ruleMessage = '',
): string {
  const who = `approver group "${action.requirement.group}"`;
  const lead = ruleMessage ? `${ruleMessage} — ` : '';
  switch (check.status) {
    case 'pending':
      return (
        `${lead}approval required (rule ${action.policy}/${action.rule}): request ${check.requestId} is waiting for ${who} `
        + `until ${check.expiresAt}; retry the same action once it is approved`
      );
    case 'denied':
      return `denied by an approver (rule ${action.policy}/${action.rule}, request ${check.requestId}): ${check.reason}`;
    default: {
      const never: never = check;
      throw new Error(`unexpected approval check ${JSON.stringify(never)}`);
    }
  }
}
