// recreate=true replaces exactly the database the user selected, through the
// real plakar: the file's name (00001-scratch.dump is "scratch"), never the
// name recorded inside the archive, and it says which sessions it ends.

// @ts-types="@types/pg"
import pg from "pg";
import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";

/** What tells the databases apart: their rows, comment and work_mem setting. */
async function describe(c: Cluster, db: string) {
  const [rows] = await c.query<{ labels: string }>(
    "SELECT string_agg(label, ',' ORDER BY label) AS labels FROM t",
    db,
  );
  const [meta] = await c.query<{ comment: string | null; config: string[] | null }>(
    `SELECT shobj_description(d.oid, 'pg_database') AS comment,
            (SELECT setconfig FROM pg_db_role_setting s
              WHERE s.setdatabase = d.oid AND s.setrole = 0) AS config
       FROM pg_database d WHERE datname = $1`,
    "postgres",
    [db],
  );
  return { labels: rows.labels, ...meta };
}

Deno.test("through plakar, recreate=true of a file named for one database holding another's dump replaces the named one, applies the archive's properties to it, and leaves the other as it was; atomic=false refuses; the sessions it ends are named", async () => {
  await using c = await Cluster.start();
  await using u = await PlakarUser.create();
  for (const [db, label] of [["shop", "from-shop"], ["scratch", "from-scratch"]]) {
    await c.query(`CREATE DATABASE ${db}`);
    await c.psql(`CREATE TABLE t (label text); INSERT INTO t VALUES ('${label}');`, db);
  }
  await c.psql(`COMMENT ON DATABASE shop IS 'the shop'; ALTER DATABASE shop SET work_mem = '7MB';`);
  const dir = await Deno.makeTempDir({ prefix: "plakar-renamed-dump-" });
  try {
    await Deno.writeFile(`${dir}/00001-scratch.dump`, await c.pgDump(["-Fc", "shop"]));
    ok(await u.at("backup", dir), "backup");
    const [snap] = await u.snapshots();
    // shop changes after the dump: replacing it would lose this row.
    await c.psql(`INSERT INTO t VALUES ('shop-after-dump')`, "shop");
    const shopBefore = await describe(c, "shop");
    const target = `postgres://postgres@127.0.0.1:${c.port}/`;
    const restore = (...options: string[]) =>
      u.at(
        "restore",
        ...options.flatMap((o) => ["-o", o]),
        "-to",
        target,
        `${snap}:${dir}/00001-scratch.dump`,
      );

    // atomic=false would run pg_restore -C, which recreates "shop": refused.
    const refused = await restore("recreate=true", "atomic=false", "databases=scratch");
    assert(refused.code !== 0, `atomic=false exited 0:\n${refused.stderr}`);
    assertMatch(
      refused.stderr,
      /holds a dump of database "shop", not "scratch": recreate=true atomic=false would drop and recreate "shop"; restore it with atomic=true/,
    );
    assertEquals(await describe(c, "shop"), shopBefore);

    // A session with uncommitted work on the database about to be replaced.
    const session = new pg.Client({
      host: c.host,
      port: c.port,
      user: "postgres",
      database: "scratch",
      application_name: "billing-worker",
    });
    await session.connect();
    session.on("error", () => {}); // it is ended by the recreate
    await session.query("BEGIN; INSERT INTO t VALUES ('uncommitted')");
    try {
      ok(
        await u.run(["destination", "add", "dst", `${target}scratch`, "recreate=true"]),
        "destination add",
      );
      const ping = ok(await u.run(["destination", "ping", "dst"]), "destination ping");
      assertMatch(
        ping.stdout + ping.stderr,
        /recreate=true ends the sessions connected to each database it replaces, uncommitted work included; connected now: "scratch" \(1 session\(s\)\)/,
      );

      const r = ok(await restore("recreate=true", "databases=scratch"), "restore");
      assertMatch(
        r.stderr,
        /00001-scratch\.dump holds a dump of database "shop"; it replaces "scratch", the database the file names \("shop" is not touched\)/,
      );
      assertMatch(
        r.stderr,
        /recreate=true ends 1 session\(s\) connected to "scratch" before replacing it \(their uncommitted work is lost\): postgres \(billing-worker, in a transaction\)/,
      );
    } finally {
      await session.end().catch(() => {});
    }
    // scratch now holds shop's dump, with the archive's database properties.
    assertEquals(await describe(c, "scratch"), {
      labels: "from-shop",
      comment: "the shop",
      config: ["work_mem=7MB"],
    });
    // shop is as it was, its row added after the dump included.
    assertEquals(await describe(c, "shop"), shopBefore);
    assertEquals(shopBefore.labels, "from-shop,shop-after-dump");
    assertEquals(
      await c.query("SELECT datname FROM pg_database WHERE datname LIKE '%plakar%'"),
      [],
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
