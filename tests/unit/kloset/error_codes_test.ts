// Every error class the plugin raises reaches plakar with the gRPC status
// that says what kind of failure it is, so that a caller can tell a bad
// option from a server that is down without reading the words.

import { assertEquals } from "../../helpers/assert.ts";
import { Code, KlosetError } from "../../../src/kloset/errors.ts";
import { ConfigError, PluginError } from "../../../src/errors.ts";
import { ServerError } from "../../../src/pg/errors.ts";
import { ToolError } from "../../../src/pg/tools.ts";
import { IamTokenError } from "../../../src/pg/iam.ts";
import { NoFittingToolError } from "../../../src/pg/tool_search.ts";
import { ArchiveFormatError } from "../../../src/pg/archive_toc.ts";
import { ScriptRefusedError } from "../../../src/logical/restore/psql_guard.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

/** One instance of each class, with the status it becomes. */
const CASES: [string, Error, number][] = [
  ["ConfigError", new ConfigError("jobs", "invalid value"), Code.INVALID_ARGUMENT],
  ["PluginError", new PluginError("data-loss", "truncated dump"), Code.DATA_LOSS],
  [
    "ServerError",
    new ServerError("cannot connect", {
      cause: Object.assign(new Error("x"), { code: "ECONNREFUSED" }),
    }),
    Code.UNAVAILABLE,
  ],
  [
    "ToolError",
    new ToolError("pg_dump", 'of database "shop"', 1, 'FATAL:  database "shop" does not exist'),
    Code.NOT_FOUND,
  ],
  ["IamTokenError", new IamTokenError("no AWS credentials found"), Code.UNAUTHENTICATED],
  [
    "NoFittingToolError",
    new NoFittingToolError("pg_dump", 17, undefined, ["/usr/lib"]),
    Code.FAILED_PRECONDITION,
  ],
  ["ArchiveFormatError", new ArchiveFormatError(1, 99), Code.FAILED_PRECONDITION],
  [
    "ScriptRefusedError",
    new ScriptRefusedError(3, "psql meta-command \\! is not allowed"),
    Code.INVALID_ARGUMENT,
  ],
  ["KlosetError", new KlosetError(Code.UNIMPLEMENTED, "unknown method"), Code.UNIMPLEMENTED],
];

/**
 * Errors of the HTTP/2 layer end the connection or one stream, below gRPC:
 * they never become a status.
 */
const BELOW_GRPC = ["H2Error", "HpackError", "ReadError"];

function* sources(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "gen") yield* sources(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

for (const [name, err, code] of CASES) {
  const status = Object.entries(Code).find(([, c]) => c === code)![0];
  Deno.test(`${name} reaches plakar as ${status}`, () => {
    assertEquals(KlosetError.from(err).code, code);
  });
}

Deno.test("every error class in src/ is listed above", () => {
  const declared = [...sources(`${ROOT}src`)].flatMap((f) =>
    [...Deno.readTextFileSync(f).matchAll(/class (\w+) extends \w*Error\b/g)].map((m) => m[1])
  );
  const listed = [...CASES.map(([n]) => n), ...BELOW_GRPC];
  assertEquals(declared.filter((n) => !listed.includes(n)).sort(), []);
});
