import { assertEquals } from "../../helpers/assert.ts";
import { pgDumpallArgs, pgDumpArgs } from "../../../src/logical/importer.ts";
import { classify } from "../../../src/logical/restore/classify.ts";
import { isTargetDown } from "../../../src/logical/restore/target.ts";
import { ToolError } from "../../../src/pg/tools.ts";

/** Whether a tool printing `stderr` means the target is down for every file. */
const isUnreachable = (stderr: string) =>
  isTargetDown(new ToolError("pg_restore", "of /x.dump", 1, stderr));
import { pgRestoreArgs } from "../../../src/logical/restore/pg_restore.ts";
import { psqlArgs } from "../../../src/logical/restore/psql_argv.ts";
import { parseExportConfig, parseImportConfig } from "../../../src/pg/config.ts";

const imp = (c: Record<string, string>) =>
  parseImportConfig({ location: "postgres://u:pw@h:5433/", ...c }, "postgres");
const exp = (c: Record<string, string>) =>
  parseExportConfig({ location: "postgres://u:pw@h:5433/", ...c }, "postgres");
const CONN = ["-h", "h", "-p", "5433", "-w", "-U", "u"];

Deno.test("pg_dump runs -Fc -Z0 by default and never sees the password", () => {
  const args = pgDumpArgs(imp({}), "app");
  assertEquals(args, [...CONN, "-Fc", "-Z0", "-d", "dbname='app'"]);
  assertEquals(args.some((a) => a.includes("pw")), false);
});

Deno.test("pg_dump: compress drops -Z0; schema_only -s; data_only -a", () => {
  assertEquals(pgDumpArgs(imp({ compress: "true" }), "a"), [...CONN, "-Fc", "-d", "dbname='a'"]);
  assertEquals(pgDumpArgs(imp({ schema_only: "true" }), "a"), [
    ...CONN,
    "-Fc",
    "-Z0",
    "-s",
    "-d",
    "dbname='a'",
  ]);
  assertEquals(pgDumpArgs(imp({ data_only: "true" }), "a"), [
    ...CONN,
    "-Fc",
    "-Z0",
    "-a",
    "-d",
    "dbname='a'",
  ]);
});

Deno.test("a database name is always a quoted dbname value, never a connection string", () => {
  assertEquals(pgDumpArgs(imp({}), "host=evil dbname=x").at(-1), "dbname='host=evil dbname=x'");
  assertEquals(pgDumpArgs(imp({}), "it's a \\ test").at(-1), "dbname='it\\'s a \\\\ test'");
  assertEquals(pgRestoreArgs(exp({}), "host=evil").slice(-2), ["-d", "dbname='host=evil'"]);
});

Deno.test("pg_dumpall --globals-only adds --no-role-passwords only when pg_authid is unreadable", () => {
  assertEquals(pgDumpallArgs(imp({}), false), [...CONN, "--globals-only"]);
  assertEquals(pgDumpallArgs(imp({}), true, "app"), [
    ...CONN,
    "--globals-only",
    "--no-role-passwords",
    "-l",
    "dbname='app'",
  ]);
});

Deno.test("pg_restore: default, clean, recreate, and recreate of postgres/template1 in place", () => {
  assertEquals(pgRestoreArgs(exp({}), "app"), [...CONN, "-d", "dbname='app'"]);
  assertEquals(pgRestoreArgs(exp({ clean: "true" }), "app"), [
    ...CONN,
    "-d",
    "dbname='app'",
    "--clean",
    "--if-exists",
    "--single-transaction",
  ]);
  assertEquals(pgRestoreArgs(exp({ recreate: "true" }), "app"), [
    ...CONN,
    "-C",
    "--clean",
    "--if-exists",
    "-d",
    "dbname='postgres'",
  ]);
  for (const db of ["postgres", "template1"]) {
    assertEquals(pgRestoreArgs(exp({ recreate: "true" }), db), [
      ...CONN,
      "-d",
      `dbname='${db}'`,
      "--clean",
      "--if-exists",
      "--single-transaction",
    ]);
  }
});

