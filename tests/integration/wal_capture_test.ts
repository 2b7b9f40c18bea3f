// postgres+wal:// captures against real clusters, in process: where each
// capture starts, when the chain's two slots move (only after a capture whose
// every file was read), what breaks the chain and how it is said, Ping's
// findings, and a capture across a promotion that a recovery goes through.

import { Cluster, queryServer } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "../helpers/assert.ts";
import { importAll, params } from "../helpers/connectors.ts";
import { capturingStderr } from "../helpers/stderr.ts";
import { createWalImporter } from "../../src/physical/wal_importer.ts";
import { Runtime } from "../../src/proc/runtime.ts";
import { PluginError } from "../../src/errors.ts";
import { runAs } from "../helpers/restored.ts";

const SECRET = "secret";
const APT_BIN = "/usr/lib/postgresql/15/bin";

function config(c: Cluster, extra: Record<string, string> = {}): Record<string, string> {
  return { location: `postgres+wal://postgres:${SECRET}@127.0.0.1:${c.port}`, ...extra };
}

/** The two slots' positions, by name. */
async function slots(c: Cluster): Promise<Record<string, string | null>> {
  const rows = await c.query<{ slot_name: string; restart_lsn: string | null }>(
    "SELECT slot_name, restart_lsn::text FROM pg_replication_slots ORDER BY 1",
  );
  return Object.fromEntries(rows.map((r) => [r.slot_name, r.restart_lsn]));
}

/** One whole capture; its manifest and file names. */
async function capture(c: Cluster, extra: Record<string, string> = {}) {
  const imp = await createWalImporter(params("postgres+wal", config(c, extra)));
  try {
    const { files, errors } = await importAll(imp);
    assertEquals([...errors], []);
    const manifest = JSON.parse(new TextDecoder().decode(files.get("/manifest.json")!));
    return { manifest, files };
  } finally {
    await imp.close();
  }
}

async function writeSome(c: Cluster, rows = 2000): Promise<void> {
  await c.psql(`CREATE TABLE IF NOT EXISTS w (id serial, v text);
    INSERT INTO w (v) SELECT md5(g::text) FROM generate_series(1, ${rows}) g`);
}

