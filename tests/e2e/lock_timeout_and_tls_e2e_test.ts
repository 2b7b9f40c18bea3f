// Two ways a backup or a restore must fail fast and say why, through the real
// plakar, on one TLS cluster: a table held ACCESS EXCLUSIVE (the catalog
// queries of the manifest must not wait longer than lock_wait_timeout either),
// and a ssl_root_cert that did not sign the server's certificate.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch, assertNotMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import { holdLock } from "../helpers/locks.ts";
import { strangerCa } from "../helpers/tls.ts";

Deno.test("a backup behind a lock fails within lock_wait_timeout, and a wrong ssl_root_cert fails backup and restore naming TLS", async (t) => {
  await using c = await Cluster.start({ tls: true });
  await using u = await PlakarUser.create();
  await using wrongCa = await strangerCa();
  await c.query("CREATE DATABASE app");
  // An index and a column default: their definitions (pg_get_indexdef,
  // pg_get_expr) are what the manifest reads under a lock on the table.
  await c.psql(
    `CREATE SCHEMA sales;
     CREATE TABLE sales.orders (id int PRIMARY KEY, note text DEFAULT 'none');
     INSERT INTO sales.orders SELECT g, 'order ' || g FROM generate_series(1, 100) g;`,
    "app",
  );

  await t.step(
    "lock_wait_timeout=2s with an indexed table held ACCESS EXCLUSIVE: the backup fails within seconds, naming the table",
    async () => {
      await using lock = await holdLock(c, "app", "sales.orders");
      // Released after 30 s, as a migration ends: a backup that queued behind
      // it then succeeds, late, and fails the checks below instead of hanging.
      const timer = setTimeout(() => lock.release(), 30_000);
      const t0 = performance.now();
      const r = await u.at("backup", "-no-progress", "-o", "lock_wait_timeout=2s", c.uri("app"))
        .finally(() => clearTimeout(timer));
      const seconds = (performance.now() - t0) / 1000;
      assert(r.code !== 0, `the backup succeeded though the table was locked:\n${r.stderr}`);
      assert(seconds < 15, `the backup took ${seconds.toFixed(1)} s behind the lock`);
      assertMatch(
        r.stderr,
        /postgresql: warning: manifest: .*sales\.orders.*lock_timeout=2s/,
      );
      assertMatch(
        r.stderr,
        /postgresql: error: .*pg_dump of database "app" could not lock sales\.orders within lock_wait_timeout=2s/,
      );
      assertEquals(await u.snapshots(), []);
    },
  );

  const tlsOptions = ["-o", "ssl_mode=verify-ca", "-o", `ssl_root_cert=${wrongCa.path}`];
  const tlsFailure = /TLS: .*ssl_root_cert/;

  await t.step(
    "a backup with a ssl_root_cert that did not sign the server's certificate fails naming TLS and ssl_root_cert",
    async () => {
      const r = await u.at("backup", "-no-progress", ...tlsOptions, c.uri("app"));
      assert(r.code !== 0, "the backup succeeded with the wrong CA");
      assertMatch(r.stderr, tlsFailure);
      assertEquals(await u.snapshots(), []);
    },
  );

  await t.step(
    "a restore with that ssl_root_cert fails at the target check naming TLS and ssl_root_cert, without running a tool",
    async () => {
      ok(await u.at("backup", "-no-progress", c.uri("app")), "backup");
      const [snap] = await u.snapshots();
      const r = await u.at("restore", ...tlsOptions, "-to", c.uri(), snap);
      assert(r.code !== 0, "the restore succeeded with the wrong CA");
      assertMatch(r.stderr, tlsFailure);
      // Failing at the check: no warning that goes on, no tool's own TLS error.
      assertNotMatch(r.stderr, /going on with the tools|certificate verify failed/);
    },
  );
});
