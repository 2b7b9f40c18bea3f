// The resolved connection to one PostgreSQL server, shared by every tool we
// run and by the catalog client. Built once from the URI and its overrides
// (see config.ts); the password travels only through the environment
// (PGPASSWORD) or the pg client's config, never through argv or a DSN. With
// no password, both sides take PGPASSWORD or libpq's password file
// (pgpass.ts), the same file and the same line.

import type { ClientChecks } from "./client.ts";

/** One resolved connection. */
export interface ConnConfig {
  host: string;
  port: number;
  /** Undefined: PGUSER, else the operating-system user (libpq's default). */
  username?: string;
  /** Undefined: PGPASSWORD, else the password file (~/.pgpass or PGPASSFILE). */
  password?: string;
  /** @default "prefer" */
  sslMode: SslMode;
  sslCert?: string;
  sslKey?: string;
  sslRootCert?: string;
  /**
   * Seconds allowed to connect (PGCONNECT_TIMEOUT, pg's connectionTimeoutMillis),
   * 1 to 86400 (config.ts checks the range). @default 10
   */
  connectTimeout: number;
  /**
   * lock_timeout of every catalog session (client.ts connect): how long a
   * catalog query may wait for a lock another session holds. A PostgreSQL
   * duration ("2s", "500ms", "5000"). Undefined: DEFAULT_LOCK_TIMEOUT.
   */
  lockTimeout?: string;
  /**
   * Called before each connection or tool run when the password is a
   * short-lived token (RDS IAM); returns the password to use.
   */
  passwordProvider?: () => Promise<string>;
  /**
   * What this connector's catalog connections learnt of the server, which
   * its tools then follow (client.ts ClientChecks). Undefined: nothing is
   * remembered, and tools are not asked to check for their client.
   */
  clientChecks?: ClientChecks;
}

export const SSL_MODES = [
  "disable",
  "allow",
  "prefer",
  "require",
  "verify-ca",
  "verify-full",
] as const;
export type SslMode = typeof SSL_MODES[number];
