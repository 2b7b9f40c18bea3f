// The logical importer (postgres://, postgres+aws://): /manifest.json, then
// /00000-globals.sql from pg_dumpall --globals-only, then one pg_dump -Fc
// custom-format file per database, numbered in alphabetical order. Dumps
// stream straight through; each starts when plakar opens its file, or when
// plakar opens the one before it (one dump ahead: src/logical/read_ahead.ts).

import {
  Flags,
  type ImportEntry,
  type ImporterConnector,
  type InitParams,
} from "../kloset/connector.ts";
import { serverVersionNum, withClient } from "../pg/client.ts";
import { type ImportOptions, LOGICAL_SCHEMES, parseImportConfig } from "../pg/config.ts";
import { formatList, schemeNamed } from "../pg/options.ts";
import { buildManifest, manifestBytes, type SkippedDatabase } from "../pg/manifest.ts";
import { canReadAuthid, listDatabases, selectDatabases } from "../pg/databases.ts";
import { dumpPath, GLOBALS_PATH, MANIFEST_PATH } from "../pg/names.ts";
import type { PemFiles } from "../pg/pem_files.ts";
import { prepareConnection } from "../pg/prepare.ts";
import { connArgs, dbnameArg, toolEnv, toolPath, toolStdout } from "../pg/tools.ts";
import { ServerError } from "../pg/errors.ts";
import { warn } from "../log.ts";
import { describeBackupRole, rolePasswordsWarning } from "../pg/backup_role.ts";
import { DumpSlots } from "./dump_slots.ts";
import { DumpChain, type DumpHandle } from "./read_ahead.ts";
import { backupPreflight, report } from "./preflight.ts";
import { chooseDumpTools } from "../pg/tool_fit.ts";
import { explainLockTimeout } from "./lock_timeout.ts";
import { Runtime } from "../proc/runtime.ts";

/** Builds the pg_dump argv for one database (connection flags first). */
export function pgDumpArgs(opts: ImportOptions, database: string): string[] {
  const args = [...connArgs(opts.conn), "-Fc"];
  if (!opts.compress) args.push("-Z0");
  if (opts.schemaOnly) args.push("-s");
  else if (opts.dataOnly) args.push("-a");
  if (opts.lockWaitTimeout) args.push(`--lock-wait-timeout=${opts.lockWaitTimeout}`);
  args.push("-d", dbnameArg(database));
  return args;
}

/** Builds the pg_dumpall --globals-only argv. */
export function pgDumpallArgs(
  opts: ImportOptions,
  noRolePasswords: boolean,
  connectDb?: string,
): string[] {
  const args = [...connArgs(opts.conn), "--globals-only"];
  if (noRolePasswords) args.push("--no-role-passwords");
  if (connectDb) args.push("-l", dbnameArg(connectDb));
  return args;
}

/**
 * The warning for exclude_databases names that match no database of the
 * cluster (`names`), or undefined. A typo would otherwise back up the very
 * database the user meant to skip, without a word. A database whose name
 * holds a comma is pointed at when its pieces were given unquoted
 * (`exclude_databases=a,b` for the database `a,b` reads as two names).
 */
export function unmatchedExclusionsWarning(
  excluded: readonly string[],
  names: readonly string[],
): string | undefined {
  const exists = new Set(names);
  const unmatched = [...new Set(excluded.filter((n) => !exists.has(n)))];
  if (unmatched.length === 0) return undefined;
  const split = names.filter((d) => {
    const pieces = d.split(",").map((p) => p.trim()).filter((p) => p !== "");
    return d.includes(",") && pieces.every((p) => excluded.includes(p)) &&
      pieces.some((p) => unmatched.includes(p));
  });
  const hint = split.length === 0
    ? ""
    : `; to exclude ${
      split.map((d) => JSON.stringify(d)).join(", ")
    }, write the name in double quotes: exclude_databases=${formatList(split)}`;
  return `exclude_databases: no database named ${
    unmatched.map((n) => JSON.stringify(n)).join(", ")
  } on this server, nothing excluded for ${
    unmatched.length === 1 ? "it" : "them"
  } (names are exact and case-sensitive)${hint}`;
}

