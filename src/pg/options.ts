// Every option the connectors take, declared once: its name, type, default,
// accepted values, the schemes and connector types that take it, the rules
// it is part of (exclusions, requirements) and a one-line description. The
// configuration parser (config.ts) takes key acceptance, types, defaults and
// exclusions from here; the JSON Schema validators (harness/schemas.ts), the
// option reference docs/options.md and the man page (harness/docs.ts) are
// generated from it, and tests fail when a generated file drifts. What a table cannot say
// (the URI's syntax, the AWS region from the environment) stays code in
// config.ts.
//
// An option may be declared more than once, for disjoint scopes, when its
// meaning or default differs (`database` of an importer and of an exporter,
// `exclude_databases` on postgres+aws://).

import { ConfigError } from "../errors.ts";
import { SSL_MODES } from "./conn.ts";
import { DEFAULT_BIN_SEARCH } from "./tool_search.ts";
import { DURATION_MAX, DURATION_UNITS, durationMillis } from "./duration.ts";

export { DURATION_MAX, DURATION_UNITS };

export const SCHEMES = ["postgres", "postgres+aws", "postgres+bin", "postgres+wal"] as const;
export type Scheme = typeof SCHEMES[number];
export const CONNECTOR_TYPES = ["importer", "exporter"] as const;
export type ConnectorType = typeof CONNECTOR_TYPES[number];

/** The connector types and schemes that exist together (postgres+bin:// and postgres+wal:// have no exporter). */
export const SCOPES = [
  "importer:postgres",
  "exporter:postgres",
  "importer:postgres+aws",
  "exporter:postgres+aws",
  "importer:postgres+bin",
  "importer:postgres+wal",
] as const satisfies readonly `${ConnectorType}:${Scheme}`[];
/** One connector type and scheme: "importer:postgres". */
export type Scope = typeof SCOPES[number];

/** The scheme of a scope. */
export function schemeOf(scope: Scope): Scheme {
  return scope.slice(scope.indexOf(":") + 1) as Scheme;
}

/** The scope of a connector type and scheme; RangeError for a pair that does not exist. */
export function scopeOf(type: ConnectorType, scheme: Scheme): Scope {
  const scope = `${type}:${scheme}`;
  if (!(SCOPES as readonly string[]).includes(scope)) {
    throw new RangeError(`Cannot parse a configuration: ${scheme}:// has no ${type}`);
  }
  return scope as Scope;
}

/**
 * The scheme plakar routed a connector to (InitParams.proto), checked
 * against those the executable serves.
 */
