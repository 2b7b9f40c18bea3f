// Every error class of ours reaches plakar with the gRPC code its kind names.

import { assertEquals } from "../../helpers/assert.ts";
import { Code, KlosetError } from "../../../src/kloset/errors.ts";
import { ConfigError, kindOfSqlstate, PluginError } from "../../../src/errors.ts";
import { ServerError } from "../../../src/pg/errors.ts";
import { IamTokenError } from "../../../src/pg/iam.ts";
import { ToolError } from "../../../src/pg/tools.ts";

const codeOf = (e: unknown) => KlosetError.from(e).code;

/** A server's error as npm:pg raises it: the SQLSTATE in `code`. */
function pgError(sqlstate: string): Error {
  return Object.assign(new Error("server said no"), { code: sqlstate });
}

Deno.test("each error class maps to the gRPC code of its kind", async (t) => {
  const cases: [string, unknown, Code][] = [
    ["ConfigError", new ConfigError("jobs", "invalid value"), Code.INVALID_ARGUMENT],
    ["IamTokenError", new IamTokenError("no credentials"), Code.UNAUTHENTICATED],
    [
      "ServerError caused by a refused connection",
      new ServerError("cannot connect", {
        cause: Object.assign(new Error("x"), { code: "ECONNREFUSED" }),
      }),
      Code.UNAVAILABLE,
    ],
    [
      "ServerError caused by a certificate that does not verify",
      new ServerError("TLS", {
        cause: Object.assign(new Error("x"), { code: "SELF_SIGNED_CERT_IN_CHAIN" }),
      }),
      Code.FAILED_PRECONDITION,
    ],
    [
      "ServerError for a missing database",
      new ServerError("x", { cause: pgError("3D000") }),
      Code.NOT_FOUND,
    ],
    [
      "ServerError with an explicit kind",
      new ServerError("preflight found 1 problem(s)", { kind: "failed-precondition" }),
      Code.FAILED_PRECONDITION,
    ],
    ["a server error with a SQLSTATE", pgError("28P01"), Code.UNAUTHENTICATED],
    ["PluginError", new PluginError("data-loss", "truncated"), Code.DATA_LOSS],
    ["a plain Error", new Error("boom"), Code.UNKNOWN],
  ];
  for (const [name, err, code] of cases) {
    await t.step(name, () => assertEquals(codeOf(err), code));
  }
});

Deno.test("a tool's failure gets its kind from libpq's words in its stderr, read once", async (t) => {
  const cases: [string, number | null, string, Code][] = [
    [
      "refused connection",
      2,
      'pg_dump: error: connection to server at "10.0.0.1", port 5432 failed: Connection refused',
      Code.UNAVAILABLE,
    ],
    [
      "wrong password",
      1,
      'connection to server at "h", port 5432 failed: FATAL:  password authentication failed for user "u"',
      Code.UNAUTHENTICATED,
    ],
    [
      "wrong CA",
      1,
      "connection to server failed: SSL error: certificate verify failed",
      Code.FAILED_PRECONDITION,
    ],
    [
      "lock wait",
      1,
      'pg_dump: error: query failed: ERROR:  could not obtain lock on relation "t"',
      Code.ABORTED,
    ],
    [
      "lock table full",
      1,
      "ERROR:  out of shared memory | HINT:  You might need to increase max_locks_per_transaction.",
      Code.RESOURCE_EXHAUSTED,
    ],
    [
      "missing database",
      1,
      'connection to server failed: FATAL:  database "app" does not exist',
      Code.NOT_FOUND,
    ],
    ["missing privilege", 1, "ERROR:  permission denied for table t", Code.PERMISSION_DENIED],
    ["killed", null, "", Code.CANCELLED],
    [
      "anything else",
      1,
      "pg_restore: error: could not read from input file: end of file",
      Code.UNKNOWN,
    ],
  ];
  for (const [name, exit, stderr, code] of cases) {
    await t.step(
      name,
      () => assertEquals(codeOf(new ToolError("pg_dump", "of x", exit, stderr)), code),
    );
  }
});

Deno.test("kindOfSqlstate() reads exact codes first, then the class", () => {
  assertEquals(kindOfSqlstate("55P03"), "aborted");
  assertEquals(kindOfSqlstate("08006"), "unavailable");
  assertEquals(kindOfSqlstate("53200"), "resource-exhausted");
  assertEquals(kindOfSqlstate("P0001"), "unknown");
  assertEquals(kindOfSqlstate(undefined), "unknown");
});
