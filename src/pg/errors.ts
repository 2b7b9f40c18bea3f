// Errors from the server side, phrased for the person who runs the backup:
// where we tried to connect, and the server's own reason, on one line and
// without secrets.

import type { ConnConfig } from "./conn.ts";
import { IAM_REFUSED_HINT, IamTokenError, isAuthRefused } from "./iam.ts";
import {
  type ErrorKind,
  kindOf,
  oneLine,
  PluginError,
  type PluginErrorOptions,
} from "../errors.ts";

export interface ServerErrorOptions extends PluginErrorOptions {
  /** @default the cause's kind (connectErrorKind), else "unknown" */
  kind?: ErrorKind;
}

/** A failure reported by (or about reaching) the PostgreSQL server. */
export class ServerError extends PluginError {
  constructor(message: string, options?: ServerErrorOptions) {
    const cause = options?.cause;
    const sqlstate = options?.sqlstate ?? sqlstateOf(cause);
    super(options?.kind ?? connectErrorKind(cause), message, { ...options, sqlstate });
    this.name = "ServerError";
  }
}

/** The SQLSTATE of a server's error (npm:pg puts it in `code`), if it is one. */
export function sqlstateOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Node's codes for a server that cannot be reached now. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
]);

/**
 * The kind of a failed connection or query: no credentials or refused ones,
 * a TLS setup that cannot work (no retry helps), the server out of reach, or
 * what its SQLSTATE says.
 */
export function connectErrorKind(err: unknown): ErrorKind {
  if (err === undefined) return "unknown";
  if (err instanceof PluginError) return err.kind;
  if (tlsFailure(err)) return "failed-precondition";
  const e = err as { code?: string; message?: string };
  if (NETWORK_CODES.has(e?.code ?? "") || isConnectTimeout(err)) return "unavailable";
  return kindOf(err);
}

/**
 * Whether a connection failed by timing out. npm:pg's connect timeout
 * ("Connection terminated due to connection timeout") carries no code: its
 * words are all there is, read here alone.
 */
export function isConnectTimeout(err: unknown): boolean {
  const message = (err as { message?: string } | undefined)?.message ?? "";
  return /timeout|timed out/i.test(message);
}

/**
 * Node's codes (OpenSSL's X509_V_ERR_* names) for a server certificate that
 * failed verification against the CAs given: a wrong ssl_root_cert, an
 * expired or not yet valid certificate, a self-signed one.
 */
const CERTIFICATE_CODES: ReadonlySet<string> = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_NOT_YET_VALID",
  "CERT_HAS_EXPIRED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_REVOKED",
  "CERT_CHAIN_TOO_LONG",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
]);

/** What kind of TLS failure an error is; none of them goes away by retrying. */
export type TlsFailure = "certificate" | "hostname" | "no-ssl";

/** Classifies a catalog connection's error as a TLS failure, or undefined for any other. */
export function tlsFailure(err: unknown): TlsFailure | undefined {
  const e = err as { code?: string; message?: string } | undefined;
  const message = e?.message ?? String(err);
  if (e?.code === "ERR_TLS_CERT_ALTNAME_INVALID") return "hostname";
  if (CERTIFICATE_CODES.has(e?.code ?? "")) return "certificate";
  // npm:pg's own words when the server answers the SSLRequest with "N".
  if (/server does not support SSL/i.test(message)) return "no-ssl";
  return undefined;
}

/**
 * The CA option to check, by name: ssl_root_cert_data when the CA came inline
 * (pem_files.ts wrote it to <dir>/ssl_root_cert_data.pem, a path the user
 * never saw), else ssl_root_cert and its path.
 */
function caOption(conn: ConnConfig): string {
  const path = conn.sslRootCert;
  if (!path) return "ssl_root_cert (not set: the system's CAs were used)";
  if (path.endsWith("/ssl_root_cert_data.pem")) return "ssl_root_cert_data";
  return `ssl_root_cert (${path})`;
}

/** One line for a TLS failure, naming the options to check; undefined for any other error. */
export function describeTlsFailure(conn: ConnConfig, err: unknown): string | undefined {
  const kind = tlsFailure(err);
  if (!kind) return undefined;
  const detail = oneLine((err as { message?: string })?.message ?? String(err));
  switch (kind) {
    case "certificate":
      return `TLS: the server's certificate failed verification (${detail}): check that ${
        caOption(conn)
      } holds the CA that signed it, and ssl_mode (${conn.sslMode})`;
    case "hostname":
      return `TLS: the server's certificate does not name the host ${
        JSON.stringify(conn.host)
      } (${detail}): connect by a name the certificate lists, or set ssl_mode=verify-ca (now ${conn.sslMode}) to check only that ${
        caOption(conn)
      } signed it`;
    case "no-ssl":
      return `TLS: the server does not support SSL and ssl_mode=${conn.sslMode} requires it: turn ssl on in the server's postgresql.conf, or, if the connection may go unencrypted, set ssl_mode=prefer`;
  }
}

/** "cannot connect to host:port (database "x") as user "u": <reason>" */
export function describeConnectError(conn: ConnConfig, database: string, err: unknown): string {
  // postgres+aws://: no token could be signed; that message says what to do.
  if (err instanceof IamTokenError) return err.message;
  const e = err as { message?: string; code?: string };
  let reason = describeTlsFailure(conn, err) ?? e?.message ?? String(err);
  // postgres+aws://: a token was signed but the server would not take it.
  if (conn.passwordProvider && isAuthRefused(err)) reason = `${reason}; ${IAM_REFUSED_HINT}`;
  if (e?.code === "ECONNREFUSED") {
    reason = "connection refused (is the server running and listening on that port?)";
  }
  if (e?.code === "ENOTFOUND") reason = `host ${JSON.stringify(conn.host)} not found`;
  if (isConnectTimeout(err)) reason = `timed out after ${conn.connectTimeout}s (${reason})`;
  if (conn.password) reason = reason.split(conn.password).join("***");
  const who = conn.username ? ` as user ${JSON.stringify(conn.username)}` : "";
  return `cannot connect to ${conn.host}:${conn.port} (database ${
    JSON.stringify(database)
  })${who}: ${oneLine(reason)}`;
}
