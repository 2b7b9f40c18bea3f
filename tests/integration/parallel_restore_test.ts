// jobs=N on real PostgreSQL 15 clusters: each custom-format dump is spooled
// to a file in spool_dir and restored by pg_restore -j N, in the default
// mode, with recreate=true (into the temporary database) and with
// recreate=true atomic=false (pg_restore -C); the spool file is gone after
// success, failure and cancel.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { importAll, params } from "../helpers/connectors.ts";
import { makeAppDb, makeRoles, snapshotDb } from "../../harness/fixtures.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";
import { createLogicalExporter } from "../../src/logical/restore/exporter.ts";
import { Runtime } from "../../src/proc/runtime.ts";

/** The exporters' runtime: their spool files are registered here. */
const runtime = new Runtime();
const liveTempFiles = () => runtime.tempFiles.live();

const entries = async (dir: string) =>
  (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);

/** A source with `app` (fixture tables) plus an index-heavy table, and its dump. */
async function sourceDump(src: Cluster): Promise<Uint8Array> {
  await makeRoles(src);
  await makeAppDb(src, "app");
  await src.psql(
    `CREATE TABLE public.wide (id int PRIMARY KEY, a text, b text, c int);
     INSERT INTO public.wide SELECT g, md5(g::text), md5((g * 7)::text), g % 1000
       FROM generate_series(1, 150000) g;
     CREATE INDEX wide_a ON public.wide (a);
     CREATE INDEX wide_b ON public.wide (b);
     CREATE INDEX wide_c ON public.wide (c, a);
     ALTER TABLE public.wide OWNER TO app_owner;`,
    "app",
  );
  const imp = await createLogicalImporter(
    params("postgres", { location: src.uri("app") }),
  );
  try {
    const { files, errors } = await importAll(imp);
    assertEquals(errors.size, 0, [...errors.values()].join("\n"));
    return files.get("/00001-app.dump")!;
  } finally {
    await imp.close();
  }
}

/** Files under `dir` this process holds open after their name was unlinked. */
async function openUnlinked(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir("/proc/self/fd")) {
    const target = await Deno.readLink(`/proc/self/fd/${e.name}`).catch(() => "");
    if (target.startsWith(`${dir}/`) && target.endsWith(" (deleted)")) found.push(target);
  }
  return found;
}

/**
 * Feeds one dump to the exporter as plakar would (64 KiB chunks); before the
 * last chunk, notes what is in `spoolDir`. With `abortAt`, aborts the
 * exporter's signal when that many chunks were read.
 */
async function restoreDump(
  config: Record<string, string>,
  dump: Uint8Array,
  spoolDir: string,
  opts: { abortAt?: number } = {},
): Promise<{ error?: string; spooledBeforeEnd: string[]; openBeforeEnd: string[] }> {
  const exp = await createLogicalExporter(params("postgres", config), runtime);
  const ac = new AbortController();
  let spooledBeforeEnd: string[] = [];
  let openBeforeEnd: string[] = [];
  let off = 0;
  let n = 0;
  const chunk = 64 * 1024;
  const content = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (opts.abortAt !== undefined && n === opts.abortAt) {
        ac.abort(new Error("the restore was cancelled"));
      }
      n++;
      if (off >= dump.length) return c.close();
      if (off + chunk >= dump.length) {
        spooledBeforeEnd = await entries(spoolDir);
        openBeforeEnd = await openUnlinked(spoolDir);
      }
      c.enqueue(dump.slice(off, off + chunk));
      off += chunk;
    },
  });
  try {
    await exp.restore(
      {
        pathname: "/00001-app.dump",
        isDir: false,
        fileInfo: { name: "00001-app.dump", size: dump.length, mode: 0o444, modTime: new Date() },
      },
      content,
      ac.signal,
    );
    await exp.finish(ac.signal);
    return { spooledBeforeEnd, openBeforeEnd };
  } catch (e) {
    return { error: (e as Error).message, spooledBeforeEnd, openBeforeEnd };
  } finally {
    await content.cancel().catch(() => {});
    await exp.close();
  }
}