export function schemeNamed<S extends Scheme>(proto: string, served: readonly S[]): S {
  const scheme = served.find((s) => s === proto);
  if (!scheme) {
    throw new ConfigError("location", `expected ${served.map((s) => `${s}://`).join(" or ")}`);
  }
  return scheme;
}

/** The URI schemes `location` may start with, per scheme (case-insensitive): postgres also takes postgresql. */
export const URI_SCHEMES: Record<Scheme, readonly string[]> = {
  "postgres": ["postgres", "postgresql"],
  "postgres+aws": ["postgres+aws"],
  "postgres+bin": ["postgres+bin"],
  "postgres+wal": ["postgres+wal"],
};

/** The accepted form of `location` for a scheme, for messages and documentation. */
export function locationForm(scheme: Scheme): string {
  switch (scheme) {
    case "postgres":
      return "postgres://[user[:password]@]host[:port][/database] (or postgresql://)";
    case "postgres+aws":
      return "postgres+aws://user@host[:port][/database]";
    case "postgres+bin":
      return "postgres+bin://[user[:password]@]host[:port]";
    case "postgres+wal":
      return "postgres+wal://[user[:password]@]host[:port]";
  }
}

/**
 * An option's type. Every value arrives as a string (plakar passes the
 * configuration as a string map); an empty one means the default, except
 * for a list (an empty list) and a string that must not be blank.
 */
export type OptionType =
  /** Go's strconv.ParseBool spellings plus yes/on/no/off, blanks around ignored. */
  | { kind: "boolean" }
  /** Digits only (leading zeros allowed), from min to max inclusive. */
  | { kind: "integer"; min: number; max: number }
  | { kind: "enum"; values: readonly string[] }
  /** Any text; `nonBlank` refuses a blank value, saying what to put there. */
  | { kind: "string"; nonBlank?: string }
  /** Names separated by commas; a name holding a comma goes in double quotes (parseList). */
  | { kind: "list" }
  /** A server duration for statement_timeout-like settings: ms, or an integer with a unit. */
  | { kind: "duration" }
  /** A PostgreSQL connection URI of the scheme (its syntax is checked by config.ts). */
  | { kind: "uri" }
  /** Inline PEM content. */
  | { kind: "pem" }
  /** Absolute directories separated by ':' or ','. */
  | { kind: "dirs" }
  /** Text matching `pattern` (JavaScript and JSON Schema syntax alike); `accepted` says what. */
  | { kind: "pattern"; pattern: string; accepted: string };

export interface OptionDecl {
  name: string;
  type: OptionType;
  /** The value assumed when the option is not set (as a user would write it). */
  default?: string;
  /** Documentation of a default that no value states ("the system temp directory"). */
  defaultText?: string;
  scopes: readonly Scope[];
  /** One line, Markdown inline code (`x`) and links allowed. */
  description: string;
}

/** A key a scope refuses with its own reason instead of "unknown option". */
export interface Refusal {
  name: string;
  scopes: readonly Scope[];
  message: string;
  /** Short form for the documentation. */
  doc: string;
}

/**
 * One condition on an option's value after defaults: `true`/`false` for a
 * boolean, `set` for a value given (a non-empty string, a true boolean),
 * `atLeast` for an integer, `equals` for an enum.
 */
export type Condition =
  | { name: string; is: boolean }
  | { name: string; set: true }
  | { name: string; atLeast: number }
  | { name: string; equals: string };

/** A combination the parser refuses: every condition holds. */
export interface Conflict {
  scopes: readonly Scope[];
  when: readonly Condition[];
  /** The option the error names. */
  option: string;
  /** `{name}` stands for that option's value, parsed. */
  message: string;
}

/** At least one of `anyOf` must be set (non-empty). */
export interface Requirement {
  scopes: readonly Scope[];
  anyOf: readonly string[];
  option: string;
  message: (scheme: Scheme) => string;
}

const LOGICAL: readonly Scope[] = [
  "importer:postgres",
  "exporter:postgres",
  "importer:postgres+aws",
  "exporter:postgres+aws",
];
const PHYSICAL: readonly Scope[] = ["importer:postgres+bin", "importer:postgres+wal"];
const ALL: readonly Scope[] = [...LOGICAL, ...PHYSICAL];
const POSTGRES: readonly Scope[] = ["importer:postgres", "exporter:postgres"];
const AWS: readonly Scope[] = ["importer:postgres+aws", "exporter:postgres+aws"];
const NOT_AWS: readonly Scope[] = [...POSTGRES, ...PHYSICAL];
const IMPORTERS: readonly Scope[] = ["importer:postgres", "importer:postgres+aws"];
const EXPORTERS: readonly Scope[] = ["exporter:postgres", "exporter:postgres+aws"];

const BOOLEAN: Readonly<OptionType> = { kind: "boolean" };

/** Every option, in the order the documentation lists them. */
export const OPTIONS: readonly OptionDecl[] = [
  {
    name: "location",
    type: { kind: "uri" },
    scopes: POSTGRES,
    description:
      "`postgres://[user[:password]@]host[:port][/database]` (or `postgresql://`), with an explicit host, or `host=`. libpq's `?sslmode=`, `sslcert`, `sslkey`, `sslrootcert`, `connect_timeout` are accepted in the URI.",
  },
  {
    name: "location",
    type: { kind: "uri" },
    scopes: AWS,
    description:
      "`postgres+aws://[user@]host[:port][/database]`. No password component: one is refused in Init, naming it.",
  },
  {
    name: "location",
    type: { kind: "uri" },
    scopes: ["importer:postgres+bin"],
    description:
      "`postgres+bin://[user[:password]@]host[:port]`: the whole cluster, so a database path is refused.",
  },
  {
    name: "location",
    type: { kind: "uri" },
    scopes: ["importer:postgres+wal"],
    description:
      "`postgres+wal://[user[:password]@]host[:port]`: the cluster whose WAL is captured, so a database path is refused.",
  },
  {
    name: "host",
    type: { kind: "string" },
    scopes: ALL,
    description:
      "Server host name (or a Unix-socket directory); overrides the URI's. One of the two is required: nothing defaults to `localhost`.",
  },
  {
    name: "port",
    type: { kind: "integer", min: 1, max: 65535 },
    default: "5432",
    scopes: ALL,
    description: "Server port; overrides the URI.",
  },
  {
    name: "username",
    type: { kind: "string" },
    scopes: NOT_AWS,
    description: "User; overrides the URI (libpq's default: the OS user).",
  },
  {
    name: "username",
    type: { kind: "string" },
    scopes: AWS,
    description:
      "Required, in the URI or as `username=`: the IAM-enabled database user (granted `rds_iam`).",
  },
  {
    name: "password",
    type: { kind: "string" },
    scopes: NOT_AWS,
    description:
      "Password; overrides the URI. Passed to the tools only through `PGPASSWORD`. Without it: `PGPASSWORD`, then libpq's password file (see [Passwords](#passwords)).",
  },
  {
    name: "region",
    type: {
      kind: "pattern",
      pattern: "^[a-z]{2}(-[a-z]+)+-[0-9]+$",
      accepted: "an AWS region, e.g. us-east-1",
    },
    scopes: AWS,
    description:
      "Required: the AWS region of the RDS instance, e.g. `us-east-1`; `AWS_REGION` in the environment stands in when it is not set. A region that differs from the one in an `*.rds.amazonaws.com` host name gets a warning (RDS would refuse the token).",
  },
  {
    name: "database",
    type: { kind: "string" },
    scopes: IMPORTERS,
    description:
      "The one database to back up; overrides the URI path. Omitted: all connectable databases.",
  },
  {
    name: "exclude_databases",
    type: { kind: "list" },
    scopes: ["importer:postgres"],
    description:
      "Databases to skip in a full backup (e.g. `rdsadmin,template1`). A name that matches no database gets a warning naming it.",
  },
  {
    name: "exclude_databases",
    type: { kind: "list" },
    default: "rdsadmin",
    scopes: ["importer:postgres+aws"],
    description:
      "The importer skips `rdsadmin` (RDS's own database, which cannot be dumped) by default; `exclude_databases=` (empty) disables every exclusion, any other value replaces the default.",
  },
  {
    name: "compress",
    type: BOOLEAN,
    default: "false",
    scopes: IMPORTERS,
    description:
      "Let pg_dump compress (default `-Z0`, so that plakar's compression and deduplication work on the raw data).",
  },
  {
    name: "schema_only",
    type: BOOLEAN,
    default: "false",
    scopes: IMPORTERS,
    description: "Schema only (`pg_dump -s`).",
  },
  {
    name: "data_only",
    type: BOOLEAN,
    default: "false",
    scopes: IMPORTERS,
    description: "Data only (`pg_dump -a`); the globals file is skipped.",
  },
  {
    name: "allow_partial",
    type: BOOLEAN,
    default: "false",
    scopes: IMPORTERS,
    description:
      "When a dump fails, keep plakar's per-file behaviour: a snapshot whose error summary names that file. By default a failed dump fails the backup: no snapshot, exit status 1.",
  },
  {
    name: "max_parallel_dumps",
    type: { kind: "integer", min: 1, max: 1024 },
    defaultText: "no bound",
    scopes: IMPORTERS,
    description:
      "At most this many dumps (`pg_dumpall`, each `pg_dump`) run at once; a file plakar opens waits for a free slot. plakar opens up to `-concurrency` files at once (default: the number of CPUs minus one, at least 1), each one a dump started on the server.",
  },
  {
    name: "lock_wait_timeout",
    type: { kind: "duration" },
    scopes: IMPORTERS,
    description:
      "`pg_dump --lock-wait-timeout`: how long a dump waits for its lock on a table that another session holds (`ALTER TABLE`, `VACUUM FULL`, `LOCK TABLE`) before it fails, instead of queueing behind it while every later query on the table queues behind the dump.",
  },
  {
    name: "database",
    type: { kind: "string" },
    scopes: EXPORTERS,
    description:
      "Target database for `pg_restore`; default: from the file name. With several dumps in the snapshot, restrict them with `databases=` (a second database into the same target is refused).",
  },
  {
    name: "databases",
    type: { kind: "list" },
    scopes: EXPORTERS,
    description:
      "Only those databases' dumps are restored (a name with no dump in the snapshot fails the restore, naming it). Globals still are, unless `no_globals=true`.",
  },
  {
    name: "clean",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description:
      "`pg_restore --clean --if-exists -1`: drop the dump's objects and recreate them, in one transaction. The database must exist; objects not in the dump are left alone.",
  },
  {
    name: "recreate",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description:
      "Replace the database with the archive's (as `pg_restore -C --clean` would) through a temporary database swapped in on success, see [Safe clean and recreate](#safe-clean-and-recreate). `postgres` and `template1` get `clean` instead.",
  },
  {
    name: "atomic",
    type: BOOLEAN,
    default: "true",
    scopes: EXPORTERS,
    description:
      "`false`: `clean` and `recreate` work in place, needing no extra disk, but a dump that fails midway leaves the target damaged.",
  },
  {
    name: "no_globals",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description: "Skip the globals file.",
  },
  {
    name: "no_owner",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description: "`pg_restore --no-owner`: objects belong to the restoring user.",
  },
  {
    name: "schema_only",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description: "`pg_restore -s`.",
  },
  {
    name: "data_only",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description: "`pg_restore -a`.",
  },
  {
    name: "exit_on_error",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description: "Stop at the first error: `pg_restore -e`, `psql -v ON_ERROR_STOP=1`.",
  },
  {
    name: "allow_partial",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description: "Report failed files but let `plakar restore` succeed.",
  },
  {
    name: "jobs",
    type: { kind: "integer", min: 1, max: 128 },
    default: "1",
    scopes: EXPORTERS,
    description:
      "`pg_restore -j N` for custom-format dumps, each spooled to a file in `spool_dir` first (pg_restore cannot read a pipe in parallel). `1`: streamed, no disk. Not with `clean=true` (atomic) or `single_transaction=true`, see [Parallel restore](#parallel-restore-jobsn).",
  },
  {
    name: "spool_dir",
    type: { kind: "string" },
    defaultText: "temp dir",
    scopes: EXPORTERS,
    description: "Directory of the spooled dumps of `jobs=N`; default `$TMPDIR`, else `/tmp`.",
  },
  {
    name: "no_privileges",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description: "`pg_restore -x`: leave out the dump's `GRANT`/`REVOKE`.",
  },
  {
    name: "no_comments",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description: "`pg_restore --no-comments`: leave out the dump's `COMMENT`s.",
  },
  {
    name: "role",
    type: { kind: "string", nonBlank: "name the role the restore acts as, or remove role=" },
    scopes: EXPORTERS,
    description:
      "The role the restore acts as: `pg_restore --role=ROLE`, and for `psql` scripts `SET ROLE` at connection start (`PGOPTIONS=-c role=ROLE`). For managed targets where the login user is not the owner but may `SET ROLE` to it.",
  },
  {
    name: "single_transaction",
    type: BOOLEAN,
    default: "false",
    scopes: EXPORTERS,
    description:
      "`pg_restore -1`: each dump in one transaction, so an error keeps nothing of it; implies `exit_on_error`. `clean=true` (atomic) and `recreate=true` (atomic, in the temporary database) already restore that way. Not with `jobs` or with `recreate=true atomic=false`.",
  },
  {
    name: "slot",
    type: {
      kind: "pattern",
      pattern: "^[a-z0-9_]{1,55}$",
      accepted: "1 to 55 lower-case letters, digits and underscores",
    },
    default: "plakar_wal",
    scopes: ["importer:postgres+wal"],
    description:
      "The persistent physical replication slots that keep the chain's WAL on the server until two captures hold it: `<slot>` and `<slot>_pending`, created by the first capture (see [Point-in-time recovery](#point-in-time-recovery)).",
  },
  {
    name: "warn_retained_wal",
    type: {
      kind: "pattern",
      pattern: "^[0-9]{1,9} ?(kB|MB|GB|TB)$",
      accepted: "a size such as 512MB or 8GB (kB, MB, GB, TB)",
    },
    default: "8GB",
    scopes: ["importer:postgres+wal"],
    description:
      "Ping and every capture warn, with figures, when the slots keep more WAL than this on the server (captures too far apart, or stopped).",
  },
  {
    name: "spool_dir",
    type: { kind: "string" },
    defaultText: "the system temp directory",
    scopes: ["importer:postgres+wal"],
    description:
      "Where `pg_receivewal` writes the segments of a capture before they are stored; each is removed once stored.",
  },
  {
    name: "pg_bin_dir",
    type: { kind: "string" },
    defaultText: "`PATH`",
    scopes: ALL,
    description:
      "Directory of the client tools (`pg_dump`, `pg_dumpall`, `pg_restore`, `psql`, `pg_basebackup`, `pg_receivewal`), instead of those on `PATH`.",
  },
  {
    name: "pg_bin_search",
    type: { kind: "dirs" },
    defaultText: "the usual places",
    // pg_basebackup is not searched for: postgres+bin:// takes pg_bin_dir only.
    scopes: LOGICAL,
    description:
      `Where to look for tools of the server's major (or newer) when \`pg_bin_dir\` is not set and the one on \`PATH\` is older than the server or missing: absolute directories separated by \`:\` or \`,\`, \`N\` standing for any major (default: ${
        DEFAULT_BIN_SEARCH.map((d) => `\`${d}\``).join(", ")
      }).`,
  },
  {
    name: "ssl_mode",
    type: { kind: "enum", values: SSL_MODES },
    default: "prefer",
    scopes: NOT_AWS,
    description: "TLS mode of the connections (`PGSSLMODE`).",
  },
  {
    name: "ssl_mode",
    type: { kind: "enum", values: SSL_MODES },
    default: "prefer",
    scopes: AWS,
    description:
      "IAM authentication needs an encrypted connection: use `require`, `verify-ca` or `verify-full`. `disable`, `allow` and `prefer` (the default) get one warning on stderr.",
  },
  {
    name: "ssl_cert",
    type: { kind: "string" },
    scopes: ALL,
    description: "Client certificate file (PEM), `PGSSLCERT`.",
  },
  {
    name: "ssl_key",
    type: { kind: "string" },
    scopes: ALL,
    description: "Client key file (PEM), `PGSSLKEY`.",
  },
  {
    name: "ssl_root_cert",
    type: { kind: "string" },
    scopes: ALL,
    description: "CA certificate to verify the server (PEM), `PGSSLROOTCERT`.",
  },
  {
    name: "ssl_cert_data",
    type: { kind: "pem" },
    scopes: ALL,
    description:
      "`ssl_cert` as inline PEM content, written to a 0600 temporary file removed when the connector closes.",
  },
  {
    name: "ssl_key_data",
    type: { kind: "pem" },
    scopes: ALL,
    description:
      "`ssl_key` as inline PEM content, written to a 0600 temporary file removed when the connector closes.",
  },
  {
    name: "ssl_root_cert_data",
    type: { kind: "pem" },
    scopes: ALL,
    description:
      "`ssl_root_cert` as inline PEM content, written to a 0600 temporary file removed when the connector closes.",
  },
  {
    name: "connect_timeout",
    // At least a second (0, libpq's "wait forever", would let a black-holed
    // host hang a scheduled backup); at most a day, which also keeps the
    // milliseconds within what a JavaScript timer can hold.
    type: { kind: "integer", min: 1, max: 86400 },
    default: "10",
    scopes: ALL,
    description:
      "Seconds to wait for a connection (`PGCONNECT_TIMEOUT`), so a black-holed host fails fast (libpq's `0`, wait forever, is refused).",
  },
];

/** `a`, `a and b`, `a, b and c`. */
function sentenceList(items: readonly string[]): string {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/**
 * How a list option's value is written (parseList), for the option reference and the
 * man page: one paragraph of Markdown, naming every option of that type, so
 * that the rule is stated once and each list option's description only says
 * it is a list.
 */
export function listSyntax(): string {
  const lists = [...new Set(OPTIONS.filter((o) => o.type.kind === "list").map((o) => o.name))];
  return [
    `${
      sentenceList(lists.map((n) => `\`${n}\``))
    } take lists: names separated by commas, blanks around a name and empty names ignored.`,
    'A name holding a comma or a double quote, or beginning or ending with a blank, goes in double quotes, with `""` for a double quote inside (as SQL identifiers and CSV do):',
    '`databases="a,b",c` is the databases `a,b` and `c`; `exclude_databases="say ""hi"""` is `say "hi"`.',
    "Any other double quote, or one left open, is refused, naming the option.",
    "In a shell, quote the whole option: `-o 'databases=\"a,b\",c'`, or `'databases=\"a,b\",c'` after the URI in `plakar source add`.",
  ].join(" ");
}

export const REFUSALS: readonly Refusal[] = [
  {
    name: "password",
    scopes: AWS,
    message: "not accepted by postgres+aws:// (the IAM token is the password); remove it",
    doc: "Not accepted: the IAM token is the password.",
  },
  {
    name: "allow_partial",
    scopes: ["importer:postgres+wal"],
    message:
      "not accepted by postgres+wal:// (a capture that lacks a segment would break the chain); remove it",
    doc: "Not accepted: a capture holds every segment of its range or it fails.",
  },
  {
    name: "allow_partial",
    scopes: ["importer:postgres+bin"],
    message:
      "not accepted by postgres+bin:// (a physical backup is one copy of the whole cluster: it is complete or it fails); remove it",
    doc: "Not accepted: a physical copy is complete or it fails.",
  },
];

function exclusive(scopes: readonly Scope[], a: string, b: string): Conflict {
  return {
    scopes,
    when: [{ name: a, set: true }, { name: b, set: true }],
    option: a,
    message: `${a} and ${b} are mutually exclusive: set only one`,
  };
}

const NO_SSL_WITH = "ssl_mode=disable conflicts with the ssl_* certificate options: remove one";

/** Checked in this order; the first that holds is the error. */
export const CONFLICTS: readonly Conflict[] = [
  exclusive(ALL, "ssl_cert", "ssl_cert_data"),
  exclusive(ALL, "ssl_key", "ssl_key_data"),
  exclusive(ALL, "ssl_root_cert", "ssl_root_cert_data"),
  ...["ssl_cert", "ssl_root_cert", "ssl_cert_data", "ssl_key_data", "ssl_root_cert_data"].map((
    name,
  ): Conflict => ({
    scopes: ALL,
    when: [{ name: "ssl_mode", equals: "disable" }, { name, set: true }],
    option: "ssl_mode",
    message: NO_SSL_WITH,
  })),
  exclusive(EXPORTERS, "clean", "recreate"),
  exclusive(LOGICAL, "schema_only", "data_only"),
  {
    scopes: EXPORTERS,
    when: [{ name: "recreate", is: true }, { name: "database", set: true }],
    option: "database",
    message:
      "not used with recreate=true (the database name comes from the archive): remove database= or use clean=true",
  },
  {
    scopes: EXPORTERS,
    when: [{ name: "recreate", is: true }, { name: "data_only", is: true }],
    option: "recreate",
    message:
      "recreate=true drops and recreates the database, data_only=true restores no schema: set only one",
  },
  {
    scopes: EXPORTERS,
    when: [
      { name: "single_transaction", is: true },
      { name: "recreate", is: true },
      { name: "atomic", is: false },
    ],
    option: "single_transaction",
    message:
      "pg_restore cannot create the database (recreate=true with atomic=false) in a single transaction: remove one",
  },
  {
    scopes: EXPORTERS,
    when: [{ name: "jobs", atLeast: 2 }, { name: "single_transaction", is: true }],
    option: "jobs",
    message:
      "jobs={jobs} and single_transaction=true are mutually exclusive (pg_restore runs parallel jobs on separate connections, never in one transaction): set only one",
  },
  {
    scopes: EXPORTERS,
    when: [
      { name: "jobs", atLeast: 2 },
      { name: "clean", is: true },
      { name: "atomic", is: true },
    ],
    option: "jobs",
    message:
      "jobs={jobs} cannot run with clean=true, which restores in one transaction (pg_restore --single-transaction cannot be split across jobs): use recreate=true (restored with jobs into a temporary database swapped in on success), or set atomic=false",
  },
];

export const REQUIREMENTS: readonly Requirement[] = [
  {
    scopes: ALL,
    anyOf: ["location", "host"],
    option: "location",
    message: (p) => `required: ${locationForm(p)}, or set host=`,
  },
];

/** The declarations a scope takes, in documentation order. */
export function optionsFor(scope: Scope): OptionDecl[] {
  return OPTIONS.filter((o) => o.scopes.includes(scope));
}

/** The declaration of `name` in `scope`, if the scope takes it. */
export function optionDecl(scope: Scope, name: string): OptionDecl | undefined {
  return OPTIONS.find((o) => o.name === name && o.scopes.includes(scope));
}

/** The keys a scope accepts, sorted. */
export function acceptedNames(scope: Scope): string[] {
  return [...new Set(optionsFor(scope).map((o) => o.name))].sort();
}

/** A parsed value: undefined when unset and without a default. */
export type Value = boolean | number | string | string[] | undefined;

/** How a value appears in a message: quoted, cut at 40 characters. */
function shown(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}

const TRUE: readonly string[] = ["1", "t", "T", "true", "TRUE", "True", "yes", "on"];
const FALSE: readonly string[] = ["0", "f", "F", "false", "FALSE", "False", "no", "off"];
export const BOOLEAN_SPELLINGS = { true: TRUE, false: FALSE } as const;

/** Parses a boolean the way Go's strconv.ParseBool does (what users of the reference type). */
export function parseBool(option: string, value: string): boolean {
  const v = value.trim();
  if (TRUE.includes(v)) return true;
  if (FALSE.includes(v) || v === "") return false;
  throw new ConfigError(option, `invalid value ${JSON.stringify(value)} (accepted: true, false)`);
}

/**
 * Splits a list option's value into names. Names are separated by commas;
 * blanks around a name are dropped, and so are empty names (`a, b,,` is
 * `a` and `b`). A name that holds a comma (a database may be called `a,b`),
 * a double quote or blanks at either end is written in double quotes, with
 * `""` for a double quote inside, as SQL identifiers and CSV write them:
 * `"a,b", c` is `a,b` and `c`. A double quote anywhere else, or left open,
 * is refused rather than guessed at:
 * `a,b"` might mean either name, and a wrong guess excludes or restores the
 * wrong database. The JSON Schema's list pattern (harness/schemas.ts) accepts
 * exactly the values this accepts.
 */
