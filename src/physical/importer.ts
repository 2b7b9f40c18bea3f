// The physical importer (postgres+bin://): `pg_basebackup -D - -F tar -X
// fetch` read once, in order, each tar member one record at its own path
// from the snapshot root, so that the snapshot root is the data directory
// (/PG_VERSION, /base/…, /backup_manifest) with /manifest.json beside it and
// `plakar restore -to ./pgdata <snap>` yields a startable directory. A copy
// of a standby is a standby: it is said on stderr and in the manifest.

import {
  Flags,
  type ImportEntry,
  type ImporterConnector,
  type InitParams,
} from "../kloset/connector.ts";
import { withClient } from "../pg/client.ts";
import { type ParsedConn, parsePhysicalImportConfig } from "../pg/config.ts";
import { buildManifest, manifestBytes } from "../pg/manifest.ts";
import { MANIFEST_PATH } from "../pg/names.ts";
import { type PemFiles, prepareConnection } from "../pg/pem_files.ts";
import { connArgs, toolEnv, toolPath, toolStdout } from "../pg/tools.ts";
import { configuredTool, type ToolChoice } from "../pg/tool_search.ts";
import { ServerError } from "../pg/errors.ts";
import { warn } from "../pg/log.ts";
import {
  requirementProblems,
  serverFacts,
  tryReplicationConnection,
  versionProblem,
} from "./requirements.ts";
import { StandbyFactsReader, standbyWarning } from "./standby.ts";
import { tarEntries } from "./tar_entries.ts";
import { holdWal } from "./wal_guard.ts";

/** The pg_basebackup argv: the whole cluster as one tar on stdout, WAL fetched at the end. */
export function pgBasebackupArgs(opts: ParsedConn): string[] {
  return [
    ...connArgs(opts.conn),
    "-D",
    "-",
    "-F",
    "tar",
    "-X",
    "fetch",
    // A spread checkpoint can hold the start for minutes with nothing to show.
    "-c",
    "fast",
    "-l",
    "plakar",
  ];
}

export async function createPhysicalImporter(params: InitParams): Promise<ImporterConnector> {
  const opts = parsePhysicalImportConfig(params.config);
  const pem = await prepareConnection(opts, "logical");
  return new PhysicalImporter(opts, pem);
}

class PhysicalImporter implements ImporterConnector {
  readonly #opts: ParsedConn;
  readonly #pem: PemFiles;
  readonly #started = new Date();

  constructor(opts: ParsedConn, pem: PemFiles) {
    this.#opts = opts;
    this.#pem = pem;
  }

  info() {
    return {
      origin: this.#opts.conn.host,
      type: "postgresql+bin",
      root: "/",
      // STREAM: the copy can be made only once. NEEDACK: an entry is held
      // until plakar opens or acknowledges it, and the tar stream advances
      // only then.
      flags: Flags.STREAM | Flags.NEEDACK,
    };
  }

  policy() {
    return { failImportOnOpenError: true };
  }

  /** pg_basebackup as configured (pg_bin_dir or PATH): its execDir is where it runs from. */
  #tool: ToolChoice | undefined;

  #bin(): string {
    return toolPath(this.#tool?.execDir, "pg_basebackup");
  }

  /** The server's facts and the tool's version, refusing what cannot work before any copy. */
  async #preflight(): Promise<string> {
    const tool = this.#tool = await configuredTool("pg_basebackup", this.#opts.pgBinDir);
    const versionLine = tool.versionLine;
    const facts = await withClient(this.#opts.conn, "postgres", serverFacts);
    const problems = requirementProblems(facts);
    const v = versionProblem(tool.major, versionLine, facts.serverVersionNum);
    if (v) problems.unshift(v);
    if (problems.length) {
      const where = `${this.#opts.conn.host}:${this.#opts.conn.port}`;
      throw new ServerError(`cannot back up ${where} with pg_basebackup: ${problems.join("; ")}`, {
        kind: "failed-precondition",
      });
    }
    return versionLine;
  }

  async ping(): Promise<void> {
    await this.#preflight();
    await tryReplicationConnection(this.#opts.conn);
  }

  async *entries(signal: AbortSignal): AsyncIterable<ImportEntry> {
    const opts = this.#opts;
    const versionLine = await this.#preflight();
    await using _guard = await holdWal(opts.conn, warn);
    // The copy starts while the catalog is introspected for the manifest:
    // its checkpoint and first files wait in the pipe meanwhile. The manifest
    // is yielded after the data.
    const tool = toolStdout({
      bin: this.#bin(),
      args: pgBasebackupArgs(opts),
      env: await toolEnv(opts.conn),
      what: `of ${opts.conn.host}:${opts.conn.port}`,
      secrets: [opts.conn.password],
    });
    try {
      const manifest = await buildManifest({
        conn: opts.conn,
        connector: "postgresql+bin",
        dumpFormat: "basebackup",
        toolVersion: { pg_basebackup_version: versionLine },
      });
      const standby = new StandbyFactsReader();
      yield* tarEntries(tool, signal, { peek: (path, content) => standby.see(path, content) });
      // The manifest comes last: whether the copy is a standby, and whether
      // its primary_conninfo carries a password, is known only once the
      // configuration files have gone by (src/physical/standby.ts).
      const facts = standby.facts();
      const standbyLine = standbyWarning(
        `${opts.conn.host}:${opts.conn.port}`,
        manifest.in_recovery,
        facts,
      );
      if (standbyLine) warn(standbyLine);
      manifest.standby_signal = facts.standbySignal;
      manifest.primary_conninfo_files = facts.primaryConninfoFiles;
      if (facts.primaryConninfoHasPassword === undefined) {
        warn(
          "manifest: primary_conninfo_has_password left out: a configuration file was too large to read",
        );
      } else manifest.primary_conninfo_has_password = facts.primaryConninfoHasPassword;
      const bytes = manifestBytes(manifest);
      yield {
        pathname: MANIFEST_PATH,
        fileInfo: {
          name: MANIFEST_PATH.slice(1),
          size: bytes.length,
          // Beside the data files, owned and readable like them.
          mode: 0o600,
          modTime: this.#started,
        },
        open: () => bytes,
      };
    } finally {
      // Left before the archive was read (or it was): stops the tool, if still running.
      await tool.cancel().catch(() => {});
    }
  }

  async close(): Promise<void> {
    await this.#pem.remove();
  }
}
