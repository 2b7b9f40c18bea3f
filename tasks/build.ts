// `deno task build`: builds the package's executables into dist/pkg (harness/build.ts).

import { main } from "../harness/build.ts";

if (import.meta.main) await main(Deno.args);
