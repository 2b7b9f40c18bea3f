// postgresqlBinImporter: physical backups for postgres+bin:// (pg_basebackup)
// and WAL captures for postgres+wal:// (pg_receivewal).
import type { ImporterFactory } from "../kloset/connector.ts";
import { serveImporter } from "../kloset/server.ts";
import { runPlugin } from "./process.ts";
import { createPhysicalImporter } from "../physical/importer.ts";
import { createWalImporter } from "../physical/wal_importer.ts";

/** The connector of the scheme plakar routed here. */
const createImporter: ImporterFactory = (params, runtime) =>
  params.proto === "postgres+wal"
    ? createWalImporter(params, runtime)
    : createPhysicalImporter(params, runtime);

if (import.meta.main) {
  const clean = await runPlugin((options) => serveImporter(createImporter, options));
  // Exit now: nothing of ours may outlive the host.
  Deno.exit(clean ? 0 : 1);
}
