// Configuration is parsed once, into one typed object, and validated
// completely before anything runs: plakar hands Init every key the user set
// (all strings) plus `location`, and a mistake must come back as one line that
// names the option and the accepted values.
//
// Precedence for the connection: explicit option, then the URI, then the
// defaults (host localhost, port 5432, sslmode prefer).

import { ConfigError } from "../kloset/errors.ts";
import { type ConnConfig, SSL_MODES, type SslMode } from "./conn.ts";

/** Which connector the config is for; decides the accepted keys. */
export type Variant = "logical" | "aws" | "physical";
export type Role = "importer" | "exporter";

const CONN_KEYS = [
  "location",
  "host",
  "port",
  "username",
  "password",
  "pg_bin_dir",
  "ssl_mode",
  "ssl_cert",
  "ssl_key",
  "ssl_root_cert",
  "ssl_cert_data",
  "ssl_key_data",
  "ssl_root_cert_data",
  "connect_timeout",
];
const IMPORT_KEYS = [
  "database",
  "exclude_databases",
  "compress",
  "schema_only",
  "data_only",
  "allow_partial",
];
const EXPORT_KEYS = [
  "database",
  "databases",
  "clean",
  "recreate",
  "no_globals",
  "no_owner",
  "schema_only",
  "data_only",
  "exit_on_error",
  "allow_partial",
];

/** The keys a connector accepts, for validation and the README. */
export function acceptedKeys(variant: Variant, role: Role): string[] {
  let keys = [...CONN_KEYS];
  if (variant === "aws") keys = keys.filter((k) => k !== "password").concat("region");
  if (variant === "physical") keys = keys.concat("allow_partial");
  else keys = keys.concat(role === "importer" ? IMPORT_KEYS : EXPORT_KEYS);
  return [...new Set(keys)].sort();
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
  inlinePem: InlinePem[];
  region?: string;
}

export interface ImportOptions extends ParsedConn {
  /** Single database to back up; undefined means every connectable database. */
  database?: string;
  excludeDatabases: string[];
  compress: boolean;
  schemaOnly: boolean;
  dataOnly: boolean;
  allowPartial: boolean;
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
}

const SCHEMES: Record<Variant, string[]> = {
  logical: ["postgres", "postgresql"],
  aws: ["postgres+aws"],
  physical: ["postgres+bin"],
};

/** Parses a boolean the way Go's strconv.ParseBool does (what users of the reference type). */
export function parseBool(option: string, value: string): boolean {
  const v = value.trim();
  if (["1", "t", "T", "true", "TRUE", "True", "yes", "on"].includes(v)) return true;
  if (["0", "f", "F", "false", "FALSE", "False", "no", "off", ""].includes(v)) return false;
  throw new ConfigError(option, `invalid value ${JSON.stringify(value)} (accepted: true, false)`);
}

/** Splits a comma-separated list of names, trimming blanks. */
export function parseList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function parsePort(option: string, value: string): number {
  if (!/^\d{1,5}$/.test(value.trim()) || Number(value) < 1 || Number(value) > 65535) {
    throw new ConfigError(option, `invalid port ${JSON.stringify(value)} (accepted: 1-65535)`);
  }
  return Number(value);
}

function decode(option: string, part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ConfigError(option, "malformed percent-encoding in the URI");
  }
}

