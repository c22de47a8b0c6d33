import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';

/**
 * Where free ports are looked for: below the kernel's ephemeral range, when there is room. A port is handed out free
 * and bound later by whatever it is for (a child process, a redis-server), often a second or more later. A port from
 * the ephemeral range can be taken in that window by any outgoing connection on the machine (its local end), and a
 * suite makes thousands of them: two suites run side by side once lost a start-up test that way (the SSH gateway's
 * port, handed out free, was in use when the gateway listened). Below the range only another freePort() of another
 * process can take it, by the same random pick in the same window.
 */
function searchRange(): { low: number; high: number } | null {
  try {
    const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    return ephemeralLow > 12_000 ? { low: 10_000, high: ephemeralLow - 1 } : null;
  } catch {
    return null;
  }
}
const RANGE = searchRange();
/** Handed out by this process already: never twice (a test may not have bound the first one yet). */
const handedOut = new Set<number>();

/** A free TCP port on 127.0.0.1: a random one below the ephemeral range that binds, else one the kernel chooses. */
export async function freePort(): Promise<number> {
  if (RANGE) {
    for (let tries = 0; tries < 64; tries++) {
      const port = RANGE.low + Math.floor(Math.random() * (RANGE.high - RANGE.low + 1));
      if (handedOut.has(port)) continue;
      if (await bindsAt(port)) {
        handedOut.add(port);
        return port;
      }
    }
  }
  return bindsAt(0);
}

/** Listens on `port` (0: any) and closes again; resolves the port, or 0 when it is in use. */
function bindsAt(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' && port !== 0 ? resolve(0) : reject(err),
    );
    srv.listen(port, '127.0.0.1', () => {
      const bound = (srv.address() as { port: number }).port;
      srv.close(() => resolve(bound));
    });
  });
}

/** Resolves once 127.0.0.1:port accepts a connection; rejects after timeoutMs. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not accept connections within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Polls `check` until it returns a truthy value or timeoutMs passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs: number, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
