// Finds the real plakar: $PLAKAR, else `plakar` on PATH, else the one
// tasks/build_plakar.sh builds from the Go module proxy (cached).

let found: Promise<string> | undefined;

async function onPath(): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const p = `${dir}/plakar`;
      const st = await Deno.stat(p);
      if (st.isFile && (st.mode ?? 0) & 0o111) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

async function locate(): Promise<string> {
  const env = Deno.env.get("PLAKAR");
  if (env) return env;
  const p = await onPath();
  if (p) return p;
  const script = new URL("../tasks/build_plakar.sh", import.meta.url).pathname;
  const out = await new Deno.Command("sh", { args: [script], stdout: "piped", stderr: "inherit" })
    .output();
  if (!out.success) throw new Error("could not build plakar (tasks/build_plakar.sh failed)");
  return new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
}

/** The plakar binary to test against (built once and cached when absent). */
export function plakarBin(): Promise<string> {
  found ??= locate();
  return found;
}
