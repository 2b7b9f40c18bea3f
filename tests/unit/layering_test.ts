// The layering DESIGN.md draws: src/kloset/ (plakar's protocol) and src/pg/
// (PostgreSQL) never import each other, nor the connectors that join them;
// src/proc/ and src/errors.ts, which both use, import neither.

import { assertEquals } from "../helpers/assert.ts";

const SRC = new URL("../../src/", import.meta.url).pathname;

function* files(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* files(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

/** The src/ folder (or file) each relative import of `file` lands in. */
function importedAreas(file: string): string[] {
  const text = Deno.readTextFileSync(file);
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["'](\.\.?\/[^"']+)["']/g)) {
    const target = new URL(m[1], `file://${file}`).pathname;
    if (!target.startsWith(SRC)) continue;
    const rest = target.slice(SRC.length);
    out.push(rest.includes("/") ? rest.slice(0, rest.indexOf("/")) : rest);
  }
  return out;
}

function violations(area: string, forbidden: string[]): string[] {
  const root = area.endsWith(".ts") ? undefined : `${SRC}${area}`;
  const list = root ? [...files(root)] : [`${SRC}${area}`];
  return list.flatMap((f) =>
    importedAreas(f).filter((a) => forbidden.includes(a)).map((a) =>
      `${f.slice(SRC.length)} imports ${a}`
    )
  );
}

Deno.test("src/pg/ imports nothing from the protocol layer or the connectors", () => {
  assertEquals(violations("pg", ["kloset", "logical", "physical", "main"]), []);
});

Deno.test("src/kloset/ imports nothing from PostgreSQL or the connectors", () => {
  assertEquals(violations("kloset", ["pg", "logical", "physical", "main"]), []);
});

Deno.test("what both sides share (src/proc/, src/errors.ts) imports neither", () => {
  const both = ["kloset", "pg", "logical", "physical", "main"];
  assertEquals([...violations("proc", both), ...violations("errors.ts", both)], []);
});
