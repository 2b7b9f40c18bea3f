// `deno task package [VERSION]`: builds (as `deno task build`), then makes the
// plakar package with `plakar pkg create`: dist/postgresql_VERSION_GOOS_GOARCH.ptar.
// The version is the argument, else $VERSION, else deno.json's; plakar is
// $PLAKAR, else the one on PATH (else built once from the Go module proxy).
//
// Usage: deno task package [vX.Y.Z] [--kind=auto|compiled|launchers] [--target=TRIPLE]
// Prints the .ptar path on the last line of stdout.

import { build, type BuildResult, type Kind, parseBuildArgs, version } from "./build.ts";

/** `v1.2.0` from `1.2.0` or `v1.2.0`; refuses anything that is not a version. */
export function normaliseVersion(v: string): string {
  const m = /^v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)$/.exec(v.trim());
  if (!m) throw new RangeError(`Cannot package: ${JSON.stringify(v)} is not a version (vX.Y.Z)`);
  return `v${m[1]}`;
}

/** The version to package: the argument, else $VERSION, else deno.json's. */
export async function packageVersion(arg?: string): Promise<string> {
  const given = arg ?? Deno.env.get("VERSION");
  return given ? normaliseVersion(given) : await version();
}

/** Builds and packages; the result's `ptar` is the package's path. */
export async function makePackage(
  kind: Kind,
  opts: { target?: string; version?: string } = {},
): Promise<BuildResult> {
  return await build(kind, true, {
    target: opts.target,
    version: await packageVersion(opts.version),
  });
}

/** The command line of `deno task package` (tasks/package.ts). */
export async function main(args: string[]): Promise<void> {
  try {
    const { kind, target, rest } = parseBuildArgs(args);
    const r = await makePackage(kind, { target, version: rest[0] });
    console.log(r.ptar);
  } catch (e) {
    console.error(`package: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
