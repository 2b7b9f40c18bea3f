// The executables' entry: serve one connector on stdin/stdout.
export { serveImporter } from "./importer_service.ts";
export { serveExporter } from "./exporter_service.ts";
