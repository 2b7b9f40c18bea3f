import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import { INTEGER_RANGES, parseExportConfig, parseImportConfig } from "../../../src/pg/config.ts";
import { ConfigError } from "../../../src/errors.ts";

/** A location for tests about other options. */
const AT = { location: "postgres://db.example.com/" };

Deno.test("parseImportConfig() takes host, port, user, password and database from the URI", () => {
  const o = parseImportConfig(
    { location: "postgres://bob:s%40cret@db.example.com:6543/my%20app" },
    "postgres",
  );
  assertEquals(o.conn.host, "db.example.com");
  assertEquals(o.conn.port, 6543);
  assertEquals(o.conn.username, "bob");
  assertEquals(o.conn.password, "s@cret");
  assertEquals(o.database, "my app");
  assertEquals(o.conn.sslMode, "prefer");
  assertEquals(o.compress, false);
});

Deno.test("parseImportConfig() defaults to port 5432 and every database", () => {
  const o = parseImportConfig({ location: "postgres://h" }, "postgres");
  assertEquals([o.conn.host, o.conn.port, o.database], ["h", 5432, undefined]);
  const p = parseImportConfig({ location: "postgres://h/" }, "postgres");
  assertEquals(p.database, undefined);
});

Deno.test("options override the URI", () => {
  const o = parseImportConfig({
    location: "postgres://a:b@h1:1/db1",
    host: "h2",
    port: "2",
    username: "c",
    password: "d",
    database: "db2",
  }, "postgres");
  assertEquals([o.conn.host, o.conn.port, o.conn.username, o.conn.password, o.database], [
    "h2",
    2,
    "c",
    "d",
    "db2",
  ]);
});

Deno.test("an IPv6 host in brackets is accepted", () => {
  const o = parseImportConfig({ location: "postgres://[::1]:5433/x" }, "postgres");
  assertEquals([o.conn.host, o.conn.port], ["::1", 5433]);
});

Deno.test("libpq sslmode in the URI maps to ssl_mode; the option wins", () => {
  assertEquals(
    parseImportConfig({ location: "postgres://h/?sslmode=require" }, "postgres").conn.sslMode,
    "require",
  );
  assertEquals(
    parseImportConfig(
      { location: "postgres://h/?sslmode=require", ssl_mode: "disable" },
      "postgres",
    )
      .conn.sslMode,
    "disable",
  );
});

Deno.test("exclude_databases and databases take quoted names; only a given exclude_databases is warned about", () => {
  const imp = parseImportConfig({ ...AT, exclude_databases: '"a,b", c' }, "postgres");
  assertEquals([imp.excludeDatabases, imp.excludeDatabasesGiven], [["a,b", "c"], true]);
  assertEquals(parseExportConfig({ ...AT, databases: '"a,b"' }, "postgres").databases, ["a,b"]);
  assertConfigError(
    () => parseExportConfig({ ...AT, databases: '"a,b' }, "postgres"),
    "databases",
    "unterminated double quote in item 1",
  );
  // postgres+aws://'s default rdsadmin was not given: a server without it is no typo.
  const aws = { location: "postgres+aws://u@h", region: "eu-west-3" };
  assertEquals(parseImportConfig(aws, "postgres+aws").excludeDatabasesGiven, false);
  assertEquals(parseImportConfig(AT, "postgres").excludeDatabasesGiven, false);
  assertEquals(
    parseImportConfig({ ...aws, exclude_databases: "rdsadmin,x" }, "postgres+aws")
      .excludeDatabasesGiven,
    true,
  );
});

Deno.test("exclude_databases is a trimmed comma list; postgres+aws defaults to rdsadmin", () => {
  assertEquals(
    parseImportConfig({ ...AT, exclude_databases: " a, b ,,c" }, "postgres").excludeDatabases,
    [
      "a",
      "b",
      "c",
    ],
  );
  assertEquals(
    parseImportConfig({ location: "postgres+aws://u@h", region: "eu-west-3" }, "postgres+aws")
      .excludeDatabases,
    [
      "rdsadmin",
    ],
  );
  assertEquals(
    parseImportConfig({
      location: "postgres+aws://u@h",
      region: "eu-west-3",
      exclude_databases: "",
    }, "postgres+aws")
      .excludeDatabases,
    [],
  );
});

