// The executables' entry: serve one connector on the host's stream.
export { serveImporter } from "./importer_service.ts";
export { serveExporter } from "./exporter_service.ts";
export type { PluginOptions, ServeEnd } from "./rpc.ts";
