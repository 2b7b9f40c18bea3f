// The logical importer (postgres://, postgres+aws://): /manifest.json, then
// /00000-globals.sql from pg_dumpall --globals-only, then one pg_dump -Fc
// custom-format file per database, numbered in alphabetical order. Dumps
// start only when plakar opens them and stream straight through.

import {
  Flags,
  type ImportEntry,
  type ImporterConnector,
  type InitParams,
} from "../kloset/connector.ts";
import { connectExplained, ping } from "../pg/client.ts";
import { type ImportOptions, parseImportConfig } from "../pg/config.ts";
import { buildManifest } from "../pg/manifest.ts";
import { dumpPath, GLOBALS_PATH, MANIFEST_PATH } from "../pg/names.ts";
import { type PemFiles, prepareConnection } from "../pg/pem_files.ts";
import {
  connArgs,
  dbnameArg,
  toolEnv,
  toolPath,
  toolStdout,
  toolVersionLine,
} from "../pg/tools.ts";
import { ServerError } from "../pg/errors.ts";
import { warn } from "../pg/log.ts";

/** Builds the pg_dump argv for one database (connection flags first). */
export function pgDumpArgs(opts: ImportOptions, database: string): string[] {
  const args = [...connArgs(opts.conn), "-Fc"];
  if (!opts.compress) args.push("-Z0");
  if (opts.schemaOnly) args.push("-s");
  else if (opts.dataOnly) args.push("-a");
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

/** The major version of a tool from its `--version` line ("pg_dump (PostgreSQL) 15.18 ..."). */
export function toolMajor(versionLine: string): number | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(versionLine);
  if (!m) return undefined;
  const major = Number(m[1]);
  return major >= 10 ? major : Number(`${m[1]}.${m[2] ?? 0}`);
}

export async function createLogicalImporter(
  params: InitParams,
  variant: "logical" | "aws",
): Promise<ImporterConnector> {
  const opts = parseImportConfig(params.config, variant);
  const pem = await prepareConnection(opts, variant);
  return new LogicalImporter(opts, pem);
}

class LogicalImporter implements ImporterConnector {
  readonly #opts: ImportOptions;
  readonly #pem: PemFiles;
  readonly #started = new Date();

  constructor(opts: ImportOptions, pem: PemFiles) {
    this.#opts = opts;
    this.#pem = pem;
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

  async ping(): Promise<void> {
    await ping(this.#opts.conn, this.#maintenanceDb());
  }

  /** Lists the databases to dump, in the order of their file numbers. */
  async #databases(): Promise<
    { databases: string[]; canReadAuthid: boolean; serverVersionNum: number }
  > {
    const { database, excludeDatabases } = this.#opts;
    const client = await connectExplained(this.#opts.conn, this.#maintenanceDb());
    try {
      const version = await client.query<{ v: string }>(
        "SELECT current_setting('server_version_num') AS v",
      );
      const serverVersionNum = Number(version.rows[0].v);
      const rows = await client.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname COLLATE "C"`,
      );
      let databases = rows.rows.map((r) => r.datname);
      if (database !== undefined) {
        if (!databases.includes(database)) {
          throw new ServerError(
            `database ${
              JSON.stringify(database)
            } does not allow connections on ${this.#opts.conn.host}:${this.#opts.conn.port}`,
          );
        }
        databases = [database];
      } else {
        databases = databases.filter((d) => !excludeDatabases.includes(d));
      }
      let canReadAuthid = true;
      try {
        await client.query("SELECT 1 FROM pg_authid LIMIT 1");
      } catch (e) {
        // Only a permission failure means "restricted superuser" (RDS).
        if ((e as { code?: string }).code !== "42501") throw e;
        canReadAuthid = false;
      }
      return { databases, canReadAuthid, serverVersionNum };
    } finally {
      await client.end().catch(() => {});
    }
  }

  async *entries(): AsyncIterable<ImportEntry> {
    const opts = this.#opts;
    const pgDump = toolPath(opts.pgBinDir, "pg_dump");
    const pgDumpVersion = await toolVersionLine(pgDump);
    const { databases, canReadAuthid, serverVersionNum } = await this.#databases();
    const toolMaj = toolMajor(pgDumpVersion);
    const serverMaj = serverVersionNum >= 100000
      ? Math.floor(serverVersionNum / 10000)
      : Math.floor(serverVersionNum / 100) / 100;
    if (toolMaj !== undefined && toolMaj < serverMaj) {
      throw new ServerError(
        `${pgDumpVersion} cannot dump a PostgreSQL ${serverMaj} server at ${opts.conn.host}:${opts.conn.port}: install the client tools of major ${serverMaj} or newer and set pg_bin_dir`,
      );
    }

    const manifest = await buildManifest({
      conn: opts.conn,
      connector: "postgresql",
      database: opts.database,
      excludeDatabases: opts.excludeDatabases,
      dumpFormat: "custom",
      options: { schema_only: opts.schemaOnly, data_only: opts.dataOnly, compress: opts.compress },
      toolVersion: { pg_dump_version: pgDumpVersion },
    });
    const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
    yield this.#fileEntry(MANIFEST_PATH, () =>
      new ReadableStream({
        start(c) {
          c.enqueue(manifestBytes);
          c.close();
        },
      }), manifestBytes.length);

    const env = await toolEnv(opts.conn);
    const secrets = [opts.conn.password];
    // Globals are roles and tablespaces: schema, so a data-only backup skips them.
    if (!opts.dataOnly) {
      if (!canReadAuthid) {
        warn(
          "cannot read pg_authid (restricted superuser, e.g. RDS): role passwords are left out of /00000-globals.sql; restored roles will have no password",
        );
      }
      const args = pgDumpallArgs(opts, !canReadAuthid, opts.database);
      const bin = toolPath(opts.pgBinDir, "pg_dumpall");
      yield this.#fileEntry(GLOBALS_PATH, async () =>
        toolStdout({
          bin,
          args,
          env: await this.#freshEnv(env),
          what: "--globals-only (roles and tablespaces)",
          secrets,
        }));
    }

    let n = 0;
    for (const database of databases) {
      n++;
      const args = pgDumpArgs(opts, database);
      yield this.#fileEntry(dumpPath(n, database), async () =>
        toolStdout({
          bin: pgDump,
          args,
          env: await this.#freshEnv(env),
          what: `of database ${JSON.stringify(database)}`,
          secrets,
        }));
    }
  }

  /** IAM tokens expire: a tool started later gets a fresh one. */
  async #freshEnv(env: Record<string, string>): Promise<Record<string, string>> {
    return this.#opts.conn.passwordProvider ? await toolEnv(this.#opts.conn) : env;
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
    await this.#pem.remove();
  }
}
