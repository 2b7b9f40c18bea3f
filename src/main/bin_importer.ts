// postgresqlBinImporter: physical backups for postgres+bin:// (pg_basebackup).
import { serveImporter } from "../kloset/server.ts";
import { createPhysicalImporter } from "../physical/importer.ts";

if (import.meta.main) {
  const clean = await serveImporter(createPhysicalImporter);
  // Exit now: nothing of ours may outlive the host.
  Deno.exit(clean ? 0 : 1);
}
