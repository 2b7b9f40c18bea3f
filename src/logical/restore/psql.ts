// A SQL script into psql. A snapshot is data, never a program: the script
// first goes through scriptGuard (no psql meta-command but the \connect a
// dump needs, in psql's restricted mode where psql has one), then the
// globals filter (roles.ts) where asked, then, for a script written by
// pg_dump or pg_dumpall, completionGuard: one that lacks its completion line
// is truncated and fails, with nothing of it committed where it ran in one
// transaction. psql exits 0 after failed statements unless ON_ERROR_STOP is
// set, so its ERROR lines decide: any error fails the file.

import type { ExportOptions } from "../../pg/config.ts";
import { warn } from "../../log.ts";
import { versionMajor } from "../../pg/tool_search.ts";
import { toolEnv, toolPath, toolVersionLine, toolWithInput, withRole } from "../../pg/tools.ts";
import { type Completion, completionGuard, type GuardResult } from "./completion.ts";
import { psqlArgs } from "./psql_argv.ts";
import {
  newRestrictKey,
  PSQL_REFUSED,
  refusalMessage,
  restrictSupported,
  scriptGuard,
  ScriptRefusedError,
} from "./psql_guard.ts";
import { idempotentRoles } from "./roles.ts";
import type { Runtime } from "../../proc/runtime.ts";

/** One script to run. */
export interface ScriptJob {
  input: ReadableStream<Uint8Array>;
  database: string;
  /** What it is, for messages: `SQL script <path>`, `globals <path>`. */
  what: string;
  /** Where psql runs from (the target check's choice); undefined: PATH. */
  binDir: string | undefined;
  /** Set for a script pg_dump or pg_dumpall wrote: its completion line is required. */
  completion?: Completion;
  /** A rewrite after the guard (the globals filter). */
  filter?: TransformStream<Uint8Array, Uint8Array>;
}

/** Whether the psql in use has the restricted mode (`\restrict`), and its major (for the guard's lexer). */
interface PsqlMode {
  restrict: boolean;
  major?: number;
}

/** Globals of a pg_dumpall script, minus what would lock the restore out of the target. */
export function globalsFilter(me: string): TransformStream<Uint8Array, Uint8Array> {
  return idempotentRoles({
    keep: me,
    onKept: (role) =>
      warn(
        `globals: kept the password and attributes of role ${
          JSON.stringify(role)
        }, the role this restore connects as (the snapshot's ALTER ROLE for it was skipped)`,
      ),
  });
}

/** Runs scripts through psql; knows, once per psql binary, what that psql can do. */
export class PsqlRunner {
  readonly #opts: ExportOptions;
  readonly #runtime: Runtime;
  #modeOf: { bin: string; mode: Promise<PsqlMode> } | undefined;

  constructor(opts: ExportOptions, runtime: Runtime) {
    this.#opts = opts;
    this.#runtime = runtime;
  }

  async run(job: ScriptJob): Promise<void> {
    const errors: string[] = [];
    const psql = await this.#mode(toolPath(job.binDir, "psql"));
    // A fresh key for each script, never written anywhere (psql_guard.ts).
    const scan = scriptGuard({
      restrictKey: psql.restrict ? newRestrictKey() : undefined,
      psqlMajor: psql.major,
      foldsTransactionLines: job.completion !== undefined,
    });
    let input = job.input.pipeThrough(scan.transform);
    if (job.filter) input = input.pipeThrough(job.filter);
    const guard = job.completion ? completionGuard(job.completion) : undefined;
    if (guard) input = input.pipeThrough(guard.transform);
    const cut = (also: string[]) => truncation(job, guard?.result(), also);
    try {
      await this.#runPsql({ ...job, input }, guard !== undefined, psql.restrict, errors);
    } catch (e) {
      // The guard stopped the script before the refused line reached psql.
      if (e instanceof ScriptRefusedError) {
        throw new Error(refusalMessage(job.what, e, scan.result(), guard?.result()), { cause: e });
      }
      // psql stopped at the cut statement (exit_on_error): the cut is the cause.
      throw cut([(e as Error).message]) ?? e;
    }
    const truncated = cut(errors);
    if (truncated) throw truncated;
    if (errors.length > 0) {
      throw new Error(
        `psql reported ${errors.length} error(s) restoring ${job.what}: ${
          errors.slice(0, 3).join(" | ")
        }`,
      );
    }
  }

  /** Asked once per psql binary; said once when it has no restricted mode, since the guard is then alone. */
  #mode(bin: string): Promise<PsqlMode> {
    if (this.#modeOf?.bin !== bin) this.#modeOf = { bin, mode: askMode(bin, this.#runtime) };
    return this.#modeOf.mode;
  }

  async #runPsql(
    job: ScriptJob,
    guarded: boolean,
    restricted: boolean,
    errors: string[],
  ): Promise<void> {
    const opts = this.#opts;
    await toolWithInput(
      {
        bin: toolPath(job.binDir, "psql"),
        args: psqlArgs(opts, job.database, guarded, restricted),
        env: withRole(await toolEnv(opts.conn), opts.role),
        what: `of ${job.what} into database ${JSON.stringify(job.database)}`,
        secrets: [opts.conn.password],
        runtime: this.#runtime,
      },
      job.input,
      (line) => {
        if (isErrorLine(line)) errors.push(line.trim());
      },
    );
  }
}

/** A psql output line that fails the script: a server ERROR, a FATAL, or psql's own refusal. */
function isErrorLine(line: string): boolean {
  return /\bERROR:/.test(line) || /^psql:.*FATAL:/.test(line) || PSQL_REFUSED.test(line);
}

/** The error for a script that ended without its completion line, or undefined when it is whole. */
function truncation(
  job: ScriptJob,
  ended: GuardResult | undefined,
  also: string[],
): Error | undefined {
  const completion = job.completion;
  if (!completion || !ended?.ended || ended.complete) return undefined;
  const applied = ended.atomic
    ? "nothing of it was committed"
    : `the part before the cut was applied (after ${ended.breaker} it cannot run in one transaction): check the target`;
  return new Error(
    `${job.what} is truncated: it lacks ${completion.tool}'s last line "${completion.line}"; ${applied}${
      also.length > 0 ? ` (psql also reported: ${also.slice(0, 2).join(" | ")})` : ""
    }`,
  );
}

/** What `bin` can do, from its --version; warns when it has no restricted mode. */
async function askMode(bin: string, runtime: Runtime): Promise<PsqlMode> {
  const m = await toolVersionLine(bin, runtime).then(
    (line) => ({ line, restrict: restrictSupported(line), major: versionMajor(line) }),
    () => ({ line: `${bin} (its --version failed)`, restrict: false, major: undefined }),
  );
  if (!m.restrict) {
    warn(
      `${m.line} has no restricted mode (\\restrict): SQL scripts are checked by this plugin alone and stop at their first error; psql 13.22, 14.19, 15.14, 16.10, 17.6, 18 or later adds psql's own check`,
    );
  }
  return { restrict: m.restrict, major: m.major };
}
