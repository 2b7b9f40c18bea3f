// A snapshot is data, never a program, through the real plakar: `.sql` files
// holding psql meta-commands, backed up as a plain directory and restored to
// postgres://, fail naming their line and run nothing on the restoring host;
// real pg_dump -Fp and pg_dumpall scripts restore as before.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import { filesIn, FRAMINGS, PAYLOADS, refusal } from "../helpers/script_payloads.ts";

const BIN = "/usr/lib/postgresql/15/bin";

Deno.test("plakar restore of .sql files holding psql meta-commands fails naming each line and runs nothing; real dumps restore", async () => {
  await using c = await Cluster.start();
  await using u = await PlakarUser.create();
  const dir = await Deno.makeTempDir({ prefix: "plakar-scripts-" });
  const markers = await Deno.makeTempDir({ prefix: "plakar-markers-" });
  const target = `postgres://postgres@127.0.0.1:${c.port}/`;
  const dump = async (tool: string, ...args: string[]) => {
    const out = await new Deno.Command(`${BIN}/${tool}`, {
      args: ["-h", c.host, "-p", String(c.port), "-U", "postgres", ...args],
      stdout: "piped",
    }).output();
    assert(out.success, `${tool} failed`);
    return out.stdout;
  };
  try {
    // One file per shape of record, each with another meta-command; all go to "app".
    await c.query("CREATE DATABASE app");
    await Deno.mkdir(`${dir}/evil`);
    const picks = [
      { framing: FRAMINGS.globals, name: "00000-globals.sql", payload: PAYLOADS[0] }, // \!
      { framing: FRAMINGS.pg_dump, name: "00001-app.sql", payload: PAYLOADS[1] }, // \o |cmd
      { framing: FRAMINGS.hand, name: "00002-app.sql", payload: PAYLOADS[2] }, // \g |cmd
      { framing: FRAMINGS.hand, name: "00003-app.sql", payload: PAYLOADS[3] }, // \copy to program
    ];
    const expected: RegExp[] = [];
    for (const [n, p] of picks.entries()) {
      const { text, line } = p.framing.script(p.payload.lines(`${markers}/m${n}`, ""));
      await Deno.writeTextFile(`${dir}/evil/${p.name}`, text);
      // Restored from SNAP:DIR, a file's path is relative to DIR.
      expected.push(refusal(p.framing.what(`/${p.name}`), line, p.payload.command));
    }
    ok(await u.at("backup", `${dir}/evil`), "backup evil");
    const [evil] = await u.snapshots();
    const r = await u.at("restore", "-to", target, `${evil}:${dir}/evil`);
    assert(r.code !== 0, `plakar restore exited 0:\n${r.stdout}\n${r.stderr}`);
    const lines = r.stderr.split("\n").map((l) => l.replace(/^.*failed: /, ""));
    for (const re of expected) assert(lines.some((l) => re.test(l)), `${re} not in:\n${r.stderr}`);
    assertEquals(await filesIn(markers), [], "a meta-command ran on the restoring host");
    assertEquals(
      await c.query(
        "SELECT to_regclass('dump_before') AS d, to_regclass('hand_before') AS h",
        "app",
      ),
      [{ d: null, h: null }],
    );

    // Real scripts: pg_dump -Fp (with pg_dump's \restrict lines) into another
    // database, then pg_dumpall's whole cluster after its database is dropped.
    await c.query("CREATE ROLE shop_owner");
    await c.query("CREATE DATABASE shop OWNER shop_owner");
    await c.psql(
      String.raw`SET ROLE shop_owner;
       CREATE TABLE odd (id int PRIMARY KEY, v text);
       INSERT INTO odd VALUES (1, E'a\\b\tc'), (2, E'\\.'), (3, E'\\! no'), (4, NULL);`,
      "shop",
    );
    const rows = "SELECT id, v FROM odd ORDER BY id";
    const want = await c.query(rows, "shop");
    await Deno.mkdir(`${dir}/good`);
    await Deno.writeFile(`${dir}/good/00000-globals.sql`, await dump("pg_dumpall", "-g"));
    await Deno.writeFile(`${dir}/good/00001-shop.sql`, await dump("pg_dump", "-Fp", "shop"));
    await Deno.mkdir(`${dir}/all`);
    await Deno.writeFile(`${dir}/all/all.sql`, await dump("pg_dumpall"));
    assertMatch(await Deno.readTextFile(`${dir}/good/00001-shop.sql`), /^\\restrict \w+$/m);
    ok(await u.at("backup", `${dir}/good`), "backup good");
    ok(await u.at("backup", `${dir}/all`), "backup all");
    const [all, good] = await u.snapshots();

    await c.query("CREATE DATABASE shop_copy");
    ok(
      await u.at("restore", "-o", "database=shop_copy", "-to", target, `${good}:${dir}/good`),
      "restore pg_dump -Fp",
    );
    assertEquals(await c.query(rows, "shop_copy"), want);

    await c.query("DROP DATABASE shop");
    await c.query("DROP DATABASE app");
    ok(await u.at("restore", "-to", target, `${all}:${dir}/all`), "restore pg_dumpall");
    assertEquals(await c.query(rows, "shop"), want);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(markers, { recursive: true });
  }
});
