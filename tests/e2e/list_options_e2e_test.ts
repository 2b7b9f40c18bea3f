// List options (exclude_databases, databases) through the real plakar: a
// database named with a comma is selected by quoting it, both as `-o` and in
// a destination added with `plakar destination add`, whose values plakar
// passes on with their double quotes; an exclusion that matches nothing is
// named in a warning on plakar's stderr.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";

/** The database files of a snapshot's root listing, by name. */
async function dumps(u: PlakarUser, snap: string): Promise<string[]> {
  const listing = ok(await u.at("ls", `${snap}:/`), "ls").stdout;
  return [...listing.matchAll(/\d{5}-(.*)\.dump$/gm)].map((m) => m[1]).sort();
}

/** The rows of `t` in `db`: what a restore put back, or did not. */
async function rows(c: Cluster, db: string): Promise<string[]> {
  return (await c.query<{ v: string }>("SELECT v FROM t ORDER BY v", db)).map((r) => r.v);
}

Deno.test("a database named with a comma is excluded and restored by quoting it; an exclusion that matches nothing is warned about", async () => {
  await using pg = await Cluster.start();
  await using u = await PlakarUser.create();
  const DBS = ["a", "a,b", "b2"];
  for (const db of DBS) {
    await pg.query(`CREATE DATABASE "${db}"`);
    await pg.query("CREATE TABLE t (v text); INSERT INTO t VALUES ('backed up')", db);
  }
  const location = pg.uri();

  // Quoted: the one database a,b, not a (which an unquoted a,b would name).
  let r = ok(await u.at("backup", "-o", 'exclude_databases="a,b"', location), "backup");
  assert(!r.stderr.includes("exclude_databases"), r.stderr);
  const [quoted] = await u.snapshots();
  assertEquals(await dumps(u, quoted), ["a", "b2", "postgres", "template1"]);

  // Unquoted: a and b, two names. a is excluded; b and the typo match
  // nothing, and the warning says how to name a,b.
  r = ok(await u.at("backup", "-o", "exclude_databases=a,b, nosuch", location), "backup");
  assertMatch(
    r.stderr,
    /postgresql: warning: exclude_databases: no database named "b", "nosuch" on this server, nothing excluded for them \(names are exact and case-sensitive\); to exclude "a,b", write the name in double quotes: exclude_databases="a,b"/,
  );
  const [unquoted] = await u.snapshots();
  assertEquals(await dumps(u, unquoted), ["a,b", "b2", "postgres", "template1"]);

  // Restore a,b alone from the snapshot that also holds b2: after a change
  // to both, only a,b is back as it was backed up.
  for (const db of DBS) await pg.query("INSERT INTO t VALUES ('changed since')", db);
  ok(
    await u.run(["destination", "add", "mypgdst", location, 'databases="a,b"', "recreate=true"]),
    "destination add",
  );
  ok(await u.at("restore", "-to", "@mypgdst", unquoted), 'restore databases="a,b"');
  assertEquals(await rows(pg, "a,b"), ["backed up"]);
  assertEquals(await rows(pg, "b2"), ["backed up", "changed since"]);
  assertEquals(await rows(pg, "a"), ["backed up", "changed since"]);
});
