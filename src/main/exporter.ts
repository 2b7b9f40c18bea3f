// postgresqlExporter: logical restores for postgres:// and postgres+aws://.
import { serveExporter } from "../kloset/server.ts";
import { runPlugin } from "./process.ts";
import { createLogicalExporter } from "../logical/restore/exporter.ts";

if (import.meta.main) {
  const clean = await runPlugin((options) => serveExporter(createLogicalExporter, options));
  // Exit now: nothing of ours may outlive the host (a pending read of stdin
  // would otherwise keep the process alive).
  Deno.exit(clean ? 0 : 1);
}