function assertConfigError(fn: () => unknown, option: string, includes: string) {
  const e = assertThrows(fn, ConfigError);
  assertEquals(e.option, option);
  if (!e.message.includes(includes)) {
    throw new Error(`message ${JSON.stringify(e.message)} lacks ${includes}`);
  }
  if (e.message.includes("\n")) throw new Error("message is not one line");
}

Deno.test("bad input names the option and the accepted values", () => {
  assertConfigError(
    () => parseImportConfig({ ...AT, ssl_mode: "maybe" }, "postgres"),
    "ssl_mode",
    "verify-full",
  );
  assertConfigError(
    () => parseImportConfig({ ...AT, compress: "yep" }, "postgres"),
    "compress",
    "true, false",
  );
  assertConfigError(
    () => parseImportConfig({ ...AT, port: "99999" }, "postgres"),
    "port",
    "from 1 to 65535",
  );
  assertConfigError(
    () => parseImportConfig({ ...AT, port: "abc" }, "postgres"),
    "port",
    "from 1 to 65535",
  );
  assertConfigError(
    () => parseImportConfig({ ...AT, colour: "blue" }, "postgres"),
    "colour",
    "unknown option",
  );
  assertConfigError(
    () => parseImportConfig({ location: "mysql://h/db" }, "postgres"),
    "location",
    "postgres://",
  );
  assertConfigError(
    () => parseImportConfig({ location: "postgres://h/db?application_name=x" }, "postgres"),
    "location",
    "sslmode",
  );
});

Deno.test("schema_only and data_only are mutually exclusive", () => {
  assertConfigError(
    () => parseImportConfig({ ...AT, schema_only: "true", data_only: "true" }, "postgres"),
    "schema_only",
    "data_only",
  );
  assertConfigError(
    () => parseExportConfig({ ...AT, schema_only: "true", data_only: "true" }, "postgres"),
    "schema_only",
    "data_only",
  );
});

Deno.test("clean and recreate are mutually exclusive; recreate rejects database=", () => {
  assertConfigError(
    () => parseExportConfig({ ...AT, clean: "true", recreate: "true" }, "postgres"),
    "clean",
    "recreate",
  );
  assertConfigError(
    () => parseExportConfig({ ...AT, recreate: "true", database: "x" }, "postgres"),
    "database",
    "recreate",
  );
  assertConfigError(
    () => parseExportConfig({ ...AT, recreate: "true", data_only: "true" }, "postgres"),
    "recreate",
    "data_only",
  );
  // A URI path with recreate is only a connection detail.
  assertEquals(
    parseExportConfig({ location: "postgres://h/app", recreate: "true" }, "postgres").database,
    undefined,
  );
});

Deno.test("ssl_* paths and their inline *_data variants are mutually exclusive", () => {
  assertConfigError(
    () =>
      parseImportConfig(
        { ...AT, ssl_cert: "/a", ssl_cert_data: "-----BEGIN CERTIFICATE-----" },
        "postgres",
      ),
    "ssl_cert",
    "ssl_cert_data",
  );
  assertConfigError(
    () => parseImportConfig({ ...AT, ssl_key_data: "not pem" }, "postgres"),
    "ssl_key_data",
    "PEM",
  );
  const o = parseImportConfig(
    { ...AT, ssl_root_cert_data: "-----BEGIN CERTIFICATE-----\nx" },
    "postgres",
  );
  assertEquals(o.inlinePem.map((p) => p.option), ["ssl_root_cert_data"]);
});

