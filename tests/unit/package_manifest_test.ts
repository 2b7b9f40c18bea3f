import { assert, assertEquals } from "../helpers/assert.ts";
import { CONNECTORS, PACKAGE, renderManifest } from "../../harness/package_manifest.ts";
import { renderSchemas } from "../../harness/schemas.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("manifest.yaml at the root is the rendered package manifest", async () => {
  assertEquals(await Deno.readTextFile(new URL("manifest.yaml", ROOT)), renderManifest());
});

Deno.test("every validator the root manifest names is committed, as generated", async () => {
  const schemas = renderSchemas();
  for (const c of CONNECTORS) assert(schemas.has(c.validator.replace(/^\.\//, "")), c.validator);
  for (const [path, text] of schemas) {
    const committed = await Deno.readTextFile(new URL(path, ROOT)).catch(() => "(missing)");
    assertEquals(committed, text, `${path} differs from its generator: run deno task schemas`);
    JSON.parse(committed);
  }
});

Deno.test("the package routes the six protocol and connector pairs to the three executables", () => {
  const routes = CONNECTORS.flatMap((c) => c.protocols.map((p) => `${c.type} ${p} ${c.executable}`))
    .sort();
  assertEquals(routes, [
    "exporter postgres postgresqlExporter",
    "exporter postgres+aws postgresqlExporter",
    "importer postgres postgresqlImporter",
    "importer postgres+aws postgresqlImporter",
    "importer postgres+bin postgresqlBinImporter",
    "importer postgres+wal postgresqlBinImporter",
  ]);
});

Deno.test("the package's homepage is this project's, not the reference integration's", () => {
  assert(!PACKAGE.homepage.includes("PlakarKorp/integrations"), PACKAGE.homepage);
  assert(PACKAGE.homepage.endsWith("/plakar-postgresql"), PACKAGE.homepage);
});

Deno.test("a launcher build lists its extra files on the first connector only", () => {
  const yaml = renderManifest(["deno", "postgresql.js"]);
  assertEquals(yaml.match(/extra_files: \[deno, postgresql\.js\]/g)?.length, 1);
});
