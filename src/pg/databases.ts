// Which databases a logical backup dumps, shared by the backup itself
// (src/logical/importer.ts) and its preflight (src/logical/preflight.ts), so
// that the check looks at the very databases the backup will dump; and
// whether the role can read pg_authid (role passwords in the globals).

import type pg from "pg";
import { planDatabases, type SkippedDatabase } from "./manifest.ts";

/** A database of the cluster, as the selection needs it. */
export interface ClusterDatabase {
  name: string;
  /** datallowconn. */
  allowConn: boolean;
  /** The role has the CONNECT privilege on it. */
  canConnect: boolean;
}

/** Every database of the cluster, in `COLLATE "C"` order (the order of the dump files). */
export async function listDatabases(client: pg.Client): Promise<ClusterDatabase[]> {
  const rows = await client.query<{ datname: string; datallowconn: boolean; can: boolean }>(
    `SELECT datname, datallowconn, has_database_privilege(datname, 'CONNECT') AS can
       FROM pg_database ORDER BY datname COLLATE "C"`,
  );
  return rows.rows.map((r) => ({ name: r.datname, allowConn: r.datallowconn, canConnect: r.can }));
}

/**
 * The databases a backup dumps, in file-number order: `database` alone when
 * it is set (none when it does not exist or does not allow connections),
 * else every database but the excluded and the closed ones, with those in
 * `skipped` (planDatabases).
 */
export function selectDatabases<D extends { name: string; allowConn: boolean }>(
  all: D[],
  database: string | undefined,
  excludeDatabases: string[] = [],
): { dump: D[]; skipped?: SkippedDatabase[] } {
  if (database !== undefined) {
    return { dump: all.filter((d) => d.name === database && d.allowConn) };
  }
  const { dump, skipped } = planDatabases(all, excludeDatabases);
  const chosen = new Set(dump);
  return { dump: all.filter((d) => chosen.has(d.name)), skipped };
}

/**
 * Whether the role can read pg_authid (role passwords for pg_dumpall). Only a
 * permission failure (not a superuser, or a restricted one such as RDS's)
 * answers false; any other failure throws.
 */
export async function canReadAuthid(client: pg.Client): Promise<boolean> {
  try {
    await client.query("SELECT 1 FROM pg_authid LIMIT 1");
    return true;
  } catch (e) {
    if ((e as { code?: string }).code !== "42501") throw e;
    return false;
  }
}
