// Restores through the real plakar that must not end in "OK, exit 0" when
// they did not do what was asked: a truncated SQL script, databases= that
// names nothing in the snapshot, an unreachable target.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";

/** A source with `small`: 1000 rows in one table, the shape of the issue's report. */
async function smallSource(): Promise<Cluster> {
  const src = await Cluster.start();
  await src.query("CREATE DATABASE small");
  await src.psql(
    "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat('v', 200) || g FROM generate_series(1, 1000) g",
    "small",
  );
  return src;
}

Deno.test("plakar restore of a plain SQL dump cut mid-file exits non-zero, says it is truncated, and restores no row", async () => {
  await using src = await smallSource();
  await using dst = await Cluster.start();
  await using u = await PlakarUser.create();
  const script = await src.pgDump(["-Fp", "small"]);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/small.sql`, script.subarray(0, Math.floor(script.length * 0.7)));
    ok(await u.at("backup", dir), "backup");
    const [snap] = await u.snapshots();
    await dst.query("CREATE DATABASE small");
    const r = await u.at(
      "restore",
      "-to",
      `postgres://postgres@127.0.0.1:${dst.port}/`,
      `${snap}:${dir}`,
    );
    assert(r.code !== 0, `plakar restore exited 0:\n${r.stdout}\n${r.stderr}`);
    assertMatch(
      r.stderr,
      /postgresql: error: restore of .*small\.sql failed: SQL script .*small\.sql is truncated: it lacks pg_dump's last line "-- PostgreSQL database dump complete"; nothing of it was committed/,
    );
    assertEquals(
      await dst.query("SELECT to_regclass('public.t') AS t", "small"),
      [{ t: null }],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plakar restore with databases= naming nothing in the snapshot exits non-zero, naming the typo and the databases held", async () => {
  await using src = await smallSource();
  await using dst = await Cluster.start();
  await using u = await PlakarUser.create();
  ok(await u.at("backup", `postgres://postgres@127.0.0.1:${src.port}/`), "backup");
  const [snap] = await u.snapshots();
  const r = await u.at(
    "restore",
    "-o",
    "databases=smal",
    "-o",
    "recreate=true",
    "-to",
    `postgres://postgres@127.0.0.1:${dst.port}/`,
    snap,
  );
  assert(r.code !== 0, `plakar restore exited 0:\n${r.stdout}\n${r.stderr}`);
  assertMatch(
    r.stderr,
    /postgresql: error: databases=smal: no dump of "smal" in the snapshot \(the snapshot holds "postgres", "small", "template1"\): check the names/,
  );
  assertEquals(
    await dst.query("SELECT datname FROM pg_database WHERE datname = 'small'"),
    [],
  );
});

Deno.test("plakar restore into an unreachable target fails fast: one connect_timeout, not one per file", async () => {
  await using src = await smallSource();
  await src.query("CREATE DATABASE a");
  await src.query("CREATE DATABASE b");
  await using u = await PlakarUser.create();
  ok(await u.at("backup", `postgres://postgres@127.0.0.1:${src.port}/`), "backup");
  const [snap] = await u.snapshots();
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (silent.addr as Deno.NetAddr).port;
  try {
    const t0 = performance.now();
    const r = await u.at(
      "restore",
      "-o",
      "connect_timeout=3",
      "-to",
      `postgres://postgres@127.0.0.1:${port}/`,
      snap,
    );
    const seconds = (performance.now() - t0) / 1000;
    assert(r.code !== 0, `plakar restore exited 0:\n${r.stdout}\n${r.stderr}`);
    assertMatch(r.stderr, /cannot connect to 127\.0\.0\.1:\d+ .*timed out after 3s/);
    // globals + 5 dumps at 3 s each would be 18 s and more.
    assert(seconds < 10, `restore took ${seconds.toFixed(1)}s:\n${r.stdout}\n${r.stderr}`);
  } finally {
    silent.close();
  }
});

Deno.test("plakar destination ping and a recreate=true restore name work databases an interrupted recreate left, and the restore still succeeds", async () => {
  await using src = await smallSource();
  await using dst = await Cluster.start();
  await using u = await PlakarUser.create();
  ok(await u.at("backup", `postgres://postgres@127.0.0.1:${src.port}/small`), "backup");
  const [snap] = await u.snapshots();
  await dst.query("CREATE DATABASE small__plakar_restore_0a1b2c3d");
  const warning =
    /postgresql: warning: (preflight: )?work database\(s\) left by an interrupted recreate=true restore: small__plakar_restore_0a1b2c3d \(\d+ [kM]B\); nothing uses them: drop them \(DROP DATABASE\) to free their disk/;
  ok(
    await u.run([
      "destination",
      "add",
      "pgdst",
      `postgres://postgres@127.0.0.1:${dst.port}/small`,
      "recreate=true",
    ]),
    "destination add",
  );
  const ping = ok(await u.run(["destination", "ping", "pgdst"]), "destination ping");
  assertMatch(ping.stdout + ping.stderr, warning);
  const r = ok(
    await u.at(
      "restore",
      "-o",
      "recreate=true",
      "-to",
      `postgres://postgres@127.0.0.1:${dst.port}/small`,
      `${snap}:/00001-small.dump`,
    ),
    "restore",
  );
  assertMatch(r.stdout + r.stderr, warning);
  assertEquals(await dst.query("SELECT count(*)::int AS n FROM t", "small"), [{ n: 1000 }]);
  // Left for the DBA to drop: never dropped by us.
  assertEquals(
    await dst.query(
      "SELECT datname FROM pg_database WHERE datname = 'small__plakar_restore_0a1b2c3d'",
    ),
    [{ datname: "small__plakar_restore_0a1b2c3d" }],
  );
});