Deno.test("postgres+aws refuses a password and requires region and username", () => {
  assertConfigError(
    () =>
      parseImportConfig({ location: "postgres+aws://u:p@h", region: "us-east-1" }, "postgres+aws"),
    "location",
    "no password",
  );
  assertConfigError(
    () =>
      parseImportConfig(
        { location: "postgres+aws://u@h", region: "us-east-1", password: "p" },
        "postgres+aws",
      ),
    "password",
    "IAM",
  );
  assertConfigError(
    () => parseImportConfig({ location: "postgres+aws://u@h" }, "postgres+aws"),
    "region",
    "required",
  );
  assertConfigError(
    () => parseImportConfig({ location: "postgres+aws://h", region: "us-east-1" }, "postgres+aws"),
    "username",
    "required",
  );
});

Deno.test("booleans accept Go's spellings", () => {
  for (const t of ["true", "1", "TRUE", "t"]) {
    assertEquals(parseImportConfig({ ...AT, compress: t }, "postgres").compress, true);
  }
  for (const f of ["false", "0", "F", ""]) {
    assertEquals(parseImportConfig({ ...AT, compress: f }, "postgres").compress, false);
  }
});

// A user name and password that must never appear in a message.
const USER = "alice";
const SECRET = "S3cr3tPw";

/** Asserts a ConfigError naming `option`, one line, containing `includes`, with no userinfo. */
function assertRedacted(fn: () => unknown, option: string, includes: string) {
  assertConfigError(fn, option, includes);
  const e = assertThrows(fn, ConfigError);
  if (e.message.includes(SECRET) || e.message.includes(USER)) {
    throw new Error(`message ${JSON.stringify(e.message)} shows the user name or password`);
  }
}

Deno.test("a URI without an explicit host is refused instead of meaning localhost", () => {
  // `plakar backup postgres:/alice:pw@host/db` (one slash) reaches the plugin
  // as postgres:///alice:pw@host/db: no host, the rest in the database name.
  for (
    const location of [
      `postgres:///${USER}:${SECRET}@db.example.com/app`,
      `postgres:/${USER}:${SECRET}@db.example.com/app`,
      `postgres:${USER}:${SECRET}@db.example.com/app`.replace("postgres:", "postgres:/"),
      "postgres://",
      "postgres:///app",
      `postgres://${USER}:${SECRET}@/app`,
      `postgres://${USER}:${SECRET}@:5432/app`,
    ]
  ) {
    assertRedacted(
      () => parseImportConfig({ location }, "postgres"),
      "location",
      "postgres://[user[:password]@]host[:port][/database]",
    );
    assertRedacted(
      () => parseExportConfig({ location, recreate: "true" }, "postgres"),
      "location",
      "postgres://",
    );
  }
  assertConfigError(() => parseImportConfig({}, "postgres"), "location", "required");
  assertConfigError(() => parseExportConfig({}, "postgres"), "location", "required");
});

Deno.test("host= stands in for the URI's host", () => {
  const o = parseImportConfig({ location: "postgres:///app", host: "db.example.com" }, "postgres");
  assertEquals([o.conn.host, o.database], ["db.example.com", "app"]);
  assertEquals(parseImportConfig({ host: "h" }, "postgres").conn.host, "h");
  // ...but not for a one-slash typo whose path holds user:password@host.
  assertRedacted(
    () =>
      parseImportConfig(
        { location: `postgres:///${USER}:${SECRET}@db.example.com/app`, host: "h" },
        "postgres",
      ),
    "location",
    "postgres://",
  );
});

