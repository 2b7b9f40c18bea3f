// Configuration is parsed once, into one typed object, and validated
// completely before anything runs: plakar hands Init every key the user set
// (all strings) plus `location`, and a mistake must come back as one line that
// names the option and the accepted values.
//
// Which keys a connector takes, their types, defaults and the combinations
// refused come from the option table (options.ts), which also makes the JSON
// Schemas and the documentation. What is left here is what no table says:
// the URI and its parts, AWS_REGION standing in for region=, and turning the
// values into the typed objects the connectors use.
//
// Precedence for the connection: explicit option, then the URI, then the
// table's defaults (port 5432, sslmode prefer, connect_timeout 10).

import { ConfigError } from "../errors.ts";
import type { ConnConfig, SslMode } from "./conn.ts";
import { ClientChecks } from "./client.ts";
import {
  checkConflicts,
  checkKeys,
  checkRequirements,
  locationForm,
  optionDecl,
  OPTIONS,
  type OptionValues,
  parseValues,
  type Scheme,
  schemeOf,
  type Scope,
  scopeOf,
  URI_SCHEMES,
} from "./options.ts";

/** The schemes of the logical connectors (postgres+aws:// adds IAM tokens to postgres://). */
export const LOGICAL_SCHEMES = ["postgres", "postgres+aws"] as const satisfies readonly Scheme[];
export type LogicalScheme = typeof LOGICAL_SCHEMES[number];

/** Inline PEM content that must be written to a 0600 temp file before use. */
export interface InlinePem {
  option: "ssl_cert_data" | "ssl_key_data" | "ssl_root_cert_data";
  field: "sslCert" | "sslKey" | "sslRootCert";
  pem: string;
}

/** The parsed connection: the ConnConfig plus the database named by the URI path. */
export interface ParsedConn {
  conn: ConnConfig;
  /** Database from the URI path, decoded; undefined when absent. */
  uriDatabase?: string;
  /** Directory of the client tools; undefined means $PATH. */
  pgBinDir?: string;
  /**
   * Where to look for tools of the server's major when pg_bin_dir is not set
   * and the tool on PATH is older (N: any major); undefined: the usual places.
   */
  pgBinSearch?: string[];
  inlinePem: InlinePem[];
  /**
   * postgres+aws://: the password is an IAM token for this region, made
   * fresh for each connection (src/pg/prepare.ts attaches the provider).
   */
  iam?: { region: string };
}

export interface ImportOptions extends ParsedConn {
  /** Single database to back up; undefined means every connectable database. */
  database?: string;
  excludeDatabases: string[];
  /**
   * exclude_databases was set by the user, not defaulted (postgres+aws://'s
   * rdsadmin): only names the user gave are warned about when they match no
   * database, so a non-RDS server reached through postgres+aws:// stays quiet.
   */
  excludeDatabasesGiven: boolean;
  compress: boolean;
  schemaOnly: boolean;
  dataOnly: boolean;
  allowPartial: boolean;
  /** At most this many dumps run at once (an Open waits for a free slot); undefined: no bound. */
  maxParallelDumps?: number;
  /** pg_dump --lock-wait-timeout: a statement_timeout value ("30s", "500ms", "5000"). */
  lockWaitTimeout?: string;
}

export interface ExportOptions extends ParsedConn {
  /** Explicit target database for pg_restore; undefined means from the file name. */
  database?: string;
  /** Only dumps of these databases are restored (empty: all). */
  databases: string[];
  clean: boolean;
  recreate: boolean;
  noGlobals: boolean;
  noOwner: boolean;
  schemaOnly: boolean;
  dataOnly: boolean;
  exitOnError: boolean;
  allowPartial: boolean;
  /**
   * clean and recreate leave the target as it was when they fail: clean runs
   * in one transaction, recreate restores into a temporary database swapped
   * in on success (twice the disk meanwhile). false: the old drop-first way.
   * @default true
   */
  atomic: boolean;
  /**
   * pg_restore -j: with 2 or more, each custom-format dump is spooled to a
   * file in `spoolDir` and restored in parallel. 1: streamed, no disk.
   * @default 1
   */
  jobs: number;
  /** Directory of the spool files; undefined: the system temp directory. */
  spoolDir?: string;
  /** pg_restore -x. */
  noPrivileges: boolean;
  /** pg_restore --no-comments. */
  noComments: boolean;
  /** pg_restore --role, and SET ROLE for psql: the role the restore acts as. */
  role?: string;
  /** pg_restore -1 (implies exitOnError). */
  singleTransaction: boolean;
}

