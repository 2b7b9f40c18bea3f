// The option reference's tables (docs/options.md), the man page and the JSON
// Schemas are generated from the option table (src/pg/options.ts): each
// committed copy must be what the generators make of the table now
// (`deno task docs` rewrites them). The README and docs/ link to each other:
// every relative link and #anchor in them must resolve.

import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import {
  mdocInline,
  optionRegions,
  OPTIONS_PAGE,
  relink,
  renderDocs,
  renderManPage,
  wrapProse,
} from "../../harness/docs.ts";
import { renderSchemas } from "../../harness/schemas.ts";
import { OPTIONS, optionsFor, SCOPES } from "../../src/pg/options.ts";

const ROOT = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, ROOT)).catch(() => "(missing)");

Deno.test("the option reference's tables and postgresql.1 are as generated from the option table", async () => {
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

/** Every generated text, option reference regions, man page and schemas together. */
function generated(): string {
  return [...optionRegions().values(), renderManPage(), ...renderSchemas().values()].join("\n");
}

Deno.test("a default or a description changed in the table changes the option reference, the man page and the schemas", () => {
  const port = OPTIONS.find((o) => o.name === "port")!;
  const saved = { default: port.default, description: port.description };
  const before = { regions: optionRegions(), man: renderManPage(), schemas: renderSchemas() };
  const mutable = port as { default?: string; description: string };
  try {
    mutable.default = "6543";
    assert(!optionRegions().get("importer:postgres")!.includes("`5432`"));
    assertStringIncludes(optionRegions().get("importer:postgres")!, "`6543`");
    assertStringIncludes(renderManPage(), "Default:\n.Li \\&6543");
    assert(
      renderSchemas().get("schemas/importer.json") !== before.schemas.get("schemas/importer.json"),
    );
    mutable.default = saved.default;
    mutable.description = "Server port, described anew.";
    assertStringIncludes(optionRegions().get("exporter:postgres")!, "described anew");
    assertStringIncludes(renderManPage(), "described anew");
    assertStringIncludes(renderSchemas().get("schemas/bin_importer.json")!, "described anew");
  } finally {
    mutable.default = saved.default;
    mutable.description = saved.description;
  }
  assertEquals(renderManPage(), before.man);
  assert(generated().includes("`5432`"));
});

Deno.test("every option of every protocol appears in the option reference and the man page", async () => {
  const page = await read(OPTIONS_PAGE);
  const man = renderManPage();
  for (const o of OPTIONS) {
    assertStringIncludes(page, `| \`${o.name}\``);
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
  for (const line of optionRegions().get("lists")!.split("\n")) assert(line.length <= 100, line);
});

Deno.test("relink() points a description's links at the page the section lives in", () => {
  assertEquals(relink("see [Passwords](#passwords)."), "see [Passwords](../README.md#passwords).");
  assertEquals(
    relink("see [Safe clean and recreate](#safe-clean-and-recreate)"),
    "see [Safe clean and recreate](restore.md#safe-clean-and-recreate)",
  );
  assertEquals(
    relink("see [Option values](#option-values)"),
    "see [Option values](#option-values)",
  );
  assertEquals(
    mdocInline("see [Parallel restore](#parallel-restore-jobsn)"),
    ["see Parallel restore in docs/restore.md"],
  );
});

// ---- Links between the README and docs/ ----

/** Markdown without its fenced code blocks and code spans (no heading or link inside them counts). */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "").replace(/`[^`\n]*`/g, "``");
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, `-n` on repeats. */
export function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  const text = markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "");
  for (const [, heading] of text.matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const slug = heading
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** Every relative link target of a page: `[text](target)`, outside code. */
function links(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1])
    .filter((t) => !/^[a-z][a-z+.-]*:/i.test(t));
}

Deno.test("anchors() follows GitHub: code and punctuation dropped, repeats numbered", () => {
  assertEquals(
    [...anchors("# A `b://`: c\n## Restore\n```sh\n# not a heading\n```\n## Restore\n")],
    ["a-b-c", "restore", "restore-1"],
  );
  assertEquals([...anchors("### Parallel restore (`jobs=N`)")], ["parallel-restore-jobsn"]);
});

Deno.test("every relative link and #anchor in the README and docs/ resolves", async () => {
  const pages = ["README.md"];
  for await (const e of Deno.readDir(new URL("docs/", ROOT))) {
    if (e.isFile && e.name.endsWith(".md")) pages.push(`docs/${e.name}`);
  }
  const broken: string[] = [];
  for (const page of pages) {
    const text = await Deno.readTextFile(new URL(page, ROOT));
    for (const target of links(text)) {
      const [path, anchor] = target.split("#", 2) as [string, string | undefined];
      const file = path === "" ? new URL(page, ROOT) : new URL(path, new URL(page, ROOT));
      let content: string | undefined;
      try {
        const info = await Deno.stat(file);
        if (info.isFile && file.pathname.endsWith(".md")) content = await Deno.readTextFile(file);
      } catch {
        broken.push(`${page}: ${target} (no such file)`);
        continue;
      }
      if (anchor !== undefined && content !== undefined && !anchors(content).has(anchor)) {
        broken.push(`${page}: ${target} (no such heading)`);
      }
    }
  }
  assertEquals(broken, []);
});

Deno.test("the README's option tables name options of their scheme", async () => {
  const readme = await read("README.md");
  const names = new Set(SCOPES.flatMap((s) => optionsFor(s).map((d) => d.name)));
  const rows = readme.split("\n").filter((l) => /^\| `/.test(l) && /option/i.test(l) === false);
  for (const row of rows) {
    for (const [, name] of row.split("|")[1].matchAll(/`([a-z_]+)`/g)) {
      assert(names.has(name), `README names an option that does not exist: ${name}`);
    }
  }
});
