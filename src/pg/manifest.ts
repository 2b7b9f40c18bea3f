// /manifest.json (schema version 2): cluster metadata captured when the
// backup starts, with the reference integration's field names so that tools
// reading either integration's manifests read ours. Collection is best
// effort: a query that fails leaves its field out with one warning line.
// It never holds a secret (no passwords, no archive_command, no DSN).

import type pg from "pg";
import { connect } from "./client.ts";
import type { ConnConfig } from "./conn.ts";
import { warn as warnLine } from "./log.ts";
import { toolVersionLine } from "./tools.ts";

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
  [field: string]: unknown;
}

/** The tool's --version line (kept for callers of the manifest API). */
export function toolVersion(bin: string): Promise<string> {
  return toolVersionLine(bin);
}

/** Builds the manifest from the catalog. The connection failing throws; a query failing omits a field. */
export async function buildManifest(req: ManifestRequest): Promise<Manifest> {
  const warn = req.warn ?? ((l: string) => warnLine(`manifest: ${l}`));
  const client = await connect(req.conn, req.database ?? "postgres");
  try {
    const one = async <T>(field: string, sql: string): Promise<T | undefined> => {
      try {
        const r = await client.query(sql);
        return r.rows[0] as T;
      } catch (e) {
        warn(`${field} left out: ${(e as Error).message}`);
        return undefined;
      }
    };
    const v = await client.query<{ v: string; n: string }>(
      "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
    );
    const m: Manifest = {
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
    const sysid = await one<{ id: string }>(
      "cluster_system_identifier",
      "SELECT system_identifier::text AS id FROM pg_control_system()",
    );
    if (sysid) m.cluster_system_identifier = sysid.id;
    const rec = await one<{ r: boolean }>("in_recovery", "SELECT pg_is_in_recovery() AS r");
    if (rec) m.in_recovery = rec.r;
    if (req.database) m.database = req.database;
    if (req.options) m.options = req.options;
    await addDatabases(client, m, req, warn);
    return m;
  } finally {
    await client.end().catch(() => {});
  }
}

async function addDatabases(
  client: pg.Client,
  m: Manifest,
  req: ManifestRequest,
  warn: (l: string) => void,
): Promise<void> {
  try {
    const r = await client.query(
      `SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner,
              pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collation,
              d.datctype AS ctype, d.datallowconn AS allow_conn, d.datistemplate AS is_template,
              t.spcname AS default_tablespace, d.datconnlimit AS connection_limit
         FROM pg_database d LEFT JOIN pg_tablespace t ON t.oid = d.dattablespace
        WHERE d.datallowconn AND NOT d.datistemplate
        ORDER BY d.datname COLLATE "C"`,
    );
    const exclude = new Set(req.excludeDatabases ?? []);
    m.databases = r.rows.filter((d) =>
      req.database ? d.name === req.database : !exclude.has(d.name)
    );
  } catch (e) {
    warn(`databases left out: ${(e as Error).message}`);
  }
}
