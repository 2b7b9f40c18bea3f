// `deno task docs`: writes the option reference docs/options.md, the man page
// postgresql.1 and the JSON Schemas from the option table (harness/docs.ts).

import { main } from "../harness/docs.ts";

if (import.meta.main) await main();
