/**
 * A deterministic pseudo-random generator (a 32-bit linear congruential one, Numerical Recipes' constants) for tests
 * and benchmarks that generate their inputs: the same seed gives the same sequence, so a failure can be replayed.
 * Returns numbers in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
