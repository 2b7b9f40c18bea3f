import { assertEquals } from "../../helpers/assert.ts";
import { databaseFromPath, decodeDbName, dumpPath, encodeDbName } from "../../../src/pg/names.ts";

Deno.test("dumpPath() numbers with five digits and keeps ordinary awkward names as they are", () => {
  assertEquals(dumpPath(1, "app"), "/00001-app.dump");
  assertEquals(dumpPath(12, `we"ird db-名前=x`), `/00012-we"ird db-名前=x.dump`);
});

Deno.test("encodeDbName() percent-encodes only /, % and control characters, and round-trips", () => {
  assertEquals(encodeDbName("a/b%c\nd"), "a%2Fb%25c%0Ad");
  for (const name of ["a/b", "100%", "x\ty", "plain", "%41", "é/%/\u0001"]) {
    assertEquals(decodeDbName(encodeDbName(name)), name);
  }
});

Deno.test("databaseFromPath() strips the numbered prefix and the extension, and decodes", () => {
  assertEquals(databaseFromPath("/00001-app.dump"), "app");
  assertEquals(databaseFromPath("/app.dump"), "app");
  assertEquals(databaseFromPath("/00003-my-db.dump"), "my-db");
  assertEquals(databaseFromPath("/2024-db.dump"), "db");
  assertEquals(databaseFromPath("/00001-a%2Fb.dump"), "a/b");
  assertEquals(databaseFromPath("/00001-host=evil dbname=x.dump"), "host=evil dbname=x");
  assertEquals(databaseFromPath("/sub/dir/shop.sql"), "shop");
});
