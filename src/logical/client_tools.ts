// Which pg_dump (and pg_dumpall) a backup runs, and which pg_restore (and
// psql) a restore runs: pg_bin_dir when set; else PATH's when it is at least
// the server's major; else the best of pg_bin_search (src/pg/tool_search.ts),
// said on one stderr line (and, for a backup, in the manifest). When nothing
// fits, one error says what PATH has and where the search looked.

import type { ParsedConn } from "../pg/config.ts";
import { ServerError } from "../pg/errors.ts";
import { warn } from "../pg/log.ts";
import { chooseTool, NoFittingToolError, serverMajor, type ToolChoice } from "../pg/tool_search.ts";

/** The tools for a backup of a server of `versionNum`; throws a ServerError when none fits. */
export async function chooseDumpTools(
  opts: ParsedConn,
  versionNum: number,
): Promise<ToolChoice> {
  const major = serverMajor(versionNum);
  const at = `${opts.conn.host}:${opts.conn.port}`;
  let choice: ToolChoice;
  try {
    choice = await chooseTool("pg_dump", major, opts);
  } catch (e) {
    if (!(e instanceof NoFittingToolError)) throw e;
    throw new ServerError(
      `${
        e.onPath ?? "pg_dump not found on PATH and"
      } cannot dump a PostgreSQL ${major} server at ${at}: install the client tools of major ${major} or newer and set pg_bin_dir (looked in: ${
        e.looked.join(", ")
      })`,
    );
  }
  if (choice.major !== undefined && choice.major < major) {
    throw new ServerError(
      `${choice.versionLine} cannot dump a PostgreSQL ${major} server at ${at}: install the client tools of major ${major} or newer and set pg_bin_dir`,
    );
  }
  if (choice.searched) {
    warn(
      `using ${choice.versionLine} from ${choice.binDir} (pg_bin_search) for the PostgreSQL ${major} server at ${at}: the pg_dump on PATH is older or missing`,
    );
  }
  return choice;
}

/**
 * The tools for a restore into a server of `versionNum`. An older pg_restore
 * still restores into a newer server, so when nothing better is found the
 * one on PATH is kept (with a warning); only no tool at all is an error.
 */
export async function chooseRestoreTools(
  opts: ParsedConn,
  versionNum: number,
): Promise<ToolChoice | undefined> {
  const major = serverMajor(versionNum);
  const at = `${opts.conn.host}:${opts.conn.port}`;
  try {
    const choice = await chooseTool("pg_restore", major, opts);
    if (choice.searched) {
      warn(
        `using ${choice.versionLine} from ${choice.binDir} (pg_bin_search) for the PostgreSQL ${major} server at ${at}: the pg_restore on PATH is older or missing`,
      );
    }
    return choice;
  } catch (e) {
    if (!(e instanceof NoFittingToolError)) throw e;
    if (e.onPath === undefined) {
      throw new ServerError(
        `pg_restore not found on PATH, nor of major ${major} or newer in: ${
          e.looked.join(", ")
        }: install the client tools and set pg_bin_dir`,
      );
    }
    warn(
      `${e.onPath} is older than the PostgreSQL ${major} server at ${at}, and no newer pg_restore was found (looked in: ${
        e.looked.join(", ")
      }); going on with it`,
    );
    return undefined;
  }
}
