import { assertEquals, assertRejects } from "../../../helpers/assert.ts";
import {
  assertPlainSql,
  retargetStatements,
  sessionsNote,
} from "../../../../src/logical/restore/safe_restore.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const retarget = (defn: string, from: string, to: string) =>
  dec.decode(retargetStatements(enc.encode(defn), enc.encode(from), to));

Deno.test("retargetStatements() renames the database in each of pg_dump's property statements", () => {
  const defn = [
    "ALTER DATABASE shop CONNECTION LIMIT = 5;",
    "ALTER DATABASE shop SET work_mem TO '7MB';",
    "ALTER ROLE app IN DATABASE shop SET search_path TO 'shop';",
    "COMMENT ON DATABASE shop IS 'DATABASE shop is the shop';",
    "GRANT CONNECT ON DATABASE shop TO app;",
    "",
  ].join("\n");
  assertEquals(
    retarget(defn, "shop", "scratch"),
    [
      'ALTER DATABASE "scratch" CONNECTION LIMIT = 5;',
      `ALTER DATABASE "scratch" SET work_mem TO '7MB';`,
      `ALTER ROLE app IN DATABASE "scratch" SET search_path TO 'shop';`,
      // Only the statement's own mention: the comment's text stays as written.
      `COMMENT ON DATABASE "scratch" IS 'DATABASE shop is the shop';`,
      'GRANT CONNECT ON DATABASE "scratch" TO app;',
      "",
    ].join("\n"),
  );
});

Deno.test("retargetStatements() matches a quoted name whole and never a longer name it prefixes", () => {
  assertEquals(
    retarget('ALTER DATABASE "My ""Shop""" SET x TO 1;\n', 'My "Shop"', "b"),
    'ALTER DATABASE "b" SET x TO 1;\n',
  );
  assertEquals(
    retarget("ALTER DATABASE shop2 SET x TO 1;\n", "shop", "b"),
    "ALTER DATABASE shop2 SET x TO 1;\n",
  );
});

Deno.test("sessionsNote() counts sessions by user and application and says which hold a transaction", () => {
  assertEquals(sessionsNote("app", []), undefined);
  assertEquals(
    sessionsNote("app", [["alice", "psql", "t"], ["bob", "api", "f"], ["bob", "api", "f"]]),
    'recreate=true ends 3 session(s) connected to "app" before replacing it (their uncommitted work is lost): alice (psql, in a transaction), 2× bob (api)',
  );
});

Deno.test("assertPlainSql() lets an archive's property statements through and refuses any psql meta-command in them", async () => {
  const ok = [
    "ALTER DATABASE shop SET search_path TO 'a\\b';\n",
    "COMMENT ON DATABASE shop IS 'see C:\\temp; \\! not a command in a string';\n",
  ];
  for (const sql of ok) await assertPlainSql(new TextEncoder().encode(sql), "props");
  const refused = [
    "COMMENT ON DATABASE shop IS 'x';\n\\! touch /tmp/pwned\n",
    "ALTER DATABASE shop SET x TO 1 \\g |sh\n",
    "\\connect other\nSELECT 1;\n",
  ];
  for (const sql of refused) {
    await assertRejects(() => assertPlainSql(new TextEncoder().encode(sql), "props"));
  }
});
