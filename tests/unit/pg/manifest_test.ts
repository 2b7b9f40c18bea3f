// The one warning for relations whose detail a lock kept out of the manifest
// (src/pg/manifest.ts lockedWarning).

import { assertEquals } from "../../helpers/assert.ts";
import type { DatabaseInfo, Relation } from "../../../src/pg/catalog.ts";
import { lockedWarning } from "../../../src/pg/manifest.ts";

const rel = (name: string, locked: boolean): Relation => ({
  schema: "public",
  name,
  owner: "o",
  persistence: "p",
  kind: "r",
  row_estimate: 0,
  live_row_estimate: 0,
  column_count: 1,
  has_primary_key: false,
  has_triggers: false,
  rls_enabled: false,
  rls_forced: false,
  is_partition: false,
  last_vacuum: null,
  last_analyze: null,
  ...(locked ? { detail_left_out: ["indexes"] as Relation["detail_left_out"] } : {}),
});

const db = (name: string, relations: Relation[]) => ({ name, relations }) as DatabaseInfo;

Deno.test("lockedWarning() names every locked relation once, by database, in one line", () => {
  assertEquals(lockedWarning([db("a", [rel("t", false)])], "2s"), undefined);
  assertEquals(
    lockedWarning([db("a", [rel("t", true), rel("u", false)]), db("b", [rel("v", true)])], "2s"),
    'column defaults and indexes of public.t in database "a", public.v in database "b" left out (detail_left_out): another session held a conflicting lock (ALTER TABLE, VACUUM FULL, LOCK TABLE...) for longer than lock_timeout=2s',
  );
});

Deno.test("lockedWarning() names five relations, then how many more", () => {
  const many = db("a", Array.from({ length: 8 }, (_, i) => rel(`t${i}`, true)));
  const line = lockedWarning([many], "30s")!;
  assertEquals(line.includes("public.t4 in database"), true);
  assertEquals(line.includes("public.t5"), false);
  assertEquals(line.includes("and 3 more left out"), true);
});
