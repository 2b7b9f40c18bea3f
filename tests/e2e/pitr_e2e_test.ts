// Point-in-time recovery end to end through the real plakar: WAL captures
// (postgres+wal://) scheduled around a base backup (postgres+bin://) while a
// pgbench workload runs, then the recovery sequence of the README, run
// verbatim, to just before a dropped table and to the latest capture.

import { Cluster, queryServer } from "../../harness/cluster.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import { runAs, serverBin as serverBinaries } from "../helpers/restored.ts";

const SECRET = "secret";
const APT_BIN = "/usr/lib/postgresql/15/bin";

function uri(scheme: string, c: Cluster): string {
  return `${scheme}://postgres:${SECRET}@127.0.0.1:${c.port}`;
}

/** A pgbench client writing at a steady rate until stopped. */
function workload(c: Cluster): { stop(): Promise<void> } {
  const child = new Deno.Command(`${APT_BIN}/pgbench`, {
    args: [
      "-h",
      "127.0.0.1",
      "-p",
      String(c.port),
      "-U",
      "postgres",
      "-n",
      "-c",
      "1",
      "-R",
      "50",
      "-T",
      "600",
      "postgres",
    ],
    env: { PGPASSWORD: SECRET },
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* ended */ }
      await child.status;
    },
  };
}

/** What t holds, as one string. */
async function fingerprint(
  c: { query<T>(sql: string): Promise<T[]> },
  table: string,
): Promise<string> {
  const [r] = await c.query<{ f: string }>(
    `SELECT count(*) || ':' || coalesce(sum(id), 0) || ':' || coalesce(md5(string_agg(v, ',' ORDER BY id)), '') AS f FROM ${table}`,
  );
  return r.f;
}

/** The README's recovery commands: the shell block after "**Recovery.**". */
async function readmeRecovery(): Promise<string> {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const at = readme.indexOf("**Recovery.**");
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert(at >= 0 && block, "the README has no recovery block");
  return block[1];
}

/** A server the recovery started, stopped on dispose. */
interface Recovered extends AsyncDisposable {
  query<T>(sql: string): Promise<T[]>;
}

/**
 * Runs the README's recovery block verbatim, its six variables set to this
 * test's store, base backup, target and directories, with plakar and a
 * `sudo` that runs as the postgres user on PATH.
 */
