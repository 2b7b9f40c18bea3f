// The logical exporter (postgres://, postgres+aws://): restores a snapshot
// into a running server. It goes by content and name, so snapshots made by
// either integration or by hand (plakar's pg_dump guide) restore alike:
// custom-format dumps ("PGDMP") stream into pg_restore, SQL scripts into
// psql, the database named by the file (with or without the numbered prefix).

import type { ExportEntry, ExporterConnector, InitParams } from "../kloset/connector.ts";
import { ping } from "../pg/client.ts";
import { type ExportOptions, parseExportConfig } from "../pg/config.ts";
import { error as logError } from "../pg/log.ts";
import { databaseFromPath } from "../pg/names.ts";
import { type PemFiles, prepareConnection } from "../pg/pem_files.ts";
import { connArgs, dbnameArg, toolEnv, toolPath, toolWithInput } from "../pg/tools.ts";
import { idempotentRoles, peek } from "./sql_stream.ts";

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
    if (opts.clean || opts.recreate) args.push("--clean", "--if-exists");
  }
  if (opts.exitOnError) args.push("-e");
  if (opts.noOwner) args.push("--no-owner");
  if (opts.schemaOnly) args.push("-s");
  else if (opts.dataOnly) args.push("-a");
  return args;
}

/** Builds the psql argv for a SQL script run against `database`. */
export function psqlArgs(opts: ExportOptions, database: string): string[] {
  const args = [...connArgs(opts.conn), "-X", "-q"];
  if (opts.exitOnError) args.push("-v", "ON_ERROR_STOP=1");
  args.push("-d", dbnameArg(database));
  return args;
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

  constructor(opts: ExportOptions, pem: PemFiles) {
    this.#opts = opts;
    this.#pem = pem;
  }

  info() {
    return { origin: this.#opts.conn.host, type: "postgresql", root: "/", flags: 0 };
  }

  async ping(): Promise<void> {
    await ping(this.#opts.conn, this.#opts.database ?? "postgres");
  }

  async restore(
    entry: ExportEntry,
    content: ReadableStream<Uint8Array> | null,
  ): Promise<void> {
    if (entry.isDir || content === null) return;
    try {
      await this.#restoreFile(entry, content);
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      this.#failures.push(`${entry.pathname}: ${message}`);
      logError(`restore of ${entry.pathname} failed: ${message}`);
      throw e;
    }
  }

  async #restoreFile(entry: ExportEntry, content: ReadableStream<Uint8Array>): Promise<void> {
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
          stream.pipeThrough(idempotentRoles()),
          "postgres",
          `globals ${entry.pathname}`,
        );
        return;
      case "cluster":
        if (opts.databases.length > 0) {
          await stream.cancel();
          throw new Error(
            "a pg_dumpall script restores every database: it cannot be filtered with databases=; restore it without databases=",
          );
        }
        await this.#psql(
          stream.pipeThrough(idempotentRoles()),
          "postgres",
          `cluster script ${entry.pathname}`,
        );
        return;
      case "custom":
      case "sql": {
        if (!selected(fromName)) {
          await stream.cancel();
          return;
        }
        const target = this.#targetDatabase(fromName);
        if (kind.kind === "custom") await this.#pgRestore(stream, target, entry.pathname);
        else await this.#psql(stream, target, `SQL script ${entry.pathname}`);
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

  async #pgRestore(input: ReadableStream<Uint8Array>, database: string, pathname: string) {
    const opts = this.#opts;
    await toolWithInput({
      bin: toolPath(opts.pgBinDir, "pg_restore"),
      args: pgRestoreArgs(opts, database),
      env: await toolEnv(opts.conn),
      what: `of ${pathname} into database ${JSON.stringify(database)}`,
      secrets: [opts.conn.password],
    }, input);
  }

  /**
   * Feeds a script to psql. psql exits 0 after failed statements unless
   * ON_ERROR_STOP is set, so its ERROR lines decide: any error fails the file.
   */
  async #psql(
    input: ReadableStream<Uint8Array>,
    database: string,
    what: string,
  ) {
    const opts = this.#opts;
    const errors: string[] = [];
    await toolWithInput(
      {
        bin: toolPath(opts.pgBinDir, "psql"),
        args: psqlArgs(opts, database),
        env: await toolEnv(opts.conn),
        what: `of ${what} into database ${JSON.stringify(database)}`,
        secrets: [opts.conn.password],
      },
      input,
      (line) => {
        if (/\bERROR:/.test(line) || /^psql:.*FATAL:/.test(line)) errors.push(line.trim());
      },
    );
    if (errors.length > 0) {
      throw new Error(
        `psql reported ${errors.length} error(s) restoring ${what}: ${
          errors.slice(0, 3).join(" | ")
        }`,
      );
    }
  }

  finish(): Promise<void> {
    if (this.#failures.length > 0 && !this.#opts.allowPartial) {
      return Promise.reject(
        new Error(
          `restore failed for ${this.#failures.length} file(s): ${
            this.#failures.join("; ").slice(0, 1500)
          }`,
        ),
      );
    }
    return Promise.resolve();
  }

  async close(): Promise<void> {
    await this.#pem.remove();
  }
}