Deno.test("no error about the URI shows its user name or password", () => {
  const cases: [string, string][] = [
    [`postgres://${USER}:${SECRET}@h:99999/app`, "from 1 to 65535"],
    [`postgres://${USER}:${SECRET}@h:54x2/app`, "from 1 to 65535"],
    [`postgres://${USER}:${SECRET}%zz@h/app`, "percent-encoding in the password"],
    [`postgres://${USER}%zz:${SECRET}@h/app`, "percent-encoding in the user name"],
    [`postgres://${USER}:${SECRET}@h/app%zz`, "percent-encoding in the database name"],
    [`postgres://${USER}:${SECRET}@h%zz/app`, "percent-encoding in the host"],
    // Unencoded '/', '?', '#' in a password cut the host part short.
    [`postgres://${USER}:${SECRET}/x@h/app`, "percent-encode"],
    [`postgres://${USER}:12/${SECRET}@h/app`, "percent-encode"],
    [`postgres://${USER}:${SECRET}?x@h/app`, "percent-encode"],
    [`postgres://${USER}:${SECRET}#x@h/app`, "%23"],
    [`postgres://${USER}:pw@h/app?${SECRET}`, "unsupported URI parameter"],
    [`postgres://${USER}:pw@h/app?${SECRET}=1`, "unsupported URI parameter"],
    [`postgres://${USER}:${SECRET}@[::1/app`, "malformed host"],
    [`mysql://${USER}:${SECRET}@h/app`, "expected postgres://"],
    [`postgres:${USER}:${SECRET}@h/app`, "expected postgres://"],
  ];
  for (const [location, includes] of cases) {
    assertRedacted(() => parseImportConfig({ location }, "postgres"), "location", includes);
  }
  // A libpq keyword is named: it is never a secret.
  assertConfigError(
    () => parseImportConfig({ location: "postgres://h/?application_name=x" }, "postgres"),
    "location",
    '"application_name"',
  );
});

Deno.test("the scheme must be the connector's", () => {
  assertEquals(parseImportConfig({ location: "postgresql://h/app" }, "postgres").database, "app");
  assertEquals(parseImportConfig({ location: "POSTGRES://h/app" }, "postgres").database, "app");
  assertConfigError(
    () => parseImportConfig({ location: "postgres+aws://u@h/app" }, "postgres"),
    "location",
    "postgres://",
  );
  assertConfigError(
    () =>
      parseImportConfig({ location: "postgres://u@h/app", region: "us-east-1" }, "postgres+aws"),
    "location",
    "postgres+aws://user@host",
  );
  assertConfigError(
    () =>
      parseImportConfig({ location: "postgres+bin://u@h/", region: "us-east-1" }, "postgres+aws"),
    "location",
    "postgres+aws://",
  );
});

Deno.test("integer options refuse anything but digits within their range", () => {
  for (
    const bad of ["0", "65536", "99999", " 5", "5 ", "+5", "-1", "5.0", "1e3", "0x10", "10abc"]
  ) {
    assertConfigError(
      () => parseImportConfig({ ...AT, port: bad }, "postgres"),
      "port",
      "an integer from 1 to 65535",
    );
  }
  for (const good of ["1", "65535", "05432"]) {
    assertEquals(parseImportConfig({ ...AT, port: good }, "postgres").conn.port, Number(good));
  }
  for (
    const bad of ["0", "86401", "2147484", "99999999999999999999", " 5", "1e3", "10abc", "2.5"]
  ) {
    assertConfigError(
      () => parseImportConfig({ ...AT, connect_timeout: bad }, "postgres"),
      "connect_timeout",
      "an integer from 1 to 86400",
    );
    assertConfigError(
      () => parseExportConfig({ ...AT, connect_timeout: bad }, "postgres"),
      "connect_timeout",
      "an integer from 1 to 86400",
    );
  }
  // From the URI too.
  assertConfigError(
    () => parseImportConfig({ location: "postgres://h/?connect_timeout=2147484" }, "postgres"),
    "connect_timeout",
    "from 1 to 86400",
  );
  for (const good of ["1", "86400"]) {
    assertEquals(
      parseImportConfig({ ...AT, connect_timeout: good }, "postgres").conn.connectTimeout,
      Number(good),
    );
  }
  // The longest timeout still fits a JavaScript timer (2^31-1 ms), the
  // overflow that made connect_timeout=2147484 fail at once.
  assertEquals(INTEGER_RANGES.connect_timeout.max * 1000 <= 2 ** 31 - 1, true);
});
