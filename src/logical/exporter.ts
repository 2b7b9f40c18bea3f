// The logical exporter (postgres://, postgres+aws://): restores a snapshot
// into a running server. It goes by content and name, so snapshots made by
// either integration or by hand (plakar's pg_dump guide) restore alike:
// custom-format dumps ("PGDMP") stream into pg_restore, SQL scripts into
// psql, the database named by the file (with or without the numbered prefix).

import type { ExportEntry, ExporterConnector, InitParams } from "../kloset/connector.ts";
import { connect } from "../pg/client.ts";
import { type ExportOptions, formatList, parseExportConfig } from "../pg/config.ts";
import { describeConnectError, ServerError, tlsFailure } from "../pg/errors.ts";
import { IamTokenError } from "../pg/iam.ts";
import { error as logError, warn } from "../pg/log.ts";
import { databaseFromPath } from "../pg/names.ts";
import { effectiveUser } from "../pg/pgpass.ts";
import { type PemFiles, prepareConnection } from "../pg/pem_files.ts";
import {
  connArgs,
  dbnameArg,
  toolEnv,
  toolOutput,
  toolPath,
  toolVersionLine,
  toolWithInput,
  withRole,
} from "../pg/tools.ts";
import { versionMajor } from "../pg/tool_search.ts";
import { checkSpoolSpace, spool, systemTempDir } from "./spool.ts";
import {
  type Completion,
  completionGuard,
  expectedCompletion,
  idempotentRoles,
  peek,
} from "./sql_stream.ts";
import {
  newRestrictKey,
  PSQL_REFUSED,
  refusalMessage,
  restrictSupported,
  scriptGuard,
  ScriptRefusedError,
} from "./psql_guard.ts";
import { archiveDatabase, recreateViaTemporary } from "./safe_restore.ts";
import { readArchiveToc } from "../pg/archive_toc.ts";
import { chooseRestoreTools } from "./client_tools.ts";
import { leftoverWarning, leftoverWorkDatabases, report, restorePreflight } from "./preflight.ts";

/** What a snapshot file is, decided from its first bytes and its name. */
export type FileKind =
  | { kind: "custom" } // pg_dump -Fc
  | { kind: "globals" } // pg_dumpall --globals-only
  | { kind: "cluster" } // pg_dumpall (every database)
  | { kind: "sql" } // pg_dump -Fp (one database)
  | { kind: "manifest" }
  | { kind: "unknown" };

const MAGIC_CUSTOM = [0x50, 0x47, 0x44, 0x4d, 0x50]; // "PGDMP"

/** Classifies a snapshot file by content first, name second. */
export function classify(pathname: string, head: Uint8Array): FileKind {
  const base = pathname.slice(pathname.lastIndexOf("/") + 1);
  if (base === "manifest.json") return { kind: "manifest" };
  if (MAGIC_CUSTOM.every((b, i) => head[i] === b)) return { kind: "custom" };
  const text = new TextDecoder("utf-8", { fatal: false }).decode(head);
  // deno-lint-ignore no-control-regex
  const binary = /[\x00-\x08\x0e-\x1a]/.test(text);
  if (binary) return { kind: "unknown" };
  const isSqlName = /\.sql$/i.test(base);
  const clusterHeader = /PostgreSQL database cluster dump/.test(text);
  const dbHeader = /PostgreSQL database dump/.test(text);
  if (/(^|[-_.])globals\.sql$/i.test(base)) return { kind: "globals" };
  if (clusterHeader) return { kind: "cluster" };
  if (isSqlName || dbHeader) return { kind: "sql" };
  return { kind: "unknown" };
}

/** Databases every cluster has, restored in place instead of dropped and recreated. */
const ALWAYS_PRESENT = ["postgres", "template1"];

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
  const args = [...connArgs(opts.conn), "-X", "-q"];
  if (opts.exitOnError || !restricted) args.push("-v", "ON_ERROR_STOP=1");
  else if (guarded) args.push("-v", "ON_ERROR_ROLLBACK=on");
  args.push("-d", dbnameArg(database));
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

/** A tool's error that means the server cannot be reached or refuses this user, for any file. */
export function isUnreachable(message: string): boolean {
  // libpq's TLS failures too: a certificate that does not verify or name the
  // host, a server without SSL, fail every later file the same way.
  return /connection to server .*failed: (?:Connection refused|timeout expired|No route to host|Network is unreachable|could not translate host name|.*password authentication failed|.*no pg_hba\.conf entry|SSL error: certificate verify failed|server certificate for .* does not match host name|server does not support SSL)/
    .test(message) || /could not connect to server/.test(message);
}

