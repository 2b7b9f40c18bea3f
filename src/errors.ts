// Errors every layer shares. Each failure we raise says what kind of failure
// it is (the kinds are gRPC's status codes by name, since that is where they
// end: src/kloset/errors.ts maps a kind to its code at the protocol
// boundary), with the PostgreSQL SQLSTATE where the server gave one, and the
// cause. The PostgreSQL side and the protocol layer both use them, so they
// live here, apart from both.

/** What kind of failure an error is. */
export type ErrorKind =
  /** A bad option, or snapshot content that is refused. */
  | "invalid-argument"
  /** A database, role or file that is not there. */
  | "not-found"
  /** The server refused the credentials (or no credentials could be had). */
  | "unauthenticated"
  /** Authenticated, but not allowed. */
  | "permission-denied"
  /** The server cannot be reached now: refused, timed out, gone. */
  | "unavailable"
  /** The server or this host is not set up for the operation (tools, wal_level, TLS, disk). */
  | "failed-precondition"
  /** A conflict with another session (a lock held past lock_timeout). */
  | "aborted"
  /** The server ran out of something (lock table, connections, disk). */
  | "resource-exhausted"
  /** A damaged or truncated dump. */
  | "data-loss"
  /** The operation was cancelled. */
  | "cancelled"
  /** Anything else. */
  | "unknown";

export interface PluginErrorOptions extends ErrorOptions {
  /** The SQLSTATE the server reported, when it did. */
  sqlstate?: string;
}

/** The common shape of our errors: a kind, the server's SQLSTATE if any, the cause. */
export class PluginError extends Error {
  readonly kind: ErrorKind;
  readonly sqlstate?: string;
  constructor(kind: ErrorKind, message: string, options?: PluginErrorOptions) {
    super(message, options);
    this.name = "PluginError";
    this.kind = kind;
    if (options?.sqlstate) this.sqlstate = options.sqlstate;
  }
}

/** A configuration error: names the option. */
export class ConfigError extends PluginError {
  readonly option: string;
  constructor(option: string, message: string) {
    super("invalid-argument", `${option}: ${message}`);
    this.name = "ConfigError";
    this.option = option;
  }
}

/** The kind a SQLSTATE means (PostgreSQL's errcodes.txt classes), "unknown" for the rest. */
export function kindOfSqlstate(sqlstate: string | undefined): ErrorKind {
  if (!sqlstate) return "unknown";
  const exact: Record<string, ErrorKind> = {
    "42501": "permission-denied", // insufficient_privilege
    "3D000": "not-found", // invalid_catalog_name (no such database)
    "42P01": "not-found", // undefined_table
    "42704": "not-found", // undefined_object (a role, a type)
    "55P03": "aborted", // lock_not_available
    "40001": "aborted", // serialization_failure
    "40P01": "aborted", // deadlock_detected
    "57014": "cancelled", // query_canceled
    "57P01": "unavailable", // admin_shutdown
    "57P02": "unavailable", // crash_shutdown
    "57P03": "unavailable", // cannot_connect_now (starting up)
    "XX001": "data-loss", // data_corrupted
    "XX002": "data-loss", // index_corrupted
  };
  if (exact[sqlstate]) return exact[sqlstate];
  const byClass: Record<string, ErrorKind> = {
    "08": "unavailable", // connection exception
    "28": "unauthenticated", // invalid authorization specification
    "53": "resource-exhausted", // insufficient resources
    "22": "invalid-argument", // data exception
  };
  return byClass[sqlstate.slice(0, 2)] ?? "unknown";
}

/** The kind of any thrown value: its own for our errors, from its SQLSTATE for a server's. */
export function kindOf(err: unknown): ErrorKind {
  if (err instanceof PluginError) return err.kind;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? kindOfSqlstate(code) : "unknown";
}

/** Collapses whitespace and newlines so a message stays on one line. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, " | ").replace(/\s+/g, " ").trim();
}
