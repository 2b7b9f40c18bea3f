import { assertEquals } from "../../helpers/assert.ts";
import {
  effectiveUser,
  findPassword,
  lookupPassword,
  passwordFilePath,
} from "../../../src/pg/pgpass.ts";
import { withEnv } from "../../helpers/env.ts";

const KEY = { host: "db.example.com", port: 5432, database: "app", user: "alice" };

Deno.test("findPassword() takes the first line matching host:port:database:user", () => {
  const file = [
    "other.example.com:5432:app:alice:no",
    "db.example.com:5433:app:alice:no",
    "db.example.com:5432:shop:alice:no",
    "db.example.com:5432:app:bob:no",
    "db.example.com:5432:app:alice:yes",
    "db.example.com:5432:app:alice:later",
  ].join("\n");
  assertEquals(findPassword(file, KEY), "yes");
  assertEquals(findPassword(file, { ...KEY, user: "carol" }), undefined);
});

Deno.test("findPassword() matches * in any of the first four fields", () => {
  assertEquals(findPassword("*:*:*:*:any", KEY), "any");
  assertEquals(findPassword("db.example.com:*:*:alice:w", KEY), "w");
  assertEquals(findPassword("*:5432:app:*:w", { ...KEY, user: "bob" }), "w");
  // '*' is a wildcard only as the whole field.
  assertEquals(findPassword("db.*:5432:app:alice:w", KEY), undefined);
});

Deno.test("findPassword() follows libpq: comments, CRLF, escapes, socket hosts", () => {
  assertEquals(findPassword("#db.example.com:5432:app:alice:c\n*:*:*:*:x", KEY), "x");
  assertEquals(findPassword("db.example.com:5432:app:alice:crlf\r\n", KEY), "crlf");
  // '\' escapes ':' and '\' in every field; the password ends at an unescaped ':'.
  assertEquals(
    findPassword("db.example.com:5432:a\\:b:alice:p\\:w\\\\d:ignored", { ...KEY, database: "a:b" }),
    "p:w\\d",
  );
  // A Unix-socket directory is looked up as localhost.
  assertEquals(
    findPassword("localhost:5432:app:alice:sock", { ...KEY, host: "/var/run/postgresql" }),
    "sock",
  );
  // A field that is a prefix of the value does not match.
  assertEquals(findPassword("db.example.co:5432:app:alice:x", KEY), undefined);
  assertEquals(findPassword("db.example.com:5432:app:alic:x", KEY), undefined);
});

Deno.test("the password file is PGPASSFILE, else ~/.pgpass under $HOME", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withEnv({ PGPASSFILE: `${dir}/pw`, HOME: "/nowhere" }, () => {
      assertEquals(passwordFilePath(), `${dir}/pw`);
    });
    await withEnv({ PGPASSFILE: undefined, HOME: dir }, async () => {
      assertEquals(passwordFilePath(), `${dir}/.pgpass`);
      await Deno.writeTextFile(`${dir}/.pgpass`, "*:*:app:alice:fromhome\n", { mode: 0o600 });
      await Deno.chmod(`${dir}/.pgpass`, 0o600);
      assertEquals(await lookupPassword(KEY), { file: `${dir}/.pgpass`, password: "fromhome" });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a password file that others can read, or that is not a file, is ignored with the reason", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/pgpass`;
    await Deno.writeTextFile(file, "*:*:*:*:pw\n");
    await withEnv({ PGPASSFILE: file }, async () => {
      await Deno.chmod(file, 0o644);
      const open = await lookupPassword(KEY);
      assertEquals([open.password, /chmod 0600/.test(open.skipped ?? "")], [undefined, true]);
      await Deno.chmod(file, 0o600);
      assertEquals((await lookupPassword(KEY)).password, "pw");
    });
    await withEnv({ PGPASSFILE: dir }, async () => {
      assertEquals((await lookupPassword(KEY)).skipped, "it is not a plain file");
    });
    await withEnv({ PGPASSFILE: `${dir}/missing` }, async () => {
      const r = await lookupPassword(KEY);
      assertEquals([r.password, r.file], [undefined, `${dir}/missing`]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("effectiveUser() is the given user, else PGUSER, else the OS user", async () => {
  assertEquals(effectiveUser("bob"), "bob");
  await withEnv({ PGUSER: "carol" }, () => assertEquals(effectiveUser(undefined), "carol"));
  await withEnv({ PGUSER: undefined }, async () => {
    const { userInfo } = await import("node:os");
    assertEquals(effectiveUser(undefined), userInfo().username);
  });
});
