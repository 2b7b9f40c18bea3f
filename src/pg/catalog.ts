// Catalog queries behind manifest.json, one function per section. Each works
// on every supported server major (13-18): where a catalog column or setting
// moved, the query adapts to server_version_num instead of failing.

// @ts-types="@types/pg"
import type pg from "pg";

export interface ClusterConfig {
  data_directory?: string;
  timezone?: string;
  max_connections?: number;
  wal_level?: string;
  server_encoding?: string;
  data_checksums: boolean;
  block_size?: number;
  wal_block_size?: number;
  shared_preload_libraries?: string;
  lc_collate?: string;
  lc_ctype?: string;
  archive_mode?: string;
  archive_command_set: boolean;
}

export interface Role {
  name: string;
  superuser: boolean;
  replication: boolean;
  can_login: boolean;
  create_db: boolean;
  create_role: boolean;
  inherit: boolean;
  bypass_rls: boolean;
  connection_limit: number;
  valid_until: string | null;
  member_of?: string[];
}

export interface Tablespace {
  name: string;
  owner: string;
  location: string;
  options?: string[];
}

export interface Column {
  position: number;
  name: string;
  type: string;
  nullable: boolean;
  default?: string;
}

export interface Constraint {
  name: string;
  type: string;
  columns?: string[];
}

export interface Index {
  name: string;
  method: string;
  definition: string;
  is_unique: boolean;
  is_primary: boolean;
  is_valid: boolean;
  is_partial: boolean;
  constraint_name?: string;
}

export interface Relation {
  schema: string;
  name: string;
  owner: string;
  persistence: string;
  kind: string;
  tablespace?: string;
  row_estimate: number;
  live_row_estimate: number;
  column_count: number;
  has_primary_key: boolean;
  has_triggers: boolean;
  rls_enabled: boolean;
  rls_forced: boolean;
  is_partition: boolean;
  partition_parent?: string;
  partition_strategy?: string;
  storage_options?: string[];
  last_vacuum: string | null;
  last_analyze: string | null;
  columns?: Column[];
  constraints?: Constraint[];
  indexes?: Index[];
  /**
   * Not in the reference integration's manifest: what was not read because
   * another session held a lock on the relation for longer than lock_timeout
   * (the columns' defaults, the indexes).
   */
  detail_left_out?: LockedDetail[];
}

/** Detail of a relation that is read under a lock on it (see relations()). */
export type LockedDetail = "columns.default" | "indexes";

export interface DatabaseInfo {
  name: string;
  owner: string;
  encoding: string;
  collate: string;
  /** The reference integration's manifest name for `collate`. */
  collation: string;
  ctype: string;
  allow_conn: boolean;
  is_template: boolean;
  default_tablespace?: string;
  connection_limit: number;
  extensions?: { name: string; version: string; schema: string }[];
  schemas?: { name: string; owner: string }[];
  relations?: Relation[];
}

const iso = (v: unknown): string | null =>
  v instanceof Date ? v.toISOString() : v ? String(v) : null;

/** Settings by name; a setting the role may not read (data_directory) is left out. */
export async function clusterConfig(
  c: pg.Client,
  versionNum: number,
  warn: (l: string) => void,
): Promise<ClusterConfig> {
  const names = [
    "data_directory",
    "TimeZone",
    "max_connections",
    "wal_level",
    "server_encoding",
    "data_checksums",
    "block_size",
    "wal_block_size",
    "shared_preload_libraries",
    "archive_mode",
    "archive_command",
  ];
  // lc_collate and lc_ctype stopped being settings in PostgreSQL 16.
  if (versionNum < 160000) names.push("lc_collate", "lc_ctype");
  const got = new Map<string, string | null>();
  for (const name of names) {
    try {
      const r = await c.query<{ v: string | null }>("SELECT current_setting($1, true) AS v", [
        name,
      ]);
      got.set(name, r.rows[0].v);
    } catch (e) {
      warn(`cluster_config.${name.toLowerCase()} left out: ${(e as Error).message}`);
    }
  }
  if (versionNum >= 160000) {
    const r = await c.query<{ collate: string; ctype: string }>(
      `SELECT datcollate AS collate, datctype AS ctype FROM pg_database WHERE datname = current_database()`,
    );
    got.set("lc_collate", r.rows[0]?.collate ?? null);
    got.set("lc_ctype", r.rows[0]?.ctype ?? null);
  }
  const str = (k: string) => got.get(k) ?? undefined;
  const num = (k: string) => (got.get(k) != null ? Number(got.get(k)) : undefined);
  return {
    data_directory: str("data_directory"),
    timezone: str("TimeZone"),
    max_connections: num("max_connections"),
    wal_level: str("wal_level"),
    server_encoding: str("server_encoding"),
    data_checksums: got.get("data_checksums") === "on",
    block_size: num("block_size"),
    wal_block_size: num("wal_block_size"),
    shared_preload_libraries: str("shared_preload_libraries"),
    lc_collate: str("lc_collate"),
    lc_ctype: str("lc_ctype"),
    archive_mode: str("archive_mode"),
    // The command itself can hold credentials: only whether it is set.
    archive_command_set: (got.get("archive_command") ?? "") !== "" &&
      got.get("archive_command") !== "(disabled)",
  };
}

