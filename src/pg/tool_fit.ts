// Whether a client tool fits the server, decided once for the run and for the
// ping: pg_bin_dir when set; else PATH's when it is at least the server's
// major; else the best of pg_bin_search (tool_search.ts). A pg_dump older than
// the server cannot dump it; an older pg_restore (or psql) still restores into
// it. The run says the verdict on one stderr line (and throws when the tool
// cannot serve); the ping (src/logical/preflight.ts) lists it as a finding.

import type { ParsedConn } from "./config.ts";
import { ServerError } from "./errors.ts";
import { warn } from "../log.ts";
import { chooseTool, NoFittingToolError, serverMajor, type ToolChoice } from "./tool_search.ts";

/** The client tools whose fit to the server is checked. */
export type FittedTool = "pg_dump" | "pg_restore";

/** How the tool at hand fits a server of `major`. */
export type ToolFit =
  /** pg_bin_dir's or PATH's, of the server's major or newer (or of a major it cannot tell). */
  | { fit: "fits"; choice: ToolChoice; major: number }
  /** pg_bin_search's: PATH's is older or missing. */
  | { fit: "searched"; choice: ToolChoice; major: number }
  /** pg_bin_dir's, older than the server. */
  | { fit: "older"; choice: ToolChoice; major: number }
  /** Nothing of the server's major or newer; PATH's, if there is one, is older. */
  | { fit: "none"; missing: NoFittingToolError; major: number };

/** Whether a tool older than the server still serves it: pg_restore yes, pg_dump no. */
export function olderServes(tool: FittedTool): boolean {
  return tool !== "pg_dump";
}

/** Finds `tool` for a server of `versionNum` and says how it fits; other errors are thrown. */
export async function fitTool(
  tool: FittedTool,
  versionNum: number,
  where: ParsedConn,
): Promise<ToolFit> {
  const major = serverMajor(versionNum);
  let choice: ToolChoice;
  try {
    choice = await chooseTool(tool, major, where);
  } catch (e) {
    if (!(e instanceof NoFittingToolError)) throw e;
    return { fit: "none", missing: e, major };
  }
  if (choice.major !== undefined && choice.major < major) return { fit: "older", choice, major };
  return { fit: choice.searched ? "searched" : "fits", choice, major };
}

/** The tools for a backup of a server of `versionNum`; throws a ServerError when none fits. */
export async function chooseDumpTools(opts: ParsedConn, versionNum: number): Promise<ToolChoice> {
  const f = await fitTool("pg_dump", versionNum, opts);
  const at = `${opts.conn.host}:${opts.conn.port}`;
  const install = `install the client tools of major ${f.major} or newer and set pg_bin_dir`;
  switch (f.fit) {
    case "none":
      throw new ServerError(
        `${
          f.missing.onPath ?? "pg_dump not found on PATH and"
        } cannot dump a PostgreSQL ${f.major} server at ${at}: ${install} (looked in: ${
          f.missing.looked.join(", ")
        })`,
        { kind: "failed-precondition" },
      );
    case "older":
      throw new ServerError(
        `${f.choice.versionLine} cannot dump a PostgreSQL ${f.major} server at ${at}: ${install}`,
        { kind: "failed-precondition" },
      );
    case "searched":
      warn(searchedLine("pg_dump", f.choice, f.major, at));
  }
  return f.choice;
}

/**
 * The tools for a restore into a server of `versionNum`. An older pg_restore
 * still restores into a newer server, so when nothing better is found the
 * one on PATH is kept (with a warning, and undefined returned); only no tool
 * at all is an error.
 */
export async function chooseRestoreTools(
  opts: ParsedConn,
  versionNum: number,
): Promise<ToolChoice | undefined> {
  const f = await fitTool("pg_restore", versionNum, opts);
  const at = `${opts.conn.host}:${opts.conn.port}`;
  if (f.fit === "searched") warn(searchedLine("pg_restore", f.choice, f.major, at));
  if (f.fit !== "none") return f.choice;
  const looked = f.missing.looked.join(", ");
  if (f.missing.onPath === undefined) {
    throw new ServerError(
      `pg_restore not found on PATH, nor of major ${f.major} or newer in: ${looked}: install the client tools and set pg_bin_dir`,
      { kind: "failed-precondition" },
    );
  }
  warn(
    `${f.missing.onPath} is older than the PostgreSQL ${f.major} server at ${at}, and no newer pg_restore was found (looked in: ${looked}); going on with it`,
  );
  return undefined;
}

/** The run's line when pg_bin_search found the tool. */
function searchedLine(tool: FittedTool, c: ToolChoice, major: number, at: string): string {
  return `using ${c.versionLine} from ${c.binDir} (pg_bin_search) for the PostgreSQL ${major} server at ${at}: the ${tool} on PATH is older or missing`;
}

/** The ping's finding for `tool`: a problem (the operation would fail), a warning, or nothing. */
export async function toolFinding(
  tool: FittedTool,
  versionNum: number,
  where: ParsedConn,
): Promise<{ problem?: string; warning?: string }> {
  let f: ToolFit;
  try {
    f = await fitTool(tool, versionNum, where);
  } catch (e) {
    return { problem: (e as Error).message };
  }
  const install = `install the client tools of major ${f.major} or newer and set pg_bin_dir`;
  switch (f.fit) {
    case "fits":
      return {};
    case "searched":
      return {
        warning:
          `${tool} on PATH is older or missing: ${f.choice.versionLine} from ${f.choice.binDir} will be used (pg_bin_search)`,
      };
    case "older": {
      const line = `${f.choice.versionLine} is older than the PostgreSQL ${f.major} server`;
      return olderServes(tool)
        ? { warning: line }
        : { problem: `${line}: set pg_bin_dir to tools of ${f.major} or newer` };
    }
    case "none":
      if (olderServes(tool) && f.missing.onPath) {
        return {
          warning:
            `${f.missing.onPath} is older than the PostgreSQL ${f.major} server (looked in: ${
              f.missing.looked.join(", ")
            })`,
        };
      }
      return { problem: `${f.missing.message}: ${install}` };
  }
}