/** Parses `location` and the connection options shared by every connector. */
export function parseConnection(
  config: Record<string, string>,
  variant: Variant,
  role: Role,
): ParsedConn {
  const accepted = acceptedKeys(variant, role);
  for (const key of Object.keys(config)) {
    if (!accepted.includes(key)) {
      if (key === "password" && variant === "aws") {
        throw new ConfigError(
          "password",
          "not accepted by postgres+aws:// (the IAM token is the password); remove it",
        );
      }
      throw new ConfigError(key, `unknown option (accepted: ${accepted.join(", ")})`);
    }
  }

  const conn: ConnConfig = {
    host: "localhost",
    port: 5432,
    sslMode: "prefer",
    connectTimeout: 10,
  };
  let uriDatabase: string | undefined;
  const location = config.location ?? "";
  const schemes = SCHEMES[variant];
  if (location !== "") {
    const m = /^([a-z+]+):\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/i.exec(location);
    if (!m || !schemes.includes(m[1].toLowerCase())) {
      throw new ConfigError(
        "location",
        `expected ${schemes[0]}://[user${variant === "aws" ? "" : "[:password]"}@]host[:port]${
          variant === "physical" ? "" : "[/database]"
        }`,
      );
    }
    const [, , authority, path, query] = m;
    const at = authority.lastIndexOf("@");
    const userinfo = at >= 0 ? authority.slice(0, at) : undefined;
    const hostport = at >= 0 ? authority.slice(at + 1) : authority;
    if (userinfo !== undefined) {
      const colon = userinfo.indexOf(":");
      const user = decode("location", colon >= 0 ? userinfo.slice(0, colon) : userinfo);
      if (user !== "") conn.username = user;
      if (colon >= 0) {
        if (variant === "aws") {
          throw new ConfigError(
            "location",
            "postgres+aws:// takes no password in the URI (the IAM token is the password)",
          );
        }
        const pw = decode("location", userinfo.slice(colon + 1));
        if (pw !== "") conn.password = pw;
      }
    }
    const hp = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hostport)!;
    const host = hp[1].startsWith("[") ? hp[1].slice(1, -1) : decode("location", hp[1]);
    if (host !== "") conn.host = host;
    if (hp[2] !== undefined && hp[2] !== "") conn.port = parsePort("location", hp[2]);
    if (path !== undefined && path !== "" && path !== "/") {
      if (variant === "physical") {
        throw new ConfigError(
          "location",
          "postgres+bin:// backs up the whole cluster: remove the database path from the URI",
        );
      }
      uriDatabase = decode("location", path.slice(1));
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
          throw new ConfigError(
            "location",
            `unsupported URI parameter ${
              JSON.stringify(k)
            } (accepted: sslmode, sslcert, sslkey, sslrootcert, connect_timeout)`,
          );
        }
        if (config[key] === undefined) config = { ...config, [key]: v };
      }
    }
  }

  const opt = (k: string) => {
    const v = config[k];
    return v === undefined || v === "" ? undefined : v;
  };
  if (opt("host")) conn.host = opt("host")!;
  if (opt("port")) conn.port = parsePort("port", opt("port")!);
  if (opt("username")) conn.username = opt("username");
  if (opt("password")) conn.password = opt("password");
  if (opt("ssl_mode")) {
    const mode = opt("ssl_mode")!;
    if (!(SSL_MODES as readonly string[]).includes(mode)) {
      throw new ConfigError(
        "ssl_mode",
        `invalid value ${JSON.stringify(mode)} (accepted: ${SSL_MODES.join(", ")})`,
      );
    }
    conn.sslMode = mode as SslMode;
  }
  if (opt("connect_timeout")) {
    const t = opt("connect_timeout")!;
    if (!/^\d+$/.test(t) || Number(t) < 1) {
      throw new ConfigError(
        "connect_timeout",
        `invalid value ${JSON.stringify(t)} (accepted: seconds, 1 or more)`,
      );
    }
    conn.connectTimeout = Number(t);
  }
  const inlinePem: InlinePem[] = [];
  for (
    const [pathKey, dataKey, field] of [
      ["ssl_cert", "ssl_cert_data", "sslCert"],
      ["ssl_key", "ssl_key_data", "sslKey"],
      ["ssl_root_cert", "ssl_root_cert_data", "sslRootCert"],
    ] as const
  ) {
    const path = opt(pathKey);
    const data = opt(dataKey);
    if (path && data) {
      throw new ConfigError(pathKey, `${pathKey} and ${dataKey} are mutually exclusive: set one`);
    }
    if (path) conn[field] = path;
    if (data) {
      if (!data.includes("-----BEGIN")) {
        throw new ConfigError(dataKey, "expected inline PEM content (-----BEGIN ...)");
      }
      inlinePem.push({ option: dataKey, field, pem: data });
    }
  }
  if (conn.sslMode === "disable" && (conn.sslRootCert || conn.sslCert || inlinePem.length)) {
    throw new ConfigError(
      "ssl_mode",
      "ssl_mode=disable conflicts with the ssl_* certificate options: remove one",
    );
  }

  let region: string | undefined;
  if (variant === "aws") {
    region = opt("region");
    if (!region) {
      throw new ConfigError("region", "required for postgres+aws:// (e.g. region=eu-west-3)");
    }
    if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
      throw new ConfigError(
        "region",
        `invalid AWS region ${JSON.stringify(region)} (e.g. us-east-1)`,
      );
    }
    if (!conn.username) {
      throw new ConfigError(
        "username",
        "required for postgres+aws:// (the IAM-enabled database user), in the URI or as username=",
      );
    }
  }

  return { conn, uriDatabase, pgBinDir: opt("pg_bin_dir"), inlinePem, region };
}

