// `deno task package [VERSION]`: builds, then makes the .ptar (harness/package.ts).

import { main } from "../harness/package.ts";

if (import.meta.main) await main(Deno.args);
