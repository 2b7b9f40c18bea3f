// Holding a table lock from another session, as a DBA's ALTER TABLE or
// VACUUM FULL would: pg_dump's ACCESS SHARE lock on that table then waits.

// @ts-types="@types/pg"
import pg from "pg";
import type { Cluster } from "../../harness/cluster.ts";

/** Takes ACCESS EXCLUSIVE on `table` in `database`; dispose (or release) to end the transaction. */
export async function holdLock(c: Cluster, database: string, table: string) {
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    user: c.superuser,
    password: c.password,
    database,
  });
  await client.connect();
  await client.query("BEGIN");
  await client.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await client.query("ROLLBACK").catch(() => {});
    await client.end().catch(() => {});
  };
  return { release, [Symbol.asyncDispose]: release };
}
