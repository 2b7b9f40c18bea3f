// `deno task reinstall [VERSION]`: the usual iteration loop, as the reference
// integration's `make reinstall`: builds and packages first (so a failed build leaves the
// installed package in place), then uninstalls the old one and installs the new.
//
// Usage: deno task reinstall [vX.Y.Z] [--kind=auto|compiled|launchers]

import { parseBuildArgs } from "../harness/build.ts";
import { makePackage } from "../harness/package.ts";
import { addPackage, PACKAGE_NAME, removePackage } from "../harness/install.ts";
import { plakarBin } from "../harness/plakar.ts";

if (import.meta.main) {
  try {
    const { kind, target, rest } = parseBuildArgs(Deno.args);
    const r = await makePackage(kind, { target, version: rest[0] });
    const removed = await removePackage();
    if (removed) console.log(`uninstalled ${PACKAGE_NAME}@${removed}`);
    await addPackage(r.ptar!);
    console.log(`installed ${r.ptar} (${r.kind} executables) into ${await plakarBin()}`);
  } catch (e) {
    console.error(`reinstall: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
