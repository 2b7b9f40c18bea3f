import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import { parseExportConfig, parseImportConfig } from "../../../src/pg/config.ts";
import { ConfigError } from "../../../src/kloset/errors.ts";

Deno.test("parseImportConfig() takes host, port, user, password and database from the URI", () => {
  const o = parseImportConfig(
    { location: "postgres://bob:s%40cret@db.example.com:6543/my%20app" },
    "logical",
  );
  assertEquals(o.conn.host, "db.example.com");
  assertEquals(o.conn.port, 6543);
  assertEquals(o.conn.username, "bob");
  assertEquals(o.conn.password, "s@cret");
  assertEquals(o.database, "my app");
  assertEquals(o.conn.sslMode, "prefer");
  assertEquals(o.compress, false);
});

Deno.test("parseImportConfig() defaults to localhost:5432 and every database", () => {
  const o = parseImportConfig({ location: "postgres://" }, "logical");
  assertEquals([o.conn.host, o.conn.port, o.database], ["localhost", 5432, undefined]);
  const p = parseImportConfig({ location: "postgres://h/" }, "logical");
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
  }, "logical");
  assertEquals([o.conn.host, o.conn.port, o.conn.username, o.conn.password, o.database], [
    "h2",
    2,
    "c",
    "d",
    "db2",
  ]);
});

Deno.test("an IPv6 host in brackets is accepted", () => {
  const o = parseImportConfig({ location: "postgres://[::1]:5433/x" }, "logical");
  assertEquals([o.conn.host, o.conn.port], ["::1", 5433]);
});

Deno.test("libpq sslmode in the URI maps to ssl_mode; the option wins", () => {
  assertEquals(
    parseImportConfig({ location: "postgres://h/?sslmode=require" }, "logical").conn.sslMode,
    "require",
  );
  assertEquals(
    parseImportConfig({ location: "postgres://h/?sslmode=require", ssl_mode: "disable" }, "logical")
      .conn.sslMode,
    "disable",
  );
});

Deno.test("exclude_databases is a trimmed comma list; postgres+aws defaults to rdsadmin", () => {
  assertEquals(parseImportConfig({ exclude_databases: " a, b ,,c" }, "logical").excludeDatabases, [
    "a",
    "b",
    "c",
  ]);
  assertEquals(
    parseImportConfig({ location: "postgres+aws://u@h", region: "eu-west-3" }, "aws")
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
    }, "aws")
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
    () => parseImportConfig({ ssl_mode: "maybe" }, "logical"),
    "ssl_mode",
    "verify-full",
  );
  assertConfigError(
    () => parseImportConfig({ compress: "yep" }, "logical"),
    "compress",
    "true, false",
  );
  assertConfigError(() => parseImportConfig({ port: "99999" }, "logical"), "port", "1-65535");
  assertConfigError(() => parseImportConfig({ port: "abc" }, "logical"), "port", "1-65535");
  assertConfigError(
    () => parseImportConfig({ colour: "blue" }, "logical"),
    "colour",
    "unknown option",
  );
  assertConfigError(
    () => parseImportConfig({ location: "mysql://h/db" }, "logical"),
    "location",
    "postgres://",
  );
  assertConfigError(
    () => parseImportConfig({ location: "postgres://h/db?application_name=x" }, "logical"),
    "location",
    "sslmode",
  );
});

Deno.test("schema_only and data_only are mutually exclusive", () => {
  assertConfigError(
    () => parseImportConfig({ schema_only: "true", data_only: "true" }, "logical"),
    "schema_only",
    "data_only",
  );
  assertConfigError(
    () => parseExportConfig({ schema_only: "true", data_only: "true" }, "logical"),
    "schema_only",
    "data_only",
  );
});

Deno.test("clean and recreate are mutually exclusive; recreate rejects database=", () => {
  assertConfigError(
    () => parseExportConfig({ clean: "true", recreate: "true" }, "logical"),
    "clean",
    "recreate",
  );
  assertConfigError(
    () => parseExportConfig({ recreate: "true", database: "x" }, "logical"),
    "database",
    "recreate",
  );
  assertConfigError(
    () => parseExportConfig({ recreate: "true", data_only: "true" }, "logical"),
    "recreate",
    "data_only",
  );
  // A URI path with recreate is only a connection detail.
  assertEquals(
    parseExportConfig({ location: "postgres://h/app", recreate: "true" }, "logical").database,
    undefined,
  );
});

Deno.test("ssl_* paths and their inline *_data variants are mutually exclusive", () => {
  assertConfigError(
    () =>
      parseImportConfig(
        { ssl_cert: "/a", ssl_cert_data: "-----BEGIN CERTIFICATE-----" },
        "logical",
      ),
    "ssl_cert",
    "ssl_cert_data",
  );
  assertConfigError(
    () => parseImportConfig({ ssl_key_data: "not pem" }, "logical"),
    "ssl_key_data",
    "PEM",
  );
  const o = parseImportConfig({ ssl_root_cert_data: "-----BEGIN CERTIFICATE-----\nx" }, "logical");
  assertEquals(o.inlinePem.map((p) => p.option), ["ssl_root_cert_data"]);
});

Deno.test("postgres+aws refuses a password and requires region and username", () => {
  assertConfigError(
    () => parseImportConfig({ location: "postgres+aws://u:p@h", region: "us-east-1" }, "aws"),
    "location",
    "no password",
  );
  assertConfigError(
    () =>
      parseImportConfig(
        { location: "postgres+aws://u@h", region: "us-east-1", password: "p" },
        "aws",
      ),
    "password",
    "IAM",
  );
  assertConfigError(
    () => parseImportConfig({ location: "postgres+aws://u@h" }, "aws"),
    "region",
    "required",
  );
  assertConfigError(
    () => parseImportConfig({ location: "postgres+aws://h", region: "us-east-1" }, "aws"),
    "username",
    "required",
  );
});

Deno.test("booleans accept Go's spellings", () => {
  for (const t of ["true", "1", "TRUE", "t"]) {
    assertEquals(parseImportConfig({ compress: t }, "logical").compress, true);
  }
  for (const f of ["false", "0", "F", ""]) {
    assertEquals(parseImportConfig({ compress: f }, "logical").compress, false);
  }
});
