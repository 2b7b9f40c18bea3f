// What every bench section shares: printing, rounding, the best of N rounds,
// timing one step, and an empty store for a round.

import { ok, type PlakarUser } from "../harness/e2e.ts";

export const say = (s: string) => console.log(s);
export const fmt = (n: number, d = 2) => n.toFixed(d);
export const best = (xs: number[]) => Math.min(...xs);

/** Seconds `fn` took. */
export async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** Runs `cmd` with sh (stdout discarded); throws with its stderr when it fails. */
export async function sh(cmd: string, env: Record<string, string> = {}): Promise<void> {
  const r = await new Deno.Command("sh", {
    args: ["-c", cmd],
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`${cmd}: ${new TextDecoder().decode(r.stderr)}`);
}

/** An empty store for `u`, in place of the previous round's. */
export async function freshStore(u: PlakarUser): Promise<void> {
  await Deno.remove(u.store, { recursive: true }).catch(() => {});
  ok(await u.at("create", "-plaintext"), "create");
}
