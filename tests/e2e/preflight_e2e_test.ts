// plakar source ping / destination ping run the preflight checks: a problem
// fails the ping with its reason shown by plakar, a warning is printed and
// the ping says "configuration OK".

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import { makeAppDb, makeRoles } from "../../harness/fixtures.ts";

Deno.test("plakar source ping and destination ping fail on what would fail the backup or restore, and warn on the rest", async () => {
  await using c = await Cluster.start();
  await using u = await PlakarUser.create();
  await makeRoles(c);
  await makeAppDb(c, "app");
  await c.psql("CREATE TABLE public.payroll (x int)", "app");

  // The database owner backs up its database: a table it cannot read fails the ping.
  ok(await u.run(["source", "add", "owner", c.uri("app", "app_owner")]), "source add");
  let r = await u.run(["source", "ping", "owner"]);
  assert(r.code !== 0, "ping succeeded though pg_dump cannot read a table");
  assertMatch(
    r.stdout + r.stderr,
    /preflight found 1 problem\(s\): database "app": pg_dump cannot read public\.payroll \(no SELECT\)/,
  );
  assertMatch(r.stderr, /postgresql: warning: preflight: pg_authid is not readable/);
  await c.psql("GRANT SELECT ON public.payroll TO app_owner", "app");
  r = ok(await u.run(["source", "ping", "owner"]), "ping after the grant");
  assertMatch(r.stdout, /configuration OK/);
  assertMatch(r.stderr, /postgresql: warning: preflight: pg_authid is not readable/);

  // recreate=true as a role that cannot create databases.
  await c.psql("CREATE ROLE restorer LOGIN");
  ok(
    await u.run(["destination", "add", "dst", c.uri("", "restorer"), "recreate=true"]),
    "destination add",
  );
  r = await u.run(["destination", "ping", "dst"]);
  assert(r.code !== 0, "ping succeeded though recreate=true cannot create databases");
  assertMatch(
    r.stdout + r.stderr,
    /recreate=true creates databases, and restorer has neither CREATEDB nor SUPERUSER/,
  );
  await c.query("ALTER ROLE restorer CREATEDB");
  r = ok(await u.run(["destination", "ping", "dst"]), "ping with CREATEDB");
  assertMatch(r.stderr, /warning: preflight: restorer has neither CREATEROLE nor SUPERUSER/);
});
