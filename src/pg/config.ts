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
import {
  acceptedNames,
  checkConflicts,
  checkKeys,
  checkRequirements,
  locationForm as protocolLocationForm,
  optionDecl,
  OPTIONS,
  parseValues,
  type Protocol,
  SCHEMES,
  type Scope,
  type Value,
} from "./options.ts";

export { formatList, parseBool, parseDuration, parseList } from "./options.ts";

/** Which connector the config is for; decides the accepted keys. */
export type Variant = "logical" | "aws" | "physical";
export type Role = "importer" | "exporter";

const PROTOCOL: Record<Variant, Protocol> = {
  logical: "postgres",
  aws: "postgres+aws",
  physical: "postgres+bin",
};

/** The option table's scope of a connector. */
export function scopeOf(variant: Variant, role: Role): Scope {
  if (variant === "physical" && role === "exporter") {
    throw new RangeError("Cannot parse a configuration: postgres+bin:// has no exporter");
  }
  return `${role}:${PROTOCOL[variant]}` as Scope;
}

/** The keys a connector accepts, sorted (from the option table). */
export function acceptedKeys(variant: Variant, role: Role): string[] {
  return acceptedNames(scopeOf(variant, role));
}

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
  region?: string;
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
export const INTEGER_RANGES: Record<string, { min: number; max: number }> = Object.fromEntries(
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
const LIBPQ_KEYWORDS = new Set([
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

/** The accepted form of `location` for a connector, for error messages and the README. */
export function locationForm(variant: Variant): string {
  return protocolLocationForm(PROTOCOL[variant]);
}

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
 */
function parseLocation(
  config: Record<string, string>,
  variant: Variant,
): { uri: UriParts; config: Record<string, string> } {
  const uri: UriParts = {};
  const location = config.location ?? "";
  const schemes = SCHEMES[PROTOCOL[variant]];
  const hostOption = (config.host ?? "") !== "";
  // No message below quotes the location or a part of it: a typo can put the
  // password anywhere in it.
  if (location !== "") {
    const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i.exec(location);
    if (!m || !schemes.includes(m[1].toLowerCase())) {
      throw new ConfigError("location", `expected ${locationForm(variant)}`);
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
          ? `no host in the URI (one '/' too few after the scheme?): expected ${
            locationForm(variant)
          }`
          : "'@' after the host part of the URI: percent-encode '/', '?', '#' and '@' in a user name or password (or give password=); a database name with '@' goes in database=",
      );
    }
    const at = authority.lastIndexOf("@");
    const userinfo = at >= 0 ? authority.slice(0, at) : undefined;
    const hostport = at >= 0 ? authority.slice(at + 1) : authority;
    if (userinfo !== undefined) {
      const colon = userinfo.indexOf(":");
      const user = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo, "user name");
      if (user !== "") uri.username = user;
      if (colon >= 0) {
        if (variant === "aws") {
          throw new ConfigError(
            "location",
            "postgres+aws:// takes no password in the URI (the IAM token is the password); remove it",
          );
        }
        const pw = decode(userinfo.slice(colon + 1), "password");
        if (pw !== "") uri.password = pw;
      }
    }
    const hp = /^(\[[^\]]*\]|[^:[\]]*)(?::(.*))?$/.exec(hostport);
    if (!hp) {
      throw new ConfigError(
        "location",
        `malformed host in the URI: expected ${locationForm(variant)}`,
      );
    }
    const host = hp[1].startsWith("[") ? hp[1].slice(1, -1) : decode(hp[1], "host");
    if (host !== "") uri.host = host;
    else if (!hostOption) {
      throw new ConfigError(
        "location",
        `no host in the URI (is a '/' missing after the scheme?): expected ${
          locationForm(variant)
        }, or set host=`,
      );
    }
    if (hp[2] !== undefined && hp[2] !== "") {
      const { min, max } = INTEGER_RANGES.port;
      const n = /^[0-9]+$/.test(hp[2]) ? Number(hp[2]) : NaN;
      if (!(n >= min && n <= max)) {
        throw new ConfigError(
          "location",
          `invalid port in the URI (accepted: an integer from ${min} to ${max}; percent-encode '/', '?', '#' and '@' in a password, or give password=)`,
        );
      }
      uri.port = n;
    }
    if (path !== undefined && path !== "" && path !== "/") {
      if (variant === "physical") {
        throw new ConfigError(
          "location",
          "postgres+bin:// backs up the whole cluster: remove the database path from the URI",
        );
      }
      uri.database = decode(path.slice(1), "database name");
    }
    if (query !== undefined && query.length > 1) {
      // libpq-style query parameters map onto our options; explicit options win.
      for (const [k, v] of new URLSearchParams(query.slice(1))) {
        const key = ({
          sslmode: "ssl_mode",
          sslcert: "ssl_cert",
          sslkey: "ssl_key",
          sslrootcert: "ssl_root_cert",
          connect_timeout: "connect_timeout",
        } as Record<string, string>)[k];
        if (!key) {
          // Name it only when it is a libpq keyword: anything else may be a
          // piece of a password whose '?' was not percent-encoded.
          const which = LIBPQ_KEYWORDS.has(k) ? ` ${JSON.stringify(k)}` : "";
          throw new ConfigError(
            "location",
            `unsupported URI parameter${which} (accepted: sslmode, sslcert, sslkey, sslrootcert, connect_timeout; use the options for the rest)`,
          );
        }
        if (config[key] === undefined) config = { ...config, [key]: v };
      }
    }
  }

  return { uri, config };
}