Deno.test("postgres+wal: the chain's slots, capture by capture", async (t) => {
  await using c = await Cluster.start({ password: SECRET });

  await t.step("Ping refuses a user without REPLICATION, naming the attribute", async () => {
    await c.psql(`CREATE ROLE plain LOGIN PASSWORD '${SECRET}'`);
    const imp = await createWalImporter(params("postgres+wal", {
      location: `postgres+wal://plain:${SECRET}@127.0.0.1:${c.port}`,
    }));
    const e = await assertRejects(() => imp.ping(new AbortController().signal), PluginError);
    assertMatch(e.message, /lacks the REPLICATION attribute: ALTER ROLE plain REPLICATION/);
    await imp.close();
  });

  await t.step(
    "Ping refuses when fewer slots are free than the chain needs, naming max_replication_slots",
    async () => {
      await c.psql(
        "SELECT pg_create_physical_replication_slot('filler_' || g) FROM generate_series(1, 9) g",
      );
      const imp = await createWalImporter(params("postgres+wal", config(c)));
      const e = await assertRejects(() => imp.ping(new AbortController().signal), PluginError);
      assertMatch(
        e.message,
        /needs 2 more replication slot\(s\) .* 1 of max_replication_slots = 10 are free/,
      );
      await imp.close();
      await c.psql(
        "SELECT pg_drop_replication_slot('filler_' || g) FROM generate_series(1, 9) g",
      );
    },
  );

  let first: { manifest: Record<string, unknown> };
  await t.step(
    "the first capture creates the guard, marks the chain's start, and its end makes the mark",
    async () => {
      const { lines, value } = await capturingStderr(() => capture(c));
      first = value;
      assertEquals(first.manifest.chain_start, true);
      assert(
        lines.some((l) => /created the replication slot plakar_wal on/.test(l)),
      );
      const s = await slots(c);
      assertEquals(s.plakar_wal, first.manifest.start_lsn);
      assertEquals(s.plakar_wal_pending, first.manifest.end_lsn);
    },
  );

  await t.step(
    "each capture starts at the guard; then the guard moves to the previous end",
    async () => {
      await writeSome(c);
      const second = await capture(c);
      assertEquals(second.manifest.chain_start, false);
      assertEquals(second.manifest.start_lsn, first.manifest.start_lsn);
      assertEquals(await slots(c), {
        plakar_wal: first.manifest.end_lsn,
        plakar_wal_pending: second.manifest.end_lsn,
      } as Record<string, string | null>);
      await writeSome(c);
      const third = await capture(c);
      assertEquals(third.manifest.start_lsn, first.manifest.end_lsn, "overlaps the second");
      const names = [...third.files.keys()];
      assert(names.some((n) => n.endsWith(".partial")), "the segment in progress is stored");
    },
  );

  await t.step("a capture whose files are not all read moves no slot", async () => {
    await writeSome(c, 50000);
    const before = await slots(c);
    const imp = await createWalImporter(params("postgres+wal", config(c)));
    for await (const entry of imp.entries(new AbortController().signal)) {
      if (entry.pathname === "/manifest.json") continue;
      await entry.release?.();
    }
    await imp.close();
    assertEquals(await slots(c), before);
  });

  await t.step("a cancelled capture moves no slot and leaves no pg_receivewal", async () => {
    const before = await slots(c);
    const runtime = new Runtime();
    const imp = await createWalImporter(params("postgres+wal", config(c)), runtime);
    const stop = new AbortController();
    await assertRejects(async () => {
      for await (const _ of imp.entries(stop.signal)) stop.abort();
    });
    await imp.close();
    assertEquals(runtime.children.live, 0);
    assertEquals(await slots(c), before);
  });

  await t.step("a second capture while one runs fails at once, saying why", async () => {
    const running = await createWalImporter(params("postgres+wal", config(c)));
    const it = running.entries(new AbortController().signal)[Symbol.asyncIterator]();
    await it.next(); // holds the chain's lock from here
    const second = await createWalImporter(params("postgres+wal", config(c)));
    const e = await assertRejects(async () => {
      for await (const _ of second.entries(new AbortController().signal)) { /* none */ }
    }, PluginError);
    assertMatch(e.message, /another capture of slot plakar_wal .* is running/);
    await second.close();
    await it.return?.(undefined);
    await running.close();
  });

  await t.step(
    "a dropped guard slot fails the next capture; the one after starts a new chain",
    async () => {
      await c.psql("SELECT pg_drop_replication_slot('plakar_wal')");
      const e = await assertRejects(() => capture(c), PluginError);
      assertEquals(e.kind, "data-loss");
      assertMatch(e.message, /slot plakar_wal was dropped.*take a new base backup/);
      assertEquals(Object.keys(await slots(c)), ["plakar_wal"]);
      const next = await capture(c);
      assertEquals(next.manifest.chain_start, true);
      assertEquals(Object.keys(await slots(c)).sort(), ["plakar_wal", "plakar_wal_pending"]);
    },
  );

  await t.step(
    "a capture warns, with figures, when the slots keep more than warn_retained_wal",
    async () => {
      await writeSome(c, 30000);
      await capture(c); // the guard stays behind this one's start
      const { lines } = await capturingStderr(() => capture(c, { warn_retained_wal: "1MB" }));
      assert(
        lines.some((l) =>
          /slot plakar_wal keeps [0-9]+ MiB of WAL on .* \(warn_retained_wal: 1 MiB; max_slot_wal_keep_size: -1\)/
            .test(l)
        ),
        lines.join("\n"),
      );
    },
  );

  await t.step(
    "a slot invalidated by max_slot_wal_keep_size fails the next capture and its Ping",
    async () => {
      await c.psql("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
      await c.psql("SELECT pg_reload_conf()");
      for (let i = 0; i < 3; i++) {
        await writeSome(c, 20000);
        await c.psql("SELECT pg_switch_wal()");
      }
      await c.psql("CHECKPOINT");
      const [{ wal_status }] = await c.query<{ wal_status: string }>(
        "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'plakar_wal'",
      );
      assertEquals(wal_status, "lost");
      const imp = await createWalImporter(params("postgres+wal", config(c)));
      const p = await assertRejects(() => imp.ping(new AbortController().signal), PluginError);
      assertMatch(p.message, /invalidated.*max_slot_wal_keep_size/);
      await imp.close();
      const e = await assertRejects(() => capture(c), PluginError);
      assertMatch(
        e.message,
        /^slot plakar_wal was invalidated and the server removed WAL the chain needed \(max_slot_wal_keep_size was reached.*take a new base backup/,
      );
      assert(!e.message.includes("\n"));
      await c.psql("ALTER SYSTEM RESET max_slot_wal_keep_size");
      await c.psql("SELECT pg_reload_conf()");
    },
  );
});

Deno.test("postgres+wal: captures follow a promotion, and a recovery goes through the switch", async () => {
  await using primary = await Cluster.start({ password: SECRET });
  await using standby = await Cluster.start({ standbyOf: primary });
  await writeSome(primary);
  await waitReplayed(primary, standby);
  const archive = await Deno.makeTempDir({ prefix: "plakar-pg-wal-archive-" });
  const restored = await Deno.makeTempDir({ prefix: "plakar-pg-wal-recovered-" });
  try {
    const keep = async () => {
      const { files } = await capture(standby);
      for (const [path, bytes] of files) {
        if (path.startsWith("/wal/")) await Deno.writeFile(`${archive}/${path.slice(5)}`, bytes);
      }
      return files;
    };
    await keep(); // the chain starts on the standby
    const base = `${restored}/pgdata`;
    await runAs(
      `${APT_BIN}/pg_basebackup`,
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(standby.port),
        "-U",
        "postgres",
        "-D",
        base,
        "-X",
        "fetch",
        "-c",
        "fast",
      ],
      { PGPASSWORD: SECRET },
      false,
    );
    await writeSome(primary);
    await waitReplayed(primary, standby);
    await keep();
    await runAs(`${standby.binDir}/pg_ctl`, ["-D", standby.dataDir, "-w", "promote"], standby.env);
    await standby.psql("CREATE TABLE after_promotion AS SELECT 42 AS answer");
    const files = await keep();
    assert(files.has("/wal/00000002.history"), [...files.keys()].join(" "));
    const manifest = JSON.parse(new TextDecoder().decode(files.get("/manifest.json")!));
    assertEquals([manifest.start_timeline, manifest.end_timeline], [1, 2]);
    // Recover the base backup to the latest capture, through the switch.
    await Deno.remove(`${base}/standby.signal`).catch(() => {});
    await Deno.writeTextFile(
      `${base}/postgresql.auto.conf`,
      [
        "primary_conninfo = ''",
        `restore_command = 'cp ${archive}/%f %p 2>/dev/null || cp ${archive}/%f.partial %p'`,
        "recovery_target_action = 'promote'",
        "",
      ].join("\n"),
      { append: true },
    );
    await Deno.writeTextFile(`${base}/recovery.signal`, "");
    await runAs("chown", ["-R", "postgres:postgres", restored, archive], {}, false);
    await Deno.chmod(base, 0o700);
    const port = standby.port + 1000;
    const start = await runAs(`${APT_BIN}/pg_ctl`, [
      "-D",
      base,
      "-o",
      `-p ${port} -c unix_socket_directories=${restored}`,
      "-l",
      `${restored}/log`,
      "-w",
      "-t",
      "120",
      "start",
    ]);
    assert(start.ok, start.out + await Deno.readTextFile(`${restored}/log`).catch(() => ""));
    try {
      const server = { host: "127.0.0.1", port, user: "postgres", password: SECRET };
      // pg_ctl -w returns once read-only connections are taken: recovery may still run.
      for (let i = 0; i < 600; i++) {
        const [{ r }] = await queryServer<{ r: boolean }>(
          server,
          "SELECT pg_is_in_recovery() AS r",
          "postgres",
        );
        if (!r) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      const [{ answer }] = await queryServer<{ answer: number }>(
        server,
        "SELECT answer FROM after_promotion",
        "postgres",
      );
      assertEquals(answer, 42, "written on the new timeline, after the switch");
      const [{ n }] = await queryServer<{ n: string }>(
        server,
        "SELECT count(*)::text AS n FROM w",
        "postgres",
      );
      assertEquals(n, "4000");
    } finally {
      await runAs(`${APT_BIN}/pg_ctl`, ["-D", base, "-m", "immediate", "-w", "stop"]);
    }
  } finally {
    await Deno.remove(archive, { recursive: true }).catch(() => {});
    await Deno.remove(restored, { recursive: true }).catch(() => {});
  }
});

/** Waits until the standby has replayed what the primary wrote so far. */
async function waitReplayed(primary: Cluster, standby: Cluster): Promise<void> {
  const [{ lsn }] = await primary.query<{ lsn: string }>(
    "SELECT pg_current_wal_flush_lsn()::text AS lsn",
  );
  for (let i = 0; i < 200; i++) {
    const [{ done }] = await standby.query<{ done: boolean }>(
      `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AS done`,
    );
    if (done) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the standby did not catch up");
}
