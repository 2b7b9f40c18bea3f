// postgresqlImporter: logical backups for postgres:// and postgres+aws://.
import { serveImporter } from "../kloset/server.ts";
import { createLogicalImporter } from "../logical/importer.ts";

if (import.meta.main) {
  const clean = await serveImporter((p) =>
    createLogicalImporter(p, p.proto === "postgres+aws" ? "aws" : "logical")
  );
  // Exit now: nothing of ours may outlive the host (a pending read of stdin
  // would otherwise keep the process alive).
  Deno.exit(clean ? 0 : 1);
}
