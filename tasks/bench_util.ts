// What every bench section shares: printing, rounding, the best of N rounds,
// and timing one step.

export const say = (s: string) => console.log(s);
export const fmt = (n: number, d = 2) => n.toFixed(d);
export const best = (xs: number[]) => Math.min(...xs);

/** Seconds `fn` took. */
export async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}
