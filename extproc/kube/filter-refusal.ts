/**
 * Requests the proxy-wasm filter refused inside Envoy (from its policy snapshot: docs/wasm-filter.md) never reach this
 * adapter's processor. The filter reports each one, and it is recorded here the way the processor records a request
 * without a body: the agent's token authenticated, the request classified, decided by the policies in force now, under
 * the request id the filter set — so the session's recording holds every refusal, whichever filter answered. Token
 * refusals are not reported: as in the processor, there is no session to record them in.
 */
import type { Spine } from '../spine/index.ts';
import { isClassifyError } from './classify-error.ts';
import { classifyKubeRequest } from './classify-request.ts';
import { classifyRefusal } from './kube-status.ts';
import { KubeAction } from './processor.ts';

export interface FilterRefusalReport {
  /** The registered target the filter's listener fronts. */
  target: string;
  /** The x-request-id the filter set (a UUID). */
  requestId: string;
  method: string;
  /** The raw `:path`. */
  path: string;
  /** The agent's bearer token, as it was presented. */
  token: string;
  /** What the agent got from the filter. */
  status: number;
  message: string;
}

/** What became of a report: recorded (with the decision the policies give now), or not, and why. */
export type FilterRefusalRecord =
  | { recorded: true; requestId: string; decision: 'refuse' | 'allow' }
  | { recorded: false; reason: string };

export async function recordFilterRefusal(spine: Spine, report: FilterRefusalReport): Promise<FilterRefusalRecord> {
  const auth = await spine.authenticate({ protocol: 'kubernetes', target: report.target, token: report.token });
  if (!auth.ok) return { recorded: false, reason: auth.refusal.message };
  const requestId = `req_${report.requestId.toLowerCase()}`;
  const run = spine.begin(auth.session, requestId);
  const output = { status: report.status, refusedBy: 'envoy-wasm-filter', message: report.message };
  const k8s = classifyKubeRequest({ method: report.method, path: report.path, body: null });
  if (isClassifyError(k8s)) {
    run.refuse(classifyRefusal(k8s), { method: report.method, path: report.path.split('?')[0] });
    run.output(output);
    return { recorded: true, requestId, decision: 'refuse' };
  }
  const { method: _method, path: _path, ...rest } = k8s;
  const recorded = { method: report.method, path: k8s.path, k8s: rest, bodyBytes: 0 };
  // No hold (the agent already has its answer) and no upstream credential (nothing goes upstream).
  const outcome = await run.decide(new KubeAction(k8s, report.method, report.path, null, recorded, () => []), {
    maxHoldMs: 0,
    credential: null,
  });
  if (outcome.kind === 'allow') {
    // The filter's snapshot was older than the policies: the agent was refused all the same, and the record says so.
    run.error({
      code: 'wasm-snapshot-stale',
      message: 'refused by the wasm filter; the policies in force now allow it',
    });
  }
  run.output(output);
  return { recorded: true, requestId, decision: outcome.kind === 'allow' ? 'allow' : 'refuse' };
}
