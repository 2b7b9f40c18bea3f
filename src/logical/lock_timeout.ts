// lock_wait_timeout: pg_dump --lock-wait-timeout makes pg_dump give up when
// it cannot take its ACCESS SHARE lock on a table in time (someone runs
// ALTER TABLE, VACUUM FULL, a long migration), instead of queueing behind
// that lock while every later query on the table queues behind pg_dump.
// Its own message is a statement timeout on a LOCK TABLE query; this says
// what happened and what to do.

import { PluginError } from "../errors.ts";
import type { ToolError } from "../pg/tools.ts";

/** Turns pg_dump's timed-out LOCK TABLE into one clear sentence; other errors pass through. */
export function explainLockTimeout(err: ToolError, timeout: string): Error {
  if (err.sqlstate !== "55P03") return err;
  const locked = /^LOCK TABLE (.+?) IN ACCESS SHARE MODE/.exec(err.query ?? "")?.[1];
  const table = locked?.slice(0, 200) ?? "a table";
  return new PluginError(
    "aborted",
    `${err.tool} ${err.what} could not lock ${table} within lock_wait_timeout=${timeout}: another session holds a conflicting lock (ALTER TABLE, VACUUM FULL, LOCK TABLE...), so the dump stopped instead of queueing behind it; retry when it is released, or raise lock_wait_timeout`,
    { cause: err, sqlstate: "55P03" },
  );
}
