// The DBA options of the exporter on real PostgreSQL 15 clusters:
// no_privileges (-x), no_comments, role (--role; SET ROLE for psql) and
// single_transaction (-1).

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { importAll, params, restoreFiles } from "../helpers/connectors.ts";
import { makeAppDb, makeRoles } from "../../harness/fixtures.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";

/** The app database's dump (fixture tables, a grant to app_reader, a comment). */
async function appDump(): Promise<Map<string, Uint8Array>> {
  await using src = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  await src.psql("COMMENT ON TABLE sales.customers IS 'the customers'", "app");
  const imp = await createLogicalImporter(
    params("postgres", { location: src.uri("app") }),
  );
  try {
    const { files, errors } = await importAll(imp);
    assertEquals(errors.size, 0, [...errors.values()].join("\n"));
    return new Map([["/00001-app.dump", files.get("/00001-app.dump")!]]);
  } finally {
    await imp.close();
  }
}

const restore = restoreFiles;

const one = async <T>(c: Cluster, sql: string, db = "app") =>
  Object.values((await c.query(sql, db))[0] as Record<string, T>)[0];

Deno.test("no_privileges and no_comments leave out the dump's GRANTs and COMMENTs", async () => {
  const files = await appDump();
  await using dst = await Cluster.start();
  await makeRoles(dst);
  const readerCanSelect = () =>
    one<boolean>(dst, "SELECT has_table_privilege('app_reader', 'sales.customers', 'SELECT')");
  const comment = () =>
    one<string | null>(dst, "SELECT obj_description('sales.customers'::regclass)");

  await dst.query("CREATE DATABASE app OWNER app_owner");
  let r = await restore({ location: dst.uri("app") }, files);
  assertEquals(r.errors.size, 0, [...r.errors.values()].join("\n"));
  assertEquals([await readerCanSelect(), await comment()], [true, "the customers"]);

  await dst.query("DROP DATABASE app");
  await dst.query("CREATE DATABASE app OWNER app_owner");
  r = await restore(
    { location: dst.uri("app"), no_privileges: "true", no_comments: "true" },
    files,
  );
  assertEquals(r.errors.size, 0, [...r.errors.values()].join("\n"));
  assertEquals([await readerCanSelect(), await comment()], [false, null]);
  assertEquals(await one(dst, "SELECT count(*)::int FROM sales.customers"), 100);
});

Deno.test("role= restores as the database owner when the login user may only SET ROLE to it (pg_restore, psql, and recreate=true through the temporary database)", async () => {
  const files = await appDump();
  await using dst = await Cluster.start();
  await makeRoles(dst);
  // A managed-service shape: the login user is no superuser and not the
  // owner, only a member of the owner role that does not inherit its rights.
  await dst.psql("CREATE ROLE deployer LOGIN NOINHERIT; GRANT app_owner TO deployer;");
  await dst.query("CREATE DATABASE app OWNER app_owner");
  const login = { location: dst.uri("app", "deployer") };

  // Without role=: deployer may not create in schema public (PostgreSQL 15).
  let r = await restore({ ...login, no_globals: "true", exit_on_error: "true" }, files);
  assertMatch(r.errors.get("/00001-app.dump") ?? "", /permission denied/);

  await dst.query("DROP DATABASE app");
  await dst.query("CREATE DATABASE app OWNER app_owner");
  // A plain SQL script goes through psql, with the role set at connection start.
  const script = new TextEncoder().encode("CREATE TABLE public.extra (id int);\n");
  r = await restore(
    { ...login, role: "app_owner" },
    new Map([...files, ["/app.sql", script]]),
  );
  assertEquals(r.errors.size, 0, [...r.errors.values()].join("\n"));
  assertEquals(
    await dst.query(
      `SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r' AND n.nspname IN ('public', 'sales') ORDER BY 1`,
      "app",
    ),
    [
      { relname: "customers", owner: "app_owner" },
      { relname: "extra", owner: "app_owner" },
      { relname: "items", owner: "app_owner" },
    ],
  );

  // recreate=true: deployer has no CREATEDB, app_owner has. Without role= the
  // temporary database cannot be made; with it the whole swap runs as app_owner.
  const recreate = { location: dst.uri("", "deployer"), recreate: "true", no_globals: "true" };
  r = await restore(recreate, files);
  assertMatch(r.errors.get("/00001-app.dump") ?? "", /permission denied to create database/);
  r = await restore({ ...recreate, role: "app_owner" }, files);
  assertEquals(r.errors.size, 0, [...r.errors.values()].join("\n"));
  assertEquals(
    await dst.query(
      "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'app'",
    ),
    [{ owner: "app_owner" }],
  );
  // The archive's database replaced the one holding the script's table.
  assertEquals(await one(dst, "SELECT to_regclass('public.extra') IS NULL"), true);
  assertEquals(await one(dst, "SELECT count(*)::int FROM sales.customers"), 100);
});

Deno.test("single_transaction: a dump that fails midway restores nothing; without it the rest is applied", async () => {
  const files = await appDump();
  await using dst = await Cluster.start();
  // app_reader is missing on this target: the dump's GRANT to it fails.
  await dst.psql("CREATE ROLE app_owner LOGIN;");
  const tables = () =>
    one<number>(dst, "SELECT count(*)::int FROM pg_tables WHERE schemaname IN ('public', 'sales')");

  await dst.query("CREATE DATABASE app OWNER app_owner");
  let r = await restore({ location: dst.uri("app") }, files);
  assertMatch(r.errors.get("/00001-app.dump") ?? "", /app_reader/);
  assertEquals(await tables(), 2, "without single_transaction the tables are restored");

  await dst.query("DROP DATABASE app");
  await dst.query("CREATE DATABASE app OWNER app_owner");
  r = await restore({ location: dst.uri("app"), single_transaction: "true" }, files);
  assertMatch(r.errors.get("/00001-app.dump") ?? "", /app_reader/);
  assertEquals(await tables(), 0, "single_transaction left part of the dump behind");
  assert(r.finishError !== undefined);
});
