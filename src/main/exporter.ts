// postgresqlExporter: logical restores for postgres:// and postgres+aws://.
import { serveExporter } from "../kloset/server.ts";
import { createLogicalExporter } from "../logical/exporter.ts";

if (import.meta.main) {
  await serveExporter((p) =>
    createLogicalExporter(p, p.proto === "postgres+aws" ? "aws" : "logical")
  );
}