/** `runtime`: the process's (src/proc/runtime.ts); a test may leave it to a runtime of its own. */
export async function createLogicalImporter(
  params: InitParams,
  runtime: Runtime = new Runtime(),
): Promise<ImporterConnector> {
  const scheme = schemeNamed(params.proto, LOGICAL_SCHEMES);
  const opts = parseImportConfig(params.config, scheme);
  const pem = await prepareConnection(opts);
  return new LogicalImporter(opts, pem, runtime);
}

class LogicalImporter implements ImporterConnector {
  readonly #opts: ImportOptions;
  readonly #pem: PemFiles;
  readonly #runtime: Runtime;
  readonly #started = new Date();
  /** max_parallel_dumps: the tools running at once (pg_dumpall and each pg_dump). */
  readonly #slots: DumpSlots;
  /** The dumps of each import, started at their Open or one ahead. */
  readonly #chains = new Set<DumpChain>();

  constructor(opts: ImportOptions, pem: PemFiles, runtime: Runtime) {
    this.#opts = opts;
    this.#pem = pem;
    this.#runtime = runtime;
    this.#slots = new DumpSlots(opts.maxParallelDumps);
  }

  info() {
    return {
      origin: this.#opts.conn.host,
      type: "postgresql",
      root: "/",
      // The dumps can be produced only once: without STREAM the host would
      // call Import twice (once to list, once to read) and dump twice.
      flags: Flags.STREAM,
    };
  }

  policy() {
    return { failImportOnOpenError: !this.#opts.allowPartial };
  }

  /** The database we connect to for cluster-wide queries. */
  #maintenanceDb(): string {
    return this.#opts.database ?? "postgres";
  }

