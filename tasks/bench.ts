// `deno task bench`: throughput and memory against the bare tools, printed
// as ratios (not asserted: timings belong to a benchmark, not to tests).
//
// 1. dump:    bare `pg_dump -Fc -Z0 > /dev/null` vs the importer plugin
//             process serving the same dump over the protocol, read as fast
//             as possible (tasks/bench_reader, Go: a lean HTTP/2 reader for
//             the ratio, and plakar's own grpc-go client for reference; the
//             Deno test host when Go is missing); the plugin's peak RSS and
//             CPU seconds per GiB.
// 2. restore: bare `pg_restore` from a file vs the exporter plugin fed the
//             same file over the protocol.
// 3. end to end: `plakar backup postgres://…` through our package vs
//             `plakar backup` of the same dump already in a file (plakar's own
//             ingest), and the reference Go plugin when BENCH_GO_PTAR names
//             its .ptar; then `plakar restore -to postgres://…` of the dump
//             through each against bare pg_restore; best of N alternating
//             rounds.
// 4. and 5. (tasks/bench_parallel.ts): jobs=2 against the streamed restore
//             of an index-heavy database, and a 4-database backup with
//             max_parallel_dumps=1 and 4.
// 6. (tasks/bench_many.ts): BENCH_DBS small databases, a bare pg_dump loop
//             against `plakar backup postgres://` of the whole cluster.
// 7. (tasks/bench_physical.ts): bare pg_basebackup against the physical
//             importer read by the lean reader (ratio, peak RSS), and
//             `plakar backup postgres+bin://` through ours and the Go plugin.
// 8. (tasks/bench_restore.ts): `plakar restore -o recreate=true` of a table
//             with a primary key and a text index, through ours and the Go
//             plugin, against bare `pg_restore -C`, with each exporter's peak
//             RSS.
// 9. (tasks/bench_wal.ts): `plakar backup postgres+wal://` of a range of
//             pgbench's WAL against bare `pg_receivewal --endpos` into a
//             directory and plakar's own ingest of that directory.
//
// Environment: BENCH_MB (database size, default 1024), BENCH_ROUNDS (3),
// BENCH_GO_PTAR (optional path to the reference integration's package),
// BENCH_SECTIONS (the parts to run, e.g. "1-3,7"; sections 1 to 3 run together).

import { Cluster } from "../harness/cluster.ts";
import { ok, PlakarUser } from "../harness/e2e.ts";
import {
  goReader,
  type ProcessMeter,
  type ReaderFigures,
  serveDumpOverProtocol,
  serveDumpToGoReader,
  serveRestoreOverProtocol,
} from "./bench_protocol.ts";
import { best, fmt, freshStore, say, sh } from "./bench_util.ts";
import { benchParallel } from "./bench_parallel.ts";
import { benchMany } from "./bench_many.ts";
import { benchPhysical } from "./bench_physical.ts";
import { benchWal } from "./bench_wal.ts";
import { benchRestore } from "./bench_restore.ts";

const MB = Number(Deno.env.get("BENCH_MB") ?? "1024");
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
const GO_PTAR = Deno.env.get("BENCH_GO_PTAR");
const BIN = "/usr/lib/postgresql/15/bin";
const GiB = 1024 ** 3;

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

/** Fills `bench` with about `mb` MiB of mixed, partly compressible rows. */
async function populate(c: Cluster, mb: number): Promise<void> {
  await c.query("CREATE DATABASE bench");
  // ~1 KiB per row: text that compresses, bytes that do not.
  const rows = Math.ceil((mb * 1024 * 1024) / 1100);
  await c.psql(
    `CREATE TABLE t (id bigint PRIMARY KEY, label text, note text, blob bytea);
     INSERT INTO t SELECT g, 'row ' || g, repeat(md5(g::text), 16),
       decode(md5(g::text) || md5((g+1)::text) || md5((g+2)::text) || md5((g+3)::text) ||
              md5((g+4)::text) || md5((g+5)::text) || md5((g+6)::text) || md5((g+7)::text), 'hex')
       FROM generate_series(1, ${rows}) g;`,
    "bench",
  );
}

/** Restores the user's latest snapshot's dump into a new database `db`; seconds. */
async function restoreThrough(u: PlakarUser, c: Cluster, db: string): Promise<number> {
  await c.query(`DROP DATABASE IF EXISTS ${db}`);
  await c.query(`CREATE DATABASE ${db}`);
  const [snap] = await u.snapshots();
  return (await timed(async () =>
    ok(
      await u.at(
        "restore",
        "-to",
        `postgres://postgres@127.0.0.1:${c.port}/${db}`,
        `${snap}:/00001-bench.dump`,
      ),
      "restore",
    )
  )).seconds;
}

/** The database benched in sections 1 to 3 and its dump. */
interface Setup {
  src: Cluster;
  /** pg_dump and pg_restore's connection options for `src`. */
  conn: string;
  /** A temporary directory, removed at the end. */
  dir: string;
  dumpFile: string;
  /** The dump's size in bytes. */
  size: number;
}

