// The plakar package manifest, as data: rendered to manifest.yaml at the
// repository root (checked by a test) and into the build folder, where a
// launcher build adds the bundled modules and the Deno runtime as extra files.

export interface ConnectorEntry {
  type: "importer" | "exporter";
  executable: string;
  protocols: string[];
  validator: string;
  entry: string; // module under src/main
}

export const PACKAGE = {
  name: "postgresql",
  display_name: "PostgreSQL",
  description:
    "Logical backups (pg_dump, pg_dumpall) and restores (pg_restore, psql), and physical backups (pg_basebackup), of PostgreSQL for plakar.",
  // This project's repository (plakar-postgresql), not the reference Go integration's.
  homepage: "https://github.com/PlakarKorp/plakar-postgresql",
  license: "ISC",
  api_version: "v1.1.0",
};

export const CONNECTORS: ConnectorEntry[] = [
  {
    type: "importer",
    executable: "postgresqlImporter",
    protocols: ["postgres", "postgres+aws"],
    validator: "./schemas/importer.json",
    entry: "src/main/importer.ts",
  },
  {
    type: "exporter",
    executable: "postgresqlExporter",
    protocols: ["postgres", "postgres+aws"],
    validator: "./schemas/exporter.json",
    entry: "src/main/exporter.ts",
  },
  {
    type: "importer",
    executable: "postgresqlBinImporter",
    protocols: ["postgres+bin", "postgres+wal"],
    validator: "./schemas/bin_importer.json",
    entry: "src/main/bin_importer.ts",
  },
];

function list(items: string[]): string {
  return `[${items.join(", ")}]`;
}

/** Renders the manifest; `extraFiles` go to the first connector (they land in the package folder). */
export function renderManifest(extraFiles: string[] = []): string {
  const lines = [
    `name: ${PACKAGE.name}`,
    `display_name: ${PACKAGE.display_name}`,
    `description: ${JSON.stringify(PACKAGE.description)}`,
    `homepage: ${PACKAGE.homepage}`,
    `license: ${PACKAGE.license}`,
    `api_version: ${PACKAGE.api_version}`,
    "connectors:",
  ];
  CONNECTORS.forEach((c, i) => {
    lines.push(
      `  - type: ${c.type}`,
      `    executable: ${c.executable}`,
      `    protocols: ${list(c.protocols)}`,
      `    validator: ${c.validator}`,
      `    class: database`,
      `    subclass: postgresql`,
    );
    if (i === 0 && extraFiles.length > 0) lines.push(`    extra_files: ${list(extraFiles)}`);
  });
  return lines.join("\n") + "\n";
}