/** A configuration parsed: the connection, the values of every option, the merged keys. */
interface Parsed {
  base: ParsedConn;
  values: Map<string, Value>;
  config: Record<string, string>;
}

/** Checks keys, `location`, types and conflicts, and builds the connection. */
function parseScope(config: Record<string, string>, variant: Variant, role: Role): Parsed {
  const scope = scopeOf(variant, role);
  checkKeys(config, scope);
  checkRequirements(config, scope);
  const located = parseLocation(config, variant);
  const { uri } = located;
  config = located.config;
  const values = parseValues(config, scope);
  checkConflicts(values, scope);

  const given = (k: string) => (config[k] ?? "") !== "";
  const str = (k: string) => values.get(k) as string | undefined;
  const conn: ConnConfig = {
    // One of host= and the URI's host is required (checkRequirements, parseLocation).
    host: given("host") ? str("host")! : uri.host ?? "",
    port: given("port") ? values.get("port") as number : uri.port ?? values.get("port") as number,
    username: given("username") ? str("username") : uri.username,
    password: given("password") ? str("password") : uri.password,
    sslMode: values.get("ssl_mode") as SslMode,
    connectTimeout: values.get("connect_timeout") as number,
  };
  const inlinePem: InlinePem[] = [];
  for (
    const [pathKey, dataKey, field] of [
      ["ssl_cert", "ssl_cert_data", "sslCert"],
      ["ssl_key", "ssl_key_data", "sslKey"],
      ["ssl_root_cert", "ssl_root_cert_data", "sslRootCert"],
    ] as const
  ) {
    // The table makes the two exclusive and checks the PEM.
    if (str(pathKey) !== undefined) conn[field] = str(pathKey);
    const pem = str(dataKey);
    if (pem !== undefined) inlinePem.push({ option: dataKey, field, pem });
  }

  let region: string | undefined;
  if (variant === "aws") {
    // The reference integration's documentation: "export AWS_REGION=eu-west-3
    // # or set region= in the source config". The option wins; AWS_REGION (as the AWS SDKs read it) stands in.
    region = str("region");
    if (region === undefined) {
      const fromEnv = Deno.env.get("AWS_REGION") || undefined;
      if (!fromEnv) {
        throw new ConfigError(
          "region",
          "required for postgres+aws:// (the AWS region of the RDS instance, e.g. region=eu-west-3, or AWS_REGION in the environment)",
        );
      }
      const t = optionDecl(scopeOf(variant, role), "region")!.type;
      if (t.kind === "pattern" && !new RegExp(t.pattern).test(fromEnv)) {
        throw new ConfigError(
          "region",
          `invalid value ${JSON.stringify(fromEnv)} (from AWS_REGION) (accepted: ${t.accepted})`,
        );
      }
      region = fromEnv;
    }
    if (!conn.username) {
      throw new ConfigError(
        "username",
        "required for postgres+aws:// (the IAM-enabled database user), in the URI or as username=",
      );
    }
  }

  return {
    base: {
      conn,
      uriDatabase: uri.database,
      pgBinDir: str("pg_bin_dir"),
      pgBinSearch: values.get("pg_bin_search") as string[] | undefined,
      inlinePem,
      region,
    },
    values,
    config,
  };
}

/** Parses `location` and the connection options shared by every connector. */
export function parseConnection(
  config: Record<string, string>,
  variant: Variant,
  role: Role,
): ParsedConn {
  return parseScope(config, variant, role).base;
}

/** Parses and validates an importer's config (postgres://, postgres+aws://). */
export function parseImportConfig(
  config: Record<string, string>,
  variant: "logical" | "aws",
): ImportOptions {
  const { base, values, config: given } = parseScope(config, variant, "importer");
  const flag = (k: string) => values.get(k) as boolean;
  const database = given.database || base.uriDatabase;
  return {
    ...base,
    database: database === "" ? undefined : database,
    excludeDatabases: (values.get("exclude_databases") as string[] | undefined) ?? [],
    excludeDatabasesGiven: given.exclude_databases !== undefined,
    compress: flag("compress"),
    schemaOnly: flag("schema_only"),
    dataOnly: flag("data_only"),
    allowPartial: flag("allow_partial"),
    maxParallelDumps: values.get("max_parallel_dumps") as number | undefined,
    lockWaitTimeout: values.get("lock_wait_timeout") as string | undefined,
  };
}

/** Parses and validates an exporter's config (postgres://, postgres+aws://). */
export function parseExportConfig(
  config: Record<string, string>,
  variant: "logical" | "aws",
): ExportOptions {
  const { base, values, config: given } = parseScope(config, variant, "exporter");
  const flag = (k: string) => values.get(k) as boolean;
  // With recreate, pg_restore connects to the maintenance database and takes
  // the name from the archive, so a URI path is only a connection detail
  // (database= with recreate is refused by the table).
  const database = flag("recreate") ? undefined : (given.database || base.uriDatabase);
  return {
    ...base,
    database: database === "" ? undefined : database,
    databases: (values.get("databases") as string[] | undefined) ?? [],
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
    jobs: values.get("jobs") as number,
    spoolDir: values.get("spool_dir") as string | undefined,
    noPrivileges: flag("no_privileges"),
    noComments: flag("no_comments"),
    role: values.get("role") as string | undefined,
    singleTransaction: flag("single_transaction"),
  };
}

/**
 * Parses and validates the physical importer's config (postgres+bin://):
 * the connection options only. A path in the URI is refused by
 * parseLocation; allow_partial is refused, with the reason, by the table.
 */
export function parsePhysicalImportConfig(config: Record<string, string>): ParsedConn {
  return parseConnection(config, "physical", "importer");
}
