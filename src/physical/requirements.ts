// What a physical backup needs from the server, checked before copying and
// by Ping, each failure naming the setting to change: wal_level, the
// REPLICATION attribute, a free WAL sender, a pg_hba.conf line admitting a
// replication connection, a pg_basebackup at least as new as the server, and
// no tablespace outside the data directory (pg_basebackup writes only one
// tablespace to a stream, and a snapshot must never silently lack one).

// @ts-types="@types/pg"
import type pg from "pg";
import type { ConnConfig } from "../pg/conn.ts";
import { openReplication } from "./replication.ts";
import { serverMajor } from "../pg/tool_search.ts";

/** What the catalog says about the server and the backup user. */
export interface ServerFacts {
  serverVersionNum: number;
  walLevel: string;
  user: string;
  superuser: boolean;
  replication: boolean;
  maxWalSenders: number;
  usedWalSenders: number;
  /** Tablespaces other than pg_default and pg_global, by name. */
  tablespaces: string[];
}

/** Reads the facts on an open catalog connection. */
export async function serverFacts(client: pg.Client): Promise<ServerFacts> {
  const s = await client.query<{
    v: string;
    wal_level: string;
    max_wal_senders: string;
    u: string;
    rolsuper: boolean;
    rolreplication: boolean;
  }>(
    `SELECT current_setting('server_version_num') AS v,
            current_setting('wal_level') AS wal_level,
            current_setting('max_wal_senders') AS max_wal_senders,
            current_user AS u, r.rolsuper, r.rolreplication
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const used = await client.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_replication",
  );
  const ts = await client.query<{ spcname: string }>(
    `SELECT spcname FROM pg_tablespace
      WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY spcname`,
  );
  const row = s.rows[0];
  return {
    serverVersionNum: Number(row.v),
    walLevel: row.wal_level,
    user: row.u,
    superuser: row.rolsuper,
    replication: row.rolreplication,
    maxWalSenders: Number(row.max_wal_senders),
    usedWalSenders: used.rows[0].n,
    tablespaces: ts.rows.map((r) => r.spcname),
  };
}

/** The one-line refusal for a cluster with tablespaces, or undefined. */
export function tablespaceProblem(tablespaces: string[]): string | undefined {
  if (tablespaces.length === 0) return undefined;
  return `the cluster has tablespaces outside the data directory (${
    tablespaces.map((t) => JSON.stringify(t)).join(", ")
  }) and pg_basebackup can write only one tablespace to a stream: back this cluster up with a logical backup (postgres://) instead`;
}

/** The tool-version refusal, or undefined when the tool can copy the server. */
export function versionProblem(
  toolMajorVersion: number | undefined,
  toolLine: string,
  serverVersionNum: number,
): string | undefined {
  const server = serverMajor(serverVersionNum);
  if (toolMajorVersion === undefined || toolMajorVersion >= server) return undefined;
  return `${toolLine} cannot copy a PostgreSQL ${server} server: install the client tools of major ${server} or newer and set pg_bin_dir`;
}

/** Every catalog-visible problem of a copy, each naming what to change. */
export function requirementProblems(f: ServerFacts): string[] {
  const problems = replicationProblems(f);
  const ts = tablespaceProblem(f.tablespaces);
  if (ts) problems.push(ts);
  return problems;
}

/** What keeps a replication connection from streaming: wal_level, the attribute, a free WAL sender. */
export function replicationProblems(f: ServerFacts): string[] {
  const problems: string[] = [];
  if (f.walLevel !== "replica" && f.walLevel !== "logical") {
    problems.push(
      `wal_level is ${f.walLevel}: set wal_level = replica (or logical) in postgresql.conf and restart the server`,
    );
  }
  if (!f.superuser && !f.replication) {
    problems.push(
      `user ${JSON.stringify(f.user)} lacks the REPLICATION attribute: ALTER ROLE ${
        quoteIdent(f.user)
      } REPLICATION`,
    );
  }
  if (f.maxWalSenders - f.usedWalSenders < 1) {
    problems.push(
      `no free WAL sender (max_wal_senders = ${f.maxWalSenders}, ${f.usedWalSenders} in use): raise max_wal_senders and restart the server`,
    );
  }
  return problems;
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/**
 * Opens a physical replication connection, as pg_basebackup does, and runs
 * IDENTIFY_SYSTEM: proves pg_hba.conf admits it. Rejects naming pg_hba.conf
 * when the server refuses.
 */
export async function tryReplicationConnection(conn: ConnConfig): Promise<void> {
  const client = await openReplication(conn);
  try {
    await client.query("IDENTIFY_SYSTEM");
  } finally {
    await client.end().catch(() => {});
  }
}
