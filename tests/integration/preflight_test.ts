// Preflight checks run by Ping (plakar source ping / destination ping) on
// real clusters: problems fail the Ping, each on its own line; warnings are
// printed and the Ping succeeds.

// @ts-types="@types/pg"
import pg from "pg";
import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { params } from "../helpers/connectors.ts";
import { makeAppDb, makeRoles } from "../../harness/fixtures.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";
import { createLogicalExporter } from "../../src/logical/restore/exporter.ts";

/** Pings an importer or exporter; returns its error (if any) and the lines it printed. */
async function ping(
  kind: "importer" | "exporter",
  config: Record<string, string>,
): Promise<{ error?: string; lines: string[] }> {
  const lines: string[] = [];
  const saved = console.error;
  console.error = (...a: unknown[]) => void lines.push(a.join(" "));
  const c = kind === "importer"
    ? await createLogicalImporter(params("postgres", config))
    : await createLogicalExporter(params("postgres", config));
  try {
    await c.ping(new AbortController().signal);
    return { lines };
  } catch (e) {
    return { error: (e as Error).message, lines };
  } finally {
    console.error = saved;
    await c.close();
  }
}

Deno.test("backup preflight: a superuser on a readable cluster passes with nothing to say", async () => {
  await using c = await Cluster.start();
  await makeRoles(c);
  await makeAppDb(c, "app");
  const r = await ping("importer", { location: c.uri() });
  assertEquals(r, { lines: [] });
});

Deno.test("backup preflight: unreadable tables (named, the first three), no CONNECT, and pg_authid fail or warn, one line each", async () => {
  await using c = await Cluster.start();
  await makeRoles(c);
  await makeAppDb(c, "app");
  await c.psql(
    `CREATE TABLE public.secret1 (x int); CREATE TABLE public.secret2 (x int);
     CREATE TABLE public.secret3 (x int); CREATE TABLE public.secret4 (x int);
     CREATE SCHEMA hidden; CREATE TABLE hidden.h (x int);
     CREATE TABLE public.guarded (x int); ALTER TABLE public.guarded ENABLE ROW LEVEL SECURITY;
     GRANT SELECT ON public.guarded TO app_owner;`,
    "app",
  );
  await c.query("CREATE DATABASE closed");
  await c.query("REVOKE CONNECT ON DATABASE closed FROM PUBLIC");
  const r = await ping("importer", {
    location: c.uri("", "app_owner"),
    exclude_databases: "postgres,template1",
  });
  assertMatch(r.error ?? "", /^preflight found 2 problem\(s\): /);
  assertEquals(r.lines.length, 3, r.lines.join("\n"));
  assertMatch(
    r.lines[0],
    /^postgresql: warning: preflight: pg_authid is not readable \(not a superuser\): role passwords will not be in the backup/,
  );
  assertEquals(
    r.lines[1],
    'postgresql: error: preflight: no CONNECT privilege on database "closed": its pg_dump would fail (exclude it with exclude_databases=)',
  );
  assertEquals(
    r.lines[2],
    'postgresql: error: preflight: database "app": pg_dump cannot read hidden.h (no USAGE on its schema), public.guarded (row-level security applies), public.secret1 (no SELECT) and 3 more',
  );

  // Excluding what cannot be dumped, and granting the rest: only the warning is left.
  await c.psql(
    `GRANT SELECT ON ALL TABLES IN SCHEMA public TO app_owner; GRANT USAGE ON SCHEMA hidden TO app_owner;
     GRANT SELECT ON hidden.h TO app_owner; ALTER ROLE app_owner BYPASSRLS;`,
    "app",
  );
  const ok = await ping("importer", {
    location: c.uri("", "app_owner"),
    exclude_databases: "postgres,template1,closed",
  });
  assertEquals(ok.error, undefined, ok.lines.join("\n"));
  assertEquals(ok.lines.length, 1);
  assertMatch(ok.lines[0], /warning: preflight: pg_authid is not readable/);
});