/** The integer options and their accepted ranges (inclusive), from the option table. */
export const INTEGER_RANGES: Readonly<Record<string, { min: number; max: number }>> = Object
  .fromEntries(
    OPTIONS.flatMap((o) =>
      o.type.kind === "integer" ? [[o.name, { min: o.type.min, max: o.type.max }]] : []
    ),
  );

/**
 * Decodes one part of the URI. The message names the part but never shows
 * it: the user name or password may be what is malformed.
 */
function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ConfigError(
      "location",
      `malformed percent-encoding in the ${what} of the URI (write % as %25)`,
    );
  }
}

/** libpq's connection keywords: safe to repeat in a message (never a secret). */
const LIBPQ_KEYWORDS: ReadonlySet<string> = new Set([
  "application_name",
  "channel_binding",
  "client_encoding",
  "dbname",
  "fallback_application_name",
  "gssencmode",
  "host",
  "hostaddr",
  "keepalives",
  "keepalives_count",
  "keepalives_idle",
  "keepalives_interval",
  "krbsrvname",
  "load_balance_hosts",
  "options",
  "passfile",
  "password",
  "port",
  "replication",
  "requirepeer",
  "service",
  "sslcompression",
  "sslcrl",
  "sslcrldir",
  "sslpassword",
  "sslsni",
  "ssl_max_protocol_version",
  "ssl_min_protocol_version",
  "target_session_attrs",
  "tcp_user_timeout",
  "user",
]);

/** What the URI says; undefined where it says nothing. */
interface UriParts {
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  database?: string;
}

/**
 * Parses `location`. Returns its parts and the configuration with the
 * URI's libpq parameters added where no option of the same meaning is set.
 * No message quotes the location or a part of it: a typo can put the
 * password anywhere in it.
 */
function parseLocation(
  config: Record<string, string>,
  scheme: Scheme,
): { uri: UriParts; config: Record<string, string> } {
  const location = config.location ?? "";
  if (location === "") return { uri: {}, config };
  const { authority, path, query } = splitUri(location, scheme);
  const at = authority.lastIndexOf("@");
  const uri: UriParts = {
    ...(at >= 0 ? parseUserinfo(authority.slice(0, at), scheme) : {}),
    ...parseHostPort(at >= 0 ? authority.slice(at + 1) : authority, scheme, config),
    database: parsePath(path, scheme),
  };
  return { uri, config: withQueryParameters(config, query) };
}

/** The URI's authority, path and query; refuses another scheme, a fragment, a stray '@'. */
function splitUri(
  location: string,
  scheme: Scheme,
): { authority: string; path?: string; query?: string } {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i.exec(location);
  if (!m || !URI_SCHEMES[scheme].includes(m[1].toLowerCase())) {
    throw new ConfigError("location", `expected ${locationForm(scheme)}`);
  }
  const [, , authority, path, query, fragment] = m;
  if (fragment !== undefined) {
    throw new ConfigError(
      "location",
      "'#' is not accepted in the URI: percent-encode it as %23 in a user name or password, or give password=",
    );
  }
  if (`${path ?? ""}${query ?? ""}`.includes("@")) {
    // postgres:/user:pw@host/db (one slash) reaches us as postgres:///user:pw@host/db;
    // a password with an unencoded '/' or '?' cuts the host part short.
    throw new ConfigError(
      "location",
      authority === ""
        ? `no host in the URI (one '/' too few after the scheme?): expected ${locationForm(scheme)}`
        : "'@' after the host part of the URI: percent-encode '/', '?', '#' and '@' in a user name or password (or give password=); a database name with '@' goes in database=",
    );
  }
  return { authority, path, query };
}

