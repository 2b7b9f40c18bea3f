// A physical replication connection (the kind pg_basebackup and
// pg_receivewal open), for the replication commands the catalog cannot
// answer: the system identifier and current timeline (IDENTIFY_SYSTEM), and
// a timeline's history file (TIMELINE_HISTORY).

// @ts-types="@types/pg"
import pg from "pg";
import { currentPassword, pgSsl } from "../pg/client.ts";
import type { ConnConfig } from "../pg/conn.ts";
import { describeConnectError, ServerError, sqlstateOf, tlsFailure } from "../pg/errors.ts";
import { parseLsn } from "./wal_names.ts";

/** Opens a replication connection; rejects with the server's reason, naming pg_hba.conf when it refuses. */
export async function openReplication(conn: ConnConfig): Promise<pg.Client> {
  const base = {
    host: conn.host,
    port: conn.port,
    user: conn.username,
    password: await currentPassword(conn),
    connectionTimeoutMillis: conn.connectTimeout * 1000,
    application_name: "plakar-postgresql",
    replication: "true",
  };
  const attempt = async (ssl: false | Record<string, unknown>) => {
    const client = new pg.Client({ ...base, ssl } as pg.ClientConfig);
    client.on("error", () => {});
    try {
      await client.connect();
      return client;
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
  };
  try {
    const ssl = await pgSsl(conn);
    try {
      return await attempt(ssl);
    } catch (e) {
      if (conn.sslMode === "prefer" && tlsFailure(e) === "no-ssl") return await attempt(false);
      throw e;
    }
  } catch (e) {
    const msg = describeConnectError(conn, "replication", e);
    // 28000: no pg_hba.conf line lets this user replicate from here.
    const hba = sqlstateOf(e) === "28000"
      ? ': add a line such as "host replication <user> <client address> scram-sha-256" to pg_hba.conf and reload the server'
      : "";
    throw new ServerError(`replication connection refused: ${msg}${hba}`, { cause: e });
  }
}

/** What IDENTIFY_SYSTEM says. */
export interface SystemIdentity {
  systemIdentifier: bigint;
  timeline: number;
  /** The server's current WAL flush position. */
  flushLsn: bigint;
}

export async function identifySystem(client: pg.Client): Promise<SystemIdentity> {
  const r = await client.query<{ systemid: string; timeline: number | string; xlogpos: string }>(
    "IDENTIFY_SYSTEM",
  );
  const row = r.rows[0];
  return {
    systemIdentifier: BigInt(row.systemid),
    timeline: Number(row.timeline),
    flushLsn: parseLsn(row.xlogpos),
  };
}

/** A timeline's history file, as the server keeps it. */
export async function timelineHistory(
  client: pg.Client,
  tli: number,
): Promise<{ filename: string; content: Uint8Array }> {
  const r = await client.query<{ filename: string; content: string | Uint8Array }>(
    `TIMELINE_HISTORY ${tli}`,
  );
  const { filename, content } = r.rows[0];
  return {
    filename,
    content: typeof content === "string" ? new TextEncoder().encode(content) : content,
  };
}
