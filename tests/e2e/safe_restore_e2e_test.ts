// recreate=true and clean=true through the real plakar: a damaged dump makes
// plakar restore fail and leaves the target's rows as they were; a good one
// replaces the database.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";

const ROWS = 20_000;

async function rowCount(c: Cluster): Promise<number> {
  const [r] = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM t", "app");
  return r.n;
}

Deno.test("through plakar, a truncated dump restored with recreate=true or clean=true fails and the target keeps its rows; a good one replaces it", async () => {
  await using c = await Cluster.start();
  await using u = await PlakarUser.create();
  await c.psql(`CREATE DATABASE app`);
  await c.psql(
    `CREATE TABLE t (id int PRIMARY KEY, label text);
     INSERT INTO t SELECT g, 'old-' || g FROM generate_series(1, ${ROWS}) g;`,
    "app",
  );
  const good = await c.pgDump(["-Fc", "app"]);
  const dir = await Deno.makeTempDir({ prefix: "plakar-safe-restore-" });
  try {
    await Deno.mkdir(`${dir}/damaged`);
    await Deno.mkdir(`${dir}/good`);
    await Deno.writeFile(`${dir}/damaged/app.dump`, good.slice(0, Math.floor(good.length * 0.6)));
    ok(await u.at("backup", `${dir}/damaged`), "backup damaged");
    const [damagedSnap] = await u.snapshots();
    const target = `postgres://postgres@127.0.0.1:${c.port}/`;

    for (const mode of ["recreate=true", "clean=true"]) {
      const r = await u.at("restore", "-o", mode, "-to", target, `${damagedSnap}:${dir}/damaged`);
      assert(r.code !== 0, `${mode}: plakar restore exited 0:\n${r.stdout}\n${r.stderr}`);
      assertMatch(r.stdout + r.stderr, /app\.dump/);
      assertEquals(await rowCount(c), ROWS, `${mode} lost rows`);
    }

    // A good dump with different rows replaces the database.
    await c.psql(
      `UPDATE t SET label = 'changed' WHERE id <= 10; CREATE TABLE stale (x int)`,
      "app",
    );
    await Deno.writeFile(`${dir}/good/app.dump`, good);
    ok(await u.at("backup", `${dir}/good`), "backup good");
    const [goodSnap] = await u.snapshots();
    ok(
      await u.at("restore", "-o", "recreate=true", "-to", target, `${goodSnap}:${dir}/good`),
      "restore good",
    );
    assertEquals(await rowCount(c), ROWS);
    const [row] = await c.query<{ label: string }>("SELECT label FROM t WHERE id = 5", "app");
    assertEquals(row.label, "old-5");
    assertEquals((await c.query("SELECT FROM pg_class WHERE relname = 'stale'", "app")).length, 0);
    const left = await c.query("SELECT datname FROM pg_database WHERE datname LIKE '%plakar%'");
    assertEquals(left, []);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
