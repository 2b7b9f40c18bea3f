import { assert, assertEquals, assertMatch, assertThrows } from "../../helpers/assert.ts";
import {
  chooseTool,
  expandEntry,
  NoFittingToolError,
  parseBinSearch,
  serverMajor,
  versionMajor,
  wrappedToolDir,
} from "../../../src/pg/tool_search.ts";
import { parseImportConfig } from "../../../src/pg/config.ts";
import { ConfigError } from "../../../src/kloset/errors.ts";

/** A tree of fake tool directories: `dirs` maps a directory to the major its pg_dump prints. */
async function fakeTools(dirs: Record<string, number>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "plakar-tool-search-" });
  for (const [dir, major] of Object.entries(dirs)) {
    await Deno.mkdir(`${root}/${dir}`, { recursive: true });
    const script = `${root}/${dir}/pg_dump`;
    await Deno.writeTextFile(script, `#!/bin/sh\necho "pg_dump (PostgreSQL) ${major}.3"\n`);
    await Deno.chmod(script, 0o755);
  }
  return root;
}

Deno.test("parseBinSearch() splits on ':' and ',' and drops blanks", () => {
  assertEquals(parseBinSearch("/a/N/bin:/b, /c,,"), ["/a/N/bin", "/b", "/c"]);
});

Deno.test("pg_bin_search must list absolute directories", () => {
  const o = parseImportConfig(
    { location: "postgres://h/", pg_bin_search: "/usr/lib/postgresql/N/bin:/opt/pg/bin" },
    "postgres",
  );
  assertEquals(o.pgBinSearch, ["/usr/lib/postgresql/N/bin", "/opt/pg/bin"]);
  const e = assertThrows(
    () => parseImportConfig({ location: "postgres://h/", pg_bin_search: "pg/bin" }, "postgres"),
    ConfigError,
  );
  assertMatch(e.message, /^pg_bin_search: expected absolute directories/);
});

Deno.test("versionMajor() and serverMajor() read majors before and after 10", () => {
  assertEquals(versionMajor("pg_dump (PostgreSQL) 16.4 (Debian 16.4-1)"), 16);
  assertEquals(versionMajor("pg_dump (PostgreSQL) 9.6.24"), 9.6);
  assertEquals([serverMajor(160004), serverMajor(90624)], [16, 9.6]);
});

Deno.test("versionMajor() reads the major from a --version line", () => {
  assertEquals(versionMajor("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"), 15);
  assertEquals(versionMajor("pg_dump (PostgreSQL) 9.6.24"), 9.6);
  assertEquals(versionMajor("nonsense"), undefined);
});

Deno.test("expandEntry() matches N against installed majors only where N stands alone", async () => {
  const root = await fakeTools({ "pg-14/bin": 14, "pg-16/bin": 16, "pg-x/bin": 1, "NAS/bin": 1 });
  try {
    assertEquals(await expandEntry(`${root}/pg-N/bin`), [
      { dir: `${root}/pg-14/bin`, major: 14 },
      { dir: `${root}/pg-16/bin`, major: 16 },
    ]);
    assertEquals(await expandEntry(`${root}/NAS/bin`), [{ dir: `${root}/NAS/bin` }]);
    assertEquals(await expandEntry(`${root}/missing-N/bin`), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("chooseTool() keeps PATH's tool when recent enough, else takes the server's major, else the closest newer", async () => {
  const root = await fakeTools({
    "pg-14/bin": 14,
    "pg-16/bin": 16,
    "pg-17/bin": 17,
    "pg-18/bin": 14, // a directory whose name lies: its --version decides
  });
  try {
    const where = { pgBinSearch: [`${root}/pg-N/bin`] };
    // PATH has Debian's 15 tools here.
    const path = await chooseTool("pg_dump", 15, where);
    assertEquals([path.binDir, path.searched, path.major], [undefined, false, 15]);
    const exact = await chooseTool("pg_dump", 16, where);
    assertEquals([exact.binDir, exact.searched, exact.major], [`${root}/pg-16/bin`, true, 16]);
    assertMatch(exact.versionLine, /^pg_dump \(PostgreSQL\) 16\.3$/);
    await Deno.remove(`${root}/pg-16`, { recursive: true });
    const newer = await chooseTool("pg_dump", 16, where);
    assertEquals(newer.binDir, `${root}/pg-17/bin`);
    // Nothing of 18 (pg-18 really is 14): the error says what PATH has and where it looked.
    const e = await chooseTool("pg_dump", 18, where).then(() => undefined, (e) => e);
    assert(e instanceof NoFittingToolError, String(e));
    assertMatch(
      e.message,
      /^pg_dump \(PostgreSQL\) 15\.\d+.*; no pg_dump of major 18 or newer in /,
    );
    assertEquals(e.looked, [`${root}/pg-N/bin (found 14, 17)`]);
    // pg_bin_dir is taken as it is, never searched around.
    const set = await chooseTool("pg_dump", 18, { ...where, pgBinDir: `${root}/pg-17/bin/` });
    assertEquals([set.binDir, set.searched, set.major], [`${root}/pg-17/bin`, false, 17]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("wrappedToolDir() finds the newest major's program behind Debian's pg_wrapper, and nothing else", async () => {
  const root = await Deno.makeTempDir({ prefix: "plakar-wrapper-" });
  try {
    await Deno.mkdir(`${root}/share`);
    await Deno.writeTextFile(`${root}/share/pg_wrapper`, "#!/usr/bin/perl\n");
    await Deno.mkdir(`${root}/usr/bin`, { recursive: true });
    await Deno.symlink(`${root}/share/pg_wrapper`, `${root}/usr/bin/pg_restore`);
    await Deno.mkdir(`${root}/other/bin`, { recursive: true });
    await Deno.writeTextFile(`${root}/other/bin/pg_restore`, "#!/bin/sh\n");
    for (
      const [major, tools] of [["13", ["pg_restore"]], ["15", ["pg_restore"]], ["16", ["psql"]]]
    ) {
      await Deno.mkdir(`${root}/lib/${major}/bin`, { recursive: true });
      for (const t of tools) await Deno.writeTextFile(`${root}/lib/${major}/bin/${t}`, "");
    }
    await Deno.mkdir(`${root}/lib/common/bin`, { recursive: true });
    await Deno.writeTextFile(`${root}/lib/common/bin/pg_restore`, "");
    const lib = `${root}/lib`;
    // 16 has no pg_restore and "common" is no major: 15 is what the wrapper runs.
    assertEquals(
      await wrappedToolDir("pg_restore", `/nonexistent:${root}/usr/bin`, lib),
      `${lib}/15/bin`,
    );
    assertEquals(await wrappedToolDir("psql", `${root}/usr/bin`, lib), undefined, "not on PATH");
    // The first on PATH decides: a real program there is used as it is.
    assertEquals(
      await wrappedToolDir("pg_restore", `${root}/other/bin:${root}/usr/bin`, lib),
      undefined,
    );
    assertEquals(await wrappedToolDir("pg_restore", `${root}/usr/bin`, `${root}/none`), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("chooseTool() runs PATH's pg_wrapper tool from its real directory, with that program's version", async () => {
  const wrapped = await wrappedToolDir("pg_dump");
  const choice = await chooseTool("pg_dump", 15, {});
  assertEquals([choice.binDir, choice.searched, choice.execDir], [undefined, false, wrapped]);
  if (wrapped) {
    const direct = new Deno.Command(`${wrapped}/pg_dump`, { args: ["--version"] }).outputSync();
    assertEquals(choice.versionLine, new TextDecoder().decode(direct.stdout).trim());
  }
});
