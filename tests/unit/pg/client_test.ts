// The lock_timeout every catalog session starts with (src/pg/client.ts).

import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import {
  catalogLockTimeout,
  DEFAULT_LOCK_TIMEOUT,
  lockTimeoutMillis,
} from "../../../src/pg/client.ts";
import { parseImportConfig } from "../../../src/pg/config.ts";

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
  const conn = parseImportConfig({ location: "postgres://u@h/app" }, "logical").conn;
  assertEquals(catalogLockTimeout(conn), DEFAULT_LOCK_TIMEOUT);
  assertEquals(DEFAULT_LOCK_TIMEOUT, "30s");
  assertEquals(catalogLockTimeout({ ...conn, lockTimeout: "2s" }), "2s");
});
