// /manifest.json (schema version 2): cluster metadata captured when the
// backup starts, with the reference integration's field names so that tools
// reading either integration's manifests read ours. Collection is best
// effort: a query that fails leaves its field out with one warning line.
// It never holds a secret (no passwords, no archive_command, no DSN).

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
import { connect } from "./client.ts";
import type { ConnConfig } from "./conn.ts";
import { warn as warnLine } from "./log.ts";

export interface ManifestRequest {
  conn: ConnConfig;
  connector: string;
  database?: string;
  excludeDatabases?: string[];
  dumpFormat: string;
  options?: Record<string, boolean>;
  toolVersion?: { pg_dump_version?: string; pg_basebackup_version?: string };
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
  cluster_system_identifier?: string;
  in_recovery: boolean;
  database?: string;
  dump_format: string;
  options?: Record<string, boolean>;
  cluster_config?: ClusterConfig;
  roles?: Role[];
  tablespaces?: Tablespace[];
  databases?: DatabaseInfo[];
}

/** Builds the manifest from the catalog. The connection failing throws; a query failing omits a field. */
export async function buildManifest(req: ManifestRequest): Promise<Manifest> {
  const warn = req.warn ?? ((l: string) => warnLine(`manifest: ${l}`));
  const client = await connect(req.conn, req.database ?? "postgres");
  try {
    const v = await client.query<{ v: string; n: string }>(
      "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
    );
    const versionNum = Number(v.rows[0].n);
    const m: Manifest = {
      version: 2,
      created_at: new Date().toISOString(),
      connector: req.connector,
      host: req.conn.host,
      port: String(req.conn.port),
      server_version: v.rows[0].v,
      server_version_num: versionNum,
      ...req.toolVersion,
      in_recovery: false,
      dump_format: req.dumpFormat,
    };
    // Best effort: each section on its own, a failure leaves it out.
    const section = async <T>(field: string, fn: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await fn();
      } catch (e) {
        warn(`${field} left out: ${oneLine((e as Error).message)}`);
        return undefined;
      }
    };
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
    if (all) {
      const exclude = new Set(req.excludeDatabases ?? []);
      const chosen = all.filter((d) =>
        req.database ? d.name === req.database : !exclude.has(d.name)
      );
      for (const d of chosen) await detailDatabase(req.conn, d, warn);
      m.databases = chosen;
    }
    return m;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Extensions, schemas and relations of one database (its own connection). */
async function detailDatabase(
  conn: ConnConfig,
  d: DatabaseInfo,
  warn: (l: string) => void,
): Promise<void> {
  let client;
  try {
    client = await connect(conn, d.name);
  } catch (e) {
    warn(
      `details of database ${JSON.stringify(d.name)} left out: ${oneLine((e as Error).message)}`,
    );
    return;
  }
  try {
    for (
      const [field, fn] of [
        ["extensions", () => extensions(client)],
        ["schemas", () => schemas(client)],
        ["relations", () => relations(client)],
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
  } finally {
    await client.end().catch(() => {});
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}
