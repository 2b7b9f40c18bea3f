// A catalog connection through npm:pg with the same TLS semantics as libpq's
// sslmode, and the same user and password rules (option, PGPASSWORD, then the
// password file), so that introspection and ping see the server the way
// pg_dump does.

// @ts-types="@types/pg"
import type pg from "pg";
import type { ConnConfig } from "./conn.ts";
import { DURATION_MAX, durationMillis } from "./duration.ts";
import { PluginError } from "../errors.ts";
import { describeConnectError, ServerError, tlsFailure } from "./errors.ts";
import { effectiveUser, lookupPassword, type PgpassLookup } from "./pgpass.ts";

/**
 * Asks the server to check every 2 s, while a query runs, that the client is
 * still there (PostgreSQL 14+, Linux). Without it a backend whose client died
 * while it waited on a lock (pg_dump behind a migration's ACCESS EXCLUSIVE, a
 * catalog query calling pg_get_indexdef) stays until it gets that lock, and
 * then holds its own. Older servers refuse the setting at connection time.
 */
export const CLIENT_CHECK_OPTION = "-c client_connection_check_interval=2000";

/**
 * lock_timeout of a catalog session when lock_wait_timeout is not set. Our
 * catalog queries take ACCESS SHARE locks (pg_get_indexdef and pg_get_expr
 * lock the table they describe); behind another session's ACCESS EXCLUSIVE
 * (a migration's ALTER TABLE) such a request would wait for as long as that
 * lock is held, and every later query on the table would queue behind it.
 * 30 s outlasts a routine DDL statement and still bounds the wait.
 */
export const DEFAULT_LOCK_TIMEOUT = "30s";

/** The lock_timeout catalog sessions on `conn` get: lock_wait_timeout's value, else the default. */
export function catalogLockTimeout(conn: ConnConfig): string {
  return conn.lockTimeout ?? DEFAULT_LOCK_TIMEOUT;
}

/** A duration in milliseconds, at most the largest lock_timeout the server takes. */
export function lockTimeoutMillis(value: string): number {
  return Math.min(durationMillis(value), DURATION_MAX);
}

/**
 * What catalog connections learnt of each server (host:port): whether it
 * takes CLIENT_CHECK_OPTION (false: PostgreSQL 13 and older refuse it). One
 * per connector instance, carried by its ConnConfig (`clientChecks`).
 */
export class ClientChecks {
  readonly #accepted = new Map<string, boolean>();

  /** True or false once a connection to host:port has shown it; undefined before. */
  get(conn: Pick<ConnConfig, "host" | "port">): boolean | undefined {
    return this.#accepted.get(`${conn.host}:${conn.port}`);
  }

  set(conn: Pick<ConnConfig, "host" | "port">, accepted: boolean): void {
    this.#accepted.set(`${conn.host}:${conn.port}`, accepted);
  }
}

/**
 * Whether tools started against `conn` may pass CLIENT_CHECK_OPTION: true
 * once a catalog connection has shown the server accepts it.
 */
export function clientCheckSupported(conn: ConnConfig): boolean {
  return conn.clientChecks?.get(conn) === true;
}

/** Resolves the password (static or a fresh token). */
export async function currentPassword(conn: ConnConfig): Promise<string | undefined> {
  return conn.passwordProvider ? await conn.passwordProvider() : conn.password;
}

/** A connection's password and, when it came from (or was sought in) the password file, that lookup. */
export interface ResolvedPassword {
  password?: string;
  lookup?: PgpassLookup;
}

/**
 * libpq's order: the password option (or a fresh IAM token), then
 * PGPASSWORD, then the first matching line of the password file.
 */
export async function resolvePassword(
  conn: ConnConfig,
  database: string,
  user: string,
): Promise<ResolvedPassword> {
  const explicit = await currentPassword(conn);
  if (explicit) return { password: explicit };
  const env = Deno.env.get("PGPASSWORD");
  if (env) return { password: env };
  const lookup = await lookupPassword({ host: conn.host, port: conn.port, database, user });
  return { password: lookup.password, lookup };
}

/** Why there is no password, and how to give one, for a server that asks for it. */
export function noPasswordMessage(
  conn: ConnConfig,
  database: string,
  user: string,
  lookup: PgpassLookup | undefined,
): string {
  const line = [conn.host.startsWith("/") ? "localhost" : conn.host, conn.port, database, user]
    .map((f) => String(f).replace(/[\\:]/g, "\\$&")).join(":");
  const file = lookup
    ? lookup.skipped
      ? `; the password file ${lookup.file} was not used: ${lookup.skipped}`
      : `; no line of the password file ${lookup.file} matches ${line}`
    : "";
  return `the server asks for a password and none was given: set password= (or PGPASSWORD), or add the line ${line}:PASSWORD to the password file (~/.pgpass, or the file PGPASSFILE names, mode 0600)${file}`;
}

