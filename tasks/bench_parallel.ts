// The parallel knobs, end to end through plakar (part of `deno task bench`,
// or alone: `deno run -A tasks/bench_parallel.ts`):
//
// 1. jobs=2 against the streamed restore: `plakar restore -o recreate=true`
//    of an index-heavy database (pg_restore builds indexes in parallel only
//    with -j, which needs the spooled file);
// 2. a 4-database cluster backed up with `plakar -concurrency 4`, with
//    max_parallel_dumps=1 and =4.
//
// Best of N alternating rounds. Environment: BENCH_ROUNDS (3),
// BENCH_INDEX_ROWS (rows of the index-heavy table, 1000000),
// BENCH_DB_MB (MiB per database of the 4-database cluster, 64).

import { Cluster } from "../harness/cluster.ts";
import { ok, PlakarUser } from "../harness/e2e.ts";
import { best, fmt, say, seconds } from "./bench_util.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
const INDEX_ROWS = Number(Deno.env.get("BENCH_INDEX_ROWS") ?? "1000000");
const DB_MB = Number(Deno.env.get("BENCH_DB_MB") ?? "64");

/** A table with a primary key and four secondary indexes: restore time is mostly index builds. */
async function indexHeavy(c: Cluster, rows: number): Promise<void> {
  await c.query("CREATE DATABASE idx");
  await c.psql(
    `CREATE TABLE t (id bigint PRIMARY KEY, a text, b text, c int, d timestamptz);
     INSERT INTO t SELECT g, md5(g::text), md5((g * 7)::text), g % 10000,
       timestamptz '2020-01-01' + g * interval '1 second' FROM generate_series(1, ${rows}) g;
     CREATE INDEX t_a ON t (a);
     CREATE INDEX t_b ON t (b);
     CREATE INDEX t_c_a ON t (c, a);
     CREATE INDEX t_d ON t (d);
     CREATE TABLE u (id bigint PRIMARY KEY, t_id bigint REFERENCES t, note text);
     INSERT INTO u SELECT g, g, md5(g::text) FROM generate_series(1, ${Math.floor(rows / 2)}) g;
     CREATE INDEX u_note ON u (note);`,
    "idx",
  );
}

export async function benchParallelRestore(): Promise<void> {
  say(`bench: index-heavy database (${INDEX_ROWS} rows, 5 secondary indexes, a foreign key)...`);
  await using c = await Cluster.start({ conf: ["shared_buffers = 256MB", "max_wal_size = 4GB"] });
  await indexHeavy(c, INDEX_ROWS);
  await using u = await PlakarUser.create();
  ok(await u.at("backup", "-no-progress", c.uri("idx")), "backup");
  const [snap] = await u.snapshots();
  const spoolDir = await Deno.makeTempDir({ prefix: "plakar-bench-spool-" });
  const [{ size }] = await c.query<{ size: string }>(
    "SELECT pg_size_pretty(pg_database_size('idx')) AS size",
  );
  const restore = (...extra: string[]) =>
    seconds(async () =>
      ok(
        await u.at(
          "restore",
          "-o",
          "recreate=true",
          ...extra.flatMap((o) => ["-o", o]),
          "-to",
          c.uri(),
          snap,
        ),
        "restore",
      )
    );
  const streamed: number[] = [];
  const parallel: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      streamed.push(await restore());
      parallel.push(await restore("jobs=2", `spool_dir=${spoolDir}`));
    }
  } finally {
    await Deno.remove(spoolDir, { recursive: true }).catch(() => {});
  }
  say("");
  say(`== parallel restore, recreate=true, database ${size} (best of ${ROUNDS}, alternating)`);
  say(`streamed (pg_restore < pipe)     : ${fmt(best(streamed))} s`);
  say(`jobs=2 (spooled, pg_restore -j 2) : ${fmt(best(parallel))} s`);
  say(`speed-up (streamed / jobs=2)     : ${fmt(best(streamed) / best(parallel))}x`);
}

export async function benchParallelDumps(): Promise<void> {
  say(`bench: 4-database cluster (${DB_MB} MiB each)...`);
  await using c = await Cluster.start({ conf: ["shared_buffers = 256MB", "max_wal_size = 4GB"] });
  const rows = Math.ceil((DB_MB * 1024 * 1024) / 300);
  for (const db of ["db1", "db2", "db3", "db4"]) {
    await c.query(`CREATE DATABASE ${db}`);
    await c.psql(
      `CREATE TABLE t AS SELECT g AS id, repeat(md5(g::text), 8) AS v FROM generate_series(1, ${rows}) g`,
      db,
    );
  }
  await using u = await PlakarUser.create();
  const figures = new Map<number, number[]>([[1, []], [4, []]]);
  for (const n of figures.keys()) {
    ok(await u.run(["source", "add", `pg${n}`, c.uri(), `max_parallel_dumps=${n}`]), "source");
  }
  for (let i = 0; i < ROUNDS; i++) {
    for (const [n, times] of figures) {
      await Deno.remove(u.store, { recursive: true }).catch(() => {});
      ok(await u.at("create", "-plaintext"), "create");
      times.push(
        await seconds(async () =>
          ok(
            await u.run(["-concurrency", "4", "at", u.store, "backup", "-no-progress", `@pg${n}`]),
            "backup",
          )
        ),
      );
    }
  }
  say("");
  say(`== 4-database backup, plakar -concurrency 4 (best of ${ROUNDS}, alternating)`);
  say(`max_parallel_dumps=1 : ${fmt(best(figures.get(1)!))} s`);
  say(`max_parallel_dumps=4 : ${fmt(best(figures.get(4)!))} s`);
  say(`ratio (1 / 4)        : ${fmt(best(figures.get(1)!) / best(figures.get(4)!))}`);
}

export async function benchParallel(): Promise<void> {
  await benchParallelRestore();
  await benchParallelDumps();
}

if (import.meta.main) await benchParallel();