/**
 * A failed check that every tool would fail too: unreachable, timed out,
 * refused credentials, or a TLS failure (a certificate that does not verify
 * or name the host, a server without SSL: libpq refuses them alike).
 */
function isTargetDown(err: unknown): boolean {
  // postgres+aws:// without credentials: no tool can get a token either.
  if (err instanceof IamTokenError) return true;
  if (tlsFailure(err)) return true;
  const e = err as { code?: string; message?: string } | undefined;
  const codes = [
    "ECONNREFUSED",
    "ENOTFOUND",
    "EAI_AGAIN",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "ETIMEDOUT",
    "28P01", // invalid_password
    "28000", // invalid_authorization_specification (pg_hba.conf)
  ];
  return codes.includes(e?.code ?? "") ||
    /timeout|timed out|asks for a password/i.test(e?.message ?? String(err));
}

/** Databases the one-time target check tries, in order (the first that exists answers). */
function probeDatabases(explicit: string | undefined): string[] {
  return [...new Set([explicit ?? "postgres", "postgres", "template1"])];
}

export async function createLogicalExporter(
  params: InitParams,
  variant: "logical" | "aws",
): Promise<ExporterConnector> {
  const opts = parseExportConfig(params.config, variant);
  const pem = await prepareConnection(opts, variant);
  return new LogicalExporter(opts, pem);
}

class LogicalExporter implements ExporterConnector {
  readonly #opts: ExportOptions;
  readonly #pem: PemFiles;
  readonly #failures: string[] = [];
  #restoredIntoExplicit: string | undefined;
  /** The one-time check of the target: resolves to the role the restore is connected as. */
  #target: Promise<string> | undefined;
  /** Set once the target could not be reached: every later file fails with it at once. */
  #unreachable: Error | undefined;
  #unreachableSaid = false;
  /** Databases the snapshot's per-database files name, restored or not. */
  readonly #seenDatabases = new Set<string>();
  /** Whether a full pg_dumpall script (all databases) was restored. */
  #sawCluster = false;

  constructor(opts: ExportOptions, pem: PemFiles) {
    this.#opts = opts;
    this.#pem = pem;
  }

