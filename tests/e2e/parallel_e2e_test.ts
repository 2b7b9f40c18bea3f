// Parallel restore (jobs=N) and bounded parallel dumps (max_parallel_dumps=N)
// through the real plakar.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import { makeAppDb, makeRoles, snapshotDb } from "../../harness/fixtures.ts";
import { holdLock } from "../helpers/locks.ts";
import { READ_AHEAD } from "../../src/logical/read_ahead.ts";

const entries = async (dir: string) =>
  (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);

/**
 * Spool files under `dir` that some process holds open, named or not (the
 * exporter unlinks its spool file as soon as it is open), as
 * `{ name, path }` where `path` opens the file through the holder.
 */
function openSpoolFiles(dir: string): { name: string; path: string }[] {
  const found = new Map<string, string>();
  for (const p of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(p.name)) continue;
    let fds: Deno.DirEntry[];
    try {
      fds = [...Deno.readDirSync(`/proc/${p.name}/fd`)];
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = Deno.readLinkSync(`/proc/${p.name}/fd/${fd.name}`);
      } catch {
        continue;
      }
      if (!target.startsWith(`${dir}/`)) continue;
      found.set(
        target.slice(dir.length + 1).replace(/ \(deleted\)$/, ""),
        `/proc/${p.name}/fd/${fd.name}`,
      );
    }
  }
  return [...found].map(([name, path]) => ({ name, path }));
}

/** `app` with the fixture tables plus an index-heavy table of about 15 MiB. */
async function appWithIndexes(c: Cluster): Promise<void> {
  await makeRoles(c);
  await makeAppDb(c, "app");
  await c.psql(
    `CREATE TABLE public.wide (id int PRIMARY KEY, a text, b text, c int);
     INSERT INTO public.wide SELECT g, md5(g::text), md5((g * 7)::text), g % 1000
       FROM generate_series(1, 150000) g;
     CREATE INDEX wide_a ON public.wide (a);
     CREATE INDEX wide_b ON public.wide (b, c);
     ALTER TABLE public.wide OWNER TO app_owner;`,
    "app",
  );
}

Deno.test("plakar restore -o jobs=2 -o recreate=true restores through a spool file, removed afterwards", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await using u = await PlakarUser.create();
  const spoolDir = await Deno.makeTempDir({ prefix: "plakar-spool-e2e-" });
  try {
    await appWithIndexes(src);
    await makeRoles(dst);
    ok(await u.at("backup", src.uri("app")), "backup");
    const [snap] = await u.snapshots();
    // Watch the spool directory while plakar restores: the dump must pass through it.
    const seen = new Set<string>();
    let restoring = true;
    const watch = (async () => {
      while (restoring) {
        for (const name of await entries(spoolDir)) seen.add(name);
        for (const { name } of openSpoolFiles(spoolDir)) seen.add(name);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    let r;
    try {
      r = await u.at(
        "restore",
        "-o",
        "recreate=true",
        "-o",
        "jobs=2",
        "-o",
        `spool_dir=${spoolDir}`,
        "-to",
        dst.uri(),
        snap,
      );
    } finally {
      restoring = false;
      await watch;
    }
    ok(r, "restore jobs=2");
    assertEquals(seen.size, 1, `spool files seen: ${[...seen].join(", ")}`);
    assert(!/error/i.test(r.stderr), r.stderr);
    assertEquals(await snapshotDb(dst, "app"), await snapshotDb(src, "app"));
    const count = await dst.query("SELECT count(*)::int AS n FROM wide", "app");
    assertEquals(count, [{ n: 150000 }]);
    assertEquals(await entries(spoolDir), []);
  } finally {
    await Deno.remove(spoolDir, { recursive: true });
  }
});

Deno.test({
  name:
    "plakar restore -o jobs=2 refuses a dump larger than spool_dir's free space (plakar records the size), changing nothing",
  ignore: Deno.uid() !== 0, // mounts a 1 MiB tmpfs
  async fn() {
    await using src = await Cluster.start();
    await using dst = await Cluster.start();
    await using u = await PlakarUser.create();
    const small = await Deno.makeTempDir({ prefix: "plakar-spool-small-" });
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small],
    }).output();
    assert(mount.success, new TextDecoder().decode(mount.stderr));
    try {
      await appWithIndexes(src);
      await makeRoles(dst);
      await dst.query("CREATE DATABASE app OWNER app_owner");
      ok(await u.at("backup", src.uri("app")), "backup");
      const [snap] = await u.snapshots();
      const r = await u.at(
        "restore",
        "-o",
        "jobs=2",
        "-o",
        `spool_dir=${small}`,
        "-to",
        dst.uri("app"),
        `${snap}:/00001-app.dump`,
      );
      assert(r.code !== 0, "a restore that could not spool succeeded");
      assertMatch(
        r.stdout + r.stderr,
        /Cannot spool the dump to .* \(spool_dir\): it needs \d+ MiB and 1 MiB are free/,
      );
      assertEquals(await entries(small), []);
      assertEquals(
        await dst.query(
          "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
          "app",
        ),
        [{ n: 0 }],
      );
    } finally {
      await new Deno.Command("umount", { args: [small] }).output();
      await Deno.remove(small, { recursive: true });
    }
  },
});

