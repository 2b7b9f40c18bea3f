// manifest.json from real catalogs: every relation kind and attribute on
// PostgreSQL 15, the same structure on majors 13-18, a hot standby, and a
// role that cannot read everything.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { buildManifest, type Manifest } from "../../src/pg/manifest.ts";
import type { Relation } from "../../src/pg/catalog.ts";
import type { ConnConfig } from "../../src/pg/conn.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";
import { importAll, params } from "../helpers/connectors.ts";
import { capturingStderr } from "../helpers/stderr.ts";

/** Archiving on, with a command that holds something secret-looking. */
const ARCHIVE = ["archive_mode = on", "archive_command = 'cp %p /secret/place/%f'"];

function conn(c: Cluster, user = c.superuser, password = c.password): ConnConfig {
  return {
    host: c.host,
    port: c.port,
    username: user,
    password,
    sslMode: "disable",
    connectTimeout: 10,
  };
}

/** Creates the fixture; `full` adds what needs contrib/tablespace support. */
async function fixture(c: Cluster): Promise<void> {
  const ts = `${c.dir}/ts1`;
  await Deno.mkdir(ts);
  if (Deno.uid() === 0) {
    await new Deno.Command("chown", { args: ["postgres:postgres", ts] }).output();
  }
  await c.psql(
    `CREATE ROLE grp NOLOGIN;
     CREATE ROLE owner1 LOGIN PASSWORD 'o1' CREATEDB CONNECTION LIMIT 7 VALID UNTIL '2099-12-31 00:00:00+00';
     CREATE ROLE repl REPLICATION LOGIN BYPASSRLS NOINHERIT;
     GRANT grp TO owner1;`,
  );
  await c.query(`CREATE TABLESPACE ts1 OWNER owner1 LOCATION '${ts}' WITH (seq_page_cost = 1.5)`);
  await c.query("CREATE DATABASE shop OWNER owner1 CONNECTION LIMIT 20");
  await c.psql(
    `CREATE EXTENSION file_fdw;
     CREATE EXTENSION citext;
     CREATE SCHEMA inv AUTHORIZATION owner1;
     CREATE TABLE inv.items (id int PRIMARY KEY, sku citext UNIQUE, qty int CHECK (qty >= 0),
                             note text DEFAULT 'none') WITH (fillfactor = 70);
     CREATE TABLE inv.moves (id bigserial, item int NOT NULL REFERENCES inv.items(id),
                             at date NOT NULL) PARTITION BY RANGE (at);
     CREATE TABLE inv.moves_2024 PARTITION OF inv.moves FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
     CREATE TABLE inv.moves_2025 PARTITION OF inv.moves FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
     CREATE UNLOGGED TABLE inv.cache (k text, v text) TABLESPACE ts1;
     CREATE INDEX cache_partial ON inv.cache (k) WHERE v IS NOT NULL;
     CREATE VIEW inv.stock AS SELECT sku, qty FROM inv.items;
     CREATE MATERIALIZED VIEW inv.stock_mv AS SELECT sku, qty FROM inv.items;
     CREATE SEQUENCE inv.counter;
     CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
     CREATE FOREIGN TABLE inv.ext (a int, b text) SERVER files OPTIONS (filename '/dev/null');
     ALTER TABLE inv.items ENABLE ROW LEVEL SECURITY;
     ALTER TABLE inv.items FORCE ROW LEVEL SECURITY;
     CREATE FUNCTION inv.touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
     CREATE TRIGGER items_touch BEFORE UPDATE ON inv.items FOR EACH ROW EXECUTE FUNCTION inv.touch();
     INSERT INTO inv.items SELECT g, 'sku' || g, g, NULL FROM generate_series(1, 500) g;
     ANALYZE inv.items;
     ALTER TABLE inv.items OWNER TO owner1;`,
    "shop",
  );
  // Before PostgreSQL 15 statistics reach the views asynchronously.
  for (let i = 0; i < 100; i++) {
    const rows = await c.query(
      "SELECT 1 FROM pg_stat_user_tables WHERE relname = 'items' AND last_analyze IS NOT NULL",
      "shop",
    );
    if (rows.length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function rel(m: Manifest, db: string, schema: string, name: string): Relation {
  const d = m.databases!.find((x) => x.name === db)!;
  const r = d.relations!.find((x) => x.schema === schema && x.name === name);
  assert(r, `relation ${schema}.${name} missing`);
  return r;
}

function assertFixture(m: Manifest, major: number) {
  assertEquals(m.version, 2);
  assertEquals(
    m.server_version_num >= major * 10000 && m.server_version_num < (major + 1) * 10000,
    true,
  );
  assertMatch(m.cluster_system_identifier ?? "", /^\d{10,}$/);
  assertEquals(m.in_recovery, false);
  const cc = m.cluster_config!;
  assertEquals(cc.archive_command_set, true);
  assert(!JSON.stringify(m).includes("/secret/place"), "archive_command leaked");
  assertEquals(cc.wal_level, "replica");
  assertEquals(cc.max_connections, 40);
  assertEquals(cc.server_encoding, "UTF8");
  assertEquals(cc.block_size, 8192);
  assertEquals(cc.wal_block_size, 8192);
  assertEquals(cc.lc_collate, "C.UTF-8");
  assertEquals(typeof cc.data_checksums, "boolean");
  assert(cc.data_directory?.endsWith("/data"), cc.data_directory);

  const owner1 = m.roles!.find((r) => r.name === "owner1")!;
  assertEquals(
    [
      owner1.can_login,
      owner1.create_db,
      owner1.superuser,
      owner1.connection_limit,
      owner1.member_of,
    ],
    [true, true, false, 7, ["grp"]],
  );
  assertEquals(new Date(owner1.valid_until!).toISOString(), "2099-12-31T00:00:00.000Z");
  const repl = m.roles!.find((r) => r.name === "repl")!;
  assertEquals([repl.replication, repl.bypass_rls, repl.inherit], [true, true, false]);
  assertEquals(m.roles!.find((r) => r.name === "postgres")!.superuser, true);
  const ts = m.tablespaces!.find((t) => t.name === "ts1")!;
  assertEquals([ts.owner, ts.options], ["owner1", ["seq_page_cost=1.5"]]);
  assert(ts.location.endsWith("/ts1"));

  const shop = m.databases!.find((d) => d.name === "shop")!;
  assertEquals([
    shop.owner,
    shop.encoding,
    shop.connection_limit,
    shop.allow_conn,
    shop.is_template,
  ], [
    "owner1",
    "UTF8",
    20,
    true,
    false,
  ]);
  assertEquals(shop.collate, "C.UTF-8");
  assertEquals(shop.collation, "C.UTF-8");
  assertEquals(shop.ctype, "C.UTF-8");
  assertEquals(shop.extensions!.map((e) => e.name).sort(), ["citext", "file_fdw", "plpgsql"]);
  assertEquals(shop.extensions!.find((e) => e.name === "citext")!.schema, "public");
  assertEquals(shop.schemas!.find((s) => s.name === "inv")!.owner, "owner1");
  assert(!m.databases!.some((d) => d.name === "template1" || d.name === "template0"));

  const items = rel(m, "shop", "inv", "items");
  assertEquals(
    [items.kind, items.persistence, items.owner, items.has_primary_key, items.has_triggers],
    ["r", "p", "owner1", true, true],
  );
  assertEquals([items.rls_enabled, items.rls_forced, items.is_partition], [true, true, false]);
  assertEquals(items.row_estimate, 500);
  assertEquals(items.storage_options, ["fillfactor=70"]);
  assertEquals(items.column_count, 4);
  assertEquals(items.columns!.map((c) => [c.position, c.name, c.type, c.nullable]), [
    [1, "id", "integer", false],
    [2, "sku", "citext", true],
    [3, "qty", "integer", true],
    [4, "note", "text", true],
  ]);
  assertEquals(items.columns![3].default, "'none'::text");
  const contypes = Object.fromEntries(items.constraints!.map((c) => [c.type, c.columns]));
  assertEquals(contypes.p, ["id"]);
  assertEquals(contypes.u, ["sku"]);
  assertEquals(contypes.c, ["qty"]);
  const pk = items.indexes!.find((i) => i.is_primary)!;
  assertEquals([pk.method, pk.is_unique, pk.is_valid, pk.is_partial, pk.constraint_name], [
    "btree",
    true,
    true,
    false,
    "items_pkey",
  ]);
  assertMatch(pk.definition, /CREATE UNIQUE INDEX items_pkey ON inv\.items USING btree \(id\)/);
  assert(items.last_analyze !== null, "last_analyze missing after ANALYZE");

  const moves = rel(m, "shop", "inv", "moves");
  assertEquals([moves.kind, moves.partition_strategy], ["p", "range"]);
  assertEquals(rel(m, "shop", "inv", "moves").constraints!.find((c) => c.type === "f")!.columns, [
    "item",
  ]);
  const p24 = rel(m, "shop", "inv", "moves_2024");
  assertEquals([p24.kind, p24.is_partition, p24.partition_parent], ["r", true, "inv.moves"]);
  const cache = rel(m, "shop", "inv", "cache");
  assertEquals([cache.persistence, cache.tablespace], ["u", "ts1"]);
  assertEquals(cache.indexes!.find((i) => i.name === "cache_partial")!.is_partial, true);
  assertEquals(rel(m, "shop", "inv", "stock").kind, "v");
  assertEquals(rel(m, "shop", "inv", "stock_mv").kind, "m");
  assertEquals(rel(m, "shop", "inv", "counter").kind, "S");
  assertEquals(rel(m, "shop", "inv", "ext").kind, "f");
  assertEquals(rel(m, "shop", "inv", "moves_id_seq").kind, "S");
}

/** The statistics fields agree with pg_stat_all_tables, which they are read around. */
async function assertStatsMatchView(c: Cluster, m: Manifest) {
  const rows = await c.query<
    { nspname: string; relname: string; live: number; v: string; a: string }
  >(
    `SELECT n.nspname, c.relname, COALESCE(s.n_live_tup, 0)::float8 AS live,
            GREATEST(s.last_vacuum, s.last_autovacuum)::text AS v,
            GREATEST(s.last_analyze, s.last_autoanalyze)::text AS a
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
      WHERE n.nspname = 'inv'`,
    "shop",
  );
  const ms = (t: string | null) => (t === null ? null : new Date(t).getTime());
  for (const r of rows) {
    const got = m.databases!.find((d) => d.name === "shop")!.relations!
      .find((x) => x.schema === r.nspname && x.name === r.relname);
    if (!got) continue; // indexes
    assertEquals(
      [got.live_row_estimate, ms(got.last_vacuum), ms(got.last_analyze)],
      [Math.round(r.live), ms(r.v), ms(r.a)],
      `${r.relname}`,
    );
  }
}

async function manifestOf(
  c: Cluster,
  extra: { database?: string; user?: string; password?: string } = {},
) {
  const warnings: string[] = [];
  const m = await buildManifest({
    conn: conn(c, extra.user, extra.password ?? c.password),
    connector: "postgresql",
    database: extra.database,
    dumpFormat: "custom",
    options: { schema_only: false, data_only: false, compress: false },
    toolVersion: { pg_dump_version: "pg_dump (PostgreSQL) 15.x" },
    warn: (l) => warnings.push(l),
  });
  return { m, warnings };
}

Deno.test("manifest on PostgreSQL 15: every relation kind and attribute matches the catalog", async () => {
  await using c = await Cluster.start({ conf: ARCHIVE });
  await fixture(c);
  const { m, warnings } = await manifestOf(c);
  assertEquals(warnings, []);
  assertFixture(m, 15);
  await assertStatsMatchView(c, m);
  assertEquals(m.pg_dump_version, "pg_dump (PostgreSQL) 15.x");
  assertEquals(m.options, { schema_only: false, data_only: false, compress: false });
  // The counts agree with the catalog, queried independently.
  const [{ n }] = await c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r','p','f','m','v','S') AND n.nspname NOT IN ('pg_catalog','information_schema')
        AND n.nspname NOT LIKE 'pg_toast%'`,
    "shop",
  );
  assertEquals(m.databases!.find((d) => d.name === "shop")!.relations!.length, n);
});

for (const major of [13, 14, 16, 17, 18]) {
  Deno.test(`manifest on PostgreSQL ${major}: same fields, queries adapted to the catalog`, async () => {
    await using c = await Cluster.start({ major, conf: ARCHIVE });
    await fixture(c);
    const { m, warnings } = await manifestOf(c);
    assertEquals(warnings, []);
    assertFixture(m, major);
    await assertStatsMatchView(c, m);
  });
}

Deno.test("manifest from a hot standby says in_recovery", async () => {
  await using primary = await Cluster.start();
  await primary.query("CREATE DATABASE app");
  await using standby = await Cluster.start({ standbyOf: primary });
  const { m } = await manifestOf(standby);
  assertEquals(m.in_recovery, true);
  assertEquals(
    m.cluster_system_identifier,
    (await manifestOf(primary)).m.cluster_system_identifier,
  );
});

Deno.test("a role without access to some catalog data gets a manifest with fields left out, and a backup", async () => {
  await using c = await Cluster.start({ password: "pw", conf: ARCHIVE });
  await fixture(c);
  // As on managed services: no access to the control data.
  await c.query("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC", "shop");
  const { m, warnings } = await manifestOf(c, { database: "shop", user: "owner1", password: "o1" });
  assertEquals(m.cluster_system_identifier, undefined);
  assertEquals(m.cluster_config!.data_directory, undefined);
  assert(
    warnings.some((w) => /cluster_system_identifier left out: permission denied/.test(w)),
    warnings.join("\n"),
  );
  assert(warnings.every((w) => !w.includes("\n")));
  assertEquals(m.databases!.map((d) => d.name), ["shop"]);
  // owner1 owns shop's objects except the foreign-table server's: the backup runs.
  await c.psql(
    "ALTER FOREIGN TABLE inv.ext OWNER TO owner1; ALTER MATERIALIZED VIEW inv.stock_mv OWNER TO owner1; ALTER VIEW inv.stock OWNER TO owner1; ALTER TABLE inv.moves OWNER TO owner1; ALTER TABLE inv.cache OWNER TO owner1; ALTER SEQUENCE inv.counter OWNER TO owner1; ALTER TABLE inv.moves_2024 OWNER TO owner1; ALTER TABLE inv.moves_2025 OWNER TO owner1; ALTER TABLE inv.items NO FORCE ROW LEVEL SECURITY;",
    "shop",
  );
  const imp = await createLogicalImporter(
    params("postgres", { location: `postgres://owner1@127.0.0.1:${c.port}/shop`, password: "o1" }),
  );
  const { files, errors } = await importAll(imp);
  await imp.close();
  assertEquals(errors.size, 0, [...errors.values()].join());
  const manifest = JSON.parse(new TextDecoder().decode(files.get("/manifest.json")));
  assertEquals(manifest.cluster_system_identifier, undefined);
  assert(files.get("/00001-shop.dump")!.length > 1000);
});

/** Runs `fn` with console.error captured (the importer's warnings); returns the lines. */
Deno.test("a full backup lists the databases it skips in the manifest, and warns once about those that do not allow connections (not template0)", async () => {
  await using c = await Cluster.start();
  for (const db of ["closed_a", "closed_b", "kept", "skipme"]) {
    await c.query(`CREATE DATABASE ${db}`);
  }
  await c.query("ALTER DATABASE closed_a ALLOW_CONNECTIONS false");
  await c.query("ALTER DATABASE closed_b ALLOW_CONNECTIONS false");
  const { value: { files, errors }, lines } = await capturingStderr(async () => {
    const imp = await createLogicalImporter(
      params("postgres", {
        location: `postgres://postgres@127.0.0.1:${c.port}/`,
        // closed_b is both: the user's exclusion is the reason given.
        exclude_databases: "skipme,closed_b",
      }),
    );
    try {
      return await importAll(imp);
    } finally {
      await imp.close();
    }
  });
  assertEquals(errors.size, 0, [...errors.values()].join());
  assertEquals([...files.keys()].filter((p) => p.endsWith(".dump")), [
    "/00001-kept.dump",
    "/00002-postgres.dump",
    "/00003-template1.dump",
  ]);
  const closed = lines.filter((l) => l.includes("datallowconn"));
  assertEquals(closed.length, 1, lines.join("\n"));
  assertMatch(closed[0], /^postgresql: warning: .*"closed_a"/);
  assert(!/closed_b|template0|skipme/.test(closed[0]), closed[0]);
  const m = JSON.parse(new TextDecoder().decode(files.get("/manifest.json")));
  assertEquals(m.skipped_databases, [
    { name: "closed_a", reason: "datallowconn=false" },
    { name: "closed_b", reason: "excluded" },
    { name: "skipme", reason: "excluded" },
    { name: "template0", reason: "datallowconn=false" },
  ]);
  // The reference integration's fields are still there, unchanged.
  assertEquals(m.version, 2);
  assertEquals(m.databases.map((d: { name: string }) => d.name), ["kept", "postgres"]);
});

Deno.test("a single-database backup neither warns about nor lists the other databases", async () => {
  await using c = await Cluster.start();
  await c.query("CREATE DATABASE app");
  await c.query("CREATE DATABASE closed");
  await c.query("ALTER DATABASE closed ALLOW_CONNECTIONS false");
  const { value: { files }, lines } = await capturingStderr(async () => {
    const imp = await createLogicalImporter(
      params("postgres", { location: `postgres://postgres@127.0.0.1:${c.port}/app` }),
    );
    try {
      return await importAll(imp);
    } finally {
      await imp.close();
    }
  });
  assertEquals(lines.filter((l) => l.includes("datallowconn")), []);
  const m = JSON.parse(new TextDecoder().decode(files.get("/manifest.json")));
  assertEquals([m.database, m.skipped_databases], ["app", undefined]);
});

Deno.test("the manifest opens one catalog connection per database it details, even with sslmode=prefer on a server without TLS", async () => {
  await using c = await Cluster.start({ conf: ["log_connections = on"] });
  const dbs = ["d1", "d2", "d3", "d4", "d5", "d6"];
  for (const db of dbs) await c.query(`CREATE DATABASE ${db}`);
  const before = (await c.serverLog()).length;
  const m = await buildManifest({
    conn: { ...conn(c), sslMode: "prefer" },
    connector: "postgresql",
    dumpFormat: "custom",
    warn: (l) => {
      throw new Error(`unexpected warning: ${l}`);
    },
  });
  assertEquals(m.databases!.map((d) => d.name), [...dbs, "postgres"]);
  const log = (await c.serverLog()).slice(before);
  const received = log.match(/connection received:/g)?.length ?? 0;
  const authorized = [...log.matchAll(/connection authorized: user=\S+ database=(\S+)/g)]
    .map((x) => x[1]);
  // Every detailed database once, plus the cluster-wide connection to postgres.
  assertEquals(authorized.sort(), [...dbs, "postgres", "postgres"].sort());
  // Only the first connection may try TLS and start over in cleartext.
  assert(received - authorized.length <= 1, `${received} connections for ${authorized.length}`);
});
