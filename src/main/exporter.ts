// postgresqlExporter: logical restores for postgres:// and postgres+aws://.
import { serveExporter } from "../kloset/server.ts";
import { createLogicalExporter } from "../logical/restore/exporter.ts";

if (import.meta.main) {
  const clean = await serveExporter((p) =>
    createLogicalExporter(p, p.proto === "postgres+aws" ? "aws" : "logical")
  );
  // Exit now: nothing of ours may outlive the host (a pending read of stdin
  // would otherwise keep the process alive).
  Deno.exit(clean ? 0 : 1);
}
