/**
 * A toy line protocol, test code only: it proves that an adapter gets authentication, decisions, approval holds,
 * recording and masking from the spine and the network ext_proc loop with nothing but translation of its own.
 * Client → upstream: lines; the first is `AUTH <agent token>`, each other a command, decided as an `ssh` exec.
 * Upstream → client: one output line per command, masked. A refused command is rewritten into `fail <message>`, which
 * the upstream answers with `error: <message>`, so the server itself reports the refusal (as the Postgres adapter makes
 * the server raise its error) and the session goes on.
 */
import type { MaskingEngine } from '../../extproc/masking/index.ts';
import { EMPTY_SSH, type ActionRun, type Session } from '../../extproc/spine/index.ts';
import type { DataPathAdapter, NetworkReply } from '../../extproc/streams/index.ts';

export function toyLineAdapter(engine: MaskingEngine): DataPathAdapter {
  return (spine) => ({
    kind: 'network-ext-proc',
    name: 'toy',
    open: (stream) => {
      const target = stream.metadata('x-portcullis-target') ?? '';
      const gone = new AbortController();
      const awaitingOutput: ActionRun[] = [];
      const carry = { read: '', write: '' };
      let session: Session | undefined;
      let n = 0;
      /** Complete lines of a chunk; a partial last line waits for the next chunk. */
      const lines = (dir: 'read' | 'write', chunk: Buffer): string[] => {
        const all = (carry[dir] + chunk.toString('utf8')).split('\n');
        carry[dir] = all.pop() ?? '';
        return all;
      };
      const decideLine = async (line: string): Promise<string | null> => {
        if (!session) {
          const auth = await spine.authenticate({
            protocol: 'ssh',
            target,
            token: line.startsWith('AUTH ') ? line.slice(5) : undefined,
          });
          if (!auth.ok) return `fail ${auth.refusal.message}`;
          session = auth.session;
          return null; // the agent's token never goes upstream
        }
        const run = spine.begin(session, `toy_${session.id}_${++n}`);
        const ssh = { ...EMPTY_SSH, kind: 'exec', command: line };
        let outcome = await run.decide(
          {
            section: { protocol: 'ssh', ssh },
            recorded: { command: line },
            canonical: () => line,
            summary: () => line,
          },
          { maxHoldMs: 10_000, credential: null },
        );
        if (outcome.kind === 'hold') outcome = await outcome.resume(gone.signal);
        awaitingOutput.push(run);
        return outcome.kind === 'allow' ? line : `fail ${outcome.refusal.message}`;
      };
      const forward = (out: string[]): NetworkReply => ({
        kind: 'forward',
        data: Buffer.from(out.map((l) => `${l}\n`).join('')),
        endOfStream: false,
      });
      return {
        async readData(chunk) {
          const out: string[] = [];
          for (const line of lines('read', chunk)) {
            const decided = await decideLine(line);
            if (decided !== null) out.push(decided);
          }
          return forward(out);
        },
        async writeData(chunk) {
          return forward(
            lines('write', chunk).map((line) => {
              const run = awaitingOutput.shift();
              const plan = run?.masking();
              const masked = plan ? engine.maskText(line, plan).value : line;
              run?.output({ text: masked });
              return masked;
            }),
          );
        },
        streamClosed: () => gone.abort(new Error('connection closed')),
        fault: (err) => awaitingOutput[0]?.fault(err),
      };
    },
  });
}
