// A custom-format dump into pg_restore: streamed into its stdin, or spooled
// to a file for jobs=N; recreate=true through a temporary database swapped in
// on success (safe_restore.ts), or, with atomic=false, pg_restore -C once the
// archive is known to name the selected database.

import type { ExportOptions } from "../../pg/config.ts";
import { readArchiveToc } from "../../pg/archive_toc.ts";
import {
  connArgs,
  dbnameArg,
  toolEnv,
  ToolError,
  toolOutput,
  toolPath,
  toolWithInput,
} from "../../pg/tools.ts";
import { ALWAYS_PRESENT, archiveDatabase, recreateViaTemporary } from "./safe_restore.ts";
import { checkSpoolSpace, spool, systemTempDir } from "./spool.ts";
import type { Runtime } from "../../proc/runtime.ts";

/** One archive to restore. */
export interface ArchiveJob {
  input: ReadableStream<Uint8Array>;
  /** The database it goes into (database=, or the file's name). */
  database: string;
  /** The snapshot file, for messages. */
  pathname: string;
  /** Its size, for the spool's room check. */
  size: number;
  /** Where pg_restore runs from (the target check's choice); undefined: PATH. */
  binDir: string | undefined;
  signal?: AbortSignal;
  /** The process's runtime, where pg_restore and the spool file are tracked. */
  runtime: Runtime;
}

/** Builds the pg_restore argv for a custom-format dump of `database`. */
export function pgRestoreArgs(opts: ExportOptions, database: string): string[] {
  const args = connArgs(opts.conn);
  if (opts.recreate && !ALWAYS_PRESENT.includes(database)) {
    // Drop and recreate the database from the archive's metadata, connected
    // to the maintenance database.
    args.push("-C", "--clean", "--if-exists", "-d", dbnameArg("postgres"));
  } else {
    // postgres and template1 always exist and are never dropped (as
    // pg_dumpall does): recreate on them means restoring objects with --clean.
    args.push("-d", dbnameArg(database));
    if (opts.clean || opts.recreate) {
      args.push("--clean", "--if-exists");
      // One transaction: a dump that fails midway rolls back its drops too.
      if (opts.atomic) args.push("--single-transaction");
    }
  }
  if (opts.singleTransaction && !args.includes("--single-transaction")) {
    args.push("--single-transaction");
  }
  if (opts.exitOnError) args.push("-e");
  if (opts.noOwner) args.push("--no-owner");
  if (opts.noPrivileges) args.push("-x");
  if (opts.noComments) args.push("--no-comments");
  if (opts.role) args.push(`--role=${opts.role}`);
  if (opts.schemaOnly) args.push("-s");
  else if (opts.dataOnly) args.push("-a");
  return args;
}

/**
 * Whether a custom-format dump restores with pg_restore -j from a spooled
 * file: jobs of 2 or more, and pg_restore not asked for one transaction (the
 * postgres and template1 databases under atomic recreate=true get clean=true's
 * single transaction, so they stream instead).
 */
export function restoresInParallel(opts: ExportOptions, args: string[]): boolean {
  return opts.jobs > 1 && !args.includes("--single-transaction");
}

/** Restores one custom-format archive as the options say. */
export async function restoreArchive(opts: ExportOptions, job: ArchiveJob): Promise<void> {
  const replaces = opts.recreate && !ALWAYS_PRESENT.includes(job.database);
  if (replaces && opts.atomic) return await recreateSafely(opts, job);
  const input = replaces
    ? await sameDatabaseOrRefuse(job.input, job.database, job.pathname)
    : job.input;
  try {
    await runPgRestore(opts, { ...job, input }, spoolSizeFor(opts, job));
  } catch (e) {
    throw lockTableHint(opts, e);
  }
}

/** Restores into a temporary database, swapped in only on success (safe_restore.ts). */
async function recreateSafely(opts: ExportOptions, job: ArchiveJob): Promise<void> {
  const into = { ...opts, recreate: false, clean: false, exitOnError: true };
  const spoolSize = spoolSizeFor(into, job);
  // Checked before the temporary database is made: no room, nothing done.
  if (spoolSize !== undefined) await checkSpool(opts, job.input, spoolSize);
  await recreateViaTemporary(job.input, {
    opts,
    binDir: job.binDir,
    runtime: job.runtime,
    target: job.database,
    pathname: job.pathname,
    restoreInto: (temporary, stream) =>
      runPgRestore(into, { ...job, input: stream, database: temporary }, spoolSize),
  });
}

