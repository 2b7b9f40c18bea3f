// Catalog sessions on a real PostgreSQL 15 server: they never queue behind a
// lock for longer than lock_timeout (the manifest then leaves the locked
// table's detail out, with one warning), and a TLS failure says what it is.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "../helpers/assert.ts";
import { holdLock } from "../helpers/locks.ts";
import { strangerCa } from "../helpers/tls.ts";
import { connect, connectExplained, DEFAULT_LOCK_TIMEOUT } from "../../src/pg/client.ts";
import type { ConnConfig } from "../../src/pg/conn.ts";
import { buildManifest } from "../../src/pg/manifest.ts";

function conn(c: Cluster, over: Partial<ConnConfig> = {}): ConnConfig {
  return {
    host: c.host,
    port: c.port,
    username: c.superuser,
    sslMode: "disable",
    connectTimeout: 10,
    ...over,
  };
}

async function showLockTimeout(cfg: ConnConfig): Promise<string> {
  const client = await connect(cfg, "postgres");
  try {
    return (await client.query<{ v: string }>("SELECT current_setting('lock_timeout') AS v"))
      .rows[0].v;
  } finally {
    await client.end();
  }
}

Deno.test("catalog sessions: lock_timeout bounds every lock wait, and a TLS failure names TLS and the options to check", async (t) => {
  await using c = await Cluster.start({ tls: true });
  await c.query("CREATE DATABASE app");
  // A column default and indexes: deparsing them (pg_get_expr,
  // pg_get_indexdef) locks the table they belong to.
  await c.psql(
    `CREATE SCHEMA sales;
     CREATE TABLE sales.orders (id int PRIMARY KEY, note text DEFAULT 'none');
     CREATE INDEX orders_note ON sales.orders (note);
     CREATE TABLE sales.clients (id int PRIMARY KEY, name text DEFAULT 'anon');`,
    "app",
  );

  await t.step(
    "every catalog session has a lock_timeout: the default without lock_wait_timeout, else its value",
    async () => {
      assertEquals(await showLockTimeout(conn(c)), DEFAULT_LOCK_TIMEOUT);
      assertEquals(await showLockTimeout(conn(c, { lockTimeout: "2s" })), "2s");
      assertEquals(await showLockTimeout(conn(c, { lockTimeout: "1500" })), "1500ms");
    },
  );

  await t.step(
    "the manifest behind ACCESS EXCLUSIVE on an indexed table returns within the timeout, recording the table without its locked detail, with one warning",
    async () => {
      await using lock = await holdLock(c, "app", "sales.orders");
      // Released after 10 s, as a migration ends: a manifest that queued behind
      // it finishes then, slow and complete, and fails the checks below.
      const timer = setTimeout(() => lock.release(), 10_000);
      const warnings: string[] = [];
      const t0 = performance.now();
      const m = await buildManifest({
        conn: conn(c, { lockTimeout: "2s" }),
        connector: "postgresql",
        database: "app",
        dumpFormat: "custom",
        warn: (l) => warnings.push(l),
      }).finally(() => clearTimeout(timer));
      const seconds = (performance.now() - t0) / 1000;
      assert(seconds < 6, `the manifest took ${seconds.toFixed(1)} s behind the lock`);
      const rels = m.databases![0].relations!;
      const orders = rels.find((r) => r.name === "orders")!;
      assertEquals(orders.detail_left_out, ["columns.default", "indexes"]);
      assertEquals(orders.indexes, undefined);
      assertEquals(orders.columns!.map((col) => [col.name, col.default]), [
        ["id", undefined],
        ["note", undefined],
      ]);
      assertEquals(orders.has_primary_key, true);
      // A table nobody locks keeps all of its detail.
      const clients = rels.find((r) => r.name === "clients")!;
      assertEquals(clients.detail_left_out, undefined);
      assertEquals(clients.indexes!.map((i) => i.name), ["clients_pkey"]);
      assertEquals(clients.columns![1].default, "'anon'::text");
      assertEquals(warnings.length, 1, warnings.join("\n"));
      assertMatch(
        warnings[0],
        /^column defaults and indexes of sales\.orders in database "app" left out \(detail_left_out\): another session held a conflicting lock .* for longer than lock_timeout=2s$/,
      );
    },
  );

  await t.step(
    "a ssl_root_cert that did not sign the server's certificate: one line naming TLS, ssl_root_cert and ssl_mode",
    async () => {
      await using wrong = await strangerCa();
      for (const sslMode of ["verify-ca", "verify-full", "require"] as const) {
        const e = await assertRejects(() =>
          connectExplained(conn(c, { sslMode, sslRootCert: wrong.path }), "app")
        );
        assertEquals(
          e.message,
          `cannot connect to ${c.host}:${c.port} (database "app") as user "postgres": TLS: the server's certificate failed verification (self-signed certificate in certificate chain): check that ssl_root_cert (${wrong.path}) holds the CA that signed it, and ssl_mode (${sslMode})`,
        );
      }
      // The right CA connects: the failure above is the CA's, nothing else.
      await (await connect(conn(c, { sslMode: "verify-full", sslRootCert: c.tls!.caCert }), "app"))
        .end();
    },
  );

  await t.step(
    "ssl_mode=require against a server without SSL: one line naming TLS and ssl_mode",
    async () => {
      await using plain = await Cluster.start();
      const e = await assertRejects(() =>
        connectExplained(conn(plain, { sslMode: "require" }), "postgres")
      );
      assertMatch(
        e.message,
        /: TLS: the server does not support SSL and ssl_mode=require requires it: turn ssl on in the server's postgresql\.conf, or, if the connection may go unencrypted, set ssl_mode=prefer$/,
      );
    },
  );
});
