// clean=true and recreate=true against real PostgreSQL 15 clusters: a dump
// that fails midway must leave the target as it was, and a good one must
// replace the database as `pg_restore -C` would (data, owner, comment, ACL,
// database and role settings).

// @ts-types="@types/pg"
import pg from "pg";
import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { importAll, params, restoreFiles } from "../helpers/connectors.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";
import { pgRestoreArgs } from "../../src/logical/restore/pg_restore.ts";
import { renamedCreateDatabase, workNames } from "../../src/logical/restore/safe_restore.ts";
import { asciiText, readArchiveToc } from "../../src/pg/archive_toc.ts";
import { parseExportConfig } from "../../src/pg/config.ts";

const ROWS = 20_000;
const AWKWARD_NAME = `we"ird-db é %41/x=y`;
const AWKWARD = `"${AWKWARD_NAME.replace(/"/g, '""')}"`;

async function backup(config: Record<string, string>) {
  const imp = await createLogicalImporter(params("postgres", config));
  try {
    const r = await importAll(imp);
    assertEquals(r.errors.size, 0, [...r.errors.values()].join("\n"));
    return r.files;
  } finally {
    await imp.close();
  }
}

const restore = restoreFiles;

/** A cluster with database `app` owned by app_owner: table t with `rows` rows, and db-level properties. */
async function makeApp(c: Cluster, rows: number, label: string): Promise<void> {
  await c.psql(
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_owner') THEN CREATE ROLE app_owner LOGIN; END IF;
       IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_reader') THEN CREATE ROLE app_reader LOGIN; END IF;
     END $$;`,
  );
  await c.psql(`CREATE DATABASE app OWNER app_owner`);
  await c.psql(
    `CREATE TABLE t (id int PRIMARY KEY, label text NOT NULL);
     ALTER TABLE t OWNER TO app_owner;
     INSERT INTO t SELECT g, '${label}-' || g FROM generate_series(1, ${rows}) g;`,
    "app",
  );
}

async function rowCount(c: Cluster, db = "app"): Promise<number> {
  const [r] = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM t", db);
  return r.n;
}

async function workDatabases(c: Cluster): Promise<string[]> {
  const rows = await c.query<{ datname: string }>(
    "SELECT datname FROM pg_database WHERE datname LIKE '%\\_\\_plakar\\_%' ORDER BY 1",
  );
  return rows.map((r) => r.datname);
}

/** The single dump of `app` in a snapshot, cut to `fraction` of its length (TOC intact, data cut). */
function truncatedApp(files: Map<string, Uint8Array>, fraction: number): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [path, bytes] of files) {
    if (path.endsWith("-app.dump")) {
      out.set(path, bytes.slice(0, Math.floor(bytes.length * fraction)));
    }
  }
  assertEquals(out.size, 1);
  return out;
}

Deno.test("a truncated dump restored with recreate=true leaves the existing database, its rows and properties as they were", async () => {
  await using c = await Cluster.start();
  await makeApp(c, ROWS, "old");
  await c.psql(`COMMENT ON DATABASE app IS 'old comment'`);
  const files = await backup({ location: c.uri("app") });
  const damaged = truncatedApp(files, 0.6);

  const r = await restore({ location: c.uri(), recreate: "true" }, damaged);
  assertEquals(r.errors.size, 1, "the damaged dump must fail");
  assertEquals(await rowCount(c), ROWS);
  const message = [...r.errors.values()][0];
  assertMatch(message, /temporary database .*"app" was left as it was/);
  const [db] = await c.query<{ owner: string; comment: string }>(
    `SELECT pg_get_userbyid(datdba) AS owner, shobj_description(oid, 'pg_database') AS comment
       FROM pg_database WHERE datname = 'app'`,
  );
  assertEquals(db, { owner: "app_owner", comment: "old comment" });
  assertEquals(await workDatabases(c), [], "the temporary database must be dropped");
});

Deno.test("a truncated dump restored with clean=true rolls back: the target keeps all its rows", async () => {
  await using c = await Cluster.start();
  await makeApp(c, ROWS, "old");
  const files = await backup({ location: c.uri("app") });
  const damaged = truncatedApp(files, 0.6);

  const r = await restore({ location: c.uri(), clean: "true" }, damaged);
  assertEquals(r.errors.size, 1, "the damaged dump must fail");
  assertEquals(await rowCount(c), ROWS);
  const [row] = await c.query<{ label: string }>("SELECT label FROM t WHERE id = 7", "app");
  assertEquals(row.label, "old-7");
});

Deno.test("a good dump restored with recreate=true replaces the database with the archive's data, owner, comment, ACL and settings", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await makeApp(src, 500, "new");
  await src.psql(
    `COMMENT ON DATABASE app IS 'restored comment';
     ALTER DATABASE app SET work_mem = '7MB';
     ALTER ROLE app_reader IN DATABASE app SET statement_timeout = '42s';
     ALTER DATABASE app CONNECTION LIMIT 33;
     REVOKE CONNECT, TEMPORARY ON DATABASE app FROM PUBLIC;
     GRANT CONNECT ON DATABASE app TO app_reader;`,
  );
  await src.psql(`CREATE DATABASE fresh OWNER app_reader`);
  await src.psql(`CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)`, "fresh");
  // A LATIN1 database with an awkward name and a non-ASCII comment: names and
  // properties must pass through byte for byte in the archive's encoding.
  await src.psql(
    `CREATE DATABASE ${AWKWARD} ENCODING LATIN1 LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`,
  );
  await src.psql(`COMMENT ON DATABASE ${AWKWARD} IS 'café crème'`);
  await src.psql(`CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3)`, AWKWARD_NAME);

  // The target's app differs in every respect, has a table the dump lacks,
  // and a session connected to it.
  await makeApp(dst, ROWS, "old");
  await dst.psql(`CREATE ROLE someone_else; ALTER DATABASE app OWNER TO someone_else`);
  await dst.psql(`CREATE TABLE stale (x int)`, "app");
  await dst.psql(`CREATE DATABASE ${AWKWARD}`);
  await dst.psql(`CREATE TABLE t (id int); INSERT INTO t VALUES (9)`, AWKWARD_NAME);
  await dst.psql(
    `COMMENT ON DATABASE app IS 'old comment'; ALTER DATABASE app SET work_mem = '1MB'`,
  );
  const idle = new pg.Client({ host: dst.host, port: dst.port, user: "postgres", database: "app" });
  idle.on("error", () => {});
  await idle.connect();

  try {
    const files = await backup({ location: src.uri() });
    const r = await restore({ location: dst.uri(), recreate: "true" }, files);
    assertEquals(r.errors.size, 0, [...r.errors.values()].join("\n"));
    assertEquals(r.finishError, undefined);
  } finally {
    await idle.end().catch(() => {});
  }

  assertEquals(await rowCount(dst), 500);
  const [label] = await dst.query<{ label: string }>("SELECT label FROM t WHERE id = 3", "app");
  assertEquals(label.label, "new-3");
  const stale = await dst.query("SELECT FROM pg_class WHERE relname = 'stale'", "app");
  assertEquals(stale.length, 0, "objects not in the dump must be gone");
  const props = `SELECT d.datname, pg_get_userbyid(d.datdba) AS owner,
        shobj_description(d.oid, 'pg_database') AS comment, d.datconnlimit AS connlimit,
        d.datacl::text AS acl, pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collate,
        (SELECT array_agg(s.setconfig::text || coalesce(pg_get_userbyid(s.setrole), '') ORDER BY 1)
           FROM pg_db_role_setting s WHERE s.setdatabase = d.oid)::text AS settings
      FROM pg_database d WHERE d.datname IN ('app', 'fresh', $1) ORDER BY 1`;
  assertEquals(
    await dst.query(props, "postgres", [AWKWARD_NAME]),
    await src.query(props, "postgres", [AWKWARD_NAME]),
  );
  assertEquals((await dst.query(props, "postgres", [AWKWARD_NAME])).length, 3);
  assertEquals(await rowCount(dst, "fresh"), 2);
  assertEquals(await rowCount(dst, AWKWARD_NAME), 3);
  assertEquals(await workDatabases(dst), [], "no temporary or set-aside database may remain");
});

Deno.test("a dump that fails midway on a missing role, restored with recreate=true or clean=true, leaves the target as it was", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await src.psql(`CREATE ROLE ghost`);
  await makeApp(src, 300, "new");
  await src.psql(`CREATE TABLE ghostly (x int); ALTER TABLE ghostly OWNER TO ghost`, "app");
  await makeApp(dst, ROWS, "old");
  // Only the dump, not the globals: the target lacks the role "ghost".
  const files = new Map(
    [...(await backup({ location: src.uri("app") }))].filter(([p]) => p.endsWith(".dump")),
  );
  for (const mode of ["recreate", "clean"]) {
    const r = await restore({ location: dst.uri(), [mode]: "true" }, files);
    assertEquals(r.errors.size, 1, `${mode}: the restore must fail`);
    assertMatch([...r.errors.values()][0], /role "ghost" does not exist/);
    assertEquals(await rowCount(dst), ROWS, `${mode} changed the target`);
    const [row] = await dst.query<{ label: string }>("SELECT label FROM t WHERE id = 1", "app");
    assertEquals(row.label, "old-1");
    assertEquals(await workDatabases(dst), []);
  }
});

Deno.test("a swap that fails (a database setting for a role the target lacks) rolls back: the target keeps its content", async () => {
  await using c = await Cluster.start();
  await makeApp(c, ROWS, "old");
  await c.psql(`CREATE ROLE ghost; ALTER ROLE ghost IN DATABASE app SET work_mem = '3MB'`);
  // The dump alone: the globals would bring the role back.
  const files = new Map(
    [...(await backup({ location: c.uri("app") }))].filter(([p]) => p.endsWith(".dump")),
  );
  await c.psql(`DROP ROLE ghost`);
  await c.psql(`UPDATE t SET label = 'changed' WHERE id = 1`, "app");

  const r = await restore({ location: c.uri(), recreate: "true" }, files);
  assertEquals(r.errors.size, 1, "the restore must fail");
  const [row] = await c.query<{ label: string }>("SELECT label FROM t WHERE id = 1", "app");
  assertEquals(row.label, "changed", "the target was replaced");
  assertMatch([...r.errors.values()][0], /could not replace "app"; "app" was left as it was/);
  assertMatch([...r.errors.values()][0], /role "ghost" does not exist/);
  assertEquals(await workDatabases(c), []);
});

Deno.test("a replaced copy that cannot be dropped after the swap is named on stderr; the restore itself succeeds", async () => {
  await using c = await Cluster.start();
  await makeApp(c, ROWS, "old");
  const files = new Map(
    [...(await backup({ location: c.uri("app") }))].filter(([p]) => p.endsWith(".dump")),
  );
  await c.psql(`UPDATE t SET label = 'changed' WHERE id = 1`, "app");
  // A psql that runs the swap, then fails where the drop of the old copy
  // would run (the one session does both: src/logical/restore/safe_restore.ts).
  const bin = await Deno.makeTempDir({ prefix: "plakar-fake-psql-" });
  const real = "/usr/lib/postgresql/15/bin";
  await Deno.symlink(`${real}/pg_restore`, `${bin}/pg_restore`);
  await Deno.writeTextFile(
    `${bin}/psql`,
    [
      "#!/bin/sh",
      // Only the sessions that stop at the first error (not the drop guard's).
      `case "$*" in *ON_ERROR_STOP*) ;; *) exec ${real}/psql "$@" ;; esac`,
      'in=$(mktemp); cat > "$in"',
      `if grep -q 'plakar: swapped' "$in"; then`,
      `  sed '/plakar: swapped/q' "$in" | ${real}/psql "$@" || exit $?`,
      "  echo 'ERROR:  simulated: the old copy cannot be dropped' >&2; rm -f \"$in\"; exit 3",
      "fi",
      `${real}/psql "$@" < "$in"; rc=$?; rm -f "$in"; exit $rc`,
      "",
    ].join("\n"),
  );
  await Deno.chmod(`${bin}/psql`, 0o755);
  const said: string[] = [];
  const consoleError = console.error;
  console.error = (...a: unknown[]) => void said.push(a.join(" "));
  let r;
  try {
    r = await restore({ location: c.uri(), recreate: "true", pg_bin_dir: bin }, files);
  } finally {
    console.error = consoleError;
    await Deno.remove(bin, { recursive: true });
  }
  assertEquals(r.errors.size, 0, [...r.errors.values()].join("\n"));
  assertEquals(await rowCount(c), ROWS);
  const [row] = await c.query<{ label: string }>("SELECT label FROM t WHERE id = 1", "app");
  assertEquals(row.label, "old-1", "the restored copy is in place");
  const left = await workDatabases(c);
  assertEquals(left.length, 1);
  assertMatch(left[0], /^app__plakar_old_[0-9a-f]{8}$/);
  const line = said.find((l) => l.includes("could not be dropped"));
  assert(line, said.join("\n"));
  assertMatch(line, new RegExp(`app was restored, but its previous copy ${left[0]} could not`));
  assertMatch(line, /simulated: the old copy cannot be dropped/);
});

Deno.test("clean=true on a server whose lock table is too small for one transaction fails, changes nothing, and names the way out", async () => {
  await using c = await Cluster.start({
    conf: ["max_connections = 10", "max_locks_per_transaction = 10"],
  });
  await makeApp(c, 100, "old");
  for (let k = 0; k < 10; k++) {
    await c.psql(
      `DO $$ BEGIN FOR i IN ${k * 20 + 1}..${k * 20 + 20} LOOP
         EXECUTE format('CREATE TABLE extra%s (id int PRIMARY KEY)', i);
       END LOOP; END $$;`,
      "app",
    );
  }
  const files = new Map(
    [...(await backup({ location: c.uri("app") }))].filter(([p]) => p.endsWith(".dump")),
  );
  await c.psql(`UPDATE t SET label = 'changed' WHERE id = 1`, "app");

  const r = await restore({ location: c.uri(), clean: "true" }, files);
  assertEquals(r.errors.size, 1, "the restore must fail");
  assertMatch([...r.errors.values()][0], /raise max_locks_per_transaction .* or set atomic=false/);
  const [row] = await c.query<{ label: string }>("SELECT label FROM t WHERE id = 1", "app");
  assertEquals(row.label, "changed");

  const inPlace = await restore({ location: c.uri(), clean: "true", atomic: "false" }, files);
  assertEquals(inPlace.errors.size, 0, [...inPlace.errors.values()].join("\n"));
  const [after] = await c.query<{ label: string }>("SELECT label FROM t WHERE id = 1", "app");
  assertEquals(after.label, "old-1");
});

Deno.test("atomic=false keeps the old drop-first behaviour: a truncated dump with recreate=true loses the target", async () => {
  await using c = await Cluster.start();
  await makeApp(c, ROWS, "old");
  const files = await backup({ location: c.uri("app") });
  const r = await restore(
    { location: c.uri(), recreate: "true", atomic: "false" },
    truncatedApp(files, 0.6),
  );
  assertEquals(r.errors.size, 1);
  assert((await rowCount(c)) < ROWS, "atomic=false restores in place");
});

Deno.test("the archive's TOC is read from the stream and the stream replays every byte", async () => {
  await using c = await Cluster.start();
  await makeApp(c, 1000, "x");
  await c.psql(`COMMENT ON DATABASE app IS 'c'; GRANT CONNECT ON DATABASE app TO app_reader`);
  const files = await backup({ location: c.uri("app") });
  const bytes = [...files.entries()].find(([p]) => p.endsWith("-app.dump"))![1];
  let off = 0;
  const input = new ReadableStream<Uint8Array>({
    pull(ctl) {
      // Odd-sized chunks so that fields straddle chunk boundaries.
      if (off >= bytes.length) return ctl.close();
      ctl.enqueue(bytes.slice(off, off + 97));
      off += 97;
    },
  });
  const { toc, stream } = await readArchiveToc(input);
  assertEquals(asciiText(toc.dbname), "app");
  const descs = toc.entries.map((e) => e.desc);
  for (const d of ["ENCODING", "DATABASE", "COMMENT", "ACL", "TABLE", "TABLE DATA"]) {
    assert(descs.includes(d), `missing ${d} in ${descs.join(",")}`);
  }
  const db = toc.entries.find((e) => e.desc === "DATABASE")!;
  assertEquals(asciiText(db.owner), "app_owner");
  assertEquals(new Uint8Array(await new Response(stream).arrayBuffer()), bytes);
  await assertRejectsWith(
    readArchiveToc(streamOf(new TextEncoder().encode("-- SQL\n"))),
    /not a pg_dump custom-format/,
  );
  await assertRejectsWith(readArchiveToc(streamOf(bytes.slice(0, 60))), /ends inside it/);
});

Deno.test("work database names fit in 63 bytes; the archive's CREATE DATABASE keeps its options under the new name", () => {
  const { temporary, old } = workNames(`${"é".repeat(40)}Some "Long" Name ${"x".repeat(80)}`);
  assert(new TextEncoder().encode(temporary).length <= 63, temporary);
  assert(new TextEncoder().encode(old).length <= 63, old);
  assertMatch(temporary, /^[a-z0-9_]+__plakar_restore_[0-9a-f]{8}$/);
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);
  const enc = (s: string) => new TextEncoder().encode(s);
  assertEquals(
    dec(renamedCreateDatabase(
      enc(`CREATE DATABASE "we""ird db" WITH TEMPLATE = template0 ENCODING = 'UTF8';\n`),
      "tmp_1",
    )),
    `CREATE DATABASE "tmp_1" WITH TEMPLATE = template0 ENCODING = 'UTF8';\n`,
  );
  assertEquals(
    dec(renamedCreateDatabase(enc(`CREATE DATABASE app WITH TEMPLATE = template0;\n`), "t")),
    `CREATE DATABASE "t" WITH TEMPLATE = template0;\n`,
  );
  const cfg = (o: Record<string, string>) =>
    parseExportConfig({ location: "postgres://u@h/", ...o }, "postgres");
  assert(pgRestoreArgs(cfg({ clean: "true" }), "app").includes("--single-transaction"));
  assert(
    !pgRestoreArgs(cfg({ clean: "true", atomic: "false" }), "app").includes("--single-transaction"),
  );
});

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(ctl) {
      ctl.enqueue(bytes);
      ctl.close();
    },
  });
}

async function assertRejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assertMatch((e as Error).message, re);
    return;
  }
  throw new Error(`expected a rejection matching ${re}`);
}
