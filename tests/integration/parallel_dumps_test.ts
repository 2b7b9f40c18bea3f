// max_parallel_dumps and lock_wait_timeout on real PostgreSQL 15 clusters,
// with every file opened at once as plakar -concurrency N does.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { params } from "../helpers/connectors.ts";
import { holdLock } from "../helpers/locks.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";
import { contentStream, type ImportEntry } from "../../src/kloset/connector.ts";
import { Runtime } from "../../src/proc/runtime.ts";

/** The importers' runtime: the tools they start are counted here. */
const runtime = new Runtime();
const liveChildren = () => runtime.children.live;

const DBS = ["db1", "db2", "db3", "db4"];

async function fourDatabases(c: Cluster): Promise<void> {
  for (const db of DBS) {
    await c.query(`CREATE DATABASE ${db}`);
    await c.psql(
      "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g",
      db,
    );
  }
}

/**
 * Lists every entry, then opens and reads them all at once; returns the
 * contents or errors by path and the most tools seen running together.
 */
async function backupAllAtOnce(config: Record<string, string>) {
  const imp = await createLogicalImporter(params("postgres", config), runtime);
  let peak = 0;
  let done = false;
  const watch = (async () => {
    while (!done) {
      peak = Math.max(peak, liveChildren());
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  try {
    const listed: ImportEntry[] = [];
    for await (const e of imp.entries(new AbortController().signal)) listed.push(e);
    const results = await Promise.all(
      listed.filter((e) => e.open).map(async (e) => {
        try {
          const bytes = new Uint8Array(
            await new Response(contentStream(await e.open!())).arrayBuffer(),
          );
          return [e.pathname, bytes.length] as const;
        } catch (err) {
          return [e.pathname, (err as Error).message] as const;
        }
      }),
    );
    return { results: new Map<string, number | string>(results), peak };
  } finally {
    done = true;
    await watch;
    await imp.close();
  }
}

/** Locks `t` in every database for `ms`, so that each pg_dump started meanwhile waits. */
async function lockAllFor(c: Cluster, ms: number) {
  const locks = await Promise.all(DBS.map((db) => holdLock(c, db, "t")));
  const timer = setTimeout(() => locks.forEach((l) => l.release()), ms);
  return {
    async [Symbol.asyncDispose]() {
      clearTimeout(timer);
      await Promise.all(locks.map((l) => l.release()));
    },
  };
}

Deno.test("max_parallel_dumps=1 never runs two dumps at once though every file is opened together; without it they all run", async () => {
  await using c = await Cluster.start();
  await fourDatabases(c);

  // Unbounded (the default): the four pg_dumps wait on the locks together.
  {
    await using _locks = await lockAllFor(c, 1500);
    const { results, peak } = await backupAllAtOnce({ location: c.uri() });
    for (const [path, r] of results) assert(typeof r === "number", `${path}: ${r}`);
    assert(peak >= 4, `only ${peak} tool(s) ran at once without a bound`);
  }

  // Bounded to one: the dumps run one after the other, and all complete.
  {
    await using _locks = await lockAllFor(c, 1500);
    const { results, peak } = await backupAllAtOnce({
      location: c.uri(),
      max_parallel_dumps: "1",
    });
    assertEquals(results.size, 8); // manifest, globals, db1..db4, postgres, template1
    for (const [path, r] of results) {
      assert(typeof r === "number" && r > 0, `${path}: ${r}`);
    }
    assertEquals(peak, 1, `${peak} tools ran at once with max_parallel_dumps=1`);
  }

  // Bounded to two.
  {
    await using _locks = await lockAllFor(c, 1500);
    const { peak } = await backupAllAtOnce({ location: c.uri(), max_parallel_dumps: "2" });
    assertEquals(peak, 2);
  }
});

Deno.test("a failed dump frees its slot: the next waiting dump still runs", async () => {
  await using c = await Cluster.start();
  await fourDatabases(c);
  await using _lock = await holdLock(c, "db2", "t");
  const { results, peak } = await backupAllAtOnce({
    location: c.uri(),
    max_parallel_dumps: "1",
    lock_wait_timeout: "300ms",
  });
  assertEquals(peak, 1);
  assertMatch(String(results.get("/00002-db2.dump")), /could not lock/);
  for (const db of ["db1", "db3", "db4"]) {
    const path = `/0000${DBS.indexOf(db) + 1}-${db}.dump`;
    assert(typeof results.get(path) === "number", `${path}: ${results.get(path)}`);
  }
});

Deno.test("lock_wait_timeout: a table held ACCESS EXCLUSIVE fails the dump in time with the table named, instead of queueing", async () => {
  await using c = await Cluster.start();
  await c.query("CREATE DATABASE app");
  await c.psql("CREATE SCHEMA sales; CREATE TABLE sales.orders (id int)", "app");
  await using _lock = await holdLock(c, "app", "sales.orders");
  const t0 = performance.now();
  const { results } = await backupAllAtOnce({
    location: c.uri("app"),
    lock_wait_timeout: "1s",
  });
  const seconds = (performance.now() - t0) / 1000;
  assert(seconds < 8, `the dump waited ${seconds} s`);
  assertMatch(
    String(results.get("/00001-app.dump")),
    /^pg_dump of database "app" could not lock sales\.orders within lock_wait_timeout=1s: another session holds a conflicting lock/,
  );
  // Without the option pg_dump waits: still running after the same time.
  const imp = await createLogicalImporter(
    params("postgres", { location: c.uri("app") }),
    runtime,
  );
  try {
    const entries: ImportEntry[] = [];
    for await (const e of imp.entries(new AbortController().signal)) entries.push(e);
    const dump = entries.find((e) => e.pathname === "/00001-app.dump")!;
    const stream = contentStream(await dump.open!());
    const reading = new Response(stream).arrayBuffer().then(() => "done", () => "failed");
    const first = await Promise.race([
      reading,
      new Promise((r) => setTimeout(() => r("waiting"), 2000)),
    ]);
    assertEquals(first, "waiting");
    await stream.cancel().catch(() => {});
  } finally {
    await imp.close();
  }
});
