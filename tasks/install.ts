// `deno task install`: builds the package (compiled where deno compile can
// get its runtime, else launchers) and installs it into the plakar on PATH
// (or $PLAKAR), replacing an installed version.
//
// Usage: deno task install [--kind=auto|compiled|launchers]

import { parseArgs } from "node:util";
import { build } from "./build.ts";
import { plakarBin } from "../tests/helpers/plakar.ts";

/** Installs the package at `ptar` into plakar for the current HOME. */
export async function installPackage(ptar: string, env?: Record<string, string>): Promise<void> {
  const plakar = await plakarBin();
  const run = (args: string[]) =>
    new Deno.Command(plakar, { args, env, stdout: "piped", stderr: "piped" }).output();
  await run(["pkg", "rm", "postgresql"]); // absent the first time: ignored
  const r = await run(["pkg", "add", ptar]);
  if (!r.success) {
    throw new Error(`plakar pkg add ${ptar} failed: ${new TextDecoder().decode(r.stderr)}`);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { kind: { type: "string", default: "auto" } },
  });
  try {
    const r = await build(values.kind as "auto" | "compiled" | "launchers");
    await installPackage(r.ptar!);
    console.log(`installed ${r.ptar} (${r.kind} executables) into ${await plakarBin()}`);
  } catch (e) {
    console.error(`install: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
