// The physical importer on real clusters, without plakar: what Ping and the
// start of an import refuse, each naming what to change.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "../helpers/assert.ts";
import { params } from "../helpers/connectors.ts";
import { createPhysicalImporter } from "../../src/physical/importer.ts";
import { contentStream, type ImporterConnector } from "../../src/kloset/connector.ts";
import { parsePhysicalImportConfig } from "../../src/pg/config.ts";
import { holdWal } from "../../src/physical/wal_guard.ts";

const SECRET = "secret";

async function importer(
  c: Cluster,
  user = "postgres",
  password = SECRET,
  extra: Record<string, string> = {},
): Promise<ImporterConnector & AsyncDisposable> {
  const imp = await createPhysicalImporter(
    params("postgres+bin", {
      location: `postgres+bin://${user}:${password}@127.0.0.1:${c.port}`,
      ...extra,
    }),
  );
  return Object.assign(imp, { [Symbol.asyncDispose]: () => imp.close() });
}

const signal = new AbortController().signal;

/** The first entry an import yields, or its failure. */
async function firstEntry(imp: ImporterConnector): Promise<string> {
  for await (const e of imp.entries(signal)) return e.pathname;
  return "";
}

Deno.test("postgres+bin Init refuses a database path in the URI, allow_partial and logical options, saying why", async () => {
  const init = (config: Record<string, string>) =>
    assertRejects(() =>
      createPhysicalImporter(params("postgres+bin", { location: "postgres+bin://h", ...config }))
    );
  assertMatch(
    (await init({ location: "postgres+bin://h/app" })).message,
    /^location: postgres\+bin:\/\/ backs up the whole cluster: remove the database path from the URI$/,
  );
  assertMatch(
    (await init({ allow_partial: "true" })).message,
    /^allow_partial: not accepted by postgres\+bin:\/\//,
  );
  assertMatch((await init({ compress: "true" })).message, /^compress: unknown option/);
  assertMatch((await init({ port: "0" })).message, /^port: /);
});

Deno.test("postgres+bin Ping passes on a server ready for pg_basebackup", async () => {
  await using c = await Cluster.start({ password: SECRET });
  await using imp = await importer(c);
  await imp.ping(signal);
});

Deno.test("postgres+bin Ping on a wal_level=minimal server names wal_level", async () => {
  await using c = await Cluster.start({
    password: SECRET,
    conf: ["wal_level = minimal", "max_wal_senders = 0"],
  });
  await using imp = await importer(c);
  const e = await assertRejects(() => imp.ping(signal));
  assertMatch(e.message, /wal_level is minimal: set wal_level = replica/);
  assertMatch(e.message, /max_wal_senders/);
});

Deno.test("postgres+bin Ping with a user lacking REPLICATION names the attribute to grant", async () => {
  await using c = await Cluster.start({ password: SECRET });
  await c.query("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'");
  await using imp = await importer(c, "plain", "plain-pw");
  const e = await assertRejects(() => imp.ping(signal));
  assertMatch(
    e.message,
    /user "plain" lacks the REPLICATION attribute: ALTER ROLE plain REPLICATION/,
  );
});

