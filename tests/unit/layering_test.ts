// The layering docs/DESIGN.md draws, enforced on every relative import:
// - src/main/ (the three executables) may import anything in src/;
// - src/logical/ and src/physical/ (the connectors) import src/pg/, src/proc/,
//   src/errors.ts, src/log.ts and, of the protocol layer, only the connector types
//   (src/kloset/connector.ts); neither imports the other;
// - src/pg/ (PostgreSQL) imports src/proc/, src/errors.ts and src/log.ts only;
// - src/kloset/ (plakar's protocol) imports src/proc/, src/errors.ts and src/log.ts only;
// - src/proc/ and src/errors.ts, which all of them share, import nothing of ours,
//   and src/log.ts (the stderr lines) only src/errors.ts;
// - harness/ (clusters, plakar, the build, fixtures) imports src/ only;
// - tasks/ (command-line entries) and tests/ both may import src/ and
//   harness/, and never each other.

import { assertEquals } from "../helpers/assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Each area (a folder, or one file) and the folders or files it may import from. */
const RULES: { area: string; may: string[] }[] = [
  { area: "src/main/", may: ["src/"] },
  {
    area: "src/logical/",
    may: [
      "src/logical/",
      "src/pg/",
      "src/proc/",
      "src/errors.ts",
      "src/log.ts",
      "src/kloset/connector.ts",
    ],
  },
  {
    area: "src/physical/",
    may: [
      "src/physical/",
      "src/pg/",
      "src/proc/",
      "src/errors.ts",
      "src/log.ts",
      "src/kloset/connector.ts",
    ],
  },
  { area: "src/pg/", may: ["src/pg/", "src/proc/", "src/errors.ts", "src/log.ts"] },
  { area: "src/kloset/", may: ["src/kloset/", "src/proc/", "src/errors.ts", "src/log.ts"] },
  { area: "src/proc/", may: ["src/proc/"] },
  { area: "src/errors.ts", may: [] },
  { area: "src/log.ts", may: ["src/errors.ts"] },
  { area: "harness/", may: ["src/", "harness/"] },
  { area: "tasks/", may: ["src/", "harness/", "tasks/"] },
  { area: "tests/", may: ["src/", "harness/", "tests/"] },
];

function* files(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* files(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

/** The repository-relative path of each relative import of `file` (static, dynamic, re-export). */
function imports(file: string): string[] {
  const text = Deno.readTextFileSync(file);
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["'](\.\.?\/[^"']+)["']/g)) {
    out.push(new URL(m[1], `file://${file}`).pathname.slice(ROOT.length));
  }
  return out;
}

/** Every import of `area`'s files that lands outside what it may import. */
function violations(area: string): string[] {
  const rule = RULES.find((r) => r.area === area)!;
  const list = area.endsWith("/") ? [...files(`${ROOT}${area.slice(0, -1)}`)] : [`${ROOT}${area}`];
  return list.flatMap((f) =>
    imports(f)
      .filter((target) =>
        !rule.may.some((ok) => ok.endsWith("/") ? target.startsWith(ok) : target === ok)
      )
      .map((target) => `${f.slice(ROOT.length)} imports ${target}`)
  );
}

Deno.test("src/main/ may import anything in src/", () => {
  assertEquals(violations("src/main/"), []);
});

Deno.test("src/logical/ imports src/pg/, src/proc/, src/errors.ts and the connector types only", () => {
  assertEquals(violations("src/logical/"), []);
});

Deno.test("src/physical/ imports src/pg/, src/proc/, src/errors.ts and the connector types only", () => {
  assertEquals(violations("src/physical/"), []);
});

Deno.test("src/pg/ imports nothing from the protocol layer or the connectors", () => {
  assertEquals(violations("src/pg/"), []);
});

Deno.test("src/kloset/ imports nothing from PostgreSQL or the connectors", () => {
  assertEquals(violations("src/kloset/"), []);
});

Deno.test("what both sides share (src/proc/, src/errors.ts, src/log.ts) imports neither", () => {
  assertEquals([
    ...violations("src/proc/"),
    ...violations("src/errors.ts"),
    ...violations("src/log.ts"),
  ], []);
});

Deno.test("harness/ imports src/ only, never tasks/ or tests/", () => {
  assertEquals(violations("harness/"), []);
});

Deno.test("tasks/ and tests/ never import each other", () => {
  assertEquals([...violations("tasks/"), ...violations("tests/")], []);
});

Deno.test("every folder of src/ is under a rule", () => {
  const areas = RULES.map((r) => r.area);
  const top = [...Deno.readDirSync(`${ROOT}src`)].map((e) =>
    e.isDirectory ? `src/${e.name}/` : `src/${e.name}`
  );
  assertEquals(top.filter((a) => !areas.includes(a)), []);
});
