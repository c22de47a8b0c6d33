/**
 * The SSH login name an agent uses: `AGENT@TARGET` (e.g. `planner-1@web-prod`), split at the last `@`. The agent's
 * token is the password; the agent part must be the agent the token was issued to, the target part a target the token
 * covers. OpenSSH spells it `ssh -l planner-1@web-prod gateway` or `ssh planner-1@web-prod@gateway`.
 */
export type Login = { ok: true; agent: string; target: string } | { ok: false; reason: string };

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function parseLogin(username: string): Login {
  const at = username.lastIndexOf('@');
  if (at < 0) {
    return { ok: false, reason: `log in as AGENT@TARGET (e.g. planner-1@web-prod), not ${JSON.stringify(username)}` };
  }
  const agent = username.slice(0, at);
  const target = username.slice(at + 1);
  if (!NAME.test(agent) || !NAME.test(target)) {
    return { ok: false, reason: `log in as AGENT@TARGET with plain names, not ${JSON.stringify(username)}` };
  }
  return { ok: true, agent, target };
}