function exclusive(config: Record<string, boolean>, a: string, b: string): void {
  if (config[a] && config[b]) {
    throw new ConfigError(a, `${a} and ${b} are mutually exclusive: set only one`);
  }
}

/** Parses and validates an importer's config (postgres://, postgres+aws://). */
export function parseImportConfig(
  config: Record<string, string>,
  variant: "logical" | "aws",
): ImportOptions {
  const base = parseConnection(config, variant, "importer");
  const b = (k: string) => parseBool(k, config[k] ?? "");
  const flags = {
    compress: b("compress"),
    schema_only: b("schema_only"),
    data_only: b("data_only"),
    allow_partial: b("allow_partial"),
  };
  exclusive(flags, "schema_only", "data_only");
  const database = config.database || base.uriDatabase;
  const exclude = config.exclude_databases !== undefined
    ? parseList(config.exclude_databases)
    : variant === "aws"
    ? ["rdsadmin"]
    : [];
  return {
    ...base,
    database: database === "" ? undefined : database,
    excludeDatabases: exclude,
    compress: flags.compress,
    schemaOnly: flags.schema_only,
    dataOnly: flags.data_only,
    allowPartial: flags.allow_partial,
  };
}

/** Parses and validates an exporter's config (postgres://, postgres+aws://). */
export function parseExportConfig(
  config: Record<string, string>,
  variant: "logical" | "aws",
): ExportOptions {
  const base = parseConnection(config, variant, "exporter");
  const b = (k: string) => parseBool(k, config[k] ?? "");
  const flags = {
    clean: b("clean"),
    recreate: b("recreate"),
    no_globals: b("no_globals"),
    no_owner: b("no_owner"),
    schema_only: b("schema_only"),
    data_only: b("data_only"),
    exit_on_error: b("exit_on_error"),
    allow_partial: b("allow_partial"),
  };
  exclusive(flags, "clean", "recreate");
  exclusive(flags, "schema_only", "data_only");
  if (flags.recreate && config.database) {
    throw new ConfigError(
      "database",
      "not used with recreate=true (the database name comes from the archive): remove database= or use clean=true",
    );
  }
  if (flags.recreate && flags.data_only) {
    throw new ConfigError(
      "recreate",
      "recreate=true drops and recreates the database, data_only=true restores no schema: set only one",
    );
  }
  // With recreate, pg_restore connects to the maintenance database and takes
  // the name from the archive, so a URI path is only a connection detail.
  const database = flags.recreate ? undefined : (config.database || base.uriDatabase);
  return {
    ...base,
    database: database === "" ? undefined : database,
    databases: parseList(config.databases),
    clean: flags.clean,
    recreate: flags.recreate,
    noGlobals: flags.no_globals,
    noOwner: flags.no_owner,
    schemaOnly: flags.schema_only,
    dataOnly: flags.data_only,
    exitOnError: flags.exit_on_error,
    allowPartial: flags.allow_partial,
  };
}