Deno.test("backup preflight: a PostgreSQL 16 server with only 15 tools about fails the ping", async () => {
  await using c = await Cluster.start({ major: 16 });
  const r = await ping("importer", {
    location: c.uri("postgres"),
    pg_bin_search: "/usr/lib/postgresql/N/bin",
  });
  assertMatch(
    r.error ?? "",
    /pg_dump \(PostgreSQL\) 15\.\d+.*; no pg_dump of major 16 or newer in \/usr\/lib\/postgresql\/N\/bin \(found 15\): install the client tools of major 16 or newer and set pg_bin_dir/,
  );
});

Deno.test("restore preflight: CREATEDB for recreate, the target database, role membership and spool_dir fail; CREATEROLE warns", async () => {
  await using c = await Cluster.start();
  await c.psql("CREATE ROLE plain LOGIN; CREATE ROLE other NOLOGIN;");
  await c.query("CREATE DATABASE app OWNER plain");
  const as = (db = "") => c.uri(db, "plain");
  const createRole =
    /^postgresql: warning: preflight: plain has neither CREATEROLE nor SUPERUSER: a snapshot's globals \(roles\) would fail to restore; set no_globals=true to skip them$/;

  // Into an existing database, globals skipped: nothing to say.
  assertEquals(await ping("exporter", { location: as("app"), no_globals: "true" }), { lines: [] });
  // With globals: a warning, the ping passes.
  let r = await ping("exporter", { location: as("app") });
  assertEquals(r.error, undefined);
  assertMatch(r.lines.join("\n"), createRole);

  r = await ping("exporter", { location: as(), recreate: "true", no_globals: "true" });
  assertMatch(
    r.error ?? "",
    /^preflight found 1 problem\(s\): recreate=true creates databases, and plain has neither CREATEDB nor SUPERUSER$/,
  );

  r = await ping("exporter", { location: as("missing"), no_globals: "true" });
  assertMatch(r.error ?? "", /target database "missing": .*database "missing" does not exist/);

  r = await ping("exporter", { location: as("app"), no_globals: "true", role: "other" });
  assertMatch(r.error ?? "", /role=other: plain cannot SET ROLE to it/);
  await c.query("GRANT other TO plain");
  r = await ping("exporter", { location: as("app"), no_globals: "true", role: "other" });
  assertEquals(r.error, undefined);

  r = await ping("exporter", {
    location: as("app"),
    no_globals: "true",
    jobs: "2",
    spool_dir: "/nonexistent/spool",
  });
  assertMatch(r.error ?? "", /jobs=2 spools to spool_dir: .*nonexistent/);
  assert(r.lines.some((l) => l.startsWith("postgresql: error: preflight: jobs=2")));
});

Deno.test("restore preflight: work databases left by an interrupted recreate are named with their size, unless a session uses them", async () => {
  await using c = await Cluster.start();
  await c.query("CREATE DATABASE app");
  await c.query("CREATE DATABASE app__plakar_restore_0a1b2c3d");
  await c.query("CREATE DATABASE app__plakar_old_deadbeef");
  await c.query("CREATE DATABASE busy__plakar_restore_00000001");
  // Not ours: the name only looks alike.
  await c.query("CREATE DATABASE app__plakar_restore_notours");
  const session = new pg.Client({
    host: c.host,
    port: c.port,
    user: c.superuser,
    password: c.password,
    database: "busy__plakar_restore_00000001",
  });
  await session.connect();
  try {
    const r = await ping("exporter", { location: c.uri("app"), no_globals: "true" });
    assertEquals(r.error, undefined);
    assertEquals(r.lines.length, 1, r.lines.join("\n"));
    assertMatch(
      r.lines[0],
      /^postgresql: warning: preflight: work database\(s\) left by an interrupted recreate=true restore: app__plakar_old_deadbeef \(\d+ [kM]B\), app__plakar_restore_0a1b2c3d \(\d+ [kM]B\); nothing uses them: drop them \(DROP DATABASE\) to free their disk$/,
    );
  } finally {
    await session.end();
  }
});
