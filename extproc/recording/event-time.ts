/**
 * The time stamp of recorded events, `toISOString()` of now, made cheaply: under load many events share a millisecond
 * (the string is reused) and a minute (only `ss.mmmZ` is appended to a cached prefix), so Date formatting runs about
 * once a minute instead of once per event.
 */

/** The first minute of year 10000 (ms): toISOString() changes form from there on. */
const MAX_ISO_MINUTE = 253402300800000;
/** `ss.` for each second of a minute and `mmmZ` for each millisecond of a second, made once. */
const SS: string[] = Array.from({ length: 60 }, (_, i) => `${String(i).padStart(2, '0')}.`);
const MMM_Z: string[] = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);

export class EventClock {
  /** `nowMs` is the clock (Date.now unless a test injects one). */
  constructor(private readonly nowMs: () => number = Date.now) {}

  /** toISOString() of the current millisecond: events come many to a millisecond under load. */
  private isoMs = -1;
  private iso = '';
  /** toISOString() of the current minute up to its seconds (`2026-01-02T03:04:`), so a new millisecond formats only `ss.mmmZ`. */
  private isoMinute = -1;
  private isoMinutePrefix = '';

  /** The millisecond of the last now() (ms since the epoch). */
  get lastMs(): number {
    return this.isoMs;
  }

  /** `new Date().toISOString()`, exactly. */
  now(): string {
    const ms = this.nowMs();
    if (ms !== this.isoMs) {
      this.isoMs = ms;
      if (ms >= 0 && ms < MAX_ISO_MINUTE) {
        // From 1970 to 9999 toISOString() is `YYYY-MM-DDTHH:MM:ss.mmmZ`, and a minute is 60,000 ms in UTC.
        const inMinute = ms % 60_000;
        const minute = ms - inMinute;
        if (minute !== this.isoMinute) {
          this.isoMinute = minute;
          this.isoMinutePrefix = new Date(minute).toISOString().slice(0, 17);
        }
        this.iso = this.isoMinutePrefix + SS[Math.floor(inMinute / 1000)] + MMM_Z[inMinute % 1000];
      } else {
        this.iso = new Date(ms).toISOString();
      }
    }
    return this.iso;
  }
}
