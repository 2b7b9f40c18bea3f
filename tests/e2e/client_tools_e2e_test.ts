// pg_bin_search through the real plakar: the tools of the server's major are
// found in a search list when PATH has none recent enough (or none at all),
// and when nothing fits, the backup fails saying where it looked.

import { Cluster } from "../../harness/cluster.ts";
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, type PlakarResult, PlakarUser } from "../../harness/e2e.ts";
import { makeAppDb, makeRoles, snapshotDb } from "../../harness/fixtures.ts";

const PG15 = "/usr/lib/postgresql/15/bin";

/** plakar with a PATH that has no PostgreSQL tool (its plugins inherit it). */
async function runWithoutPgOnPath(u: PlakarUser, args: string[]): Promise<PlakarResult> {
  const out = await new Deno.Command(u.bin, {
    args,
    env: { ...u.env(), PATH: "/nonexistent" },
    cwd: u.home,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("pg_bin_search finds the 15 tools when PATH has no pg_dump: backup and restore through plakar, named on stderr and in the manifest", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await using u = await PlakarUser.create();
  await makeRoles(src);
  await makeAppDb(src, "app");
  await makeRoles(dst);
  // A search list built here: pgsql-15 holds the real 15 tools; pgsql-14 is empty.
  const root = await Deno.makeTempDir({ prefix: "plakar-pg-bins-" });
  try {
    await Deno.mkdir(`${root}/pgsql-15/bin`, { recursive: true });
    await Deno.mkdir(`${root}/pgsql-14/bin`, { recursive: true });
    for (const tool of ["pg_dump", "pg_dumpall", "pg_restore", "psql"]) {
      await Deno.symlink(`${PG15}/${tool}`, `${root}/pgsql-15/bin/${tool}`);
    }
    const search = `pg_bin_search=${root}/pgsql-N/bin`;
    const b = await runWithoutPgOnPath(u, ["at", u.store, "backup", "-o", search, src.uri("app")]);
    ok(b, "backup");
    assertMatch(
      b.stderr,
      new RegExp(
        `postgresql: warning: using pg_dump \\(PostgreSQL\\) 15\\.\\d+.* from ${root}/pgsql-15/bin \\(pg_bin_search\\)`,
      ),
    );
    const [snap] = await u.snapshots();
    const m = JSON.parse(ok(await u.at("cat", `${snap}:/manifest.json`), "cat").stdout);
    assertEquals(m.pg_bin_dir, `${root}/pgsql-15/bin`);
    assertMatch(m.pg_dump_version, /^pg_dump \(PostgreSQL\) 15\./);

    const r = await runWithoutPgOnPath(u, [
      "at",
      u.store,
      "restore",
      "-o",
      "recreate=true",
      "-o",
      search,
      "-to",
      dst.uri(),
      snap,
    ]);
    ok(r, "restore");
    assertMatch(r.stderr, /using pg_restore \(PostgreSQL\) 15\.\d+.* \(pg_bin_search\)/);
    assertEquals(await snapshotDb(dst, "app"), await snapshotDb(src, "app"));

    // Without the search list (and no tools on PATH), both fail saying so.
    const none = `pg_bin_search=${root}/pgsql-14/bin`;
    const f = await runWithoutPgOnPath(u, ["at", u.store, "backup", "-o", none, src.uri("app")]);
    assertMatch(
      f.stderr,
      new RegExp(
        `pg_dump not found on PATH and cannot dump a PostgreSQL 15 server .*\\(looked in: ${root}/pgsql-14/bin\\)`,
      ),
    );
    const g = await runWithoutPgOnPath(u, [
      "at",
      u.store,
      "restore",
      "-o",
      none,
      "-to",
      dst.uri("app"),
      snap,
    ]);
    assertMatch(g.stdout + g.stderr, /pg_restore not found on PATH, nor of major 15 or newer in/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a PostgreSQL 16 server with only the 15 tools in the search list: the backup fails naming what it found where", async () => {
  await using src = await Cluster.start({ major: 16 });
  await using u = await PlakarUser.create();
  const r = await u.at(
    "backup",
    "-o",
    "pg_bin_search=/usr/lib/postgresql/N/bin,/usr/pgsql-N/bin",
    src.uri("postgres"),
  );
  assertEquals(r.code !== 0, true, "backup of a newer server succeeded");
  assertMatch(
    r.stderr,
    /pg_dump \(PostgreSQL\) 15\.\d+.* cannot dump a PostgreSQL 16 server at 127\.0\.0\.1:\d+: install the client tools of major 16 or newer and set pg_bin_dir \(looked in: \/usr\/lib\/postgresql\/N\/bin \(found 15\), \/usr\/pgsql-N\/bin\)/,
  );
  assertEquals(await u.snapshots(), []);
});
