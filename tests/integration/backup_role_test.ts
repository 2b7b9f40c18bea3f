// The warning for a backup role that cannot read pg_authid says what the role
// is: an ordinary role (a database owner backing up its own database) is not
// called a superuser; a member of a managed service's administrator role
// (rds_superuser) is a restricted superuser.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { importAll, params } from "../helpers/connectors.ts";
import { makeAppDb, makeRoles } from "../../harness/fixtures.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";

/** Backs up and returns the importer's warning lines about pg_authid. */
async function backupWarnings(config: Record<string, string>): Promise<string[]> {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  try {
    const imp = await createLogicalImporter(params("postgres", config));
    try {
      const { errors, files } = await importAll(imp);
      assertEquals(errors.size, 0, [...errors.values()].join());
      assert(files.has("/00000-globals.sql"));
    } finally {
      await imp.close();
    }
  } finally {
    console.error = original;
  }
  return lines.filter((l) => l.startsWith("postgresql: warning:") && l.includes("pg_authid"));
}

Deno.test("the pg_authid warning names an ordinary role as not a superuser, an rds_superuser member as restricted", async () => {
  await using src = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  // An RDS-like administrator: a member of rds_superuser, not a superuser.
  await src.psql(
    `CREATE ROLE rds_superuser NOLOGIN;
     CREATE ROLE rds_admin LOGIN IN ROLE rds_superuser;`,
  );
  await makeAppDb(src, "rdsapp", "rds_admin");
  const at = (user: string, db = "app") => ({
    location: `postgres://${user}@127.0.0.1:${src.port}/${db}`,
  });

  // The database owner backing up its own database.
  const owner = await backupWarnings(at("app_owner"));
  assertEquals(owner, [
    'postgresql: warning: the backup role "app_owner" is not a superuser (cannot read pg_authid): role passwords are left out of /00000-globals.sql; restored roles will have no password (back up as a superuser to keep them)',
  ]);

  const rds = await backupWarnings(at("rds_admin", "rdsapp"));
  assertEquals(rds, [
    'postgresql: warning: the backup role "rds_admin" is a restricted superuser (member of rds_superuser, as on Amazon RDS or Aurora) and cannot read pg_authid: role passwords are left out of /00000-globals.sql; restored roles will have no password',
  ]);

  assertEquals(await backupWarnings(at("postgres")), []);
});
