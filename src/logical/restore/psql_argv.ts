// The one builder of psql's argv for a restore: the script path (psql.ts),
// the swap of a safe recreate (safe_restore.ts) and the drop guard
// (drop_guard.ts) all connect the same way and differ only in what psql does
// after a failed statement.

import type { ConnConfig } from "../../pg/conn.ts";
import type { ExportOptions } from "../../pg/config.ts";
import { connArgs, dbnameArg } from "../../pg/tools.ts";

/** What psql does after a failed statement: stop, roll back only that statement, or go on. */
export type OnError = "stop" | "rollback" | "continue";

/** psql on `database`, without ~/.psqlrc (-X), quiet, acting on a failed statement as `onError` says. */
export function psqlArgv(conn: ConnConfig, database: string, onError: OnError): string[] {
  const args = [...connArgs(conn), "-X", "-q"];
  if (onError === "stop") args.push("-v", "ON_ERROR_STOP=1");
  else if (onError === "rollback") args.push("-v", "ON_ERROR_ROLLBACK=on");
  args.push("-d", dbnameArg(database));
  return args;
}

/**
 * Builds the psql argv for a SQL script run against `database`. A `guarded`
 * script (pg_dump's or pg_dumpall's, see completionGuard) runs in one
 * transaction: without exit_on_error, ON_ERROR_ROLLBACK keeps a failed
 * statement from aborting the rest, as it would outside a transaction. A psql
 * without restricted mode (`restricted` false, see psql_guard.ts) stops at the
 * first error: a COPY that fails makes psql read its data rows as script, and
 * only psql's restricted mode would keep a meta-command among them from running.
 */
export function psqlArgs(
  opts: ExportOptions,
  database: string,
  guarded = false,
  restricted = true,
): string[] {
  const stop = opts.exitOnError || !restricted;
  return psqlArgv(opts.conn, database, stop ? "stop" : guarded ? "rollback" : "continue");
}