async function main() {
  say(`bench: building a database of about ${MB} MiB (PostgreSQL 15)...`);
  await using src = await Cluster.start({ conf: ["shared_buffers = 256MB", "max_wal_size = 4GB"] });
  await populate(src, MB);
  const conn = `-h 127.0.0.1 -p ${src.port} -U postgres`;
  const dir = await Deno.makeTempDir({ prefix: "plakar-pg-bench-" });
  try {
    const dumpFile = `${dir}/bench.dump`;
    await sh(`${BIN}/pg_dump ${conn} -Fc -Z0 -f ${dumpFile} bench`);
    const size = (await Deno.stat(dumpFile)).size;
    say(`bench: dump size ${fmt(size / 1024 ** 2, 0)} MiB`);
    const setup: Setup = { src, conn, dir, dumpFile, size };
    await benchDump(setup);
    await benchProtocolRestore(setup);
    reportEndToEnd(await benchEndToEnd(setup));
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** 1. bare pg_dump against the importer plugin read over the protocol. */
async function benchDump({ src, conn, size }: Setup): Promise<void> {
  const reader = await goReader();
  if (!reader) say("bench: Go not found: the importer is read by the Deno test host instead");
  const bareDump: number[] = [];
  const pluginDump: number[] = [];
  const grpcDump: number[] = [];
  let figures: { peakRssBytes: number; cpuSeconds: number } | undefined;
  let grpcFigures: ReaderFigures | undefined;
  const uri = `postgres://postgres@127.0.0.1:${src.port}/bench`;
  for (let i = 0; i < ROUNDS; i++) {
    bareDump.push(
      (await timed(() => sh(`${BIN}/pg_dump ${conn} -Fc -Z0 bench > /dev/null`))).seconds,
    );
    if (reader) {
      const lean = await serveDumpToGoReader(reader, uri, true);
      pluginDump.push(lean.seconds);
      if (!figures || lean.seconds <= best(pluginDump)) figures = lean;
      grpcFigures = await serveDumpToGoReader(reader, uri, false);
      grpcDump.push(grpcFigures.seconds);
    } else {
      const r = await timed(() => serveDumpOverProtocol(uri));
      pluginDump.push(r.seconds);
      figures = r.value;
    }
  }
  const dumpRatio = best(bareDump) / best(pluginDump);
  say("");
  say("== dump (best of " + ROUNDS + ")");
  say(
    `bare pg_dump -Fc -Z0 > /dev/null : ${fmt(best(bareDump))} s  (${
      fmt(size / GiB / best(bareDump))
    } GiB/s)`,
  );
  say(
    `importer plugin over protocol    : ${fmt(best(pluginDump))} s  (${
      fmt(size / GiB / best(pluginDump))
    } GiB/s; ${reader ? "lean Go HTTP/2 reader" : "Deno test host"})`,
  );
  say(`throughput ratio (plugin / bare) : ${fmt(dumpRatio)}  (target >= 0.90)`);
  if (figures) {
    say(
      `plugin peak RSS                  : ${
        fmt(figures.peakRssBytes / 1024 ** 2, 0)
      } MiB  (target < 150)`,
    );
    say(`plugin CPU per GiB               : ${fmt(figures.cpuSeconds / (size / GiB))} s`);
  }
  if (grpcDump.length) {
    say(
      `read by plakar's grpc-go client  : ${fmt(best(grpcDump))} s  (ratio ${
        fmt(best(bareDump) / best(grpcDump))
      }; the client's own CPU is part of it)`,
    );
  }
}

/** 2. bare pg_restore from the file against the exporter plugin fed it over the protocol. */
async function benchProtocolRestore({ src, conn, dumpFile, size }: Setup): Promise<void> {
  const bareRestore: number[] = [];
  const pluginRestore: number[] = [];
  let rmeter: ProcessMeter | undefined;
  for (let i = 0; i < ROUNDS; i++) {
    await src.query("DROP DATABASE IF EXISTS r1");
    await src.query("CREATE DATABASE r1");
    bareRestore.push(
      (await timed(() => sh(`${BIN}/pg_restore ${conn} -d r1 < ${dumpFile}`))).seconds,
    );
    await src.query("DROP DATABASE IF EXISTS r2");
    await src.query("CREATE DATABASE r2");
    const r = await timed(() =>
      serveRestoreOverProtocol(
        `postgres://postgres@127.0.0.1:${src.port}/r2`,
        dumpFile,
        "/00001-r2.dump",
      )
    );
    pluginRestore.push(r.seconds);
    rmeter = r.value;
  }
  say("");
  say("== restore (best of " + ROUNDS + ")");
  say(`bare pg_restore < file           : ${fmt(best(bareRestore))} s`);
  say(`exporter plugin over protocol    : ${fmt(best(pluginRestore))} s`);
  say(`throughput ratio (plugin / bare) : ${fmt(best(bareRestore) / best(pluginRestore))}`);
  if (rmeter) {
    say(`plugin peak RSS                  : ${fmt(rmeter.peakRssBytes / 1024 ** 2, 0)} MiB`);
    say(`plugin CPU per GiB               : ${fmt(rmeter.cpuSeconds / (size / GiB))} s`);
  }
}

/** Section 3's timings, in seconds per round. */
interface EndToEnd {
  fileIngest: number[];
  ourE2e: number[];
  goE2e: number[];
  ourRestore: number[];
  goRestore: number[];
  bareRestoreE2e: number[];
}

/**
 * 3. end to end through plakar: backups of the database through ours (and
 * the Go plugin), of the dump file, and restores, in alternating rounds. The
 * dump file moves into a directory of its own for plakar to back up.
 */
async function benchEndToEnd({ src, conn, dir, dumpFile }: Setup): Promise<EndToEnd> {
  await using ours = await PlakarUser.create();
  const ingestDir = `${dir}/ingest`;
  await Deno.mkdir(ingestDir);
  await Deno.rename(dumpFile, `${ingestDir}/00001-bench.dump`);
  const t: EndToEnd = {
    fileIngest: [],
    ourE2e: [],
    goE2e: [],
    ourRestore: [],
    goRestore: [],
    bareRestoreE2e: [],
  };
  const bareDumpFile = `${ingestDir}/00001-bench.dump`;
  const uri = `postgres://postgres@127.0.0.1:${src.port}/bench`;
  let goUser: PlakarUser | undefined;
  if (GO_PTAR) {
    goUser = await PlakarUser.create(GO_PTAR);
  }
  try {
    for (let i = 0; i < ROUNDS; i++) {
      await freshStore(ours);
      t.fileIngest.push(
        (await timed(async () =>
          ok(await ours.at("backup", "-no-progress", ingestDir), "file backup")
        )).seconds,
      );
      await src.query("DROP DATABASE IF EXISTS r0");
      await src.query("CREATE DATABASE r0");
      t.bareRestoreE2e.push(
        (await timed(() => sh(`${BIN}/pg_restore ${conn} -d r0 < ${bareDumpFile}`))).seconds,
      );
      await freshStore(ours);
      t.ourE2e.push(
        (await timed(async () => ok(await ours.at("backup", "-no-progress", uri), "backup")))
          .seconds,
      );
      t.ourRestore.push(await restoreThrough(ours, src, "r1"));
      if (goUser) {
        await freshStore(goUser);
        t.goE2e.push(
          (await timed(async () =>
            ok(await goUser!.at("backup", "-no-progress", uri), "go backup")
          )).seconds,
        );
        t.goRestore.push(await restoreThrough(goUser, src, "r2"));
      }
    }
  } finally {
    await goUser?.[Symbol.asyncDispose]();
  }
  return t;
}

function reportEndToEnd(t: EndToEnd): void {
  say("");
  say("== end to end through plakar (best of " + ROUNDS + ", alternating)");
  say(`plakar backup of the dump file   : ${fmt(best(t.fileIngest))} s`);
  say(
    `plakar backup postgres:// (ours) : ${fmt(best(t.ourE2e))} s  (${
      fmt(best(t.ourE2e) / best(t.fileIngest))
    }x file ingest)`,
  );
  if (t.goE2e.length) {
    say(
      `plakar backup postgres:// (Go)   : ${fmt(best(t.goE2e))} s  (${
        fmt(best(t.goE2e) / best(t.fileIngest))
      }x file ingest)`,
    );
    say(
      `ours / Go                        : ${fmt(best(t.ourE2e) / best(t.goE2e))}  (target <= 1.00)`,
    );
  } else {
    say(
      "reference Go plugin not measured (set BENCH_GO_PTAR to its .ptar); target without it: <= 1.9x file ingest",
    );
  }
  say(`bare pg_restore < file (same rounds): ${fmt(best(t.bareRestoreE2e))} s`);
  say(`plakar restore -to postgres:// (ours): ${fmt(best(t.ourRestore))} s`);
  if (t.goRestore.length) {
    say(`plakar restore -to postgres:// (Go)  : ${fmt(best(t.goRestore))} s`);
  }
}

/** BENCH_SECTIONS: which parts to run, e.g. "1-3,7" (all by default). */
function wanted(part: number): boolean {
  const spec = Deno.env.get("BENCH_SECTIONS");
  if (!spec) return true;
  return spec.split(",").some((r) => {
    const [a, b] = r.split("-").map((x) => Number(x.trim()));
    return part >= a && part <= (b ?? a);
  });
}

if (import.meta.main) {
  // 1.-3. dump, restore and end to end (one database, one run).
  if ([1, 2, 3].some(wanted)) await main();
  // 4. jobs=2 against the streamed restore; 5. max_parallel_dumps=1 and 4.
  if (wanted(4) || wanted(5)) await benchParallel();
  // 6. many small databases.
  if (wanted(6)) await benchMany();
  // 7. physical backups.
  if (wanted(7)) await benchPhysical();
  // 8. restore with recreate=true, ours and Go against bare pg_restore -C.
  if (wanted(8)) await benchRestore();
  // 9. WAL capture against bare pg_receivewal and plakar's own ingest.
  if (wanted(9)) await benchWal();
}
