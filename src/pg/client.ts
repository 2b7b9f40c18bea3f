// A catalog connection through npm:pg with the same TLS semantics as libpq's
// sslmode, so that introspection and ping see the server the way pg_dump does.

// @ts-types="@types/pg"
import pg from "pg";
import type { ConnConfig } from "./conn.ts";
import { describeConnectError, ServerError } from "./errors.ts";

/** Resolves the password (static or a fresh token). */
export async function currentPassword(conn: ConnConfig): Promise<string | undefined> {
  return conn.passwordProvider ? await conn.passwordProvider() : conn.password;
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
 * Opens a catalog connection to `database`. With sslmode prefer (libpq's
 * default) a server without TLS is retried in cleartext, as libpq does.
 */
export async function connect(conn: ConnConfig, database: string): Promise<pg.Client> {
  const base = {
    host: conn.host,
    port: conn.port,
    user: conn.username,
    password: await currentPassword(conn),
    database,
    connectionTimeoutMillis: conn.connectTimeout * 1000,
    application_name: "plakar-postgresql",
  };
  const attempt = async (ssl: false | Record<string, unknown>) => {
    const client = new pg.Client({ ...base, ssl });
    // An idle-connection error must not crash the plugin process.
    client.on("error", () => {});
    try {
      await client.connect();
      return client;
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
  };
  const ssl = await pgSsl(conn);
  if (conn.sslMode === "prefer") {
    try {
      return await attempt(ssl);
    } catch (e) {
      if (/does not support SSL/i.test(String(e))) return await attempt(false);
      throw e;
    }
  }
  return await attempt(ssl);
}

/** Connects like `connect`, but a failure says where it tried and the server's reason. */
export async function connectExplained(conn: ConnConfig, database: string): Promise<pg.Client> {
  try {
    return await connect(conn, database);
  } catch (e) {
    throw new ServerError(describeConnectError(conn, database, e));
  }
}

/** A real round trip to `database`; rejects with where it tried and the server's reason. */
export async function ping(conn: ConnConfig, database: string): Promise<void> {
  const client = await connectExplained(conn, database);
  try {
    await client.query("SELECT 1");
  } finally {
    await client.end().catch(() => {});
  }
}
