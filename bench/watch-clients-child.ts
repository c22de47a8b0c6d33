/**
 * The watching clients of bench/kube-watches.bench.ts in a process of their own: a process's descriptor limit
 * (20,000 here) would otherwise be shared by every watch's four sockets (client, both sides of the stand-in, the API
 * server stand-in). Driven over IPC: `open` opens the watches and answers when all have a status; `state` answers the
 * statuses, the ended count and how many saw a name; `close` closes them.
 */
import { openWatches, type HeldWatches } from '../test/harness/watches.ts';

type Request =
  | { op: 'open'; url: string; ca: string; token: string; path: string; count: number }
  | { op: 'state'; needle: string }
  | { op: 'close' };

let watches: HeldWatches | undefined;

process.on('message', async (m: Request) => {
  if (m.op === 'open') {
    watches = openWatches(m);
    await watches.opened;
    process.send?.({ op: 'opened' });
  } else if (m.op === 'state') {
    process.send?.({
      op: 'state',
      statuses: watches?.statuses() ?? [],
      ended: watches?.ended() ?? 0,
      seen: watches?.seen(m.needle) ?? 0,
    });
  } else {
    watches?.close();
    process.disconnect();
  }
});