export async function roles(c: pg.Client): Promise<Role[]> {
  const r = await c.query(
    `SELECT r.rolname, r.rolsuper, r.rolreplication, r.rolcanlogin, r.rolcreatedb, r.rolcreaterole,
            r.rolinherit, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil,
            ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                   WHERE m.member = r.oid ORDER BY g.rolname COLLATE "C") AS member_of
       FROM pg_roles r ORDER BY r.rolname COLLATE "C"`,
  );
  return r.rows.map((x) => ({
    name: x.rolname,
    superuser: x.rolsuper,
    replication: x.rolreplication,
    can_login: x.rolcanlogin,
    create_db: x.rolcreatedb,
    create_role: x.rolcreaterole,
    inherit: x.rolinherit,
    bypass_rls: x.rolbypassrls,
    connection_limit: x.rolconnlimit,
    valid_until: iso(x.rolvaliduntil),
    ...(x.member_of.length ? { member_of: x.member_of } : {}),
  }));
}

export async function tablespaces(c: pg.Client): Promise<Tablespace[]> {
  const r = await c.query(
    `SELECT spcname, pg_get_userbyid(spcowner) AS owner, pg_tablespace_location(oid) AS location,
            spcoptions FROM pg_tablespace ORDER BY spcname COLLATE "C"`,
  );
  return r.rows.map((x) => ({
    name: x.spcname,
    owner: x.owner,
    location: x.location ?? "",
    ...(x.spcoptions ? { options: x.spcoptions } : {}),
  }));
}

/** The databases a backup details: connectable, not templates. */
export async function databases(c: pg.Client): Promise<DatabaseInfo[]> {
  const r = await c.query(
    `SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding,
            d.datcollate, d.datctype, d.datallowconn, d.datistemplate, t.spcname, d.datconnlimit
       FROM pg_database d LEFT JOIN pg_tablespace t ON t.oid = d.dattablespace
      WHERE d.datallowconn AND NOT d.datistemplate
      ORDER BY d.datname COLLATE "C"`,
  );
  return r.rows.map((x) => ({
    name: x.datname,
    owner: x.owner,
    encoding: x.encoding,
    collate: x.datcollate,
    collation: x.datcollate,
    ctype: x.datctype,
    allow_conn: x.datallowconn,
    is_template: x.datistemplate,
    ...(x.spcname ? { default_tablespace: x.spcname } : {}),
    connection_limit: x.datconnlimit,
  }));
}

export async function extensions(c: pg.Client): Promise<DatabaseInfo["extensions"]> {
  const r = await c.query(
    `SELECT e.extname, e.extversion, n.nspname FROM pg_extension e
       JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY e.extname COLLATE "C"`,
  );
  return r.rows.map((x) => ({ name: x.extname, version: x.extversion, schema: x.nspname }));
}

const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;

export async function schemas(c: pg.Client): Promise<DatabaseInfo["schemas"]> {
  const r = await c.query(
    `SELECT n.nspname, pg_get_userbyid(n.nspowner) AS owner FROM pg_namespace n
      WHERE ${USER_SCHEMAS} ORDER BY n.nspname COLLATE "C"`,
  );
  return r.rows.map((x) => ({ name: x.nspname, owner: x.owner }));
}

/**
 * The relation kinds pg_stat_all_tables lists (partitioned tables since
 * PostgreSQL 14). Its columns are calls of the pg_stat_get_* functions on
 * these kinds; calling them directly gives the same values and spares the
 * server planning the view (a GROUP BY over every relation of the catalog)
 * in every database a manifest details.
 */
function statsKinds(versionNum: number): string {
  return versionNum >= 140000
    ? "c.relkind IN ('r', 't', 'm', 'p')"
    : "c.relkind IN ('r', 't', 'm')";
}

/** SQLSTATE lock_not_available: a statement ran out of lock_timeout. */
const LOCK_NOT_AVAILABLE = "55P03";

/**
 * How many times relations() reads the catalog when lock_timeout runs out,
 * so that it waits at most this many lock_timeouts in all: a lock taken
 * while the first read waited may be met once more.
 */
const LOCKED_ATTEMPTS = 3;

