// The lock_timeout every catalog session starts with (src/pg/client.ts).

import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import {
  catalogLockTimeout,
  CLIENT_CHECK_OPTION,
  ClientChecks,
  DEFAULT_LOCK_TIMEOUT,
  lockTimeoutMillis,
} from "../../../src/pg/client.ts";
import { parseImportConfig } from "../../../src/pg/config.ts";
import { toolEnv } from "../../../src/pg/tools.ts";

Deno.test("lockTimeoutMillis() reads every form lock_wait_timeout takes, capped at the server's maximum", () => {
  assertEquals(lockTimeoutMillis("5000"), 5000);
  assertEquals(lockTimeoutMillis("500ms"), 500);
  assertEquals(lockTimeoutMillis("2s"), 2000);
  assertEquals(lockTimeoutMillis("5min"), 300_000);
  assertEquals(lockTimeoutMillis("1h"), 3_600_000);
  assertEquals(lockTimeoutMillis("1d"), 86_400_000);
  // 30 days is past lock_timeout's range: the server would refuse the connection.
  assertEquals(lockTimeoutMillis("30d"), 2147483647);
  assertThrows(() => lockTimeoutMillis("2 s"), RangeError);
});

Deno.test("catalog sessions take lock_wait_timeout's value, else the default", () => {
  const conn = parseImportConfig({ location: "postgres://u@h/app" }, "postgres").conn;
  assertEquals(catalogLockTimeout(conn), DEFAULT_LOCK_TIMEOUT);
  assertEquals(DEFAULT_LOCK_TIMEOUT, "30s");
  assertEquals(catalogLockTimeout({ ...conn, lockTimeout: "2s" }), "2s");
});

Deno.test("tools ask for the client check only where their connector's connections saw it accepted", async () => {
  const parse = () => parseImportConfig({ location: "postgres://u:p@h:5433/app" }, "postgres").conn;
  const one = parse();
  const other = parse();
  assertEquals((await toolEnv(one)).PGOPTIONS, undefined);
  one.clientChecks!.set(one, true);
  assertEquals((await toolEnv(one)).PGOPTIONS?.includes(CLIENT_CHECK_OPTION), true);
  // Another connector's connection to the same server learnt nothing yet.
  assertEquals((await toolEnv(other)).PGOPTIONS, undefined);
  const refused = new ClientChecks();
  refused.set(one, false);
  assertEquals((await toolEnv({ ...one, clientChecks: refused })).PGOPTIONS, undefined);
});
