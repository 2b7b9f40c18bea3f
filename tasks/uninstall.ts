// `deno task uninstall`: removes the installed postgresql package from plakar
// ($PLAKAR, else the one on PATH) for the current HOME. Nothing installed is
// not an error (so that `deno task reinstall` works the first time too).

import { PACKAGE_NAME, removePackage } from "../harness/install.ts";

if (import.meta.main) {
  try {
    const removed = await removePackage();
    console.log(
      removed
        ? `uninstalled ${PACKAGE_NAME}@${removed}`
        : `${PACKAGE_NAME} was not installed: nothing to do`,
    );
  } catch (e) {
    console.error(`uninstall: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
