// The physical importer (postgres+bin://): `pg_basebackup -D - -F tar -X
// fetch` read once, in order, each tar member one record at its own path
// from the snapshot root, so that the snapshot root is the data directory
// (/PG_VERSION, /base/…, /backup_manifest) with /manifest.json beside it and
// `plakar restore -to ./pgdata <snap>` yields a startable directory. A copy
// of a standby is a standby: it is said on stderr and in the manifest.

import type { ImportEntry, ImporterConnector, InitParams } from "../kloset/connector.ts";
import { manifestEntry, PHYSICAL_POLICY, physicalInfo } from "./info.ts";
import { withClient } from "../pg/client.ts";
import { type ParsedConn, parsePhysicalImportConfig } from "../pg/config.ts";
import { buildManifest, manifestBytes } from "../pg/manifest.ts";
import type { PemFiles } from "../pg/pem_files.ts";
import { prepareConnection } from "../pg/prepare.ts";
import { connArgs, toolEnv, toolPath, toolStdout } from "../pg/tools.ts";
import { configuredTool, type ToolChoice } from "../pg/tool_search.ts";
import { ServerError } from "../pg/errors.ts";
import { warn } from "../log.ts";
import {
  requirementProblems,
  serverFacts,
  tryReplicationConnection,
  versionProblem,
} from "./requirements.ts";
import { StandbyFactsReader, standbyWarning } from "./standby.ts";
import { tarEntries } from "./tar_entries.ts";
import { holdWal } from "./wal_guard.ts";
import { Runtime } from "../proc/runtime.ts";

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

/** `runtime`: the process's (src/proc/runtime.ts); a test may leave it to a runtime of its own. */
export async function createPhysicalImporter(
  params: InitParams,
  runtime: Runtime = new Runtime(),
): Promise<ImporterConnector> {
  const opts = parsePhysicalImportConfig(params.config);
  const pem = await prepareConnection(opts);
  return new PhysicalImporter(opts, pem, runtime);
}

class PhysicalImporter implements ImporterConnector {
  readonly #opts: ParsedConn;
  readonly #pem: PemFiles;
  readonly #runtime: Runtime;
  readonly #started = new Date();

  constructor(opts: ParsedConn, pem: PemFiles, runtime: Runtime) {
    this.#opts = opts;
    this.#pem = pem;
    this.#runtime = runtime;
  }

  info() {
    return physicalInfo(this.#opts.conn.host, "postgresql+bin");
  }

  policy() {
    return PHYSICAL_POLICY;
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
      runtime: this.#runtime,
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
      yield manifestEntry(bytes, this.#started);
    } finally {
      // Left before the archive was read (or it was): stops the tool, if still running.
      await tool.cancel().catch(() => {});
    }
  }

  async close(): Promise<void> {
    await this.#pem.remove();
  }
}