  /** A real round trip, then the preflight checks (src/logical/preflight.ts). */
  async ping(): Promise<void> {
    report(await backupPreflight(this.#opts));
  }

  /** Lists the databases to dump, in the order of their file numbers. */
  async #databases(): Promise<
    {
      databases: string[];
      /** Full backups: what is left out and why (for the manifest and the warning). */
      skipped?: SkippedDatabase[];
      canReadAuthid: boolean;
      authidWarning?: string;
      /** exclude_databases names that match no database (unmatchedExclusionsWarning). */
      exclusionWarning?: string;
      serverVersionNum: number;
    }
  > {
    const { database, excludeDatabases } = this.#opts;
    return await withClient(this.#opts.conn, this.#maintenanceDb(), async (client) => {
      const versionNum = await serverVersionNum(client);
      const all = await listDatabases(client);
      const { dump, skipped } = selectDatabases(all, database, excludeDatabases);
      let exclusionWarning: string | undefined;
      if (database !== undefined) {
        if (dump.length === 0) {
          throw new ServerError(
            `database ${
              JSON.stringify(database)
            } does not allow connections on ${this.#opts.conn.host}:${this.#opts.conn.port}`,
            { kind: "failed-precondition" },
          );
        }
      } else if (this.#opts.excludeDatabasesGiven) {
        // Not postgres+aws://'s default rdsadmin: a server that is not RDS has none.
        exclusionWarning = unmatchedExclusionsWarning(excludeDatabases, all.map((d) => d.name));
      }
      const readsAuthid = await canReadAuthid(client);
      const authidWarning = readsAuthid
        ? undefined
        : rolePasswordsWarning(await describeBackupRole(client));
      return {
        databases: dump.map((d) => d.name),
        skipped,
        canReadAuthid: readsAuthid,
        authidWarning,
        exclusionWarning,
        serverVersionNum: versionNum,
      };
    });
  }

  async *entries(signal?: AbortSignal): AsyncIterable<ImportEntry> {
    const opts = this.#opts;
    const chain = new DumpChain(this.#slots);
    this.#chains.add(chain);
    // The import stopped: a dump started ahead is killed, not left waiting.
    signal?.addEventListener("abort", () => void chain.stop(), { once: true });
    const { databases, skipped, canReadAuthid, authidWarning, exclusionWarning, serverVersionNum } =
      await this.#databases();
    if (exclusionWarning) warn(exclusionWarning);
    // pg_bin_dir, else PATH's pg_dump if recent enough, else pg_bin_search's best.
    const tools = await chooseDumpTools(opts, serverVersionNum);
    const pgDump = toolPath(tools.execDir, "pg_dump");
    const pgDumpVersion = tools.versionLine;

    // template0 never allows connections: a warning for it on every backup
    // would be noise (it is still listed in the manifest).
    const closed = (skipped ?? []).filter((d) =>
      d.reason === "datallowconn=false" && d.name !== "template0"
    );
    if (closed.length) {
      warn(
        `not backed up, because they do not allow connections (datallowconn = false): ${
          closed.map((d) => JSON.stringify(d.name)).join(", ")
        } (listed in /manifest.json under skipped_databases)`,
      );
    }

    const manifest = await buildManifest({
      conn: opts.conn,
      connector: "postgresql",
      database: opts.database,
      excludeDatabases: opts.excludeDatabases,
      skippedDatabases: skipped,
      dumpFormat: "custom",
      options: { schema_only: opts.schemaOnly, data_only: opts.dataOnly, compress: opts.compress },
      toolVersion: {
        pg_dump_version: pgDumpVersion,
        ...(tools.binDir ? { pg_bin_dir: tools.binDir } : {}),
      },
    });
    const bytes = manifestBytes(manifest);
    yield this.#fileEntry(MANIFEST_PATH, () =>
      new ReadableStream({
        start(c) {
          c.enqueue(bytes);
          c.close();
        },
      }), bytes.length);

    const env = await toolEnv(opts.conn);
    const secrets = [opts.conn.password];
    // Globals are roles and tablespaces: schema, so a data-only backup skips them.
    if (!opts.dataOnly) {
      if (!canReadAuthid) warn(authidWarning!);
      const args = pgDumpallArgs(opts, !canReadAuthid, opts.database);
      const bin = toolPath(tools.execDir, "pg_dumpall");
      yield this.#dumpEntry(
        GLOBALS_PATH,
        chain.add(async (onExit) =>
          toolStdout({
            bin,
            args,
            env: await this.#freshEnv(env),
            what: "--globals-only (roles and tablespaces)",
            secrets,
            onExit,
            runtime: this.#runtime,
          })
        ),
      );
    }

    let n = 0;
    for (const database of databases) {
      n++;
      const args = pgDumpArgs(opts, database);
      const timeout = opts.lockWaitTimeout;
      yield this.#dumpEntry(
        dumpPath(n, database),
        chain.add(async (onExit) =>
          toolStdout({
            bin: pgDump,
            args,
            env: await this.#freshEnv(env),
            what: `of database ${JSON.stringify(database)}`,
            secrets,
            onExit,
            runtime: this.#runtime,
            explain: timeout ? (e) => explainLockTimeout(e, timeout) : undefined,
          })
        ),
      );
    }
  }

  /** IAM tokens expire: a tool started later gets a fresh one. */
  async #freshEnv(env: Record<string, string>): Promise<Record<string, string>> {
    return this.#opts.conn.passwordProvider ? await toolEnv(this.#opts.conn) : env;
  }

  /** A dump's entry: started at its Open (or one ahead), cancelled by an ack without Open. */
  #dumpEntry(pathname: string, dump: DumpHandle): ImportEntry {
    return { ...this.#fileEntry(pathname, dump.open), release: dump.release };
  }

  #fileEntry(
    pathname: string,
    open: () => ReadableStream<Uint8Array> | Promise<ReadableStream<Uint8Array>>,
    size = 0,
  ): ImportEntry {
    return {
      pathname,
      fileInfo: {
        name: pathname.slice(1),
        size,
        mode: 0o444,
        modTime: this.#started,
      },
      open,
    };
  }

  async close(): Promise<void> {
    this.#slots.close();
    await Promise.all([...this.#chains].map((c) => c.stop()));
    await this.#pem.remove();
  }
}