Deno.test("pg_restore: exit_on_error -e, no_owner, schema_only -s, data_only -a", () => {
  assertEquals(
    pgRestoreArgs(exp({ exit_on_error: "true", no_owner: "true", schema_only: "true" }), "a").slice(
      -3,
    ),
    [
      "-e",
      "--no-owner",
      "-s",
    ],
  );
  assertEquals(pgRestoreArgs(exp({ data_only: "true" }), "a").at(-1), "-a");
});

Deno.test("psql: -X -q, ON_ERROR_STOP with exit_on_error", () => {
  assertEquals(psqlArgs(exp({}), "postgres"), [...CONN, "-X", "-q", "-d", "dbname='postgres'"]);
  assertEquals(psqlArgs(exp({ exit_on_error: "true" }), "postgres"), [
    ...CONN,
    "-X",
    "-q",
    "-v",
    "ON_ERROR_STOP=1",
    "-d",
    "dbname='postgres'",
  ]);
});

Deno.test("psql: a tool-made script rolls back only its failed statement unless exit_on_error stops it", () => {
  assertEquals(psqlArgs(exp({}), "app", true), [
    ...CONN,
    "-X",
    "-q",
    "-v",
    "ON_ERROR_ROLLBACK=on",
    "-d",
    "dbname='app'",
  ]);
  assertEquals(psqlArgs(exp({ exit_on_error: "true" }), "app", true).slice(-4), [
    "-v",
    "ON_ERROR_STOP=1",
    "-d",
    "dbname='app'",
  ]);
});

Deno.test("a tool's failure tells a target that cannot be reached from an error in one database", () => {
  const at = 'pg_restore: error: connection to server at "10.0.0.1", port 5432 failed:';
  assertEquals(isUnreachable(`${at} Connection refused`), true);
  assertEquals(isUnreachable(`${at} timeout expired`), true);
  assertEquals(
    isUnreachable(`${at} FATAL:  password authentication failed for user "postgres"`),
    true,
  );
  assertEquals(isUnreachable(`${at} FATAL:  database "app" does not exist`), false);
  assertEquals(isUnreachable('ERROR:  relation "t" already exists'), false);
});

Deno.test("a tool's failure counts libpq's TLS failures: every later file would fail the same way", () => {
  const at = 'psql: error: connection to server at "10.0.0.1", port 5432 failed:';
  assertEquals(isUnreachable(`${at} SSL error: certificate verify failed`), true);
  assertEquals(
    isUnreachable(
      `${at} server certificate for "db.internal" (and 1 other name) does not match host name "10.0.0.1"`,
    ),
    true,
  );
  assertEquals(isUnreachable(`${at} server does not support SSL, but SSL was required`), true);
});

Deno.test("classify() goes by content first, then by name", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assertEquals(classify("/00001-app.sql", enc("PGDMP\x01\x0e")).kind, "custom");
  assertEquals(classify("/whatever.bin", enc("PGDMP")).kind, "custom");
  assertEquals(
    classify("/00000-globals.sql", enc("--\n-- PostgreSQL database cluster dump\n")).kind,
    "globals",
  );
  assertEquals(classify("/globals.sql", enc("SET x;")).kind, "globals");
  assertEquals(
    classify("/all.sql", enc("--\n-- PostgreSQL database cluster dump\n")).kind,
    "cluster",
  );
  assertEquals(classify("/shop.sql", enc("--\n-- PostgreSQL database dump\n")).kind, "sql");
  assertEquals(classify("/manifest.json", enc("{}")).kind, "manifest");
  assertEquals(classify("/photo.jpg", new Uint8Array([0xff, 0xd8, 0x00, 0x01])).kind, "unknown");
});
