import { assertEquals } from "../helpers/assert.ts";
import { renderManifest } from "../../tasks/package_manifest.ts";

Deno.test("manifest.yaml at the root is the rendered package manifest", async () => {
  const root = new URL("../../manifest.yaml", import.meta.url);
  assertEquals(await Deno.readTextFile(root), renderManifest());
});

Deno.test("a launcher build lists its extra files on the first connector only", () => {
  const yaml = renderManifest(["deno", "postgresqlImporter.js"]);
  assertEquals(yaml.match(/extra_files: \[deno, postgresqlImporter\.js\]/g)?.length, 1);
});