/** The user name and password before the URI's '@'. */
function parseUserinfo(userinfo: string, scheme: Scheme): UriParts {
  const parts: UriParts = {};
  const colon = userinfo.indexOf(":");
  const user = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo, "user name");
  if (user !== "") parts.username = user;
  if (colon < 0) return parts;
  if (scheme === "postgres+aws") {
    throw new ConfigError(
      "location",
      "postgres+aws:// takes no password in the URI (the IAM token is the password); remove it",
    );
  }
  const pw = decode(userinfo.slice(colon + 1), "password");
  if (pw !== "") parts.password = pw;
  return parts;
}

/** The host (bracketed for IPv6) and port after the URI's '@'. */
function parseHostPort(
  hostport: string,
  scheme: Scheme,
  config: Record<string, string>,
): UriParts {
  const hp = /^(\[[^\]]*\]|[^:[\]]*)(?::(.*))?$/.exec(hostport);
  if (!hp) {
    throw new ConfigError(
      "location",
      `malformed host in the URI: expected ${locationForm(scheme)}`,
    );
  }
  const parts: UriParts = {};
  const host = hp[1].startsWith("[") ? hp[1].slice(1, -1) : decode(hp[1], "host");
  if (host !== "") parts.host = host;
  else if ((config.host ?? "") === "") {
    throw new ConfigError(
      "location",
      `no host in the URI (is a '/' missing after the scheme?): expected ${
        locationForm(scheme)
      }, or set host=`,
    );
  }
  if (hp[2] !== undefined && hp[2] !== "") parts.port = parsePort(hp[2]);
  return parts;
}

function parsePort(text: string): number {
  const { min, max } = INTEGER_RANGES.port;
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    throw new ConfigError(
      "location",
      `invalid port in the URI (accepted: an integer from ${min} to ${max}; percent-encode '/', '?', '#' and '@' in a password, or give password=)`,
    );
  }
  return n;
}

/** The database the URI's path names; undefined for none. */
function parsePath(path: string | undefined, scheme: Scheme): string | undefined {
  if (path === undefined || path === "" || path === "/") return undefined;
  if (scheme === "postgres+bin" || scheme === "postgres+wal") {
    const what = scheme === "postgres+bin" ? "backs up" : "captures the WAL of";
    throw new ConfigError(
      "location",
      `${scheme}:// ${what} the whole cluster: remove the database path from the URI`,
    );
  }
  return decode(path.slice(1), "database name");
}

/** libpq's URI parameters that map onto an option of ours. */
const URI_PARAMETERS: Readonly<Record<string, string>> = {
  sslmode: "ssl_mode",
  sslcert: "ssl_cert",
  sslkey: "ssl_key",
  sslrootcert: "ssl_root_cert",
  connect_timeout: "connect_timeout",
};

/** The configuration with the URI's query parameters added; explicit options win. */
function withQueryParameters(
  config: Record<string, string>,
  query: string | undefined,
): Record<string, string> {
  if (query === undefined || query.length <= 1) return config;
  const merged = { ...config };
  for (const [k, v] of new URLSearchParams(query.slice(1))) {
    const key = Object.hasOwn(URI_PARAMETERS, k) ? URI_PARAMETERS[k] : undefined;
    if (!key) {
      // Name it only when it is a libpq keyword: anything else may be a
      // piece of a password whose '?' was not percent-encoded.
      const which = LIBPQ_KEYWORDS.has(k) ? ` ${JSON.stringify(k)}` : "";
      throw new ConfigError(
        "location",
        `unsupported URI parameter${which} (accepted: sslmode, sslcert, sslkey, sslrootcert, connect_timeout; use the options for the rest)`,
      );
    }
    if (merged[key] === undefined) merged[key] = v;
  }
  return merged;
}

/** A configuration parsed: the connection, the values of every option, the merged keys. */
interface Parsed {
  base: ParsedConn;
  values: OptionValues;
  config: Record<string, string>;
}

