// Read-ahead of dumps (src/logical/read_ahead.ts) on real PostgreSQL 15
// clusters, the importer driven directly as the protocol layer drives it:
// opening dump k starts dump k+1; an ack without Open (release), a stopped
// import or a closed connector kills it; its failure surfaces at its own
// Open; with max_parallel_dumps it takes only a free slot and gives it back
// to an Open that would wait.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { params } from "../helpers/connectors.ts";
import { holdLock } from "../helpers/locks.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";
import {
  contentStream,
  type ImportEntry,
  type ImporterConnector,
} from "../../src/kloset/connector.ts";
import { Runtime } from "../../src/proc/runtime.ts";

/** The importers' runtime: the tools they start are counted here. */
const runtime = new Runtime();
const liveChildren = () => runtime.children.live;

/** A database whose dump (about 5 MB, uncompressed) cannot fit in a pipe. */
async function bigDb(c: Cluster, name: string): Promise<void> {
  await c.query(`CREATE DATABASE ${name}`);
  await c.psql(
    "CREATE TABLE t AS SELECT g AS id, repeat(md5(g::text), 4) AS v FROM generate_series(1, 40000) g",
    name,
  );
}

async function smallDb(c: Cluster, name: string): Promise<void> {
  await c.query(`CREATE DATABASE ${name}`);
  await c.psql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10) g", name);
}

