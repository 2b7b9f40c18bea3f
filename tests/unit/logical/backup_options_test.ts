// max_parallel_dumps= and lock_wait_timeout= of the importer: parsing, the
// pg_dump argv, and the message of a dump that timed out on a lock.

import { assertEquals, assertMatch, assertThrows } from "../../helpers/assert.ts";
import { pgDumpArgs } from "../../../src/logical/importer.ts";
import { explainLockTimeout } from "../../../src/logical/lock_timeout.ts";
import { parseImportConfig } from "../../../src/pg/config.ts";
import { ToolError } from "../../../src/pg/tools.ts";
import { ConfigError } from "../../../src/errors.ts";

const imp = (c: Record<string, string>) =>
  parseImportConfig({ location: "postgres://u:pw@h:5433/", ...c }, "postgres");
const CONN = ["-h", "h", "-p", "5433", "-w", "-U", "u"];

Deno.test("max_parallel_dumps: unset means no bound; 1 to 1024 accepted", () => {
  assertEquals(imp({}).maxParallelDumps, undefined);
  assertEquals(imp({ max_parallel_dumps: "1" }).maxParallelDumps, 1);
  for (const bad of ["0", "1025", "two", "1.5"]) {
    const e = assertThrows(() => imp({ max_parallel_dumps: bad }), ConfigError);
    assertMatch(e.message, /^max_parallel_dumps: .*an integer from 1 to 1024/);
  }
});

Deno.test("lock_wait_timeout is passed to pg_dump as --lock-wait-timeout, in a form the server takes", () => {
  for (const v of ["5000", "500ms", "30s", "5min", "1h", "1d"]) {
    assertEquals(pgDumpArgs(imp({ lock_wait_timeout: v }), "a"), [
      ...CONN,
      "-Fc",
      "-Z0",
      `--lock-wait-timeout=${v}`,
      "-d",
      "dbname='a'",
    ]);
  }
  assertEquals(pgDumpArgs(imp({}), "a").some((a) => a.startsWith("--lock")), false);
});

Deno.test("lock_wait_timeout refuses 0 (wait forever), blanks, signs, fractions and unknown units", () => {
  for (const bad of ["0", "0s", "-1", "1.5s", "10 s", "10sec", "1m", "abc", "99999999999"]) {
    const e = assertThrows(() => imp({ lock_wait_timeout: bad }), ConfigError);
    assertMatch(e.message, /^lock_wait_timeout: invalid value .*500ms, 30s, 5min, 1h, 1d/);
  }
});

Deno.test("explainLockTimeout() names the table and the option; other failures pass through", () => {
  const timedOut = new ToolError(
    "pg_dump",
    'of database "app"',
    1,
    "pg_dump: error: query failed: ERROR: canceling statement due to statement timeout | pg_dump: detail: Query was: LOCK TABLE sales.orders IN ACCESS SHARE MODE",
  );
  const e = explainLockTimeout(timedOut, "2s");
  assertEquals(
    e.message,
    'pg_dump of database "app" could not lock sales.orders within lock_wait_timeout=2s: another session holds a conflicting lock (ALTER TABLE, VACUUM FULL, LOCK TABLE...), so the dump stopped instead of queueing behind it; retry when it is released, or raise lock_wait_timeout',
  );
  assertEquals(e.cause, timedOut);
  const other = new ToolError("pg_dump", 'of database "app"', 1, "FATAL: no such database");
  assertEquals(explainLockTimeout(other, "2s"), other);
});
