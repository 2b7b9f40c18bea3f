// postgresqlImporter: logical backups for postgres:// and postgres+aws://.
import { serveImporter } from "../kloset/server.ts";
import { runPlugin } from "./process.ts";
import { createLogicalImporter } from "../logical/importer.ts";

if (import.meta.main) {
  const clean = await runPlugin((options) => serveImporter(createLogicalImporter, options));
  // Exit now: nothing of ours may outlive the host (a pending read of stdin
  // would otherwise keep the process alive).
  Deno.exit(clean ? 0 : 1);
}
