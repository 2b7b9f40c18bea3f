// The physical importer (postgres+bin://), part of `deno task bench` or alone
// (`deno run -A tasks/bench_physical.ts`): bare `pg_basebackup -D - -Ft -X
// fetch > /dev/null` against the plugin read by the lean Go reader (the
// plugin's own throughput and peak RSS), then `plakar backup postgres+bin://`
// end to end through this package and, when BENCH_GO_PTAR names its package,
// the reference Go plugin. Best of N alternating rounds.
//
// Environment: BENCH_ROUNDS (3), BENCH_PHYS_MB (cluster data, 512),
// BENCH_GO_PTAR (optional).

import { Cluster } from "../harness/cluster.ts";
import { ok, PlakarUser } from "../harness/e2e.ts";
import { best, fmt, freshStore, say, seconds, sh } from "./bench_util.ts";
import { goReader, type ReaderFigures, serveDumpToGoReader } from "./bench_protocol.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
const MB = Number(Deno.env.get("BENCH_PHYS_MB") ?? "512");
const GO_PTAR = Deno.env.get("BENCH_GO_PTAR");
const BIN = "/usr/lib/postgresql/15/bin";

/** Two databases of about `mb` MiB in all: tables with indexes, as a cluster really holds. */
async function populate(c: Cluster, mb: number): Promise<void> {
  const rows = Math.ceil((mb * 1024 * 1024) / 2 / 400);
  for (const db of ["shop", "crm"]) {
    await c.query(`CREATE DATABASE ${db}`);
    await c.psql(
      `CREATE TABLE orders (id bigint PRIMARY KEY, customer int, note text, placed timestamptz);
       INSERT INTO orders SELECT g, g % 5000, repeat(md5(g::text), 6),
         timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, ${rows}) g;
       CREATE INDEX orders_customer ON orders (customer);
       CREATE TABLE customers (id int PRIMARY KEY, name text);
       INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 5000) g;`,
      db,
    );
  }
  await c.query("CHECKPOINT");
}

export async function benchPhysical(): Promise<void> {
  say(`bench: physical backup of a cluster with about ${MB} MiB of data in two databases...`);
  await using c = await Cluster.start({ conf: ["shared_buffers = 128MB", "max_wal_size = 1GB"] });
  await populate(c, MB);
  report(await physicalRounds(c));
}

/** Section 7's figures, one per round. */
interface Physical {
  bare: number[];
  relay: number[];
  lean: ReaderFigures[];
  oursE2e: number[];
  goE2e: number[];
}

/**
 * Rounds of bare pg_basebackup (alone, and through two copying processes),
 * the plugin read by the lean reader, and plakar backups through ours and
 * the Go plugin.
 */
async function physicalRounds(c: Cluster): Promise<Physical> {
  const hp = `-h 127.0.0.1 -p ${c.port} -U postgres`;
  const uri = `postgres+bin://postgres@127.0.0.1:${c.port}`;
  const reader = await goReader();
  await using ours = await PlakarUser.create();
  const goUser = GO_PTAR ? await PlakarUser.create(GO_PTAR) : undefined;
  const f: Physical = { bare: [], relay: [], lean: [], oursE2e: [], goE2e: [] };
  const basebackup = `${BIN}/pg_basebackup ${hp} -w -D - -F tar -X fetch`;
  try {
    // Untimed: the runtime's first start after an install compiles and caches the
    // bundle, a one-time cost that would otherwise count in the first round.
    if (reader) {
      await serveDumpToGoReader(reader, uri, true, "postgresqlBinImporter", "postgres+bin");
    }
    for (let i = 0; i < ROUNDS; i++) {
      // The floor for any plugin on this machine: the same stream through two
      // processes that do nothing but copy it (a relay, then a reader).
      f.relay.push(await seconds(() => sh(`${basebackup} | cat | cat > /dev/null`)));
      f.bare.push(await seconds(() => sh(`${basebackup} > /dev/null`)));
      if (reader) {
        f.lean.push(
          await serveDumpToGoReader(reader, uri, true, "postgresqlBinImporter", "postgres+bin"),
        );
      }
      await freshStore(ours);
      f.oursE2e.push(
        await seconds(async () => ok(await ours.at("backup", "-no-progress", uri), "backup")),
      );
      if (goUser) {
        await freshStore(goUser);
        f.goE2e.push(
          await seconds(async () =>
            ok(await goUser.at("backup", "-no-progress", uri), "go backup")
          ),
        );
      }
    }
  } finally {
    await goUser?.[Symbol.asyncDispose]();
  }
  return f;
}

function report({ bare, relay, lean, oursE2e, goE2e }: Physical): void {
  say("");
  say(`== physical (postgres+bin://), best of ${ROUNDS}, alternating`);
  say(`bare pg_basebackup -Ft -X fetch > /dev/null : ${fmt(best(bare))} s`);
  say(
    `the same | cat | cat > /dev/null            : ${fmt(best(relay))} s (ratio ${
      fmt(best(bare) / best(relay))
    }: the most a relay and a reader can reach on this machine's ${navigator.hardwareConcurrency} CPUs)`,
  );
  if (lean.length) {
    const l = lean.reduce((a, b) => (a.seconds <= b.seconds ? a : b));
    const peak = Math.max(...lean.map((x) => x.peakRssBytes));
    say(
      `plugin read by the lean reader            : ${fmt(l.seconds)} s, ${
        fmt(l.bytes / 2 ** 20, 0)
      } MiB, throughput ratio ${fmt(best(bare) / l.seconds)} (target >= 0.90; ${
        fmt(best(relay) / l.seconds)
      } of the relay floor), peak RSS ${fmt(peak / 2 ** 20, 0)} MiB (target < 120)`,
    );
  } else say("lean reader not built (no Go): plugin throughput not measured");
  say(`plakar backup postgres+bin:// (ours)       : ${fmt(best(oursE2e))} s`);
  if (goE2e.length) {
    say(`plakar backup postgres+bin:// (Go)         : ${fmt(best(goE2e))} s`);
    say(
      `ours / Go                                  : ${
        fmt(best(oursE2e) / best(goE2e))
      } (target <= 1.00)`,
    );
  } else say("reference Go plugin not measured (set BENCH_GO_PTAR to its .ptar)");
}

if (import.meta.main) await benchPhysical();
