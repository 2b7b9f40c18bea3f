// `deno task install [VERSION]`: packages and installs into plakar (harness/install.ts).

import { main } from "../harness/install.ts";

if (import.meta.main) await main(Deno.args);
