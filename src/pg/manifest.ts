// /manifest.json (schema version 2): cluster metadata captured when the
// backup starts, with the reference integration's field names so that tools
// reading either integration's manifests read ours. Collection is best
// effort: a query that fails leaves its field out with one warning line.
// It never holds a secret (no passwords, no archive_command, no DSN).
//
// Detailing a database needs a connection to it, and on a cluster of many
// small databases those connections are most of the manifest's cost: each
// database gets exactly one, reused for its three sections, and a few
// databases are detailed at a time (DETAIL_CONCURRENCY), so that the
// server's cores work in parallel instead of one backend at a time.

import {
  type ClusterConfig,
  clusterConfig,
  type DatabaseInfo,
  databases,
  extensions,
  relations,
  type Role,
  roles,
  schemas,
  type Tablespace,
  tablespaces,
} from "./catalog.ts";
import { catalogLockTimeout, connect, withClient } from "./client.ts";
import type { ConnConfig } from "./conn.ts";
import type pg from "pg";
import { warn as warnLine } from "../log.ts";
import { oneLine } from "../errors.ts";
import { mapConcurrent } from "../proc/semaphore.ts";

/** How many databases are detailed at once (one connection each). */
export const DETAIL_CONCURRENCY = 4;

/** How many relations the lock warning names before "and N more". */
const LOCKED_NAMED = 5;

/** A database a full backup leaves out, and why. */
export interface SkippedDatabase {
  name: string;
  /** `excluded` (named in exclude_databases) or `datallowconn=false` (cannot be connected to). */
  reason: "excluded" | "datallowconn=false";
}

/**
 * Which databases a full backup dumps (in file-number order) and which it
 * skips. `all` is every database of the cluster in `COLLATE "C"` order.
 * A database that is both excluded and closed to connections is "excluded":
 * the user's choice is the reason that matters. template0 is listed like any
 * other closed database, so that the manifest accounts for every database of
 * the cluster; callers leave it out of warnings (it never allows connections).
 */
export function planDatabases(
  all: { name: string; allowConn: boolean }[],
  excludeDatabases: string[] = [],
): { dump: string[]; skipped: SkippedDatabase[] } {
  const exclude = new Set(excludeDatabases);
  const dump: string[] = [];
  const skipped: SkippedDatabase[] = [];
  for (const d of all) {
    if (exclude.has(d.name)) skipped.push({ name: d.name, reason: "excluded" });
    else if (!d.allowConn) skipped.push({ name: d.name, reason: "datallowconn=false" });
    else dump.push(d.name);
  }
  return { dump, skipped };
}

export interface ManifestRequest {
  conn: ConnConfig;
  connector: string;
  database?: string;
  excludeDatabases?: string[];
  /** Written as `skipped_databases` (full backups: see planDatabases). */
  skippedDatabases?: SkippedDatabase[];
  dumpFormat: string;
  options?: Record<string, boolean>;
  /** pg_bin_dir: the tools' directory, when not PATH's (set, or found by pg_bin_search). */
  toolVersion?: { pg_dump_version?: string; pg_basebackup_version?: string; pg_bin_dir?: string };
  warn?: (line: string) => void;
}

export interface Manifest {
  version: 2;
  created_at: string;
  connector: string;
  host: string;
  port: string;
  server_version: string;
  server_version_num: number;
  pg_dump_version?: string;
  pg_basebackup_version?: string;
  /** Not in the reference integration's manifest: where the tools came from, when not PATH. */
  pg_bin_dir?: string;
  cluster_system_identifier?: string;
  in_recovery: boolean;
  database?: string;
  dump_format: string;
  options?: Record<string, boolean>;
  cluster_config?: ClusterConfig;
  roles?: Role[];
  tablespaces?: Tablespace[];
  databases?: DatabaseInfo[];
  /** Not in the reference integration's manifest: what a full backup left out, and why. */
  skipped_databases?: SkippedDatabase[];
  /** postgres+bin only (not in the reference integration's manifest): the copy holds standby.signal. */
  standby_signal?: boolean;
  /** postgres+bin only: the copy's configuration files that set primary_conninfo. */
  primary_conninfo_files?: string[];
  /** postgres+bin only: a primary_conninfo in the copy carries a password (never the password itself). */
  primary_conninfo_has_password?: boolean;
}

/** The bytes of /manifest.json: the manifest as indented JSON, one newline at the end. */
export function manifestBytes(manifest: Manifest): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
}