Deno.test("postgres+bin Ping names pg_hba.conf when it refuses replication connections", async () => {
  await using c = await Cluster.start({ password: SECRET });
  const hba = `${c.dataDir}/pg_hba.conf`;
  const lines = (await Deno.readTextFile(hba)).split("\n");
  await Deno.writeTextFile(hba, lines.filter((l) => !/^\s*host\s+replication/.test(l)).join("\n"));
  await c.query("SELECT pg_reload_conf()");
  await using imp = await importer(c);
  const e = await assertRejects(() => imp.ping(signal));
  assertMatch(e.message, /replication connection refused: .*pg_hba\.conf/);
  assertMatch(e.message, /add a line such as "host replication/);
});

Deno.test("postgres+bin refuses a cluster with tablespaces in Ping and before the first record, naming them", async () => {
  await using c = await Cluster.start({ password: SECRET });
  const loc = `${c.dir}/ts_one`;
  await Deno.mkdir(loc);
  if (Deno.uid() === 0) {
    await new Deno.Command("chown", { args: ["postgres:postgres", loc] }).output();
  }
  await c.query(`CREATE TABLESPACE ts_one LOCATION '${loc}'`);
  await using imp = await importer(c);
  const e = await assertRejects(() => imp.ping(signal));
  assertMatch(e.message, /tablespaces outside the data directory \("ts_one"\).*logical backup/);
  const e2 = await assertRejects(() => firstEntry(imp));
  assertMatch(e2.message, /"ts_one".*logical backup \(postgres:\/\/\)/);
  assert(!e2.message.includes("\n"));
});

Deno.test("postgres+bin refuses a server newer than its pg_basebackup before copying", async () => {
  await using c = await Cluster.start({ major: 17, password: SECRET });
  await using imp = await importer(c);
  const e = await assertRejects(() => firstEntry(imp));
  assertMatch(
    e.message,
    /pg_basebackup \(PostgreSQL\) 15\.\d+.* cannot copy a PostgreSQL 17 server/,
  );
  assertMatch(e.message, /pg_bin_dir/);
});

Deno.test("postgres+bin yields the data directory's members at their own paths, then /manifest.json, last", async () => {
  await using c = await Cluster.start({ password: SECRET });
  await using imp = await importer(c);
  const paths: string[] = [];
  const dec = new TextDecoder();
  let manifest: Record<string, unknown> | undefined;
  for await (const e of imp.entries(signal)) {
    paths.push(e.pathname);
    if (e.pathname === "/manifest.json") {
      manifest = JSON.parse(
        dec.decode(await new Response(contentStream(await e.open!())).arrayBuffer()),
      );
    } else if (e.open) {
      // Every other member released unread: the tar stream must move on.
      await e.release?.();
    }
  }
  // Last: what the copy holds (standby.signal, primary_conninfo) is known only once read.
  assertEquals(paths.at(-1), "/manifest.json");
  for (const p of ["/PG_VERSION", "/backup_label", "/global/pg_control", "/backup_manifest"]) {
    assert(paths.includes(p), `${p} missing`);
  }
  assert(paths.every((p) => p.startsWith("/") && !p.includes("/./") && !p.endsWith("/")));
  assertEquals([manifest!.connector, manifest!.dump_format], ["postgresql+bin", "basebackup"]);
  assertEquals(
    [manifest!.in_recovery, manifest!.standby_signal, manifest!.primary_conninfo_has_password],
    [false, false, false],
  );
});

Deno.test("the WAL guard holds a temporary physical slot reserving WAL, dropped when released", async () => {
  await using c = await Cluster.start({ password: SECRET });
  const conn = parsePhysicalImportConfig({
    location: `postgres+bin://postgres:${SECRET}@127.0.0.1:${c.port}`,
  }).conn;
  const warnings: string[] = [];
  {
    await using guard = await holdWal(conn, (l) => warnings.push(l));
    assert(guard.slot !== undefined);
    const rows = await c.query<{ temporary: boolean; reserved: boolean }>(
      "SELECT temporary, restart_lsn IS NOT NULL AS reserved FROM pg_replication_slots WHERE slot_name = $1",
      "postgres",
      [guard.slot],
    );
    assertEquals(rows, [{ temporary: true, reserved: true }]);
  }
  assertEquals(warnings, []);
  // The backend drops its temporary slot as it exits, just after the session ends.
  let left: unknown[] = [];
  for (let i = 0; i < 40; i++) {
    left = await c.query("SELECT slot_name FROM pg_replication_slots");
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assertEquals(left, []);
});

Deno.test("the WAL guard warns and lets the backup run unprotected when no slot is free", async () => {
  await using c = await Cluster.start({ password: SECRET, conf: ["max_replication_slots = 0"] });
  const conn = parsePhysicalImportConfig({
    location: `postgres+bin://postgres:${SECRET}@127.0.0.1:${c.port}`,
  }).conn;
  const warnings: string[] = [];
  await using guard = await holdWal(conn, (l) => warnings.push(l));
  assertEquals(guard.slot, undefined);
  assertEquals(warnings.length, 1);
  assertMatch(warnings[0], /temporary replication slot .*max_replication_slots.*runs unprotected/);
});