export function parseList(option: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  const refuse = (what: string, item: number, text: string) =>
    new ConfigError(
      option,
      `${what} in item ${item} (${excerpt(text)}) (accepted: ${LIST_ACCEPTED})`,
    );
  const names: string[] = [];
  const blank = /\s/;
  let i = 0;
  for (let item = 1;; item++) {
    while (i < value.length && blank.test(value[i])) i++;
    let end: number;
    if (value[i] === '"') {
      let name = "";
      let j = i + 1;
      for (;;) {
        const q = value.indexOf('"', j);
        if (q < 0) throw refuse("unterminated double quote", item, value.slice(i));
        name += value.slice(j, q);
        if (value[q + 1] !== '"') {
          j = q + 1;
          break;
        }
        name += '"';
        j = q + 2;
      }
      while (j < value.length && blank.test(value[j])) j++;
      if (j < value.length && value[j] !== ",") {
        const comma = value.indexOf(",", j);
        throw refuse(
          "text after the closing double quote",
          item,
          value.slice(i, comma < 0 ? undefined : comma),
        );
      }
      if (name !== "") names.push(name);
      end = j;
    } else {
      const comma = value.indexOf(",", i);
      end = comma < 0 ? value.length : comma;
      const name = value.slice(i, end).trim();
      if (name.includes('"')) throw refuse("double quote in an unquoted name", item, name);
      if (name !== "") names.push(name);
    }
    if (end >= value.length) return names;
    i = end + 1;
  }
}

