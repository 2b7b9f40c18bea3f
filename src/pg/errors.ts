// Errors from the server side, phrased for the person who runs the backup:
// where we tried to connect, and the server's own reason, on one line and
// without secrets.

import type { ConnConfig } from "./conn.ts";
import { IAM_REFUSED_HINT, IamTokenError, isAuthRefused } from "./iam.ts";

/** A failure reported by (or about reaching) the PostgreSQL server. */
export class ServerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ServerError";
  }
}

/** "cannot connect to host:port (database "x") as user "u": <reason>" */
export function describeConnectError(conn: ConnConfig, database: string, err: unknown): string {
  // postgres+aws://: no token could be signed; that message says what to do.
  if (err instanceof IamTokenError) return err.message;
  const e = err as { message?: string; code?: string };
  let reason = e?.message ?? String(err);
  // postgres+aws://: a token was signed but the server would not take it.
  if (conn.passwordProvider && isAuthRefused(err)) reason = `${reason}; ${IAM_REFUSED_HINT}`;
  if (e?.code === "ECONNREFUSED") {
    reason = "connection refused (is the server running and listening on that port?)";
  }
  if (e?.code === "ENOTFOUND") reason = `host ${JSON.stringify(conn.host)} not found`;
  if (/timeout/i.test(reason)) reason = `timed out after ${conn.connectTimeout}s (${reason})`;
  if (conn.password) reason = reason.split(conn.password).join("***");
  const who = conn.username ? ` as user ${JSON.stringify(conn.username)}` : "";
  return `cannot connect to ${conn.host}:${conn.port} (database ${
    JSON.stringify(database)
  })${who}: ${reason.replace(/\s+/g, " ").trim()}`;
}
