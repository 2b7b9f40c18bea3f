// Restores that must not look good when they are not, on real PostgreSQL 15
// clusters, through the logical exporter driven directly: truncated scripts,
// databases= that names nothing, globals that would change the password of
// the role the restore connects as, and a target that cannot be reached.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { exportAll, params, restoreFiles } from "../helpers/connectors.ts";
import { canLogin, makeAppDb, makeRoles } from "../../harness/fixtures.ts";
import { createLogicalExporter } from "../../src/logical/restore/exporter.ts";

const BIN = "/usr/lib/postgresql/15/bin";

const restore = restoreFiles;

/** Runs pg_dump or pg_dumpall against `c` and returns its output. */
async function dumpTool(c: Cluster, bin: string, args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command(`${BIN}/${bin}`, {
    args: ["-h", c.host, "-p", String(c.port), "-U", c.superuser, "-w", ...args],
    env: c.password ? { PGPASSWORD: c.password } : {},
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return out.stdout;
}

/** A source with `small`: 1000 rows in one table, the shape of the issue's report. */
async function smallSource(): Promise<Cluster> {
  const src = await Cluster.start();
  await src.query("CREATE DATABASE small");
  await src.psql(
    "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat('v', 200) || g FROM generate_series(1, 1000) g",
    "small",
  );
  return src;
}

/** Rows in public.t of `db`, or -1 when the table does not exist. */
async function rows(c: Cluster, db: string): Promise<number> {
  const [{ t }] = await c.query<{ t: string | null }>(
    "SELECT to_regclass('public.t')::text AS t",
    db,
  );
  if (t === null) return -1;
  return (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM public.t", db))[0].n;
}

Deno.test("a plain pg_dump script cut mid-file fails, names the missing last line, and commits nothing", async () => {
  await using src = await smallSource();
  await using dst = await Cluster.start();
  const script = await dumpTool(src, "pg_dump", ["-Fp", "small"]);
  const cut = script.subarray(0, Math.floor(script.length * 0.7));
  for (const exitOnError of ["false", "true"]) {
    await dst.query("DROP DATABASE IF EXISTS small");
    await dst.query("CREATE DATABASE small");
    const r = await restore(
      { location: dst.uri(), exit_on_error: exitOnError },
      new Map([["/small.sql", cut]]),
    );
    assertMatch(
      r.errors.get("/small.sql") ?? "",
      /SQL script \/small\.sql is truncated: it lacks pg_dump's last line "-- PostgreSQL database dump complete"; nothing of it was committed/,
    );
    assertMatch(r.finishError ?? "", /restore failed for 1 file/);
    assertEquals(await rows(dst, "small"), -1, "part of a truncated script was committed");
  }
  // The whole script restores every row, large-object BEGIN/COMMIT and all.
  await src.psql("SELECT lo_from_bytea(0, 'abc')", "small");
  const whole = await dumpTool(src, "pg_dump", ["-Fp", "small"]);
  await dst.query("DROP DATABASE small");
  await dst.query("CREATE DATABASE small");
  const ok = await restore({ location: dst.uri() }, new Map([["/small.sql", whole]]));
  assertEquals([ok.errors.size, ok.finishError], [0, undefined], [...ok.errors.values()].join());
  assertEquals(await rows(dst, "small"), 1000);
  assertEquals(
    (await dst.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_largeobject_metadata",
      "small",
    ))[0].n,
    1,
  );
});

Deno.test("a truncated globals file fails and creates no role; a hand-written script is not checked", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await makeRoles(src);
  const globals = await dumpTool(src, "pg_dumpall", ["--globals-only"]);
  const text = new TextDecoder().decode(globals);
  // Cut after the first roles, before the file's end.
  const cut = globals.subarray(0, text.indexOf("ALTER ROLE postgres"));
  const r = await restore({ location: dst.uri() }, new Map([["/00000-globals.sql", cut]]));
  assertMatch(
    r.errors.get("/00000-globals.sql") ?? "",
    /globals \/00000-globals\.sql is truncated: it lacks pg_dumpall's last line "-- PostgreSQL database cluster dump complete"; nothing of it was committed/,
  );
  assertEquals(
    await dst.query(
      "SELECT rolname FROM pg_roles WHERE rolname IN ('app_owner', 'app_reader', 'app_group')",
    ),
    [],
  );
  const whole = await restore({ location: dst.uri() }, new Map([["/00000-globals.sql", globals]]));
  assertEquals(whole.errors.size, 0, [...whole.errors.values()].join());
  assert(await canLogin(dst, "app_owner", "owner-pass-123"), "globals not restored");

  // SQL without the tools' header runs as it is, whatever its last line.
  await dst.query("CREATE DATABASE notes");
  const hand = new TextEncoder().encode("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n");
  const h = await restore({ location: dst.uri() }, new Map([["/notes.sql", hand]]));
  assertEquals([h.errors.size, h.finishError], [0, undefined]);
  assertEquals(await rows(dst, "notes"), 1);
});

Deno.test("a truncated pg_dumpall cluster script fails the restore and says what was applied", async () => {
  await using src = await smallSource();
  await using dst = await Cluster.start();
  const all = await dumpTool(src, "pg_dumpall", []);
  const cut = all.subarray(0, all.length - 200);
  const r = await restore({ location: dst.uri() }, new Map([["/all.sql", cut]]));
  assertMatch(
    r.errors.get("/all.sql") ?? "",
    /cluster script \/all\.sql is truncated: it lacks pg_dumpall's last line "-- PostgreSQL database cluster dump complete"; the part before the cut was applied \(after \\connect it cannot run in one transaction\)/,
  );
  assertMatch(r.finishError ?? "", /restore failed for 1 file/);
});

Deno.test("databases= naming no database in the snapshot fails, naming each unmatched name and what the snapshot holds", async () => {
  await using dst = await Cluster.start();
  await using src = await smallSource();
  const dump = await dumpTool(src, "pg_dump", ["-Fc", "small"]);
  const globals = await dumpTool(src, "pg_dumpall", ["--globals-only"]);
  const files = new Map([
    ["/00000-globals.sql", globals],
    ["/00001-small.dump", dump],
    ["/manifest.json", new TextEncoder().encode("{}")],
  ]);
  const typo = await restore({ location: dst.uri(), databases: "smal", recreate: "true" }, files);
  assertEquals(typo.errors.size, 0);
  assertEquals(
    typo.finishError,
    'databases=smal: no dump of "smal" in the snapshot (the snapshot holds "small"): check the names',
  );
  // One name matches and is restored; the other is still named.
  const some = await restore(
    { location: dst.uri(), databases: "small,other", recreate: "true" },
    files,
  );
  assertEquals(some.errors.size, 0, [...some.errors.values()].join());
  assertMatch(some.finishError ?? "", /^databases=small,other: no dump of "other" in the snapshot/);
  assertEquals(await rows(dst, "small"), 1000);
  // A target database asked for, and a snapshot without any database dump.
  const none = await restore(
    { location: dst.uri("small") },
    new Map([["/00000-globals.sql", globals]]),
  );
  assertEquals(
    none.finishError,
    "database=small was asked for but no database was restored: the snapshot holds no database dump",
  );
});

Deno.test("globals never change the password or attributes of the role the restore connects as", async () => {
  await using src = await Cluster.start({ password: "source-A" });
  await using dst = await Cluster.start({ password: "target-B" });
  await makeRoles(src);
  await makeAppDb(src, "app");
  // The source's superuser also expired (set in the script: the source must still let us in).
  const globals = new TextDecoder().decode(await dumpTool(src, "pg_dumpall", ["--globals-only"]))
    .replace(/^(ALTER ROLE postgres WITH .*);$/m, "$1 VALID UNTIL '2001-01-01 00:00:00+00';");
  assertMatch(globals, /VALID UNTIL '2001/);
  const files = new Map([
    ["/00000-globals.sql", new TextEncoder().encode(globals)],
    ["/00001-app.dump", await dumpTool(src, "pg_dump", ["-Fc", "app"])],
  ]);
  const configs: Record<string, string>[] = [{ location: dst.uri() }, {
    location: dst.uri(),
    exit_on_error: "true",
  }];
  for (const config of configs) {
    await dst.query("DROP DATABASE IF EXISTS app");
    const r = await restore({ ...config, recreate: "true" }, files);
    assertEquals([r.errors.size, r.finishError], [0, undefined], [...r.errors.values()].join());
    assert(await canLogin(dst, "postgres", "target-B"), "the target's superuser password changed");
    assert(!(await canLogin(dst, "postgres", "source-A")), "the source's password was applied");
    assertEquals(
      await dst.query("SELECT rolvaliduntil FROM pg_roles WHERE rolname = 'postgres'"),
      [{ rolvaliduntil: null }],
    );
    assert(await canLogin(dst, "app_owner", "owner-pass-123"), "other roles not restored");
    assertEquals(
      (await dst.query<{ n: number }>("SELECT count(*)::int AS n FROM sales.customers", "app"))[0]
        .n > 0,
      true,
    );
  }
});

Deno.test("a connected role whose name needs quotes keeps its password too", async () => {
  await using src = await Cluster.start({ password: "source-A" });
  await using dst = await Cluster.start({ password: "target-B" });
  for (const [c, pw] of [[src, "dba-source"], [dst, "dba-target"]] as const) {
    await c.query(`CREATE ROLE "DBA ""Admin""" SUPERUSER LOGIN PASSWORD '${pw}'`);
  }
  const globals = await dumpTool(src, "pg_dumpall", ["--globals-only"]);
  assertMatch(new TextDecoder().decode(globals), /ALTER ROLE "DBA ""Admin""" WITH SUPERUSER/);
  const r = await restore(
    { location: dst.uri("", 'DBA "Admin"', "dba-target") },
    new Map([["/00000-globals.sql", globals]]),
  );
  assertEquals([r.errors.size, r.finishError], [0, undefined], [...r.errors.values()].join());
  assert(await canLogin(dst, 'DBA "Admin"', "dba-target"), "the connected role's password changed");
  // The superuser, not the connected role this time, gets the source's password.
  assert(await canLogin(dst, "postgres", "source-A"), "the other roles' passwords not applied");
});

Deno.test("an unreachable target fails every file at once with the same reason, not connect_timeout per file", async () => {
  // Real dumps: pg_restore reads the archive, then tries to connect.
  await using src = await Cluster.start();
  const dump = await dumpTool(src, "pg_dump", ["-Fc", "postgres"]);
  const globals = await dumpTool(src, "pg_dumpall", ["--globals-only"]);
  // A listener that accepts TCP connections but never speaks PostgreSQL.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (silent.addr as Deno.NetAddr).port;
  try {
    const files = new Map<string, Uint8Array>([["/00000-globals.sql", globals]]);
    for (let i = 1; i <= 4; i++) files.set(`/0000${i}-db${i}.dump`, dump);
    const t0 = performance.now();
    const r = await restore(
      { location: `postgres://postgres@127.0.0.1:${port}/`, connect_timeout: "2" },
      files,
    );
    const seconds = (performance.now() - t0) / 1000;
    assertEquals(r.errors.size, 5);
    const reasons = new Set(r.errors.values());
    assertEquals(reasons.size, 1, [...reasons].join("\n"));
    assertMatch([...reasons][0], /cannot connect to 127\.0\.0\.1:\d+ .*timed out after 2s/);
    assert(seconds < 6, `5 files took ${seconds.toFixed(1)}s`);
  } finally {
    silent.close();
  }
});

Deno.test("a target that goes away mid-restore fails the remaining files at once with that reason", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await src.query("CREATE DATABASE db1");
  const dump = await dumpTool(src, "pg_dump", ["-Fc", "db1"]);
  const exp = await createLogicalExporter(
    params("postgres", { location: dst.uri(), recreate: "true" }),
  );
  try {
    const first = await exportAll(exp, new Map([["/00001-db1.dump", dump]]));
    assertEquals(first.errors.size, 0, [...first.errors.values()].join());
    await dst.stop("immediate");
    const files = new Map<string, Uint8Array>();
    for (let i = 2; i <= 4; i++) files.set(`/0000${i}-db${i}.dump`, dump);
    const r = await exportAll(exp, files);
    const [cause, ...rest] = [...r.errors.values()];
    assertEquals(r.errors.size, 3);
    assertMatch(cause, /connection to server at .* failed: Connection refused/);
    for (const e of rest) assertEquals(e, `the target could not be reached: ${cause}`);
  } finally {
    await exp.close();
  }
});
