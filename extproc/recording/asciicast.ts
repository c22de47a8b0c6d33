/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/) from a terminal session's events: a header line,
 * then `[seconds, "o", text]` per output event, seconds relative to session.start. stdout and stderr are both
 * terminal output; input is not replayed (what the agent typed is in the `action` events).
 */
import type { RecordingEvent } from './types.ts';

export interface AsciicastHeader {
  version: 2;
  width: number;
  height: number;
  timestamp: number;
  title?: string;
  env?: Record<string, string>;
}

/** The terminal size a session.start declares, or null for a non-terminal session. */
export function terminalOf(start: RecordingEvent | undefined): { width: number; height: number } | null {
  const t =
    start?.type === 'session.start'
      ? (start.data.terminal as { width?: unknown; height?: unknown } | undefined)
      : undefined;
  return t && typeof t.width === 'number' && typeof t.height === 'number' ? { width: t.width, height: t.height } : null;
}

/** Lines of the .cast file (each ending in '\n'); the first event must be the session's session.start. */
export async function* toAsciicast(events: AsyncIterable<RecordingEvent>): AsyncGenerator<string> {
  let startMs: number | null = null;
  for await (const ev of events) {
    if (startMs === null) {
      const term = terminalOf(ev);
      if (!term) throw new Error('not a terminal session: its first event is not a session.start with a terminal size');
      startMs = Date.parse(ev.time);
      const header: AsciicastHeader = {
        version: 2,
        width: term.width,
        height: term.height,
        timestamp: Math.floor(startMs / 1000),
        title: `${ev.agent} → ${ev.target} (${ev.sessionId})`,
      };
      const termType = (ev.data.terminal as { term?: unknown }).term;
      if (typeof termType === 'string') header.env = { TERM: termType };
      yield `${JSON.stringify(header)}\n`;
      continue;
    }
    if (ev.type !== 'output') continue;
    const { stream, text } = ev.data as { stream?: unknown; text?: unknown };
    if ((stream !== 'stdout' && stream !== 'stderr') || typeof text !== 'string' || text === '') continue;
    const seconds = Math.max(0, (Date.parse(ev.time) - startMs) / 1000);
    yield `${JSON.stringify([seconds, 'o', text])}\n`;
  }
}