/** The `ssl` option for pg.Client that mirrors libpq's sslmode. */
export async function pgSsl(conn: ConnConfig): Promise<false | Record<string, unknown>> {
  const read = async (p?: string) => p ? await Deno.readTextFile(p) : undefined;
  switch (conn.sslMode) {
    case "disable":
    case "allow":
      return false;
    case "prefer":
    case "require": {
      // libpq: require with a root cert behaves like verify-ca.
      if (conn.sslMode === "require" && conn.sslRootCert) {
        return {
          ca: await read(conn.sslRootCert),
          cert: await read(conn.sslCert),
          key: await read(conn.sslKey),
          checkServerIdentity: () => undefined,
        };
      }
      return {
        rejectUnauthorized: false,
        cert: await read(conn.sslCert),
        key: await read(conn.sslKey),
      };
    }
    case "verify-ca":
      return {
        ca: await read(conn.sslRootCert),
        cert: await read(conn.sslCert),
        key: await read(conn.sslKey),
        checkServerIdentity: () => undefined,
      };
    case "verify-full":
      return {
        ca: await read(conn.sslRootCert),
        cert: await read(conn.sslCert),
        key: await read(conn.sslKey),
      };
  }
}

/**
 * npm:pg, loaded on first use: a plugin answers plakar's Init before it has
 * loaded the client library (about 20 MiB and tens of milliseconds at start).
 */
function loadPg(): Promise<typeof pg> {
  return import("pg").then((m) => m.default);
}

/**
 * Opens a catalog connection to `database`. With sslmode prefer (libpq's
 * default) a server without TLS is retried in cleartext, as libpq does. The
 * session's lock_timeout is catalogLockTimeout(conn): no catalog query waits
 * longer than that for a lock (SQLSTATE 55P03 when it would).
 */
export async function connect(conn: ConnConfig, database: string): Promise<pg.Client> {
  const user = effectiveUser(conn.username);
  const { password, lookup } = await resolvePassword(conn, database, user);
  const base = {
    host: conn.host,
    port: conn.port,
    user,
    // Never undefined: npm:pg would then read the password file its own way.
    // Called only when the server asks for a password.
    password: password ?? (() => {
      throw new PluginError("unauthenticated", noPasswordMessage(conn, database, user, lookup));
    }),
    database,
    connectionTimeoutMillis: conn.connectTimeout * 1000,
    application_name: "plakar-postgresql",
  };
  const { Client } = await loadPg();
  // Without the connector's record, this call's own: a refusal is retried once.
  const checks = conn.clientChecks ?? new ClientChecks();
  // A startup option rather than a SET: every session has it from its first
  // query, at no extra round trip.
  const lockTimeout = `-c lock_timeout=${lockTimeoutMillis(catalogLockTimeout(conn))}`;
  const attempt = async (ssl: false | Record<string, unknown>): Promise<pg.Client> => {
    const check = checks.get(conn) !== false;
    const client = new Client({
      ...base,
      ssl,
      options: check ? `${CLIENT_CHECK_OPTION} ${lockTimeout}` : lockTimeout,
    });
    // An idle-connection error must not crash the plugin process.
    client.on("error", () => {});
    try {
      await client.connect();
      if (check) checks.set(conn, true);
      return client;
    } catch (e) {
      await client.end().catch(() => {});
      // 42704: unrecognized configuration parameter (a server before 14).
      if (check && (e as { code?: string }).code === "42704") {
        checks.set(conn, false);
        return await attempt(ssl);
      }
      throw fromPasswordFile(e, lookup);
    }
  };
  const ssl = await pgSsl(conn);
  if (conn.sslMode === "prefer") {
    try {
      return await attempt(ssl);
    } catch (e) {
      if (tlsFailure(e) === "no-ssl") return await attempt(false);
      throw e;
    }
  }
  return await attempt(ssl);
}

/** A rejected password that came from the password file says so (libpq does too). */
function fromPasswordFile(e: unknown, lookup: PgpassLookup | undefined): unknown {
  const err = e as { code?: string; message?: string };
  if (!lookup?.password || err?.code !== "28P01") return e;
  const wrapped = new Error(
    `${err.message} (the password came from the password file ${lookup.file}: correct its line for this host:port:database:user)`,
    { cause: e },
  );
  return Object.assign(wrapped, { code: err.code });
}

/** Connects like `connect`, but a failure says where it tried and the server's reason. */
export async function connectExplained(conn: ConnConfig, database: string): Promise<pg.Client> {
  try {
    return await connect(conn, database);
  } catch (e) {
    throw new ServerError(describeConnectError(conn, database, e), { cause: e });
  }
}

/**
 * Connects to `database` (with `open`: connectExplained unless told), runs
 * `fn` with the session, and ends the session however `fn` ends.
 */
export async function withClient<T>(
  conn: ConnConfig,
  database: string,
  fn: (client: pg.Client) => Promise<T>,
  open: (conn: ConnConfig, database: string) => Promise<pg.Client> = connectExplained,
): Promise<T> {
  const client = await open(conn, database);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The server's server_version_num (150004 for 15.4). */
export async function serverVersionNum(client: pg.Client): Promise<number> {
  const v = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  return Number(v.rows[0].v);
}

/** A real round trip to `database`; rejects with where it tried and the server's reason. */
export async function ping(conn: ConnConfig, database: string): Promise<void> {
  await withClient(conn, database, async (client) => {
    await client.query("SELECT 1");
  });
}