async function recover(
  u: PlakarUser,
  base: string,
  target: string,
  dir: string,
  major = 15,
): Promise<Recovered> {
  const port = freePort();
  const values: Record<string, string> = {
    STORE: u.store,
    BASE: base,
    TARGET: target,
    PGDATA: `${dir}/pgdata`,
    ARCHIVE: `${dir}/archive`,
    PORT: String(port),
  };
  const { bin: serverBin, env: serverEnv } = await serverBinaries(major);
  const script = (await readmeRecovery()).replace(
    /^(STORE|BASE|TARGET|PGDATA|ARCHIVE|PORT)=.*$/gm,
    (_, name: string) => `${name}='${values[name].replace(/'/g, "'\\''")}'`,
  ) // "the same PostgreSQL major as the source" (pg_controldata 15 reads any of them)
    .replaceAll("/usr/lib/postgresql/15/bin/pg_ctl", `${serverBin}/pg_ctl`);
  const bin = `${dir}/bin`;
  await Deno.mkdir(bin, { recursive: true });
  await Deno.symlink(u.bin, `${bin}/plakar`);
  await Deno.writeTextFile(
    `${bin}/sudo`,
    '#!/bin/sh\n[ "$1" = -u ] || exit 1\nuser=$2; shift 2\nexec runuser -u "$user" -- "$@"\n',
    { mode: 0o755 },
  );
  const out = await new Deno.Command("sh", {
    args: ["-e", "-c", script],
    env: { ...u.env(), ...serverEnv, PATH: `${bin}:/usr/bin:/bin:/usr/sbin:/sbin` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const log = await Deno.readTextFile(`${dir}/pgdata/recovery.log`).catch(() => "");
  assert(
    out.success,
    `the README's recovery failed: ${dec.decode(out.stdout)}${dec.decode(out.stderr)}\n${log}`,
  );
  const server = { host: "127.0.0.1", port, user: "postgres", password: SECRET };
  return {
    query: <T>(sql: string) => queryServer<T>(server, sql, "postgres"),
    async [Symbol.asyncDispose]() {
      await runAs(
        `${serverBin}/pg_ctl`,
        ["-D", `${dir}/pgdata`, "-m", "immediate", "-w", "stop"],
        serverEnv,
      );
    },
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** pgbench's tables, and t, the table that will be dropped. */
async function prepare(src: Cluster): Promise<void> {
  await src.psql(`CREATE TABLE t (id int PRIMARY KEY, v text);
    CREATE TABLE after_drop (id int PRIMARY KEY, v text);`);
  const init = await runAs(
    `${APT_BIN}/pgbench`,
    [
      "-i",
      "-s",
      "1",
      "-q",
      "-h",
      "127.0.0.1",
      "-p",
      String(src.port),
      "-U",
      "postgres",
      "postgres",
    ],
    { PGPASSWORD: SECRET },
    false,
  );
  assert(init.ok, init.out);
}

/** Where recovery may stop, each way PostgreSQL offers, taken just before the DROP. */
interface Targets {
  time: string;
  lsn: string;
  xid: string;
  name: string;
}

Deno.test("postgres+wal: under a write workload, a cluster recovers to just before a dropped table by time, LSN, xid and restore point, and to the latest capture", async (t) => {
  await using src = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  const dir = await Deno.makeTempDir({ prefix: "plakar-pg-pitr-" });
  await Deno.chmod(dir, 0o755);
  await prepare(src);
  const load = workload(src);
  try {
    const capture = async () => ok(await u.at("backup", uri("postgres+wal", src)), "capture");
    await capture(); // creates the guard slot: the chain starts here
    ok(await u.at("backup", uri("postgres+bin", src)), "base backup");
    const [base] = await u.snapshots();
    for (let batch = 0; batch < 3; batch++) {
      const from = batch * 100 + 1;
      await src.psql(
        `INSERT INTO t SELECT g, md5(g::text) FROM generate_series(${from}, ${from + 99}) g`,
      );
      await capture();
    }
    const [{ xid }] = await src.query<{ xid: string }>(
      "INSERT INTO t VALUES (1000, 'last before T') RETURNING txid_current()::text AS xid",
    );
    const before = await fingerprint(src, "t");
    const [{ lsn, at }] = await src.query<{ lsn: string; at: string }>(
      "SELECT pg_current_wal_insert_lsn()::text AS lsn, clock_timestamp()::text AS at",
    );
    await src.query("SELECT pg_create_restore_point('before_drop')");
    await new Promise((r) => setTimeout(r, 300));
    await src.psql("DROP TABLE t");
    await capture();
    await src.psql("INSERT INTO after_drop SELECT g, md5(g::text) FROM generate_series(1, 50) g");
    const latest = await fingerprint(src, "after_drop");
    await capture();
    const targets: Targets = { time: at, lsn, xid, name: "before_drop" };
    for (const [kind, value] of Object.entries(targets)) {
      await t.step(`recovery_target_${kind} stops just before the DROP`, async () => {
        await using pit = await recover(
          u,
          base,
          `recovery_target_${kind} = '${value}'`,
          `${dir}/${kind}`,
        );
        assertEquals(await fingerprint(pit, "t"), before, "the table as it was at T");
        const [{ n }] = await pit.query<{ n: string }>(
          "SELECT count(*)::text AS n FROM after_drop",
        );
        assertEquals(n, "0", "nothing written after T");
      });
    }
    await t.step("with no target, recovery reaches the latest capture", async () => {
      await using end = await recover(u, base, "", `${dir}/latest`);
      assertEquals(
        await fingerprint(end, "after_drop"),
        latest,
        "every row before the last capture",
      );
      const [{ t }] = await end.query<{ t: string | null }>("SELECT to_regclass('t')::text AS t");
      assertEquals(t, null, "the drop replayed");
    });
    await load.stop();
    const [{ n }] = await src.query<{ n: string }>(
      "SELECT count(*)::text AS n FROM pgbench_history",
    );
    assert(Number(n) > 100, `the workload wrote ${n} transactions only`);
    await assertNothingLeft(src);
  } finally {
    await load.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** No pg_receivewal on this host, no walsender on the server, no slot in use. */
async function assertNothingLeft(src: Cluster): Promise<void> {
  const ps = await new Deno.Command("pgrep", { args: ["-x", "pg_receivewal"] }).output();
  assertEquals(new TextDecoder().decode(ps.stdout).trim(), "", "a pg_receivewal left running");
  const [{ senders, active }] = await src.query<{ senders: string; active: string }>(
    `SELECT (SELECT count(*) FROM pg_stat_replication)::text AS senders,
            (SELECT count(*) FROM pg_replication_slots WHERE active)::text AS active`,
  );
  assertEquals([senders, active], ["0", "0"], "a walsender or an active slot left on the server");
}

/**
 * Every segment from the base backup's start to the end of the latest
 * capture, in what the captures since the base backup hold together.
 */
async function assertChainWhole(u: PlakarUser, base: string, dir: string): Promise<void> {
  const label = ok(await u.at("cat", `${base}:/backup_label`), "backup_label").stdout;
  const startSeg = /START WAL LOCATION: .* \(file ([0-9A-F]{24})\)/.exec(label)![1];
  const snaps = await u.snapshots();
  const since = snaps.slice(0, snaps.indexOf(base));
  const names = new Set<string>();
  let end = "";
  for (const s of since) {
    const m = JSON.parse(ok(await u.at("cat", `${s}:/manifest.json`), "manifest").stdout);
    if (m.connector !== "postgresql+wal") continue;
    for (const f of m.files as string[]) names.add(f.replace(/\.partial$/, ""));
    if (end === "" || lsnValue(m.end_lsn) > lsnValue(end)) end = m.end_lsn;
  }
  const first = BigInt(`0x${startSeg.slice(8, 16)}`) * 256n + BigInt(`0x${startSeg.slice(16)}`);
  const last = (lsnValue(end) - 1n) / 0x1000000n;
  const segs = [...names].map((n) =>
    BigInt(`0x${n.slice(8, 16)}`) * 256n + BigInt(`0x${n.slice(16, 24)}`)
  );
  for (let seg = first; seg <= last; seg++) {
    assert(
      segs.includes(seg),
      `segment ${seg} missing from the captures since the base backup (${dir})`,
    );
  }
}

function lsnValue(text: string): bigint {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

Deno.test("postgres+wal: a capture killed, one never committed, one cut by a server restart: the chain stays whole and recovers to the latest capture", async (t) => {
  await using src = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  const dir = await Deno.makeTempDir({ prefix: "plakar-pg-pitr-kill-" });
  await Deno.chmod(dir, 0o755);
  try {
    await prepare(src);
    const capture = async () => ok(await u.at("backup", uri("postgres+wal", src)), "capture");
    const write = (n: number) =>
      src.psql(
        `INSERT INTO after_drop SELECT g, md5(g::text) FROM generate_series(${n}, ${n + 999}) g`,
      );
    await capture();
    ok(await u.at("backup", uri("postgres+bin", src)), "base backup");
    const [base] = await u.snapshots();
    await write(1);
    await capture();

    await t.step("plakar SIGKILLed during a capture", async () => {
      await write(2000);
      await bulk(src);
      const child = startCapture(u, src);
      assert(await untilRunning("pg_receivewal"), "the capture never reached pg_receivewal");
      child.kill("SIGKILL");
      await child.status;
      await waitGone("pg_receivewal");
      await capture();
    });

    await t.step("a capture that ran to its end but was never committed to the store", async () => {
      await write(4000);
      // The plugin cannot tell this from plakar failing at commit: its
      // snapshot is not in the user's store.
      await using other = await PlakarUser.create();
      ok(
        await other.at("backup", uri("postgres+wal", src)),
        "capture into a store that is then lost",
      );
      await write(6000);
      await capture();
    });

    await t.step("the server restarted during a capture", async () => {
      await write(8000);
      await bulk(src);
      const child = startCapture(u, src);
      assert(await untilRunning("pg_receivewal"), "the capture never reached pg_receivewal");
      await runAs(
        `${src.binDir}/pg_ctl`,
        [
          "-D",
          src.dataDir,
          // With a log file, the server's output does not hold runAs's pipe open.
          "-l",
          `${src.dir}/server.log`,
          "-m",
          "immediate",
          "-w",
          "restart",
        ],
        src.env,
      );
      await child.status;
      await waitGone("pg_receivewal");
      await capture();
    });

    await write(10000);
    const latest = await fingerprint(src, "after_drop");
    await capture();
    await assertChainWhole(u, base, dir);
    await using end = await recover(u, base, "", `${dir}/latest`);
    assertEquals(await fingerprint(end, "after_drop"), latest, "every row before the last capture");
    await assertNothingLeft(src);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** `plakar backup postgres+wal://…` started, not awaited. */
function startCapture(u: PlakarUser, src: Cluster): Deno.ChildProcess {
  return new Deno.Command(u.bin, {
    args: ["at", u.store, "backup", uri("postgres+wal", src)],
    env: u.env(),
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** About 40 MiB of WAL, so that a capture lasts long enough to be cut. */
async function bulk(src: Cluster): Promise<void> {
  await src.psql(`CREATE TABLE IF NOT EXISTS bulk (v text);
    INSERT INTO bulk SELECT repeat(md5(g::text), 4) FROM generate_series(1, 200000) g`);
}

/** Waits (up to 20 s) until a process of that name runs; false if none did. */
async function untilRunning(name: string): Promise<boolean> {
  for (let i = 0; i < 2000; i++) {
    const r = await new Deno.Command("pgrep", { args: ["-x", name] }).output();
    if (r.success) return true;
    await new Promise((res) => setTimeout(res, 10));
  }
  return false;
}

/** Waits (up to 10 s) until no process of that name runs. */
async function waitGone(name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await new Deno.Command("pgrep", { args: ["-x", name] }).output();
    if (!r.success) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${name} still running`);
}

for (const major of [13, 14]) {
  Deno.test(`postgres+wal: PostgreSQL ${major} recovers to the latest capture with the README's commands`, async () => {
    await using src = await Cluster.start({ major, password: SECRET });
    await using u = await PlakarUser.create();
    const dir = await Deno.makeTempDir({ prefix: "plakar-pg-pitr-major-" });
    await Deno.chmod(dir, 0o755);
    try {
      await src.psql("CREATE TABLE after_drop (id int PRIMARY KEY, v text)");
      const capture = async () => ok(await u.at("backup", uri("postgres+wal", src)), "capture");
      await capture();
      ok(await u.at("backup", uri("postgres+bin", src)), "base backup");
      const [base] = await u.snapshots();
      await src.psql(
        "INSERT INTO after_drop SELECT g, md5(g::text) FROM generate_series(1, 500) g",
      );
      await capture();
      await src.psql(
        "INSERT INTO after_drop SELECT g, md5(g::text) FROM generate_series(501, 600) g",
      );
      const latest = await fingerprint(src, "after_drop");
      await capture();
      await using end = await recover(u, base, "", `${dir}/latest`, major);
      assertEquals(await fingerprint(end, "after_drop"), latest);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}