/** The databases our tools are connected to now (application_name plakar-postgresql). */
async function dumping(c: Cluster): Promise<string[]> {
  const rows = await c.query<{ datname: string }>(
    "SELECT datname FROM pg_stat_activity WHERE application_name = 'plakar-postgresql' ORDER BY 1",
  );
  return rows.map((r) => r.datname);
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 10_000) {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every entry of an import, by path. */
async function list(imp: ImporterConnector, signal = new AbortController().signal) {
  const entries = new Map<string, ImportEntry>();
  for await (const e of imp.entries(signal)) entries.set(e.pathname, e);
  return entries;
}

async function read(e: ImportEntry): Promise<number> {
  return (await new Response(contentStream(await e.open!())).arrayBuffer()).byteLength;
}

/** No tool of ours left running, here or on the server. */
async function nothingLeft(c: Cluster): Promise<void> {
  await waitFor("no pg_dump is left", () => liveChildren() === 0);
  await waitFor("no backend of ours is left", async () => (await dumping(c)).length === 0);
}

Deno.test("opening a file starts the next dump; acknowledged without Open, that dump is killed with its backend", async () => {
  await using c = await Cluster.start();
  await bigDb(c, "a_big");
  await smallDb(c, "b_small");
  const imp = await createLogicalImporter(params("postgres", { location: c.uri() }), runtime);
  try {
    const entries = await list(imp);
    // Listing starts nothing.
    assertEquals(liveChildren(), 0);
    assert((await read(entries.get("/00000-globals.sql")!)) > 0);
    // Opening globals started dump 1 ahead: too big for its pipe, it waits
    // there, its backend open, until plakar opens the file or lets it go.
    await waitFor("a_big is dumped ahead", async () => (await dumping(c)).includes("a_big"));
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(await dumping(c), ["a_big"]);
    assertEquals(liveChildren(), 1);

    // plakar acknowledges /00001-a_big.dump without opening it.
    await entries.get("/00001-a_big.dump")!.release!();
    assertEquals(liveChildren(), 0, "the pg_dump started ahead is still running");
    await nothingLeft(c);

    // The others are unaffected; nothing is started ahead of a released file.
    assert((await read(entries.get("/00002-b_small.dump")!)) > 0);
    assert((await read(entries.get("/00003-postgres.dump")!)) > 0);
    assert((await read(entries.get("/00004-template1.dump")!)) > 0);
    await nothingLeft(c);
  } finally {
    await imp.close();
  }
});

Deno.test("a dump started ahead is killed when the import is stopped, and when the connector closes", async () => {
  await using c = await Cluster.start();
  await bigDb(c, "a_big");
  await bigDb(c, "b_big");

  // The import's signal aborts (the Import call ended, the host went away).
  {
    const imp = await createLogicalImporter(params("postgres", { location: c.uri() }), runtime);
    const abort = new AbortController();
    try {
      const entries = await list(imp, abort.signal);
      assert((await read(entries.get("/00000-globals.sql")!)) > 0);
      await waitFor("a_big is dumped ahead", async () => (await dumping(c)).includes("a_big"));
      abort.abort();
      await nothingLeft(c);
    } finally {
      await imp.close();
    }
  }

  // The connector closes with a file open and the next one dumped ahead.
  {
    const imp = await createLogicalImporter(params("postgres", { location: c.uri() }), runtime);
    let closed = false;
    try {
      const entries = await list(imp);
      const stream = contentStream(await entries.get("/00001-a_big.dump")!.open!());
      await waitFor(
        "a_big and b_big are dumped",
        async () => (await dumping(c)).join() === "a_big,b_big",
      );
      assertEquals(liveChildren(), 2);
      await stream.cancel();
      await imp.close();
      closed = true;
      assertEquals(liveChildren(), 0);
      await nothingLeft(c);
    } finally {
      if (!closed) await imp.close();
    }
  }
});

Deno.test("a dump started ahead that fails says so at its own Open, not before, and the next files still back up", async () => {
  await using c = await Cluster.start();
  await smallDb(c, "a_denied");
  await smallDb(c, "b_ok");
  // Not a superuser: it may read b_ok's table, not a_denied's.
  await c.psql("CREATE ROLE reader LOGIN");
  await c.psql("GRANT SELECT ON t TO reader", "b_ok");
  const imp = await createLogicalImporter(
    params("postgres", { location: c.uri("", "reader") }),
    runtime,
  );
  try {
    const entries = await list(imp);
    // Opening globals starts a_denied's dump ahead; it fails meanwhile, silently.
    assert((await read(entries.get("/00000-globals.sql")!)) > 0);
    await new Promise((r) => setTimeout(r, 1000));
    await waitFor("the dump started ahead has exited", () => liveChildren() === 0);
    let failure = "";
    try {
      await read(entries.get("/00001-a_denied.dump")!);
    } catch (e) {
      failure = (e as Error).message;
    }
    assertMatch(
      failure,
      /^pg_dump of database "a_denied" exited with status 1: .*permission denied/,
    );
    assert((await read(entries.get("/00002-b_ok.dump")!)) > 0);
  } finally {
    await imp.close();
  }
  await nothingLeft(c);
});

Deno.test("a dump started ahead that runs out of lock_wait_timeout fails at its own Open with the table named", async () => {
  await using c = await Cluster.start();
  await smallDb(c, "a_first");
  await smallDb(c, "b_locked");
  await using _lock = await holdLock(c, "b_locked", "t");
  const imp = await createLogicalImporter(
    params("postgres", { location: c.uri(), lock_wait_timeout: "300ms", data_only: "true" }),
    runtime,
  );
  try {
    const entries = await list(imp);
    // data_only: no globals; opening dump 1 starts dump 2 ahead, which times out.
    assert((await read(entries.get("/00001-a_first.dump")!)) > 0);
    await new Promise((r) => setTimeout(r, 1500));
    assertEquals(liveChildren(), 0, "the dump started ahead should have failed by now");
    let failure = "";
    try {
      await read(entries.get("/00002-b_locked.dump")!);
    } catch (e) {
      failure = (e as Error).message;
    }
    assertMatch(
      failure,
      /^pg_dump of database "b_locked" could not lock public\.t within lock_wait_timeout=300ms/,
    );
  } finally {
    await imp.close();
  }
  await nothingLeft(c);
});

Deno.test("max_parallel_dumps: read-ahead takes only a free slot, none with a bound of 1, and gives its slot to an Open that would wait", async () => {
  await using c = await Cluster.start();
  await bigDb(c, "a_big");
  await bigDb(c, "b_big");
  await smallDb(c, "c_small");
  const config = (n: string) => ({ location: c.uri(), data_only: "true", max_parallel_dumps: n });

  // A bound of 1: opening a file starts nothing else.
  {
    const imp = await createLogicalImporter(params("postgres", config("1")), runtime);
    try {
      const entries = await list(imp);
      const stream = contentStream(await entries.get("/00001-a_big.dump")!.open!());
      await waitFor("a_big is dumped", async () => (await dumping(c)).includes("a_big"));
      await new Promise((r) => setTimeout(r, 500));
      assertEquals(await dumping(c), ["a_big"]);
      assertEquals(liveChildren(), 1);
      await stream.cancel();
    } finally {
      await imp.close();
    }
    await nothingLeft(c);
  }

  // A bound of 2: a_big opened and b_big ahead hold both slots, neither read.
  // Opening c_small would wait for ever behind them: b_big gives its slot up
  // (killed) and starts again at its own Open.
  {
    const imp = await createLogicalImporter(params("postgres", config("2")), runtime);
    try {
      const entries = await list(imp);
      const a = contentStream(await entries.get("/00001-a_big.dump")!.open!());
      await waitFor(
        "a_big and b_big are dumped",
        async () => (await dumping(c)).join() === "a_big,b_big",
      );
      const small = await Promise.race([
        read(entries.get("/00003-c_small.dump")!),
        new Promise<string>((r) => setTimeout(() => r("still waiting"), 10_000)),
      ]);
      assert(typeof small === "number" && small > 0, `c_small: ${small}`);
      assert(liveChildren() <= 2, `${liveChildren()} tools at once`);
      assert((await new Response(a).arrayBuffer()).byteLength > 1 << 20);
      assert((await read(entries.get("/00002-b_big.dump")!)) > 1 << 20);
    } finally {
      await imp.close();
    }
    await nothingLeft(c);
  }
});
