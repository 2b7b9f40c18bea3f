// postgresqlImporter: logical backups for postgres:// and postgres+aws://.
import { serveImporter } from "../kloset/server.ts";
import { createLogicalImporter } from "../logical/importer.ts";

if (import.meta.main) {
  await serveImporter((p) =>
    createLogicalImporter(p, p.proto === "postgres+aws" ? "aws" : "logical")
  );
}
