// The restore's target: checked once, before the first tool runs, while
// plakar still reads the first file from its store. The check says which
// role the restore connects as, the server's version, and where the client
// tools of that version are; when the target cannot be reached, every file
// fails at once with that reason instead of waiting connect_timeout each.

import { connect } from "../../pg/client.ts";
import type { ExportOptions } from "../../pg/config.ts";
import { connectErrorKind, describeConnectError, ServerError } from "../../pg/errors.ts";
import { ToolError } from "../../pg/tools.ts";
import type { ErrorKind } from "../../errors.ts";
import { warn } from "../../log.ts";
import { effectiveUser } from "../../pg/pgpass.ts";
import { chooseRestoreTools } from "../../pg/tool_fit.ts";
import { leftoverWarning, leftoverWorkDatabases } from "../preflight.ts";

/** What the one-time check found. */
export interface Target {
  /** The role the restore is connected as (libpq's default user when none is configured). */
  role: string;
  /** server_version_num; undefined when the check could not connect and the tools go on alone. */
  serverVersion?: number;
  /** The directory pg_restore and psql run from (pg_bin_dir, pg_bin_search's); undefined: PATH. */
  binDir: string | undefined;
}

/**
 * The kinds of failure that every later file would meet too: the server out
 * of reach, the credentials refused, or a TLS setup that cannot work.
 */
const DOWN: readonly ErrorKind[] = ["unavailable", "unauthenticated", "failed-precondition"];

/** The first client tool's failure in `err` or its causes. */
function toolErrorIn(err: unknown): ToolError | undefined {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof ToolError) return e;
  }
  return undefined;
}

/**
 * Whether a failure means every tool would fail too. `connecting` says `err`
 * is the catalog client's connect failure (its kind: src/pg/errors.ts
 * connectErrorKind); otherwise only a client tool's failure counts, by the
 * kind the tool runner read from its stderr (src/pg/tools.ts), since any
 * other failure of a file (a statement's or a lock's timeout, a damaged
 * dump) says nothing about the target.
 */
export function isTargetDown(err: unknown, connecting = false): boolean {
  if (connecting) return DOWN.includes(connectErrorKind(err));
  const tool = toolErrorIn(err);
  return tool !== undefined && DOWN.includes(tool.kind);
}

/** Databases the check tries, in order (the first that exists answers). */
function probeDatabases(explicit: string | undefined): string[] {
  return [...new Set([explicit ?? "postgres", "postgres", "template1"])];
}

/** The one-time check of the target, and what the restore learned about it since. */
export class TargetCheck {
  readonly #opts: ExportOptions;
  #target: Promise<Target> | undefined;
  /** Set once the target could not be reached: every later file fails with it at once. */
  #down: Error | undefined;
  #downSaid = false;

  constructor(opts: ExportOptions) {
    this.#opts = opts;
  }

  /** Starts the check ahead of need; a failure is kept for the first file that needs the target. */
  start(): void {
    if (!this.#target && !this.#down) this.check().catch(() => {});
  }

  /** The target, checked once; rejects at once when it is known to be down. */
  check(): Promise<Target> {
    if (this.#down) return Promise.reject(this.#down);
    this.#target ??= this.#probe().catch((e) => {
      this.#down = e instanceof Error ? e : new Error(String(e));
      throw this.#down;
    });
    return this.#target;
  }

  /**
   * Takes in a file's failure and says whether to log it: a target that is
   * down is said once, not once per file. A failure that says the target is
   * down makes every later file fail at once with it.
   */
  failed(e: unknown): { say: boolean } {
    const say = e !== this.#down || !this.#downSaid;
    if (e === this.#down) this.#downSaid = true;
    if (this.#down === undefined && isTargetDown(e)) {
      const message = (e as Error).message ?? String(e);
      this.#down = new ServerError(`the target could not be reached: ${message}`, { cause: e });
    }
    return { say };
  }

  async #probe(): Promise<Target> {
    const opts = this.#opts;
    const answer = await this.#ask();
    if ("row" in answer) {
      const serverVersion = Number(answer.row.v);
      return { role: answer.row.u, serverVersion, binDir: await this.#toolDir(serverVersion) };
    }
    const reason = describeConnectError(opts.conn, probeDatabases(opts.database)[0], answer.error);
    if (isTargetDown(answer.error, true)) throw new ServerError(reason, { cause: answer.error });
    // Something the catalog client cannot do that the tools may (another
    // authentication method...): let them try, as the user libpq would pick.
    warn(`could not check the target before restoring (${reason}); going on with the tools`);
    return { role: effectiveUser(opts.conn.username), binDir: opts.pgBinDir };
  }

  /** Asks the first database that exists who we are and the server's version. */
  async #ask(): Promise<{ row: { u: string; v: string } } | { error: unknown }> {
    let last: unknown;
    for (const database of probeDatabases(this.#opts.database)) {
      try {
        return { row: await this.#askOne(database) };
      } catch (e) {
        last = e;
        // The server answered: that database is missing; another will do.
        if ((e as { code?: string }).code === "3D000") continue;
        break;
      }
    }
    return { error: last };
  }

  async #askOne(database: string): Promise<{ u: string; v: string }> {
    const client = await connect(this.#opts.conn, database);
    try {
      const r = await client.query<{ u: string; v: string }>(
        "SELECT current_user AS u, current_setting('server_version_num') AS v",
      );
      if (this.#opts.recreate) {
        const leftover = leftoverWarning(await leftoverWorkDatabases(client).catch(() => []));
        if (leftover) warn(leftover);
      }
      return r.rows[0];
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Tools of the target's major when PATH's are older (pg_bin_search); pg_bin_dir when set. */
  async #toolDir(serverVersion: number): Promise<string | undefined> {
    if (this.#opts.pgBinDir) return this.#opts.pgBinDir;
    const choice = await chooseRestoreTools(this.#opts, serverVersion);
    return choice?.execDir;
  }
}