const DBS = ["db1", "db2", "db3", "db4"];

/** pg_dump and pg_dumpall processes on this machine connected to port `port`. */
function dumpProcesses(port: number): number {
  let n = 0;
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
    } catch {
      continue; // exited meanwhile
    }
    const tool = argv[0].split("/").pop();
    if (tool !== "pg_dump" && tool !== "pg_dumpall") continue;
    const p = argv.indexOf("-p");
    if (p >= 0 && argv[p + 1] === String(port)) n++;
  }
  return n;
}

/**
 * Runs `backup` while table `t` of each of the four databases is locked for
 * 2 s (every pg_dump started meanwhile waits on it), counting the dump tools
 * running: the most at once.
 */
async function peakDumpsDuring(c: Cluster, backup: () => Promise<unknown>): Promise<number> {
  const locks = await Promise.all(DBS.map((db) => holdLock(c, db, "t")));
  const timer = setTimeout(() => locks.forEach((l) => l.release()), 2000);
  let peak = 0;
  let running = true;
  const watch = (async () => {
    while (running) {
      peak = Math.max(peak, dumpProcesses(c.port));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    await backup();
  } finally {
    running = false;
    clearTimeout(timer);
    await Promise.all(locks.map((l) => l.release()));
    await watch;
  }
  return peak;
}

Deno.test("plakar opens up to -concurrency files at once (default: CPUs - 1), and max_parallel_dumps=1 runs one pg_dump at a time", async () => {
  await using c = await Cluster.start();
  await using u = await PlakarUser.create();
  for (const db of DBS) {
    await c.query(`CREATE DATABASE ${db}`);
    await c.psql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g", db);
  }
  const uri = c.uri();
  const backup = async (...args: string[]) =>
    ok(await u.run([...args, "at", u.store, "backup", "-no-progress", "@pg"]), "backup");
  ok(await u.run(["source", "add", "pg", uri]), "source add");

  // -concurrency 4: the four dumps run together against the server.
  assert(
    (await peakDumpsDuring(c, () => backup("-concurrency", "4"))) >= 4,
    "plakar -concurrency 4 did not open four dumps at once",
  );
  // The default: plakar's -cpu default (GOMAXPROCS - 1, at least 1), and
  // the next file's dump started ahead of plakar's Open (READ_AHEAD).
  const cpus = navigator.hardwareConcurrency;
  const byDefault = Math.min(4, Math.max(1, cpus - 1) + READ_AHEAD);
  assertEquals(await peakDumpsDuring(c, () => backup()), byDefault);

  // max_parallel_dumps=1 with -concurrency 4: one dump at a time, all stored.
  ok(await u.run(["source", "rm", "pg"]), "source rm");
  ok(await u.run(["source", "add", "pg", uri, "max_parallel_dumps=1"]), "source add");
  assertEquals(await peakDumpsDuring(c, () => backup("-concurrency", "4")), 1);
  const [snap] = await u.snapshots();
  const ls = ok(await u.at("ls", `${snap}:/`), "ls").stdout;
  for (const db of DBS) assertMatch(ls, new RegExp(`-${db}\\.dump`));
  ok(await u.at("check", snap), "check");
});

Deno.test("lock_wait_timeout: a backup with a table held ACCESS EXCLUSIVE fails through plakar, naming the table, with no snapshot", async () => {
  await using c = await Cluster.start();
  await using u = await PlakarUser.create();
  await c.query("CREATE DATABASE app");
  await c.psql("CREATE SCHEMA sales; CREATE TABLE sales.orders (id int)", "app");
  await using _lock = await holdLock(c, "app", "sales.orders");
  const t0 = performance.now();
  const r = await u.at("backup", "-no-progress", "-o", "lock_wait_timeout=2s", c.uri("app"));
  const seconds = (performance.now() - t0) / 1000;
  assert(r.code !== 0, "the backup succeeded though the table was locked");
  assert(seconds < 20, `the backup took ${seconds} s`);
  assertMatch(
    r.stderr,
    /postgresql: error: .*pg_dump of database "app" could not lock sales\.orders within lock_wait_timeout=2s: another session holds a conflicting lock/,
  );
  assertEquals(await u.snapshots(), []);
});

Deno.test("plakar SIGKILLed while a jobs=2 restore spools: the spool file is gone within 5 s", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await using u = await PlakarUser.create();
  const spoolDir = await Deno.makeTempDir({ prefix: "plakar-spool-kill-" });
  try {
    await src.query("CREATE DATABASE big");
    await src.psql(
      `CREATE TABLE events (id bigint PRIMARY KEY, payload text);
       INSERT INTO events SELECT g, md5(g::text) || repeat('x', 250) FROM generate_series(1, 400000) g;`,
      "big",
    );
    ok(await u.at("backup", src.uri("big")), "backup");
    const [snap] = await u.snapshots();
    await dst.query("CREATE DATABASE big");
    const child = new Deno.Command(u.bin, {
      args: [
        "at",
        u.store,
        "restore",
        "-o",
        "jobs=2",
        "-o",
        `spool_dir=${spoolDir}`,
        "-to",
        dst.uri("big"),
        `${snap}:/00001-big.dump`,
      ],
      env: u.env(),
      cwd: u.home,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const drained = Promise.all([child.stdout.pipeTo(new WritableStream()), child.stderr.text()]);
    try {
      const deadline = Date.now() + 60_000;
      // Some of the dump is on disk, the rest still coming.
      while ((await spooledBytes(spoolDir)) < 4 * 1024 ** 2) {
        if (Date.now() > deadline) throw new Error("no spool file appeared");
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill("SIGKILL");
    } finally {
      await child.status;
    }
    const deadline = Date.now() + 5000;
    const left = () => [...new Set([...openSpoolFiles(spoolDir).map((f) => f.name)])];
    while ((await entries(spoolDir)).length + left().length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals(await entries(spoolDir), [], "the spool file outlived plakar by 5 s");
    assertEquals(left(), [], "the spool file is still held open 5 s after plakar died");
    await drained;
  } finally {
    await Deno.remove(spoolDir, { recursive: true });
  }
});

/** Bytes of the spool files under `dir`, named or held open unlinked. */
async function spooledBytes(dir: string): Promise<number> {
  let n = 0;
  for (const { path } of openSpoolFiles(dir)) {
    n += await Deno.stat(path).then((s) => s.size, () => 0);
  }
  return n;
}