/** The size to spool when the archive restores with -j (jobs=N), else undefined: streamed. */
function spoolSizeFor(opts: ExportOptions, job: ArchiveJob): number | undefined {
  return restoresInParallel(opts, pgRestoreArgs(opts, job.database)) ? job.size : undefined;
}

/**
 * One transaction holds a lock per object it touches: a large database can
 * exhaust the server's lock table. Nothing was changed; the error says how out.
 */
function lockTableHint(opts: ExportOptions, e: unknown): unknown {
  const message = (e as Error).message ?? "";
  const oneTransaction = opts.atomic && (opts.clean || opts.recreate);
  // 53200: "out of shared memory", the lock table full.
  if (!oneTransaction || !(e instanceof ToolError && e.sqlstate === "53200")) return e;
  return new Error(
    `${message} (the restore ran in one transaction and changed nothing: raise max_locks_per_transaction on the server, or set atomic=false to restore without a transaction)`,
    { cause: e },
  );
}

/** Fails (and cancels the input) when spool_dir has no room for the file. */
async function checkSpool(
  opts: ExportOptions,
  input: ReadableStream<Uint8Array>,
  size: number,
): Promise<void> {
  try {
    await checkSpoolSpace(opts.spoolDir ?? systemTempDir(), size);
  } catch (e) {
    await input.cancel().catch(() => {});
    throw e;
  }
}

/**
 * Runs pg_restore on one archive: streamed into its stdin, or, with
 * `spoolSize` set (jobs=N), spooled to a file first and restored from it
 * with -j N; the file is removed whatever happens.
 */
async function runPgRestore(
  opts: ExportOptions,
  job: ArchiveJob,
  spoolSize: number | undefined,
): Promise<void> {
  const spec = {
    bin: toolPath(job.binDir, "pg_restore"),
    args: pgRestoreArgs(opts, job.database),
    env: await toolEnv(opts.conn),
    what: `of ${job.pathname} into database ${JSON.stringify(job.database)}`,
    secrets: [opts.conn.password],
    signal: job.signal,
    runtime: job.runtime,
  };
  if (spoolSize === undefined) {
    await toolWithInput(spec, job.input);
    return;
  }
  await using file = await spool(job.input, {
    dir: opts.spoolDir,
    size: spoolSize,
    signal: job.signal,
    runtime: job.runtime,
  });
  await toolOutput({
    ...spec,
    args: [...spec.args, "-j", String(opts.jobs), file.path],
    what: `-j ${opts.jobs} ${spec.what}`,
  });
}

/**
 * pg_restore -C (recreate=true atomic=false) drops and creates the database
 * named inside the archive, which must then be the one the user selected:
 * a renamed or hand-made snapshot could otherwise replace another live
 * database. Returns the archive's stream, whole, when the names agree.
 */
async function sameDatabaseOrRefuse(
  input: ReadableStream<Uint8Array>,
  target: string,
  pathname: string,
): Promise<ReadableStream<Uint8Array>> {
  let read;
  try {
    read = await readArchiveToc(input);
  } catch (e) {
    throw new Error(
      `recreate=true atomic=false: cannot tell which database ${pathname} would drop and recreate (${
        (e as Error).message
      }); restore it with atomic=true, or into an existing database without recreate=`,
      { cause: e },
    );
  }
  const archive = archiveDatabase(read.toc);
  if (archive === undefined || archive === target) return read.stream;
  await read.stream.cancel().catch(() => {});
  throw new Error(
    `${pathname} holds a dump of database ${JSON.stringify(archive)}, not ${
      JSON.stringify(target)
    }: recreate=true atomic=false would drop and recreate ${
      JSON.stringify(archive)
    }; restore it with atomic=true (the default), which recreates ${JSON.stringify(target)}`,
  );
}
