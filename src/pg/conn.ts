// The resolved connection to one PostgreSQL server, shared by every tool we
// run and by the catalog client. Built once from the URI and its overrides
// (see config.ts); the password travels only through the environment
// (PGPASSWORD) or the pg client's config, never through argv or a DSN.

/** One resolved connection. */
export interface ConnConfig {
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** @default "prefer" */
  sslMode: SslMode;
  sslCert?: string;
  sslKey?: string;
  sslRootCert?: string;
  /** Seconds allowed to connect (PGCONNECT_TIMEOUT, pg's connectionTimeoutMillis). @default 10 */
  connectTimeout: number;
  /**
   * Called before each connection or tool run when the password is a
   * short-lived token (RDS IAM); returns the password to use.
   */
  passwordProvider?: () => Promise<string>;
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