/**
 * Tables, partitioned and foreign tables, views, materialized views and
 * sequences. Deparsing a column default (pg_get_expr) or an index
 * (pg_get_indexdef) takes an ACCESS SHARE lock on the table; when another
 * session holds a conflicting lock for longer than the session's
 * lock_timeout, the tables other sessions lock are found in pg_locks and the
 * catalog is read again without deparsing theirs (detail_left_out).
 */
export async function relations(c: pg.Client, versionNum: number): Promise<Relation[]> {
  const locked = new Set<number>();
  for (let attempt = 1;; attempt++) {
    try {
      return await readRelations(c, versionNum, locked);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== LOCK_NOT_AVAILABLE || attempt >= LOCKED_ATTEMPTS) throw e;
      for (const oid of await lockedTables(c)) locked.add(oid);
    }
  }
}

/**
 * Tables of this database on which another session holds or awaits ACCESS
 * EXCLUSIVE, the only mode that conflicts with ACCESS SHARE (an index's lock
 * counts for its table). An awaited one blocks too: a lock request queues
 * behind every earlier conflicting one.
 */
async function lockedTables(c: pg.Client): Promise<number[]> {
  const r = await c.query<{ oid: number }>(
    `SELECT DISTINCT COALESCE(i.indrelid, l.relation) AS oid
       FROM pg_locks l LEFT JOIN pg_index i ON i.indexrelid = l.relation
      WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
        AND l.pid <> pg_backend_pid()
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  return r.rows.map((x) => Number(x.oid));
}

/** One read of relations(); the tables in `locked` are not deparsed (CASE skips the call). */
async function readRelations(
  c: pg.Client,
  versionNum: number,
  locked: ReadonlySet<number>,
): Promise<Relation[]> {
  const lockedOids = [...locked];
  const rels = await c.query(relationsQuery(statsKinds(versionNum)));
  const cols = await c.query(COLUMNS_QUERY, [lockedOids]);
  const cons = await c.query(CONSTRAINTS_QUERY);
  const idx = await c.query(INDEXES_QUERY, [lockedOids]);
  // What was left out, by table: defaults and indexes that exist but were not deparsed.
  const leftOut = new Map<number, Set<LockedDetail>>();
  const leave = (oid: number, what: LockedDetail) =>
    leftOut.set(oid, (leftOut.get(oid) ?? new Set()).add(what));
  for (const x of cols.rows) if (x.dflt_left_out) leave(x.oid, "columns.default");
  const idxRows = idx.rows.filter((x) => {
    if (!x.def_left_out) return true;
    leave(x.oid, "indexes");
    return false;
  });
  const details: RelationDetails = {
    columns: groupByOid(cols.rows, columnFromRow),
    constraints: groupByOid(cons.rows, constraintFromRow),
    indexes: groupByOid(idxRows, indexFromRow),
    leftOut,
  };
  return rels.rows.map((x) => relationFromRow(x, details));
}

/** Relations of the user's schemas; `stats` says whose statistics may be read (statsKinds). */
const relationsQuery = (stats: string) =>
  `SELECT c.oid, n.nspname, c.relname, pg_get_userbyid(c.relowner) AS owner, c.relpersistence,
            c.relkind::text AS relkind, ts.spcname, c.reltuples::float8 AS reltuples,
            (CASE WHEN ${stats} THEN pg_stat_get_live_tuples(c.oid) ELSE 0 END)::float8 AS n_live_tup,
            (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
               AND NOT a.attisdropped)::int AS column_count,
            EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS has_pk,
            c.relhastriggers, c.relrowsecurity, c.relforcerowsecurity, c.relispartition,
            (SELECT pn.nspname || '.' || p.relname FROM pg_inherits i
               JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
              WHERE i.inhrelid = c.oid AND c.relispartition LIMIT 1) AS parent,
            (SELECT CASE pt.partstrat WHEN 'r' THEN 'range' WHEN 'l' THEN 'list' WHEN 'h' THEN 'hash' END
               FROM pg_partitioned_table pt WHERE pt.partrelid = c.oid) AS strategy,
            c.reloptions,
            CASE WHEN ${stats} THEN GREATEST(pg_stat_get_last_vacuum_time(c.oid),
              pg_stat_get_last_autovacuum_time(c.oid)) END AS last_vacuum,
            CASE WHEN ${stats} THEN GREATEST(pg_stat_get_last_analyze_time(c.oid),
              pg_stat_get_last_autoanalyze_time(c.oid)) END AS last_analyze
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
      WHERE c.relkind IN ('r', 'p', 'f', 'm', 'v', 'S') AND ${USER_SCHEMAS}
      ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`;

/** Columns of those relations; a locked table's defaults are not deparsed ($1: their oids). */
const COLUMNS_QUERY =
  `SELECT a.attrelid AS oid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
            NOT a.attnotnull AS nullable,
            CASE WHEN a.attrelid = ANY($1::oid[]) THEN NULL
                 ELSE pg_get_expr(d.adbin, d.adrelid) END AS dflt,
            a.attrelid = ANY($1::oid[]) AND d.adbin IS NOT NULL AS dflt_left_out
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'm', 'v', 'S')
        AND ${USER_SCHEMAS}
      ORDER BY a.attrelid, a.attnum`;

/** Constraints of those relations, with their columns in key order. */
const CONSTRAINTS_QUERY = `SELECT k.conrelid AS oid, k.conname, k.contype::text AS contype,
            ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i)
              AS columns
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_SCHEMAS}
      ORDER BY k.conrelid, k.conname COLLATE "C"`;

/** Indexes of those relations; a locked table's are not deparsed ($1: their oids). */
const INDEXES_QUERY = `SELECT i.indrelid AS oid, ic.relname, am.amname,
            CASE WHEN i.indrelid = ANY($1::oid[]) THEN NULL
                 ELSE pg_get_indexdef(i.indexrelid) END AS def,
            i.indrelid = ANY($1::oid[]) AS def_left_out,
            i.indisunique, i.indisprimary, i.indisvalid, i.indpred IS NOT NULL AS partial,
            (SELECT k.conname FROM pg_constraint k WHERE k.conindid = i.indexrelid
               AND k.conrelid = i.indrelid LIMIT 1) AS conname
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
       JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_SCHEMAS}
      ORDER BY i.indrelid, ic.relname COLLATE "C"`;

/** A relation's columns, constraints and indexes by its oid, and what was left out of them. */
interface RelationDetails {
  columns: Map<number, Column[]>;
  constraints: Map<number, Constraint[]>;
  indexes: Map<number, Index[]>;
  leftOut: Map<number, Set<LockedDetail>>;
}

/** Rows by their `oid`, each mapped, in the rows' order. */
function groupByOid<T>(
  rows: { oid: number }[],
  map: (r: Record<string, unknown>) => T,
): Map<number, T[]> {
  const m = new Map<number, T[]>();
  for (const r of rows) {
    const list = m.get(r.oid) ?? [];
    list.push(map(r as unknown as Record<string, unknown>));
    m.set(r.oid, list);
  }
  return m;
}

const columnFromRow = (x: Record<string, unknown>): Column => ({
  position: x.attnum as number,
  name: x.attname as string,
  type: x.type as string,
  nullable: x.nullable as boolean,
  ...(x.dflt != null ? { default: x.dflt as string } : {}),
});

const constraintFromRow = (x: Record<string, unknown>): Constraint => ({
  name: x.conname as string,
  type: x.contype as string,
  ...((x.columns as string[]).length ? { columns: x.columns as string[] } : {}),
});

const indexFromRow = (x: Record<string, unknown>): Index => ({
  name: x.relname as string,
  method: x.amname as string,
  definition: x.def as string,
  is_unique: x.indisunique as boolean,
  is_primary: x.indisprimary as boolean,
  is_valid: x.indisvalid as boolean,
  is_partial: x.partial as boolean,
  ...(x.conname ? { constraint_name: x.conname as string } : {}),
});

/** A row of relationsQuery with its details, as the manifest records it. */
// deno-lint-ignore no-explicit-any
function relationFromRow(x: any, details: RelationDetails): Relation {
  const columns = details.columns.get(x.oid);
  const constraints = details.constraints.get(x.oid);
  const indexes = details.indexes.get(x.oid);
  const left = details.leftOut.get(x.oid);
  return {
    schema: x.nspname,
    name: x.relname,
    owner: x.owner,
    persistence: x.relpersistence,
    kind: x.relkind,
    ...(x.spcname ? { tablespace: x.spcname } : {}),
    // reltuples is -1 for a never-analyzed table since PostgreSQL 14.
    row_estimate: Math.max(0, Math.round(x.reltuples)),
    live_row_estimate: Math.round(x.n_live_tup),
    column_count: x.column_count,
    has_primary_key: x.has_pk,
    has_triggers: x.relhastriggers,
    rls_enabled: x.relrowsecurity,
    rls_forced: x.relforcerowsecurity,
    is_partition: x.relispartition,
    ...(x.parent ? { partition_parent: x.parent } : {}),
    ...(x.strategy ? { partition_strategy: x.strategy } : {}),
    ...(x.reloptions ? { storage_options: x.reloptions } : {}),
    last_vacuum: iso(x.last_vacuum),
    last_analyze: iso(x.last_analyze),
    ...(columns ? { columns } : {}),
    ...(constraints ? { constraints } : {}),
    ...(indexes ? { indexes } : {}),
    ...(left ? { detail_left_out: [...left].sort() } : {}),
  };
}
