// Tests that depend on this process's environment (PGPASSFILE, HOME,
// PGPASSWORD) set it for one step and put it back.

/** Runs `fn` with these environment variables set (undefined: unset), then restores them. */
export async function withEnv<T>(
  env: Record<string, string | undefined>,
  fn: () => T | Promise<T>,
): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  const apply = (e: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(e)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  };
  apply(env);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}
