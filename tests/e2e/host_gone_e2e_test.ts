// When plakar dies mid-operation (OOM killer, container stop: SIGKILL, no
// chance to clean up), nothing of ours may stay behind: not the plugin, not
// its pg_dump / pg_restore, not their server backends holding a snapshot and
// locks. The plugin sees its stdin reach EOF and must stop everything.

// @ts-types="@types/pg"
import pg from "pg";
import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";

const SECRET = "secret";

/** Processes whose command line contains every one of `needles` (ours only: /proc scan). */
function processesMatching(...needles: string[]): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    let cmd: string;
    try {
      cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
    } catch {
      continue;
    }
    if (needles.every((n) => cmd.includes(n))) found.push({ pid: Number(e.name), cmd });
  }
  return found;
}

/** Our plugin processes: launched from the plakar user's HOME (its installed package). */
function pluginProcesses(u: PlakarUser): { pid: number; cmd: string }[] {
  return processesMatching(u.home, "deno");
}

async function ourBackends(c: Cluster): Promise<unknown[]> {
  return await c.query(
    "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = 'plakar-postgresql'",
  );
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms: number) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What is left of ours `ms` after plakar died; empty lists when all is gone. */
async function leftovers(u: PlakarUser, c: Cluster, tool: string, ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = {
      plugins: pluginProcesses(u).map((p) => p.cmd),
      tools: processesMatching(tool, String(c.port)).map((p) => p.cmd),
      backends: await ourBackends(c),
    };
    const clean = !left.plugins.length && !left.tools.length && !left.backends.length;
    if (clean || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** ~120 MB in one table with an index: a dump that takes a while to stream. */
async function makeBigDb(c: Cluster, db: string): Promise<void> {
  await c.query(`CREATE DATABASE ${db}`);
  await c.psql(
    `CREATE TABLE events (id bigint PRIMARY KEY, payload text);
     INSERT INTO events SELECT g, md5(g::text) || repeat('x', 250)
       FROM generate_series(1, 400000) g;`,
    db,
  );
}

/**
 * Starts `plakar args…` (in a process group of its own with `group`), its
 * output kept open by a reader that outlives plakar, as a terminal or a
 * container's log collector does: the plugin inherits plakar's stderr.
 * `outputs` ends when plakar and the plugin are both gone.
 */
function startPlakar(u: PlakarUser, args: string[], group = false) {
  const child = new Deno.Command(u.bin, {
    args,
    env: u.env(),
    cwd: u.home,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: group,
  }).spawn();
  const outputs = Promise.all([child.stdout.pipeTo(new WritableStream()), child.stderr.text()]);
  return { child, outputs };
}

/**
 * Starts `plakar args…`, stops it once `ready()` holds, then SIGKILLs it.
 * Returns a promise of plakar's output pipes' end, to await after the checks
 * (the plugin holds them open as long as it lives).
 */
async function killPlakarWhen(
  u: PlakarUser,
  args: string[],
  ready: () => boolean | Promise<boolean>,
  freezeFirst = true,
) {
  const { child, outputs } = startPlakar(u, args);
  try {
    await waitFor("the tool to start", ready, 60_000);
    // Frozen first, so the tool is surely mid-stream (blocked on its pipe)
    // when plakar dies, as when the OOM killer strikes a busy backup.
    if (freezeFirst) {
      child.kill("SIGSTOP");
      await new Promise((r) => setTimeout(r, 500));
    }
    child.kill("SIGKILL");
  } finally {
    await child.status;
  }
  return outputs;
}

Deno.test("plakar SIGKILLed mid-backup: within 5 s no plugin, no pg_dump and no backend of ours remain", async () => {
  await using src = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  await makeBigDb(src, "big");
  const uri = `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/big`;
  const outputs = await killPlakarWhen(
    u,
    ["at", u.store, "backup", uri],
    () =>
      processesMatching("pg_dump", String(src.port)).length > 0 &&
      pluginProcesses(u).length > 0,
  );
  const killedAt = Date.now();
  const left = await leftovers(u, src, "pg_dump", 5000);
  assertEquals(left, { plugins: [], tools: [], backends: [] }, "left behind after plakar died");
  assert(Date.now() - killedAt < 6000);
  await outputs;
  // The source takes an exclusive lock again at once (no AccessShareLock held).
  await src.psql("SET lock_timeout = '2s'; ALTER TABLE events ADD COLUMN extra int;", "big");
});

Deno.test("plakar SIGKILLed while the backup waits on a lock: our waiting backends are gone within 5 s", async () => {
  await using src = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  await makeBigDb(src, "big");
  // A migration holds the table: pg_dump waits for its lock, silent, and
  // the plugin waits on pg_dump when plakar dies.
  const holder = new pg.Client({
    host: src.host,
    port: src.port,
    user: "postgres",
    password: SECRET,
    database: "big",
  });
  await holder.connect();
  try {
    await holder.query("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE");
    const uri = `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/big`;
    const outputs = await killPlakarWhen(
      u,
      ["at", u.store, "backup", uri],
      async () =>
        (await src.query(
          `SELECT 1 FROM pg_stat_activity
            WHERE application_name = 'plakar-postgresql' AND wait_event_type = 'Lock'`,
        )).length > 0,
      false,
    );
    const left = await leftovers(u, src, "pg_dump", 5000);
    assertEquals(left, { plugins: [], tools: [], backends: [] }, "left behind after plakar died");
    await outputs;
  } finally {
    await holder.end().catch(() => {});
  }
});

/**
 * Backs `big` up from `src`, SIGKILLs plakar while pg_restore restores it
 * into `dst` (with the restore's `options`), and checks that within 5 s no
 * plugin, no pg_restore and no backend of ours remain.
 */
/** `plakar restore` of `big` from snapshot `snap` into `dst`, with `options`. */
function restoreBigArgs(u: PlakarUser, dst: Cluster, snap: string, options: string[]): string[] {
  return [
    "at",
    u.store,
    "restore",
    ...options,
    "-to",
    `postgres://postgres:${SECRET}@127.0.0.1:${dst.port}/big`,
    `${snap}:/00001-big.dump`,
  ];
}

async function killMidRestore(u: PlakarUser, src: Cluster, dst: Cluster, options: string[]) {
  ok(
    await u.at("backup", `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/big`),
    "backup",
  );
  const [snap] = await u.snapshots();
  const outputs = await killPlakarWhen(
    u,
    restoreBigArgs(u, dst, snap, options),
    () =>
      processesMatching("pg_restore", String(dst.port)).length > 0 &&
      pluginProcesses(u).length > 0,
  );
  const left = await leftovers(u, dst, "pg_restore", 5000);
  assertEquals(left, { plugins: [], tools: [], backends: [] }, "left behind after plakar died");
  await outputs;
}

Deno.test("plakar SIGKILLed mid-restore: within 5 s no plugin, no pg_restore and no backend of ours remain", async () => {
  await using src = await Cluster.start({ password: SECRET });
  await using dst = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  await makeBigDb(src, "big");
  await dst.query("CREATE DATABASE big");
  await killMidRestore(u, src, dst, []);
});

Deno.test("plakar SIGKILLed mid-restore with recreate=true: the target stays as it was and no temporary database is left", async () => {
  await using src = await Cluster.start({ password: SECRET });
  await using dst = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  await makeBigDb(src, "big");
  await dst.query("CREATE DATABASE big");
  await dst.psql("CREATE TABLE still_here (v int); INSERT INTO still_here VALUES (42);", "big");
  await killMidRestore(u, src, dst, ["-o", "recreate=true"]);
  const dbs = (await dst.query(
    "SELECT datname FROM pg_database WHERE datname LIKE '%plakar%' ORDER BY 1",
  )) as { datname: string }[];
  assertEquals(dbs.map((d) => d.datname), [], "work databases left behind");
  const rows = await dst.query("SELECT v FROM still_here", "big");
  assertEquals(rows, [{ v: 42 }], "the target database changed");
});

/**
 * Starts `plakar args…` and once `ready()` holds sends `sig` to plakar alone
 * or to its whole group, as `kill PID`, Ctrl-C in a terminal and `systemctl
 * stop` do. Resolves with plakar's exit code and its stderr.
 */
async function interruptPlakarWhen(
  u: PlakarUser,
  args: string[],
  ready: () => boolean | Promise<boolean>,
  sig: Deno.Signal,
  group: boolean,
): Promise<{ code: number; stderr: string }> {
  const { child, outputs } = startPlakar(u, args, group);
  try {
    await waitFor("the restore to be under way", ready, 60_000);
    if (group) Deno.kill(-child.pid, sig);
    else child.kill(sig);
  } finally {
    await child.status;
  }
  const { code } = await child.status;
  return { code, stderr: (await outputs)[1] };
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("plakar stopped by SIGINT or SIGTERM, alone or with its process group, mid-recreate (streamed or jobs=2): no work database and no spool file within seconds, the target intact", async () => {
  await using src = await Cluster.start({ password: SECRET });
  await using dst = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  const spoolDir = await Deno.makeTempDir({ prefix: "plakar-e2e-spool-" });
  try {
    await makeBigDb(src, "big");
    await dst.query("CREATE DATABASE big");
    await dst.psql("CREATE TABLE still_here (v int); INSERT INTO still_here VALUES (42);", "big");
    ok(
      await u.at("backup", `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/big`),
      "backup",
    );
    const [snap] = await u.snapshots();
    const workDatabases = async () =>
      ((await dst.query(
        "SELECT datname FROM pg_database WHERE datname LIKE '%plakar%' ORDER BY 1",
      )) as { datname: string }[]).map((d) => d.datname);
    const cases: { sig: Deno.Signal; group: boolean; jobs: boolean }[] = [
      { sig: "SIGINT", group: false, jobs: false },
      { sig: "SIGTERM", group: true, jobs: false },
      { sig: "SIGTERM", group: false, jobs: true },
      { sig: "SIGINT", group: true, jobs: true },
    ];
    for (const { sig, group, jobs } of cases) {
      const what = `${sig} to plakar${group ? "'s process group" : ""}${jobs ? ", jobs=2" : ""}`;
      const options = ["-o", "recreate=true"];
      if (jobs) options.push("-o", "jobs=2", "-o", `spool_dir=${spoolDir}`);
      const r = await interruptPlakarWhen(
        u,
        restoreBigArgs(u, dst, snap, options),
        // Under way: the work database exists and pg_restore writes into it
        // (with jobs=2, from the spooled file).
        async () =>
          processesMatching("pg_restore", String(dst.port)).length > 0 &&
          (await workDatabases()).length > 0,
        sig,
        group,
      );
      assert(r.code !== 0, `${what}: plakar exited 0`);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (await workDatabases()).length > 0) await delay(100);
      assertEquals(await workDatabases(), [], `${what}: work database left behind`);
      assertEquals(await Array.fromAsync(Deno.readDir(spoolDir)), [], `${what}: spool file left`);
      const rows = await dst.query("SELECT v FROM still_here", "big");
      assertEquals(rows, [{ v: 42 }], `${what}: the target database changed`);
      const left = await leftovers(u, dst, "pg_restore", 5000);
      assertEquals(left, { plugins: [], tools: [], backends: [] }, `${what}: left behind`);
    }
  } finally {
    await Deno.remove(spoolDir, { recursive: true }).catch(() => {});
  }
});