/** What a list option accepts, for its error messages. */
const LIST_ACCEPTED =
  'names separated by commas; a name with a comma or a double quote in double quotes, the quote doubled: "a,b",c or "say ""hi"""';

/** A piece of a value for a message: cut at 40 characters, control characters escaped. */
function excerpt(text: string): string {
  const cut = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  // deno-lint-ignore no-control-regex
  return cut.replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/**
 * Names written as a list option's value, quoted where parseList needs it,
 * so that a message shows a name holding a comma as one name (and an empty
 * name, which no database has, as `""`).
 */
export function formatList(names: readonly string[]): string {
  return names.map((n) => /[",]|^\s|\s$|^$/.test(n) ? `"${n.replaceAll('"', '""')}"` : n).join(",");
}

/** Splits directories separated by `:` or `,`, trimming blanks. */
export function parseDirs(value: string): string[] {
  return value.split(/[:,]/).map((s) => s.trim()).filter((s) => s !== "");
}

/**
 * A statement_timeout value as pg_dump --lock-wait-timeout passes it to the
 * server: milliseconds, or an integer with a unit (ms, s, min, h, d); not 0,
 * which would wait forever (the default without the option).
 */
export function parseDuration(option: string, value: string): string {
  const m = new RegExp(`^([0-9]+)(${DURATION_UNITS.join("|")})?$`).exec(value);
  // The server refuses more than DURATION_MAX ms whatever the unit (30d is too long).
  if (!m || Number(m[1]) === 0 || durationMillis(value) > DURATION_MAX) {
    throw new ConfigError(
      option,
      `invalid value ${
        shown(value)
      } (accepted: a positive integer of milliseconds, or with a unit: 500ms, 30s, 5min, 1h, 1d; at most 24 days)`,
    );
  }
  return value;
}

/** Digits only (no sign, blank, fraction or exponent), within min..max. */
export function parseInteger(option: string, value: string, min: number, max: number): number {
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) {
    throw new ConfigError(
      option,
      `invalid value ${shown(value)} (accepted: an integer from ${min} to ${max})`,
    );
  }
  return n;
}

/**
 * Parses one value of a declared option. A value that means "not set"
 * gives the default (parsed), or undefined without one.
 */
export function parseValue(decl: OptionDecl, raw: string | undefined): Value {
  const t = decl.type;
  const fallback = () => decl.default === undefined ? undefined : parseValue(decl, decl.default);
  if (raw === undefined) return fallback();
  switch (t.kind) {
    case "boolean":
      return raw.trim() === "" ? fallback() : parseBool(decl.name, raw);
    case "list":
      return parseList(decl.name, raw);
    case "string":
      if (t.nonBlank !== undefined && raw.trim() === "") {
        throw new ConfigError(decl.name, `empty: ${t.nonBlank}`);
      }
      return raw === "" ? fallback() : raw;
  }
  if (raw === "") return fallback();
  switch (t.kind) {
    case "integer":
      return parseInteger(decl.name, raw, t.min, t.max);
    case "enum":
      if (!t.values.includes(raw)) {
        throw new ConfigError(
          decl.name,
          `invalid value ${shown(raw)} (accepted: ${t.values.join(", ")})`,
        );
      }
      return raw;
    case "duration":
      return parseDuration(decl.name, raw);
    case "uri":
      return raw;
    case "pem":
      if (!raw.includes("-----BEGIN")) {
        throw new ConfigError(decl.name, "expected inline PEM content (-----BEGIN ...)");
      }
      return raw;
    case "dirs": {
      const dirs = parseDirs(raw);
      if (dirs.some((d) => !d.startsWith("/"))) {
        throw new ConfigError(
          decl.name,
          "expected absolute directories or patterns with N for the major, separated by ':' or ',' (e.g. /usr/lib/postgresql/N/bin:/opt/pg/bin)",
        );
      }
      return dirs;
    }
    case "pattern":
      if (!new RegExp(t.pattern).test(raw)) {
        throw new ConfigError(decl.name, `invalid value ${shown(raw)} (accepted: ${t.accepted})`);
      }
      return raw;
  }
}

/**
 * Refuses a key the scope does not take: with its own reason when one is
 * declared, else naming every accepted key.
 */
export function checkKeys(config: Record<string, string>, scope: Scope): void {
  const accepted = acceptedNames(scope);
  for (const key of Object.keys(config)) {
    if (accepted.includes(key)) continue;
    const refusal = REFUSALS.find((r) => r.name === key && r.scopes.includes(scope));
    if (refusal) throw new ConfigError(key, refusal.message);
    throw new ConfigError(key, `unknown option (accepted: ${accepted.join(", ")})`);
  }
}

/** Checks the scope's requirements: one of the options must be given, non-empty. */
export function checkRequirements(config: Record<string, string>, scope: Scope): void {
  const scheme = schemeOf(scope);
  for (const r of REQUIREMENTS) {
    if (!r.scopes.includes(scope)) continue;
    if (!r.anyOf.some((k) => (config[k] ?? "") !== "")) {
      throw new ConfigError(r.option, r.message(scheme));
    }
  }
}

/**
 * The parsed values of a scope's options, read by the getter of each
 * option's type: reading an option the scope does not take, or through the
 * wrong getter, is a programming error (RangeError), not a silent undefined.
 */
export class OptionValues {
  readonly #scope: Scope;
  readonly #values: ReadonlyMap<string, Value>;

  constructor(scope: Scope, values: ReadonlyMap<string, Value>) {
    this.#scope = scope;
    this.#values = values;
  }

  /** A boolean option (every boolean has a default). */
  boolean(name: string): boolean {
    return this.#read(name, ["boolean"]) as boolean;
  }

  /** An integer option; undefined when unset without a default. */
  integer(name: string): number | undefined {
    return this.#read(name, ["integer"]) as number | undefined;
  }

  /** A text option (string, enum, duration, URI, PEM, pattern); undefined when unset. */
  text(name: string): string | undefined {
    return this.#read(name, ["string", "enum", "duration", "uri", "pem", "pattern"]) as
      | string
      | undefined;
  }

  /** A list option (names, directories); undefined when unset without a default. */
  list(name: string): string[] | undefined {
    return this.#read(name, ["list", "dirs"]) as string[] | undefined;
  }

  /** Whether the scope takes the option at all. */
  takes(name: string): boolean {
    return optionDecl(this.#scope, name) !== undefined;
  }

  /** The value as parsed, whatever its type (for the conflict rules). */
  raw(name: string): Value {
    return this.#values.get(name);
  }

  #read(name: string, kinds: readonly OptionType["kind"][]): Value {
    const decl = optionDecl(this.#scope, name);
    if (!decl || !kinds.includes(decl.type.kind)) {
      throw new RangeError(`Cannot read option ${name} of ${this.#scope} as ${kinds[0]}`);
    }
    return this.#values.get(name);
  }
}

/** Parses every option the scope takes: a value for each, defaults applied. */
export function parseValues(config: Record<string, string>, scope: Scope): OptionValues {
  const values = new Map<string, Value>();
  for (const decl of optionsFor(scope)) values.set(decl.name, parseValue(decl, config[decl.name]));
  return new OptionValues(scope, values);
}

function holds(c: Condition, values: OptionValues): boolean {
  const v = values.raw(c.name);
  if ("is" in c) return v === c.is;
  if ("set" in c) return v === true || (typeof v === "string" && v !== "");
  if ("atLeast" in c) return typeof v === "number" && v >= c.atLeast;
  return v === c.equals;
}

/** Refuses the first declared conflict whose conditions all hold. */
export function checkConflicts(values: OptionValues, scope: Scope): void {
  for (const c of CONFLICTS) {
    if (!c.scopes.includes(scope) || !c.when.every((w) => holds(w, values))) continue;
    throw new ConfigError(
      c.option,
      c.message.replace(/\{([a-z_]+)\}/g, (_, name) => String(values.raw(name))),
    );
  }
}

/** The accepted values of a type, as a sentence for the documentation ("" when obvious). */
function acceptedSentence(t: OptionType): string {
  switch (t.kind) {
    case "integer":
      return `An integer from ${t.min} to ${t.max}.`;
    case "enum":
      return `One of ${t.values.map((v) => `\`${v}\``).join(", ")}.`;
    case "duration":
      return "Milliseconds, or an integer with a unit: `500ms`, `30s`, `5min`, `1h`, `1d` (not `0`).";
    case "list":
      // The quoting rule is listSyntax(), in one place of each document.
      return "A list, see [Option values](#option-values).";
    default:
      return "";
  }
}

/** The options a two-condition conflict makes `name` exclusive with, in a scope. */
export function exclusiveWith(scope: Scope, name: string): string[] {
  const out: string[] = [];
  for (const c of CONFLICTS) {
    if (!c.scopes.includes(scope) || c.when.length !== 2) continue;
    if (!c.when.every((w) => ("is" in w && w.is) || "set" in w)) continue;
    const [a, b] = c.when.map((w) => w.name);
    if (a === name && !out.includes(b)) out.push(b);
    if (b === name && !out.includes(a)) out.push(a);
  }
  return out;
}

/** An option's description with its accepted values and exclusions, for a scope. */
export function describe(decl: OptionDecl, scope: Scope): string {
  const others = exclusiveWith(scope, decl.name);
  return [
    decl.description,
    acceptedSentence(decl.type),
    others.length ? `Exclusive with ${others.map((o) => `\`${o}\``).join(", ")}.` : "",
  ].filter((s) => s !== "").join(" ");
}
