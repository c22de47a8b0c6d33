/** Go-style durations ("500ms", "90s", "15m", "1h30m"), the spelling Envoy and Kubernetes configs use. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDurationMs(text: string): number {
  if (!/^([0-9]+(ms|s|m|h))+$/.test(text))
    throw new Error(`invalid duration "${text}" (use e.g. 500ms, 90s, 15m, 1h30m)`);
  let total = 0;
  for (const m of text.matchAll(/([0-9]+)(ms|s|m|h)/g)) total += Number(m[1]) * UNIT_MS[m[2]];
  return total;
}

export function parseDurationSeconds(text: string): number {
  return Math.ceil(parseDurationMs(text) / 1000);
}
