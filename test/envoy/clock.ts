/**
 * The clock the Envoy stand-in's timers run on. By default the real one; a test about timers passes a ManualClock and
 * moves it only after the event it waits for has happened (an override received, an answer sent), so the test asserts
 * the order of events, not how fast a loaded machine delivers them. A test that is not about timers keeps the real
 * clock and generous timeouts instead.
 */

/** Arms `fire` to run after `ms`; the returned function disarms it (a no-op once it fired). */
export interface Clock {
  after(ms: number, fire: () => void): Disarm;
}

export type Disarm = () => void;

export const realClock: Clock = {
  after(ms, fire) {
    const t = setTimeout(fire, ms);
    return () => clearTimeout(t);
  },
};

interface Armed {
  due: number;
  fire: () => void;
}

/** Time that passes only when the test says so. Timers due within an advance fire in due order, each at its time. */
export class ManualClock implements Clock {
  private nowMs = 0;
  private readonly armed = new Set<Armed>();

  after(ms: number, fire: () => void): Disarm {
    const timer: Armed = { due: this.nowMs + ms, fire };
    this.armed.add(timer);
    return () => this.armed.delete(timer);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way (also ones armed while firing). */
  advance(ms: number): void {
    const until = this.nowMs + ms;
    for (;;) {
      let next: Armed | undefined;
      for (const t of this.armed) if (t.due <= until && (!next || t.due < next.due)) next = t;
      if (!next) break;
      this.armed.delete(next);
      this.nowMs = next.due;
      next.fire();
    }
    this.nowMs = until;
  }
}