  info() {
    return { origin: this.#opts.conn.host, type: "postgresql", root: "/", flags: 0 };
  }

  /** A real round trip, then the preflight checks (src/logical/preflight.ts). */
  async ping(): Promise<void> {
    report(await restorePreflight(this.#opts));
  }

  async restore(
    entry: ExportEntry,
    content: ReadableStream<Uint8Array> | null,
    signal?: AbortSignal,
  ): Promise<void> {
    // The target is checked (and the tools chosen) while plakar is still
    // reading the first file's content from its store: the first record
    // (the snapshot's root directory) comes well before any data. A failure
    // is kept for the first file that needs the target.
    if (!this.#target && !this.#unreachable) this.#checkTarget().catch(() => {});
    if (entry.isDir || content === null) return;
    try {
      await this.#restoreFile(entry, content, signal);
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      this.#failures.push(`${entry.pathname}: ${message}`);
      // An unreachable target is said once, not once per file.
      if (e !== this.#unreachable || !this.#unreachableSaid) {
        logError(`restore of ${entry.pathname} failed: ${message}`);
      }
      if (e === this.#unreachable) this.#unreachableSaid = true;
      if (this.#unreachable === undefined && isUnreachable(message)) {
        this.#unreachable = new ServerError(`the target could not be reached: ${message}`);
      }
      throw e;
    }
  }

  /**
   * Checks once, before the first tool runs, that the target answers, and
   * asks it which role this restore is connected as (libpq's default user
   * when none is configured). When it does not answer, this and every later
   * file fail at once with that reason instead of waiting connect_timeout
   * each; their content is drained by the caller.
   */
  #checkTarget(): Promise<string> {
    if (this.#unreachable) return Promise.reject(this.#unreachable);
    this.#target ??= this.#probe().catch((e) => {
      this.#unreachable = e instanceof Error ? e : new Error(String(e));
      throw this.#unreachable;
    });
    return this.#target;
  }

  async #probe(): Promise<string> {
    const conn = this.#opts.conn;
    let last: unknown;
    let row: { u: string; v: string } | undefined;
    for (const database of probeDatabases(this.#opts.database)) {
      try {
        const client = await connect(conn, database);
        let r;
        try {
          r = await client.query<{ u: string; v: string }>(
            "SELECT current_user AS u, current_setting('server_version_num') AS v",
          );
          if (this.#opts.recreate) {
            const leftover = leftoverWarning(await leftoverWorkDatabases(client).catch(() => []));
            if (leftover) warn(leftover);
          }
        } finally {
          await client.end().catch(() => {});
        }
        row = r.rows[0];
        break;
      } catch (e) {
        last = e;
        // The server answered: that database is missing; another will do.
        if ((e as { code?: string }).code === "3D000") continue;
        break;
      }
    }
    if (row) {
      // Tools of the target's major when PATH's are older (pg_bin_search).
      if (!this.#opts.pgBinDir) {
        const choice = await chooseRestoreTools(this.#opts, Number(row.v));
        if (choice?.execDir) this.#opts.pgBinDir = choice.execDir;
      }
      return row.u;
    }
    const reason = describeConnectError(conn, probeDatabases(this.#opts.database)[0], last);
    if (isTargetDown(last)) throw new ServerError(reason);
    // Something the catalog client cannot do that the tools may (another
    // authentication method...): let them try, as the user libpq would pick.
    warn(`could not check the target before restoring (${reason}); going on with the tools`);
    return effectiveUser(conn.username);
  }

  /** Globals of a pg_dumpall script, minus what would lock the restore out of the target. */
  #globalsFilter(me: string): TransformStream<Uint8Array, Uint8Array> {
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

  async #restoreFile(
    entry: ExportEntry,
    content: ReadableStream<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<void> {
    const opts = this.#opts;
    if (entry.error) {
      throw new Error(`the snapshot recorded this file as failed at backup time: ${entry.error}`);
    }
    const { head, stream } = await peek(content, 512);
    const kind = classify(entry.pathname, head);
    const fromName = databaseFromPath(entry.pathname);
    const selected = (db: string) => opts.databases.length === 0 || opts.databases.includes(db);

    switch (kind.kind) {
      case "manifest":
        await stream.cancel();
        return;
      case "globals":
        if (opts.noGlobals) {
          await stream.cancel();
          return;
        }
        await this.#psql(
          stream,
          "postgres",
          `globals ${entry.pathname}`,
          expectedCompletion(head),
          this.#globalsFilter(await this.#checkTarget()),
        );
        return;
      case "cluster":
        if (opts.databases.length > 0) {
          await stream.cancel();
          throw new Error(
            "a pg_dumpall script restores every database: it cannot be filtered with databases=; restore it without databases=",
          );
        }
        this.#sawCluster = true;
        await this.#psql(
          stream,
          "postgres",
          `cluster script ${entry.pathname}`,
          expectedCompletion(head),
          this.#globalsFilter(await this.#checkTarget()),
        );
        return;
      case "custom":
      case "sql": {
        this.#seenDatabases.add(fromName);
        if (!selected(fromName)) {
          await stream.cancel();
          return;
        }
        const target = this.#targetDatabase(fromName);
        await this.#checkTarget();
        if (kind.kind === "custom") {
          await this.#pgRestore(stream, target, entry.pathname, entry.fileInfo?.size ?? 0, signal);
        } else {
          await this.#psql(
            stream,
            target,
            `SQL script ${entry.pathname}`,
            expectedCompletion(head),
          );
        }
        return;
      }
      case "unknown":
        await stream.cancel();
        throw new Error(
          "not a PostgreSQL dump (expected a pg_dump custom-format file or a SQL script)",
        );
    }
  }

  /** The database a per-database file goes into: `database` if set, else the file's name. */
  #targetDatabase(fromName: string): string {
    const explicit = this.#opts.database;
    if (explicit === undefined) return fromName;
    if (this.#restoredIntoExplicit !== undefined && this.#restoredIntoExplicit !== fromName) {
      throw new Error(
        `database=${explicit} names one target but the snapshot holds several databases (${this.#restoredIntoExplicit}, ${fromName}): choose one with databases=NAME`,
      );
    }
    this.#restoredIntoExplicit = fromName;
    return explicit;
  }

  async #pgRestore(
    input: ReadableStream<Uint8Array>,
    database: string,
    pathname: string,
    size: number,
    signal?: AbortSignal,
  ) {
    const opts = this.#opts;
    if (opts.recreate && opts.atomic && !ALWAYS_PRESENT.includes(database)) {
      // Restore into a temporary database, swapped in only on success.
      const into = { ...opts, recreate: false, clean: false, exitOnError: true };
      const parallel = restoresInParallel(into, pgRestoreArgs(into, database));
      // Checked before the temporary database is made: no room, nothing done.
      if (parallel) await this.#checkSpool(input, size);
      await recreateViaTemporary(input, {
        opts,
        target: database,
        pathname,
        restoreInto: async (temporary, stream) => {
          await this.#runPgRestore(
            into,
            stream,
            temporary,
            pathname,
            parallel ? size : undefined,
            signal,
          );
        },
      });
      return;
    }
    if (opts.recreate && !ALWAYS_PRESENT.includes(database)) {
      input = await sameDatabaseOrRefuse(input, database, pathname);
    }
    try {
      const parallel = restoresInParallel(opts, pgRestoreArgs(opts, database));
      await this.#runPgRestore(
        opts,
        input,
        database,
        pathname,
        parallel ? size : undefined,
        signal,
      );
    } catch (e) {
      // One transaction holds a lock per object it touches: a large database
      // can exhaust the server's lock table. Nothing was changed; say how out.
      const message = (e as Error).message ?? "";
      if (
        opts.atomic && (opts.clean || opts.recreate) && /max_locks_per_transaction/.test(message)
      ) {
        throw new Error(
          `${message} (the restore ran in one transaction and changed nothing: raise max_locks_per_transaction on the server, or set atomic=false to restore without a transaction)`,
          { cause: e },
        );
      }
      throw e;
    }
  }

  /** Fails (and cancels the input) when spool_dir has no room for the file. */
  async #checkSpool(input: ReadableStream<Uint8Array>, size: number): Promise<void> {
    try {
      await checkSpoolSpace(this.#opts.spoolDir ?? systemTempDir(), size);
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
  async #runPgRestore(
    opts: ExportOptions,
    input: ReadableStream<Uint8Array>,
    database: string,
    pathname: string,
    spoolSize: number | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    const spec = {
      bin: toolPath(opts.pgBinDir, "pg_restore"),
      args: pgRestoreArgs(opts, database),
      env: await toolEnv(opts.conn),
      what: `of ${pathname} into database ${JSON.stringify(database)}`,
      secrets: [opts.conn.password],
      signal,
    };
    if (spoolSize === undefined) {
      await toolWithInput(spec, input);
      return;
    }
    await using file = await spool(input, { dir: opts.spoolDir, size: spoolSize, signal });
    await toolOutput({
      ...spec,
      args: [...spec.args, "-j", String(opts.jobs), file.path],
      what: `-j ${opts.jobs} ${spec.what}`,
    });
  }

  /**
   * Feeds a script to psql. psql exits 0 after failed statements unless
   * ON_ERROR_STOP is set, so its ERROR lines decide: any error fails the file.
   * The script first goes through scriptGuard (a snapshot is data, never a
   * program: no psql meta-command but the \connect a dump needs, in psql's
   * restricted mode where psql has one), then `filter` (globals), then, for a
   * script written by pg_dump or pg_dumpall (`completion` set),
   * completionGuard: one that lacks its completion line is truncated and
   * fails, with nothing of it committed where it ran in one transaction.
   */
  async #psql(
    input: ReadableStream<Uint8Array>,
    database: string,
    what: string,
    completion?: Completion,
    filter?: TransformStream<Uint8Array, Uint8Array>,
  ) {
    const errors: string[] = [];
    const psql = await this.#psqlMode();
    // A fresh key for each script, never written anywhere (psql_guard.ts).
    const scan = scriptGuard({
      restrictKey: psql.restrict ? newRestrictKey() : undefined,
      psqlMajor: psql.major,
      foldsTransactionLines: completion !== undefined,
    });
    input = input.pipeThrough(scan.transform);
    if (filter) input = input.pipeThrough(filter);
    const guard = completion ? completionGuard(completion) : undefined;
    if (guard) input = input.pipeThrough(guard.transform);
    const truncated = (also: string[]) => {
      const ended = guard?.result();
      if (!completion || !ended?.ended || ended.complete) return undefined;
      const applied = ended.atomic
        ? "nothing of it was committed"
        : `the part before the cut was applied (after ${ended.breaker} it cannot run in one transaction): check the target`;
      return new Error(
        `${what} is truncated: it lacks ${completion.tool}'s last line "${completion.line}"; ${applied}${
          also.length > 0 ? ` (psql also reported: ${also.slice(0, 2).join(" | ")})` : ""
        }`,
      );
    };
    try {
      await this.#runPsql(input, database, what, guard !== undefined, psql.restrict, errors);
    } catch (e) {
      // The guard stopped the script before the refused line reached psql.
      if (e instanceof ScriptRefusedError) {
        throw new Error(refusalMessage(what, e, scan.result(), guard?.result()), { cause: e });
      }
      // psql stopped at the cut statement (exit_on_error): the cut is the cause.
      throw truncated([(e as Error).message]) ?? e;
    }
    const cut = truncated(errors);
    if (cut) throw cut;
    if (errors.length > 0) {
      throw new Error(
        `psql reported ${errors.length} error(s) restoring ${what}: ${
          errors.slice(0, 3).join(" | ")
        }`,
      );
    }
  }

  /**
   * Whether the psql in use has the restricted mode (`\restrict`), and its
   * major (for the guard's lexer), asked once per psql binary; said once when
   * it has not, since the guard is then alone.
   */
  #psqlMode(): Promise<{ restrict: boolean; major?: number }> {
    const bin = toolPath(this.#opts.pgBinDir, "psql");
    if (this.#psqlModeOf?.bin !== bin) {
      const mode = toolVersionLine(bin).then(
        (line) => ({ line, restrict: restrictSupported(line), major: versionMajor(line) }),
        () => ({ line: `${bin} (its --version failed)`, restrict: false, major: undefined }),
      ).then((m) => {
        if (!m.restrict) {
          warn(
            `${m.line} has no restricted mode (\\restrict): SQL scripts are checked by this plugin alone and stop at their first error; psql 13.22, 14.19, 15.14, 16.10, 17.6, 18 or later adds psql's own check`,
          );
        }
        return { restrict: m.restrict, major: m.major };
      });
      this.#psqlModeOf = { bin, mode };
    }
    return this.#psqlModeOf.mode;
  }

  #psqlModeOf: { bin: string; mode: Promise<{ restrict: boolean; major?: number }> } | undefined;

  async #runPsql(
    input: ReadableStream<Uint8Array>,
    database: string,
    what: string,
    guarded: boolean,
    restricted: boolean,
    errors: string[],
  ): Promise<void> {
    const opts = this.#opts;
    await toolWithInput(
      {
        bin: toolPath(opts.pgBinDir, "psql"),
        args: psqlArgs(opts, database, guarded, restricted),
        env: withRole(await toolEnv(opts.conn), opts.role),
        what: `of ${what} into database ${JSON.stringify(database)}`,
        secrets: [opts.conn.password],
      },
      input,
      (line) => {
        if (/\bERROR:/.test(line) || /^psql:.*FATAL:/.test(line) || PSQL_REFUSED.test(line)) {
          errors.push(line.trim());
        }
      },
    );
  }

  /** Why the restore as a whole did not do what was asked, beyond failed files. */
  #unmet(): string | undefined {
    const opts = this.#opts;
    const held = [...this.#seenDatabases].sort();
    const holds = held.length > 0
      ? `the snapshot holds ${listNames(held)}`
      : "the snapshot holds no database dump";
    if (opts.databases.length > 0) {
      const missing = opts.databases.filter((d) => !this.#seenDatabases.has(d));
      if (missing.length > 0) {
        // As the user wrote it: a name holding a comma stays quoted, one name.
        return `databases=${formatList(opts.databases)}: no dump of ${
          listNames(missing)
        } in the snapshot (${holds}): check the names`;
      }
    } else if (opts.database !== undefined && held.length === 0 && !this.#sawCluster) {
      return `database=${opts.database} was asked for but no database was restored: ${holds}`;
    }
    return undefined;
  }

  finish(): Promise<void> {
    const unmet = this.#unmet();
    let reason = unmet;
    if (this.#failures.length > 0 && !this.#opts.allowPartial) {
      const failed = `restore failed for ${this.#failures.length} file(s): ${
        this.#failures.join("; ").slice(0, 1500)
      }`;
      reason = unmet ? `${unmet}; ${failed}` : failed;
    }
    if (reason === undefined) return Promise.resolve();
    // plakar does not show why the Export call failed: say it here.
    if (unmet) logError(unmet);
    return Promise.reject(new Error(reason));
  }

  async close(): Promise<void> {
    await this.#pem.remove();
  }
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

/** `"a", "b" and 3 more`: names for a one-line message. */
function listNames(names: string[], max = 20): string {
  const shown = names.slice(0, max).map((n) => JSON.stringify(n)).join(", ");
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}
