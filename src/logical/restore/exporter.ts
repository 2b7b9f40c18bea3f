// The logical exporter (postgres://, postgres+aws://): restores a snapshot
// into a running server. It goes by content and name (classify.ts):
// custom-format dumps ("PGDMP") go to pg_restore (pg_restore.ts), SQL
// scripts to psql (psql.ts), the database named by the file (with or without
// the numbered prefix). This file only dispatches and gives the verdict.

import type { ExportEntry, ExporterConnector, InitParams } from "../../kloset/connector.ts";
import { type ExportOptions, LOGICAL_SCHEMES, parseExportConfig } from "../../pg/config.ts";
import { formatList, schemeNamed } from "../../pg/options.ts";
import { error as logError } from "../../log.ts";
import { databaseFromPath } from "../../pg/names.ts";
import type { PemFiles } from "../../pg/pem_files.ts";
import { prepareConnection } from "../../pg/prepare.ts";
import { report, restorePreflight } from "../preflight.ts";
import { classify, type FileKind } from "./classify.ts";
import { expectedCompletion } from "./completion.ts";
import { peek } from "./peek.ts";
import { restoreArchive } from "./pg_restore.ts";
import { globalsFilter, PsqlRunner } from "./psql.ts";
import { TargetCheck } from "./target.ts";
import { Runtime } from "../../proc/runtime.ts";

/** `runtime`: the process's (src/proc/runtime.ts); a test may leave it to a runtime of its own. */
export async function createLogicalExporter(
  params: InitParams,
  runtime: Runtime = new Runtime(),
): Promise<ExporterConnector> {
  const scheme = schemeNamed(params.proto, LOGICAL_SCHEMES);
  const opts = parseExportConfig(params.config, scheme);
  const pem = await prepareConnection(opts);
  // Read once, never written: what the target check learns is returned, not stored here.
  return new LogicalExporter(Object.freeze(opts), pem, runtime);
}

/** One snapshot file, once its first bytes are read. */
interface File {
  entry: ExportEntry;
  head: Uint8Array;
  stream: ReadableStream<Uint8Array>;
  signal?: AbortSignal;
}

class LogicalExporter implements ExporterConnector {
  readonly #opts: ExportOptions;
  readonly #pem: PemFiles;
  readonly #runtime: Runtime;
  readonly #target: TargetCheck;
  readonly #psql: PsqlRunner;
  readonly #failures: string[] = [];
  #restoredIntoExplicit: string | undefined;
  /** Databases the snapshot's per-database files name, restored or not. */
  readonly #seenDatabases = new Set<string>();
  /** Whether a full pg_dumpall script (all databases) was restored. */
  #sawCluster = false;

  constructor(opts: ExportOptions, pem: PemFiles, runtime: Runtime) {
    this.#opts = opts;
    this.#pem = pem;
    this.#runtime = runtime;
    this.#target = new TargetCheck(opts);
    this.#psql = new PsqlRunner(opts, runtime);
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
    // (the snapshot's root directory) comes well before any data.
    this.#target.start();
    if (entry.isDir || content === null) return;
    try {
      await this.#restoreFile(entry, content, signal);
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      this.#failures.push(`${entry.pathname}: ${message}`);
      if (this.#target.failed(e).say) {
        logError(`restore of ${entry.pathname} failed: ${message}`);
      }
      throw e;
    }
  }

  async #restoreFile(
    entry: ExportEntry,
    content: ReadableStream<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<void> {
    if (entry.error) {
      throw new Error(`the snapshot recorded this file as failed at backup time: ${entry.error}`);
    }
    const { head, stream } = await peek(content, 512);
    const file = { entry, head, stream, signal };
    const kind: FileKind = classify(entry.pathname, head);
    switch (kind.kind) {
      case "manifest":
        return await stream.cancel();
      case "globals":
        return await this.#globals(file);
      case "cluster":
        return await this.#cluster(file);
      case "custom":
      case "sql":
        return await this.#database(file, kind.kind);
      case "unknown":
        await stream.cancel();
        throw new Error(
          "not a PostgreSQL dump (expected a pg_dump custom-format file or a SQL script)",
        );
    }
  }

  /** pg_dumpall --globals-only: into postgres, roles made idempotent. */
  async #globals(file: File): Promise<void> {
    if (this.#opts.noGlobals) return await file.stream.cancel();
    await this.#allDatabasesScript(file, `globals ${file.entry.pathname}`);
  }

  /** A whole pg_dumpall script: every database, so databases= cannot filter it. */
  async #cluster(file: File): Promise<void> {
    if (this.#opts.databases.length > 0) {
      await file.stream.cancel();
      throw new Error(
        "a pg_dumpall script restores every database: it cannot be filtered with databases=; restore it without databases=",
      );
    }
    this.#sawCluster = true;
    await this.#allDatabasesScript(file, `cluster script ${file.entry.pathname}`);
  }

  async #allDatabasesScript(file: File, what: string): Promise<void> {
    const target = await this.#target.check();
    await this.#psql.run({
      input: file.stream,
      database: "postgres",
      what,
      binDir: target.binDir,
      completion: expectedCompletion(file.head),
      filter: globalsFilter(target.role),
    });
  }

  /** One database's dump, custom-format or SQL, into the database it names (or database=). */
  async #database(file: File, kind: "custom" | "sql"): Promise<void> {
    const opts = this.#opts;
    const fromName = databaseFromPath(file.entry.pathname);
    this.#seenDatabases.add(fromName);
    if (opts.databases.length > 0 && !opts.databases.includes(fromName)) {
      return await file.stream.cancel();
    }
    const database = this.#targetDatabase(fromName);
    const { binDir } = await this.#target.check();
    const pathname = file.entry.pathname;
    if (kind === "custom") {
      const size = file.entry.fileInfo?.size ?? 0;
      const job = {
        input: file.stream,
        database,
        pathname,
        size,
        binDir,
        signal: file.signal,
        runtime: this.#runtime,
      };
      await restoreArchive(opts, job);
      return;
    }
    await this.#psql.run({
      input: file.stream,
      database,
      what: `SQL script ${pathname}`,
      binDir,
      completion: expectedCompletion(file.head),
    });
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

/** `"a", "b" and 3 more`: names for a one-line message. */
function listNames(names: string[], max = 20): string {
  const shown = names.slice(0, max).map((n) => JSON.stringify(n)).join(", ");
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}