/** Checks keys, `location`, types and conflicts, and builds the connection. */
function parseScope(given: Record<string, string>, scope: Scope): Parsed {
  const scheme = schemeOf(scope);
  checkKeys(given, scope);
  checkRequirements(given, scope);
  const { uri, config } = parseLocation(given, scheme);
  const values = parseValues(config, scope);
  checkConflicts(values, scope);
  const conn = connectionOf(values, uri, config);
  return {
    base: {
      conn,
      uriDatabase: uri.database,
      pgBinDir: values.text("pg_bin_dir"),
      pgBinSearch: values.takes("pg_bin_search") ? values.list("pg_bin_search") : undefined,
      inlinePem: inlinePems(values, conn),
      iam: scheme === "postgres+aws" ? { region: iamRegion(values, scope, conn) } : undefined,
    },
    values,
    config,
  };
}

/** The connection: an option given wins over the URI, the URI over the table's default. */
function connectionOf(
  values: OptionValues,
  uri: UriParts,
  config: Record<string, string>,
): ConnConfig {
  const given = (k: string) => (config[k] ?? "") !== "";
  return {
    // One of host= and the URI's host is required (checkRequirements, parseLocation).
    host: given("host") ? values.text("host")! : uri.host ?? "",
    port: given("port") ? values.integer("port")! : uri.port ?? values.integer("port")!,
    username: given("username") ? values.text("username") : uri.username,
    password: given("password") ? values.text("password") : uri.password,
    sslMode: values.text("ssl_mode") as SslMode,
    clientChecks: new ClientChecks(),
    connectTimeout: values.integer("connect_timeout")!,
  };
}

/** Points `conn` at the certificate paths given, and returns the inline PEM to write to files. */
function inlinePems(values: OptionValues, conn: ConnConfig): InlinePem[] {
  const inline: InlinePem[] = [];
  for (
    const [pathKey, dataKey, field] of [
      ["ssl_cert", "ssl_cert_data", "sslCert"],
      ["ssl_key", "ssl_key_data", "sslKey"],
      ["ssl_root_cert", "ssl_root_cert_data", "sslRootCert"],
    ] as const
  ) {
    // The table makes the two exclusive and checks the PEM.
    const path = values.text(pathKey);
    if (path !== undefined) conn[field] = path;
    const pem = values.text(dataKey);
    if (pem !== undefined) inline.push({ option: dataKey, field, pem });
  }
  return inline;
}

/**
 * postgres+aws://'s region, and the user the token is for. The reference
 * integration's documentation: "export AWS_REGION=eu-west-3 # or set region=
 * in the source config". The option wins; AWS_REGION (as the AWS SDKs read
 * it) stands in.
 */
function iamRegion(values: OptionValues, scope: Scope, conn: ConnConfig): string {
  const region = values.text("region") ?? regionFromEnv(scope);
  if (!conn.username) {
    throw new ConfigError(
      "username",
      "required for postgres+aws:// (the IAM-enabled database user), in the URI or as username=",
    );
  }
  return region;
}

/** AWS_REGION, checked as region= would be. */
function regionFromEnv(scope: Scope): string {
  const fromEnv = Deno.env.get("AWS_REGION") || undefined;
  if (!fromEnv) {
    throw new ConfigError(
      "region",
      "required for postgres+aws:// (the AWS region of the RDS instance, e.g. region=eu-west-3, or AWS_REGION in the environment)",
    );
  }
  const t = optionDecl(scope, "region")!.type;
  if (t.kind === "pattern" && !new RegExp(t.pattern).test(fromEnv)) {
    throw new ConfigError(
      "region",
      `invalid value ${JSON.stringify(fromEnv)} (from AWS_REGION) (accepted: ${t.accepted})`,
    );
  }
  return fromEnv;
}

/** The database an importer or exporter names: database=, else the URI's path. */
function namedDatabase(config: Record<string, string>, base: ParsedConn): string | undefined {
  const database = config.database || base.uriDatabase;
  return database === "" ? undefined : database;
}

