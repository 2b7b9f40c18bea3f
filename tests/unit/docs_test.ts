// The README's option tables, the man page and the JSON Schemas are generated
// from the option table (src/pg/options.ts): each committed copy must be what
// the generators make of the table now (`deno task docs` rewrites them).

import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import {
  mdocInline,
  readmeRegions,
  renderDocs,
  renderManPage,
  wrapProse,
} from "../../tasks/docs.ts";
import { renderSchemas } from "../../tasks/schemas.ts";
import { OPTIONS } from "../../src/pg/options.ts";

const ROOT = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, ROOT)).catch(() => "(missing)");

Deno.test("the README's option tables and postgresql.1 are as generated from the option table", async () => {
  for (const [path, text] of await renderDocs()) {
    assertEquals(
      await read(path),
      text,
      `${path} differs from the option table: run deno task docs`,
    );
  }
});

Deno.test("the JSON Schemas are as generated from the option table", async () => {
  for (const [path, text] of renderSchemas()) {
    assertEquals(
      await read(path),
      text,
      `${path} differs from the option table: run deno task docs`,
    );
  }
});

/** Every generated text, README regions, man page and schemas together. */
function generated(): string {
  return [...readmeRegions().values(), renderManPage(), ...renderSchemas().values()].join("\n");
}

Deno.test("a default or a description changed in the table changes the README, the man page and the schemas", () => {
  const port = OPTIONS.find((o) => o.name === "port")!;
  const saved = { default: port.default, description: port.description };
  const before = { regions: readmeRegions(), man: renderManPage(), schemas: renderSchemas() };
  const mutable = port as { default?: string; description: string };
  try {
    mutable.default = "6543";
    assert(!readmeRegions().get("importer:postgres")!.includes("`5432`"));
    assertStringIncludes(readmeRegions().get("importer:postgres")!, "`6543`");
    assertStringIncludes(renderManPage(), "Default:\n.Li \\&6543");
    assert(
      renderSchemas().get("schemas/importer.json") !== before.schemas.get("schemas/importer.json"),
    );
    mutable.default = saved.default;
    mutable.description = "Server port, described anew.";
    assertStringIncludes(readmeRegions().get("exporter:postgres")!, "described anew");
    assertStringIncludes(renderManPage(), "described anew");
    assertStringIncludes(renderSchemas().get("schemas/bin_importer.json")!, "described anew");
  } finally {
    mutable.default = saved.default;
    mutable.description = saved.description;
  }
  assertEquals(renderManPage(), before.man);
  assert(generated().includes("`5432`"));
});

Deno.test("every option of every protocol appears in the README and the man page", async () => {
  const readme = await read("README.md");
  const man = renderManPage();
  for (const o of OPTIONS) {
    assertStringIncludes(readme, `| \`${o.name}\``);
    assertStringIncludes(man, `.It Cm ${o.name}\n`);
  }
});

Deno.test("mdocInline() puts code in .Li with punctuation as delimiters and glued words with Ns", () => {
  assertEquals(mdocInline("Schema only (`pg_dump -s`)."), [
    "Schema only",
    '.Li ( "\\&pg_dump -s" ) .',
  ]);
  assertEquals(mdocInline("the dump's `GRANT`/`REVOKE`."), [
    "the dump's",
    ".Li \\&GRANT Ns \\&/ Ns Li \\&REVOKE .",
  ]);
  assertEquals(mdocInline("`COMMENT`s, then"), [".Li \\&COMMENT Ns \\&s,", "then"]);
  assertEquals(mdocInline(".start and a \\ backslash"), ["\\&.start and a \\e backslash"]);
  assertEquals(mdocInline("see [Passwords](#passwords)"), ["see Passwords in the README"]);
});

Deno.test("wrapProse() wraps as deno fmt does: at 100 columns, between words, never inside a code span", () => {
  const span = "`-o 'databases=\"a,b\",c'`";
  const text = `${"word ".repeat(18)}then ${span} after.`;
  assertEquals(wrapProse(text), `${"word ".repeat(18)}then\n${span} after.`);
  assertEquals(wrapProse("a  b"), "a b");
  for (const line of readmeRegions().get("lists")!.split("\n")) assert(line.length <= 100, line);
});