/** Builds the manifest from the catalog. The connection failing throws; a query failing omits a field. */
export async function buildManifest(req: ManifestRequest): Promise<Manifest> {
  const warn = req.warn ?? ((l: string) => warnLine(`manifest: ${l}`));
  return await withClient(req.conn, req.database ?? "postgres", async (client) => {
    const m = await manifestHead(client, req);
    const versionNum = m.server_version_num;
    // Best effort: each section on its own, a failure leaves it out.
    const section = <T>(field: string, fn: () => Promise<T>) => bestEffort(warn, field, fn);
    const sysid = await section(
      "cluster_system_identifier",
      () =>
        client.query<{ id: string }>(
          "SELECT system_identifier::text AS id FROM pg_control_system()",
        ),
    );
    if (sysid) m.cluster_system_identifier = sysid.rows[0].id;
    const rec = await section(
      "in_recovery",
      () => client.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r"),
    );
    if (rec) m.in_recovery = rec.rows[0].r;
    if (req.database) m.database = req.database;
    if (req.options) m.options = req.options;
    const config = await section("cluster_config", () => clusterConfig(client, versionNum, warn));
    if (config) m.cluster_config = config;
    const r = await section("roles", () => roles(client));
    if (r) m.roles = r;
    const t = await section("tablespaces", () => tablespaces(client));
    if (t) m.tablespaces = t;
    const all = await section("databases", () => databases(client));
    if (all) m.databases = await detailDatabases(req, client, all, versionNum, warn);
    if (req.skippedDatabases) m.skipped_databases = req.skippedDatabases;
    return m;
  }, connect);
}

/** The manifest's fields that do not depend on a catalog query succeeding: the server's version and the request's. */
async function manifestHead(client: pg.Client, req: ManifestRequest): Promise<Manifest> {
  const v = await client.query<{ v: string; n: string }>(
    "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
  );
  return {
    version: 2,
    created_at: new Date().toISOString(),
    connector: req.connector,
    host: req.conn.host,
    port: String(req.conn.port),
    server_version: v.rows[0].v,
    server_version_num: Number(v.rows[0].n),
    ...req.toolVersion,
    in_recovery: false,
    dump_format: req.dumpFormat,
  };
}

/** `fn`'s value, or undefined with a warning naming the manifest field it was for. */
async function bestEffort<T>(
  warn: (l: string) => void,
  field: string,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    warn(`${field} left out: ${oneLine((e as Error).message)}`);
    return undefined;
  }
}

/**
 * The databases the manifest details (the one requested, or all but the
 * excluded), each detailed on a connection of its own; warns when some
 * were locked.
 */
async function detailDatabases(
  req: ManifestRequest,
  client: pg.Client,
  all: DatabaseInfo[],
  versionNum: number,
  warn: (l: string) => void,
): Promise<DatabaseInfo[]> {
  // libpq, with sslmode prefer, hears "no TLS" from the server and goes on
  // in cleartext on the same connection; npm:pg has to open a second one.
  // Once this connection has learnt that the server has no TLS, the
  // per-database connections go straight to cleartext: one connection per
  // database, as pg_dump's.
  const detailConn: ConnConfig = req.conn.sslMode === "prefer" && !usesTls(client)
    ? { ...req.conn, sslMode: "disable" }
    : req.conn;
  const exclude = new Set(req.excludeDatabases ?? []);
  const chosen = all.filter((d) => req.database ? d.name === req.database : !exclude.has(d.name));
  await mapConcurrent(
    chosen,
    DETAIL_CONCURRENCY,
    (d) => detailDatabase(detailConn, d, versionNum, warn),
  );
  const locked = lockedWarning(chosen, catalogLockTimeout(req.conn));
  if (locked) warn(locked);
  return chosen;
}

/** Extensions, schemas and relations of one database (its own connection). */
async function detailDatabase(
  conn: ConnConfig,
  d: DatabaseInfo,
  versionNum: number,
  warn: (l: string) => void,
): Promise<void> {
  // Only connecting can throw here: each section catches its own failure.
  await withClient(conn, d.name, async (client) => {
    for (
      const [field, fn] of [
        ["extensions", () => extensions(client)],
        ["schemas", () => schemas(client)],
        ["relations", () => relations(client, versionNum)],
      ] as const
    ) {
      try {
        const value = await fn();
        if (value && value.length) (d as unknown as Record<string, unknown>)[field] = value;
      } catch (e) {
        warn(
          `databases[${JSON.stringify(d.name)}].${field} left out: ${
            oneLine((e as Error).message)
          }`,
        );
      }
    }
  }, connect).catch((e) => {
    warn(
      `details of database ${JSON.stringify(d.name)} left out: ${oneLine((e as Error).message)}`,
    );
  });
}

/**
 * One line for every relation whose detail a lock kept out of the manifest
 * (catalog.ts relations()), or undefined when there is none: said once per
 * backup, not once per table or database.
 */
export function lockedWarning(dbs: DatabaseInfo[], lockTimeout: string): string | undefined {
  const names = dbs.flatMap((d) =>
    (d.relations ?? []).filter((r) => r.detail_left_out).map((r) =>
      `${r.schema}.${r.name} in database ${JSON.stringify(d.name)}`
    )
  );
  if (names.length === 0) return undefined;
  const more = names.length > LOCKED_NAMED ? ` and ${names.length - LOCKED_NAMED} more` : "";
  return `column defaults and indexes of ${
    names.slice(0, LOCKED_NAMED).join(", ")
  }${more} left out (detail_left_out): another session held a conflicting lock (ALTER TABLE, VACUUM FULL, LOCK TABLE...) for longer than lock_timeout=${lockTimeout}`;
}

/** Whether a connected client talks TLS (npm:pg keeps `ssl: false` for a cleartext one). */
function usesTls(client: { ssl?: unknown }): boolean {
  return client.ssl !== false && client.ssl !== undefined;
}