/** The most backends of this integration connected at once while `fn` runs. */
async function peakConnections(c: Cluster, fn: () => Promise<unknown>): Promise<number> {
  let peak = 0;
  let done = false;
  const watch = (async () => {
    while (!done) {
      const [{ n }] = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'plakar-postgresql' AND backend_type = 'client backend'`,
      );
      peak = Math.max(peak, n);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    await fn();
  } finally {
    done = true;
    await watch;
  }
  return peak;
}

Deno.test("jobs=2 spools the dump to spool_dir and restores it with pg_restore -j 2 in every mode, leaving no file", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  const spoolDir = await Deno.makeTempDir({ prefix: "plakar-spool-test-" });
  try {
    const dump = await sourceDump(src);
    await makeRoles(dst);
    const want = await snapshotDb(src, "app");
    const wideCount = async () =>
      (await dst.query<{ n: number }>("SELECT count(*)::int AS n FROM wide", "app"))[0].n;

    // Default mode, into an existing database.
    await dst.query("CREATE DATABASE app OWNER app_owner");
    let r: Awaited<ReturnType<typeof restoreDump>> | undefined;
    const peak = await peakConnections(dst, async () => {
      r = await restoreDump(
        { location: dst.uri("app"), jobs: "2", spool_dir: spoolDir },
        dump,
        spoolDir,
      );
    });
    assertEquals(r!.error, undefined);
    // Spooled to a file that has no name: nothing to leave behind if killed.
    assertEquals(r!.spooledBeforeEnd, [], "the spool file has a name on disk");
    assertEquals(r!.openBeforeEnd.length, 1, "no spool file while the dump was arriving");
    assertMatch(r!.openBeforeEnd[0], /\/plakar-pg-spool-.*\.dump \(deleted\)$/);
    // pg_restore -j 2: the leader's connection plus two workers'.
    assert(peak >= 2, `at most ${peak} pg_restore connection(s) at once: not parallel`);
    assertEquals(await snapshotDb(dst, "app"), want);
    assertEquals(await wideCount(), 150000);
    assertEquals(await entries(spoolDir), []);

    // recreate=true (atomic): restored with -j into the temporary database, swapped in.
    await dst.psql("DELETE FROM wide; CREATE TABLE leftover (x int);", "app");
    r = await restoreDump(
      { location: dst.uri(), recreate: "true", jobs: "2", spool_dir: spoolDir },
      dump,
      spoolDir,
    );
    assertEquals(r.error, undefined);
    assertEquals(r.openBeforeEnd.length, 1);
    assertEquals(await snapshotDb(dst, "app"), want);
    assertEquals(await wideCount(), 150000);
    assertEquals(
      await dst.query("SELECT datname FROM pg_database WHERE datname LIKE '%plakar%'"),
      [],
    );
    assertEquals(await entries(spoolDir), []);

    // recreate=true atomic=false: pg_restore -C --clean -j 2.
    await dst.psql("DELETE FROM wide;", "app");
    r = await restoreDump(
      { location: dst.uri(), recreate: "true", atomic: "false", jobs: "2", spool_dir: spoolDir },
      dump,
      spoolDir,
    );
    assertEquals(r.error, undefined);
    assertEquals(await snapshotDb(dst, "app"), want);
    assertEquals(await wideCount(), 150000);
    assertEquals(await entries(spoolDir), []);
    assertEquals(await openUnlinked(spoolDir), [], "a spool file is still open");
    assertEquals(liveTempFiles(), []);
  } finally {
    await Deno.remove(spoolDir, { recursive: true });
  }
});

Deno.test("jobs=2: the spool file is removed when pg_restore fails, when the restore is cancelled, and nothing is written when spool_dir lacks room", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  const spoolDir = await Deno.makeTempDir({ prefix: "plakar-spool-test-" });
  try {
    const dump = await sourceDump(src);
    // pg_restore fails: the target database does not exist.
    let r = await restoreDump(
      { location: dst.uri("app"), jobs: "2", spool_dir: spoolDir },
      dump,
      spoolDir,
    );
    assertMatch(r.error ?? "", /pg_restore -j 2 of \/00001-app\.dump.*"app" does not exist/);
    assertEquals(r.openBeforeEnd.length, 1);
    assertEquals(await entries(spoolDir), []);
    assertEquals(await openUnlinked(spoolDir), [], "the spool file is still open");

    // Cancelled midway through the spooling (the exporter's signal).
    await makeRoles(dst);
    await dst.query("CREATE DATABASE app OWNER app_owner");
    r = await restoreDump(
      { location: dst.uri("app"), jobs: "2", spool_dir: spoolDir },
      dump,
      spoolDir,
      { abortAt: 3 },
    );
    assertMatch(r.error ?? "", /cancelled/);
    assertEquals(await entries(spoolDir), []);
    assertEquals(await openUnlinked(spoolDir), [], "the spool file is still open");
    assertEquals(
      (await dst.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
        "app",
      ))[0].n,
      0,
      "a cancelled restore restored something",
    );

    // A recorded size larger than the free space: refused before anything is made.
    const huge = new Uint8Array(dump.length);
    huge.set(dump);
    const exp = await createLogicalExporter(
      params("postgres", { location: dst.uri(), recreate: "true", jobs: "2", spool_dir: spoolDir }),
      runtime,
    );
    try {
      const err = await exp.restore(
        {
          pathname: "/00001-app.dump",
          isDir: false,
          fileInfo: { name: "00001-app.dump", size: 2 ** 52, mode: 0o444, modTime: new Date() },
        },
        new ReadableStream({
          start(c) {
            c.enqueue(huge);
            c.close();
          },
        }),
        new AbortController().signal,
      ).then(() => undefined, (e) => (e as Error).message);
      assertMatch(err ?? "", /Cannot spool the dump to .*\(spool_dir\): it needs \d+ MiB/);
    } finally {
      await exp.close();
    }
    assertEquals(await entries(spoolDir), []);
    assertEquals(
      await dst.query("SELECT datname FROM pg_database WHERE datname LIKE '%plakar%'"),
      [],
      "a temporary database was made though the spool had no room",
    );
    assertEquals(liveTempFiles(), []);
  } finally {
    await Deno.remove(spoolDir, { recursive: true });
  }
});
