// `deno task install [VERSION]`: packages (as `deno task package`) and installs
// the package into plakar ($PLAKAR, else the one on PATH) for the current HOME.
// Like the reference integration's `make install`, it does not replace an installed version:
// `deno task reinstall` does (uninstall, then install).
//
// Usage: deno task install [vX.Y.Z] [--kind=auto|compiled|launchers]

import { parseBuildArgs } from "./build.ts";
import { makePackage } from "./package.ts";
import { plakarBin } from "./plakar.ts";

/** The package's name in plakar. */
export const PACKAGE_NAME = "postgresql";

async function plakar(
  args: string[],
  env?: Record<string, string>,
): Promise<{ ok: boolean; out: string; err: string }> {
  const r = await new Deno.Command(await plakarBin(), {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: r.success, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** The installed version of this package (`v0.1.0`), or undefined. */
export async function installedVersion(env?: Record<string, string>): Promise<string | undefined> {
  const r = await plakar(["pkg", "list"], env);
  if (!r.ok) throw new Error(`plakar pkg list failed: ${r.err.trim()}`);
  const line = r.out.split("\n").find((l) => l.startsWith(`${PACKAGE_NAME}@`));
  return line?.slice(PACKAGE_NAME.length + 1).trim();
}

/** `plakar pkg add`: fails when a version is already installed. */
export async function addPackage(ptar: string, env?: Record<string, string>): Promise<void> {
  const installed = await installedVersion(env);
  if (installed) {
    throw new Error(
      `${PACKAGE_NAME}@${installed} is already installed: deno task reinstall replaces it`,
    );
  }
  const r = await plakar(["pkg", "add", ptar], env);
  if (!r.ok) throw new Error(`plakar pkg add ${ptar} failed: ${r.err.trim()}`);
}

/** `plakar pkg rm`; returns the version removed, or undefined when none was installed. */
export async function removePackage(env?: Record<string, string>): Promise<string | undefined> {
  const installed = await installedVersion(env);
  if (!installed) return undefined;
  const r = await plakar(["pkg", "rm", PACKAGE_NAME], env);
  if (!r.ok) throw new Error(`plakar pkg rm ${PACKAGE_NAME} failed: ${r.err.trim()}`);
  return installed;
}

/** Installs the package at `ptar`, replacing an installed version (the tests' helper). */
export async function installPackage(ptar: string, env?: Record<string, string>): Promise<void> {
  await removePackage(env);
  await addPackage(ptar, env);
}

/** The command line of `deno task install` (tasks/install.ts). */
export async function main(args: string[]): Promise<void> {
  try {
    const { kind, target, rest } = parseBuildArgs(args);
    const r = await makePackage(kind, { target, version: rest[0] });
    await addPackage(r.ptar!);
    console.log(`installed ${r.ptar} (${r.kind} executables) into ${await plakarBin()}`);
  } catch (e) {
    console.error(`install: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
