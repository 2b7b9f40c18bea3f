// postgres+bin:// end to end through the real plakar: pg_basebackup's copy
// stored as plain files, restored by plakar's built-in filesystem exporter
// with the reference integration's documented command, verified by pg_verifybackup and started with
// pg_ctl of the source's major.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import { makeAppDb, makeRoles, snapshotDb } from "../../harness/fixtures.ts";
import { RestoredServer, runAs } from "../helpers/restored.ts";

const SECRET = "secret";
const DBS = ["app", "billing"];

/** A source with data in two databases. */
async function source(major = 15): Promise<Cluster> {
  const src = await Cluster.start({ major, password: SECRET });
  await makeRoles(src);
  for (const db of DBS) await makeAppDb(src, db, "app_owner", 500);
  return src;
}

function binUri(c: Cluster): string {
  return `postgres+bin://postgres:${SECRET}@127.0.0.1:${c.port}`;
}

/** A directory the server's user can reach, removed on dispose. */
async function scratch(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "plakar-pg-restore-" });
  await Deno.chmod(dir, 0o755);
  return {
    dir,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Backs up `src` with postgres+bin://, restores into DIR/pgdata, verifies; returns the snapshot's manifest. */
async function backupAndRestore(
  u: PlakarUser,
  src: Cluster,
  pgdata: string,
): Promise<Record<string, unknown>> {
  ok(await u.at("backup", binUri(src)), "backup postgres+bin://");
  const [snap] = await u.snapshots();
  const ls = ok(await u.at("ls", `${snap}:/`), "ls").stdout;
  for (const f of ["manifest.json", "PG_VERSION", "backup_manifest", "base", "global", "pg_wal"]) {
    assert(ls.includes(f), `${f} missing from the snapshot root:\n${ls}`);
  }
  const manifest = JSON.parse(ok(await u.at("cat", `${snap}:/manifest.json`), "cat").stdout);
  // The restore command of the reference integration's documentation, verbatim.
  ok(await u.at("restore", "-to", pgdata, snap), "restore -to");
  await RestoredServer.prepare(pgdata);
  const verify = await runAs(`/usr/lib/postgresql/15/bin/pg_verifybackup`, [
    ...(src.major === 15 ? [] : ["-n"]), // pg_waldump 15 does not read older WAL
    "-i",
    "manifest.json",
    pgdata,
  ]);
  assert(verify.ok, `pg_verifybackup failed: ${verify.out}`);
  return manifest;
}

async function assertSameData(src: Cluster, dst: RestoredServer): Promise<void> {
  for (const db of DBS) {
    assertEquals(
      await snapshotDb(dst as unknown as Cluster, db),
      await snapshotDb(src, db),
      `database ${db} differs after the restore`,
    );
  }
}

Deno.test("postgres+bin: a cluster with two databases restores with `plakar restore -to ./pgdata`, passes pg_verifybackup, starts and serves the same data", async () => {
  await using src = await source();
  await using u = await PlakarUser.create();
  await using tmp = await scratch();
  const pgdata = `${tmp.dir}/pgdata`;
  const m = await backupAndRestore(u, src, pgdata);
  assertEquals([m.version, m.connector, m.dump_format], [2, "postgresql+bin", "basebackup"]);
  assertMatch(String(m.pg_basebackup_version), /^pg_basebackup \(PostgreSQL\) 15\./);
  assert(!JSON.stringify(m).includes(SECRET), "password in the manifest");
  // Kept metadata: mode 0600 files and the backup_label of the copy.
  const st = await Deno.stat(`${pgdata}/PG_VERSION`);
  assertEquals((st.mode ?? 0) & 0o777, 0o600);
  assertMatch(await Deno.readTextFile(`${pgdata}/backup_label`), /LABEL: plakar/);
  await using dst = await RestoredServer.start(pgdata, 15, SECRET);
  await assertSameData(src, dst);
});

for (const major of [13, 14]) {
  Deno.test(`postgres+bin: a PostgreSQL ${major} cluster restores and starts with its own major, and not with another`, async () => {
    await using src = await source(major);
    await using u = await PlakarUser.create();
    await using tmp = await scratch();
    const pgdata = `${tmp.dir}/pgdata`;
    const m = await backupAndRestore(u, src, pgdata);
    assertEquals(String(m.server_version).split(".")[0], String(major));
    // Another major refuses the directory.
    const other = major === 13 ? 14 : 13;
    let refused = "";
    try {
      await using _wrong = await RestoredServer.start(pgdata, other, SECRET);
    } catch (e) {
      refused = (e as Error).message;
    }
    assertMatch(refused, /incompatible with server|initialized by PostgreSQL version/i);
    await using dst = await RestoredServer.start(pgdata, major, SECRET);
    await assertSameData(src, dst);
  });
}

/** A source with ~`mb` MiB of table data, so that a copy takes a while. */
async function bulkySource(mb: number, conf: string[] = []): Promise<Cluster> {
  const src = await Cluster.start({ password: SECRET, conf });
  await makeRoles(src);
  for (const db of DBS) await makeAppDb(src, db, "app_owner", 100);
  await src.psql(
    `CREATE TABLE bulk (id int, payload text);
     INSERT INTO bulk SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, ${mb * 1024}) g;`,
    "app",
  );
  return src;
}

/** Waits until pg_basebackup streams the data files (pg_stat_progress_basebackup). */
async function copyStreaming(src: Cluster, minBytes = 0): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const rows = await src.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_progress_basebackup
        WHERE phase = 'streaming database files' AND backup_streamed >= ${minBytes}`,
    ).catch(() => [{ n: 0 }]);
    if (rows[0].n > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("pg_basebackup never streamed the data files");
}

Deno.test("postgres+bin: stopping the source during the copy fails plakar backup with the cause and leaves no snapshot", async () => {
  await using src = await bulkySource(150);
  await using u = await PlakarUser.create();
  const [r] = await Promise.all([
    u.at("backup", binUri(src)),
    copyStreaming(src, 16 * 1024 * 1024).then(() => src.stop("immediate")),
  ]);
  assert(r.code !== 0, `plakar backup exited 0:\n${r.stdout}\n${r.stderr}`);
  assertMatch(r.stderr, /postgresql: error: .*pg_basebackup/);
  assertEquals(await u.snapshots(), []);
});

Deno.test("postgres+bin: a busy server (max_wal_size=32MB, wal_keep_size=0, checkpoints and writes during the copy) backs up and restores", async () => {
  await using src = await bulkySource(120, [
    "max_wal_size = 32MB",
    "min_wal_size = 32MB",
    "wal_keep_size = 0",
  ]);
  await using u = await PlakarUser.create();
  await using tmp = await scratch();
  await src.psql("CREATE TABLE churn (id int, payload text)", "billing");
  let done = false;
  let rounds = 0;
  const load = (async () => {
    await copyStreaming(src);
    while (!done) {
      // ~20 MiB of WAL, then a checkpoint that removes the segments before it.
      await src.psql(
        `INSERT INTO churn SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 30000) g;
         DELETE FROM churn; CHECKPOINT;`,
        "billing",
      );
      rounds++;
    }
  })();
  let r;
  try {
    r = await u.at("backup", binUri(src));
  } finally {
    done = true;
    await load;
  }
  ok(r, "backup of a busy server");
  assert(rounds >= 3, `only ${rounds} rounds of load ran during the copy`);
  // The WAL of the copy's start was recycled on the server meanwhile.
  const [snap] = await u.snapshots();
  const pgdata = `${tmp.dir}/pgdata`;
  ok(await u.at("restore", "-to", pgdata, snap), "restore");
  await RestoredServer.prepare(pgdata);
  const verify = await runAs("/usr/lib/postgresql/15/bin/pg_verifybackup", [
    "-i",
    "manifest.json",
    pgdata,
  ]);
  assert(verify.ok, `pg_verifybackup failed: ${verify.out}`);
  await using dst = await RestoredServer.start(pgdata, 15, SECRET);
  await assertSameData(src, dst);
  assertEquals(
    await dst.query("SELECT count(*)::int AS n FROM bulk", "app"),
    await src.query("SELECT count(*)::int AS n FROM bulk", "app"),
  );
});

Deno.test("postgres+bin: a second backup, where plakar skips unchanged files unread, completes and restores", async () => {
  await using src = await source();
  await using u = await PlakarUser.create();
  await using tmp = await scratch();
  ok(await u.at("backup", binUri(src)), "first backup");
  await src.psql(
    "INSERT INTO sales.customers VALUES (100000, 'late', 'after the first backup')",
    "app",
  );
  const r = ok(await u.at("backup", binUri(src)), "second backup");
  assert(
    !/KO ✘|postgresql: error/.test(r.stdout + r.stderr),
    `second backup reported errors:\n${r.stdout}\n${r.stderr}`,
  );
  const snaps = await u.snapshots();
  assertEquals(snaps.length, 2);
  const pgdata = `${tmp.dir}/pgdata`;
  ok(await u.at("restore", "-to", pgdata, snaps[0]), "restore the second snapshot");
  await RestoredServer.prepare(pgdata);
  const verify = await runAs("/usr/lib/postgresql/15/bin/pg_verifybackup", [
    "-i",
    "manifest.json",
    pgdata,
  ]);
  assert(verify.ok, `pg_verifybackup failed: ${verify.out}`);
  await using dst = await RestoredServer.start(pgdata, 15, SECRET);
  await assertSameData(src, dst);
});

Deno.test("postgres+bin through plakar: ping names what the server lacks, and a cluster with a tablespace is refused with no snapshot", async () => {
  await using src = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  await src.query("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'");
  ok(
    await u.run(["source", "add", "plain", `postgres+bin://plain:plain-pw@127.0.0.1:${src.port}`]),
    "source add",
  );
  const ping = await u.run(["source", "ping", "plain"]);
  assert(ping.code !== 0, "ping of a user without REPLICATION succeeded");
  assertMatch(ping.stdout + ping.stderr, /lacks the REPLICATION attribute: ALTER ROLE plain/);

  const loc = `${src.dir}/ts_data`;
  await Deno.mkdir(loc);
  if (Deno.uid() === 0) await runAs("chown", ["postgres:postgres", loc], {}, false);
  await src.query(`CREATE TABLESPACE ts_data LOCATION '${loc}'`);
  const r = await u.at("backup", binUri(src));
  assert(r.code !== 0, `backup of a cluster with a tablespace succeeded:\n${r.stdout}`);
  assertMatch(r.stderr, /postgresql: error: .*\("ts_data"\).*logical backup \(postgres:\/\/\)/);
  assertEquals(await u.snapshots(), []);
});