/** Parses and validates a logical importer's config (postgres://, postgres+aws://). */
export function parseImportConfig(
  given: Record<string, string>,
  scheme: LogicalScheme,
): ImportOptions {
  const { base, values, config } = parseScope(given, scopeOf("importer", scheme));
  const lockWaitTimeout = values.text("lock_wait_timeout");
  // lock_wait_timeout bounds the whole backup's lock waits, not only
  // pg_dump's: the catalog sessions (preflight, manifest) take it as their
  // lock_timeout (src/pg/client.ts connect).
  base.conn.lockTimeout = lockWaitTimeout;
  return {
    ...base,
    database: namedDatabase(config, base),
    excludeDatabases: values.list("exclude_databases") ?? [],
    excludeDatabasesGiven: config.exclude_databases !== undefined,
    compress: values.boolean("compress"),
    schemaOnly: values.boolean("schema_only"),
    dataOnly: values.boolean("data_only"),
    allowPartial: values.boolean("allow_partial"),
    maxParallelDumps: values.integer("max_parallel_dumps"),
    lockWaitTimeout,
  };
}

/** Parses and validates a logical exporter's config (postgres://, postgres+aws://). */
export function parseExportConfig(
  given: Record<string, string>,
  scheme: LogicalScheme,
): ExportOptions {
  const { base, values, config } = parseScope(given, scopeOf("exporter", scheme));
  const flag = (k: string) => values.boolean(k);
  return {
    ...base,
    // With recreate, pg_restore connects to the maintenance database and takes
    // the name from the archive, so a URI path is only a connection detail
    // (database= with recreate is refused by the table).
    database: flag("recreate") ? undefined : namedDatabase(config, base),
    databases: values.list("databases") ?? [],
    clean: flag("clean"),
    recreate: flag("recreate"),
    noGlobals: flag("no_globals"),
    noOwner: flag("no_owner"),
    schemaOnly: flag("schema_only"),
    dataOnly: flag("data_only"),
    // pg_restore -1 implies --exit-on-error; psql stops at the first error too.
    exitOnError: flag("exit_on_error") || flag("single_transaction"),
    allowPartial: flag("allow_partial"),
    atomic: flag("atomic"),
    jobs: values.integer("jobs")!,
    spoolDir: values.text("spool_dir"),
    noPrivileges: flag("no_privileges"),
    noComments: flag("no_comments"),
    role: values.text("role"),
    singleTransaction: flag("single_transaction"),
  };
}

/** A WAL capture's configuration (postgres+wal://). */
export interface WalCaptureOptions extends ParsedConn {
  /** The guard slot's name; the pending mark is `<slot>_pending`. */
  slot: string;
  /** Bytes of retained WAL past which Ping and each capture warn. */
  warnRetainedWal: number;
  spoolDir?: string;
}

/** Parses and validates a WAL capture's config (postgres+wal://). */
export function parseWalCaptureConfig(given: Record<string, string>): WalCaptureOptions {
  const { base, values } = parseScope(given, "importer:postgres+wal");
  return {
    ...base,
    slot: values.text("slot")!,
    warnRetainedWal: sizeBytes(values.text("warn_retained_wal")!),
    spoolDir: values.text("spool_dir"),
  };
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  kB: 1024,
  MB: 1024 ** 2,
  GB: 1024 ** 3,
  TB: 1024 ** 4,
};

/** A size the option table accepted ("8GB") in bytes, with PostgreSQL's 1024-based units. */
function sizeBytes(text: string): number {
  const m = /^([0-9]+) ?([kMGT]B)$/.exec(text)!;
  return Number(m[1]) * SIZE_UNITS[m[2]];
}

/**
 * Parses and validates the physical importer's config (postgres+bin://):
 * the connection options only. A path in the URI is refused by
 * parseLocation; allow_partial is refused, with the reason, by the table.
 */
export function parsePhysicalImportConfig(given: Record<string, string>): ParsedConn {
  return parseScope(given, "importer:postgres+bin").base;
}
