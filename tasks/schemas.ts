// `deno task schemas`: writes the JSON Schemas of the options (harness/schemas.ts).

import { main } from "../harness/schemas.ts";

if (import.meta.main) await main();
