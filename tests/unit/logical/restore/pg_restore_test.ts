// jobs=, spool_dir= and the DBA options of the exporter (no_privileges,
// no_comments, role, single_transaction): parsing and the argv they give.

import { assert, assertEquals, assertMatch, assertThrows } from "../../../helpers/assert.ts";
import { pgRestoreArgs, restoresInParallel } from "../../../../src/logical/restore/pg_restore.ts";
import { withRole } from "../../../../src/pg/tools.ts";
import { parseExportConfig } from "../../../../src/pg/config.ts";
import { ConfigError } from "../../../../src/errors.ts";

const exp = (c: Record<string, string>) =>
  parseExportConfig({ location: "postgres://u:pw@h:5433/", ...c }, "postgres");
const CONN = ["-h", "h", "-p", "5433", "-w", "-U", "u"];

Deno.test("jobs defaults to 1 (streamed, no spool) and takes 1 to 128", () => {
  assertEquals(exp({}).jobs, 1);
  assertEquals(exp({ jobs: "4" }).jobs, 4);
  for (const bad of ["0", "129", "-2", "2x", " 2"]) {
    const e = assertThrows(() => exp({ jobs: bad }), ConfigError);
    assertMatch(e.message, /jobs.*accepted: an integer from 1 to 128/);
  }
});

Deno.test("spool_dir is taken as given; unset means the system temp directory", () => {
  assertEquals(exp({ jobs: "2", spool_dir: "/var/spool/pg" }).spoolDir, "/var/spool/pg");
  assertEquals(exp({ jobs: "2" }).spoolDir, undefined);
});

Deno.test("jobs with clean=true (one transaction) is refused, with the ways out named", () => {
  const e = assertThrows(() => exp({ jobs: "2", clean: "true" }), ConfigError);
  assertMatch(e.message, /jobs=2 cannot run with clean=true.*recreate=true.*atomic=false/);
  // atomic=false: clean in place, no transaction: jobs work.
  assertEquals(exp({ jobs: "2", clean: "true", atomic: "false" }).jobs, 2);
  assertEquals(exp({ jobs: "2", recreate: "true" }).jobs, 2);
});

Deno.test("jobs with single_transaction is refused", () => {
  const e = assertThrows(() => exp({ jobs: "3", single_transaction: "true" }), ConfigError);
  assertMatch(e.message, /jobs=3 and single_transaction=true are mutually exclusive/);
});

Deno.test("restoresInParallel(): with jobs >= 2 unless pg_restore runs one transaction", () => {
  const par = (c: Record<string, string>, db = "app") => {
    const o = exp(c);
    return restoresInParallel(o, pgRestoreArgs(o, db));
  };
  assertEquals(par({}), false);
  assertEquals(par({ jobs: "1" }), false);
  assertEquals(par({ jobs: "2" }), true);
  assertEquals(par({ jobs: "2", recreate: "true", atomic: "false" }), true);
  assertEquals(par({ jobs: "2", clean: "true", atomic: "false" }), true);
  // postgres under recreate is restored with clean's single transaction: streamed.
  assertEquals(par({ jobs: "2", recreate: "true" }, "postgres"), false);
});

Deno.test("pg_restore: no_privileges -x, no_comments --no-comments, role --role=", () => {
  assertEquals(pgRestoreArgs(exp({ no_privileges: "true" }), "a"), [
    ...CONN,
    "-d",
    "dbname='a'",
    "-x",
  ]);
  assertEquals(pgRestoreArgs(exp({ no_comments: "true" }), "a"), [
    ...CONN,
    "-d",
    "dbname='a'",
    "--no-comments",
  ]);
  assertEquals(pgRestoreArgs(exp({ role: "app owner" }), "a"), [
    ...CONN,
    "-d",
    "dbname='a'",
    "--role=app owner",
  ]);
  const e = assertThrows(() => exp({ role: " " }), ConfigError);
  assertMatch(e.message, /^role: empty/);
});

Deno.test("single_transaction gives -1 (--single-transaction) once, and implies exit_on_error", () => {
  const o = exp({ single_transaction: "true" });
  assertEquals(o.exitOnError, true);
  assertEquals(pgRestoreArgs(o, "a"), [
    ...CONN,
    "-d",
    "dbname='a'",
    "--single-transaction",
    "-e",
  ]);
  // clean (atomic) already runs in one transaction: not twice.
  const c = pgRestoreArgs(exp({ single_transaction: "true", clean: "true" }), "a");
  assertEquals(c.filter((a) => a === "--single-transaction").length, 1);
  // recreate (atomic) restores into the temporary database with -1 too.
  assertEquals(exp({ single_transaction: "true", recreate: "true" }).singleTransaction, true);
});

Deno.test("single_transaction with recreate=true atomic=false (pg_restore -C) is refused", () => {
  const e = assertThrows(
    () => exp({ single_transaction: "true", recreate: "true", atomic: "false" }),
    ConfigError,
  );
  assertMatch(e.message, /single_transaction.*cannot create the database/);
});

Deno.test("withRole() sets the role for psql through PGOPTIONS, escaped, after what is there", () => {
  assertEquals(withRole({ A: "1" }, undefined), { A: "1" });
  assertEquals(withRole({}, "owner").PGOPTIONS, "-c role=owner");
  assertEquals(withRole({}, "my role\\x").PGOPTIONS, "-c role=my\\ role\\\\x");
  const env = withRole({ PGOPTIONS: "-c client_connection_check_interval=2000" }, "r");
  assertEquals(env.PGOPTIONS, "-c client_connection_check_interval=2000 -c role=r");
  assert(!("PGOPTIONS" in withRole({}, "")));
});
