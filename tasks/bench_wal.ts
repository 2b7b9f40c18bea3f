// WAL capture (postgres+wal://), part of `deno task bench` (section 9) or
// alone (`deno run -A tasks/bench_wal.ts`): a range of WAL written by pgbench
// and bulk inserts, received by bare `pg_receivewal --endpos` into a
// directory, stored from that directory by plakar's own ingest (`plakar
// backup DIR`), and captured end to end by `plakar backup postgres+wal://`. Each round
// captures the same range again (the chain's guard stays until a second
// capture ends, and every capture starts from it), so the three see the same
// WAL. Best of N alternating rounds.
//
// Environment: BENCH_ROUNDS (3), BENCH_WAL_MB (WAL to write, 512).

import { Cluster } from "../harness/cluster.ts";
import { ok, PlakarUser } from "../harness/e2e.ts";
import { best, fmt, freshStore, say, seconds, sh } from "./bench_util.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
const MB = Number(Deno.env.get("BENCH_WAL_MB") ?? "512");
const BIN = "/usr/lib/postgresql/15/bin";

interface WalRounds {
  bare: number[];
  ingest: number[];
  ours: number[];
  mib: number;
}

export async function benchWal(): Promise<void> {
  say(`bench: WAL capture of about ${MB} MiB of WAL written by pgbench...`);
  await using c = await Cluster.start({ conf: ["max_wal_size = 4GB", "checkpoint_timeout = 1h"] });
  report(await walRounds(c));
}

async function walRounds(c: Cluster): Promise<WalRounds> {
  const hp = `-h 127.0.0.1 -p ${c.port} -U postgres`;
  const uri = `postgres+wal://postgres@127.0.0.1:${c.port}`;
  await using u = await PlakarUser.create();
  await using ingestUser = await PlakarUser.create();
  await sh(`${BIN}/pgbench ${hp} -i -s 10 -q postgres`);
  ok(await u.at("backup", "-no-progress", uri), "first capture"); // makes the guard
  const [{ start }] = await c.query<{ start: string }>(
    "SELECT restart_lsn::text AS start FROM pg_replication_slots WHERE slot_name = 'plakar_wal'",
  );
  await writeWal(c, hp, MB);
  const [{ end, mib }] = await c.query<{ end: string; mib: string }>(
    `SELECT pg_current_wal_flush_lsn()::text AS end,
            ((pg_current_wal_flush_lsn() - '${start}'::pg_lsn) / 1048576)::int::text AS mib`,
  );
  const dir = await Deno.makeTempDir({ prefix: "plakar-pg-bench-wal-" });
  const f: WalRounds = { bare: [], ingest: [], ours: [], mib: Number(mib) };
  try {
    for (let i = 0; i < ROUNDS; i++) {
      await Deno.remove(dir, { recursive: true });
      await Deno.mkdir(dir);
      const seed = (await c.query<{ f: string }>(
        `SELECT pg_walfile_name('${start}') AS f`,
      ))[0].f;
      await sh(`truncate -s 16M ${dir}/${seed}.partial`);
      f.bare.push(
        await seconds(() =>
          sh(`${BIN}/pg_receivewal ${hp} -w -D ${dir} --endpos=${end} --no-loop`)
        ),
      );
      await freshStore(ingestUser);
      f.ingest.push(
        await seconds(async () => ok(await ingestUser.at("backup", "-no-progress", dir), "ingest")),
      );
      await freshStore(u);
      await c.query("SELECT pg_drop_replication_slot('plakar_wal_pending')").catch(() => {});
      f.ours.push(
        await seconds(async () => ok(await u.at("backup", "-no-progress", uri), "capture")),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return f;
}

/**
 * Writes about `mb` MiB of WAL: pgbench's small transactions (their records
 * and full-page images), then bulk rows until the size is reached.
 */
async function writeWal(c: Cluster, hp: string, mb: number): Promise<void> {
  const written = async () =>
    Number(
      (await c.query<{ n: string }>(
        "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::text AS n",
      ))[0].n,
    );
  const from = await written();
  await sh(`${BIN}/pgbench ${hp} -n -c 2 -t 5000 postgres > /dev/null`);
  await c.psql("CREATE TABLE IF NOT EXISTS bulk (id bigint, v text)");
  while (await written() - from < mb * 1048576) {
    await c.psql(
      "INSERT INTO bulk SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 200000) g",
    );
  }
}

function report({ bare, ingest, ours, mib }: WalRounds): void {
  say("");
  say(`== WAL capture (postgres+wal://) of ${mib} MiB of WAL, best of ${ROUNDS}, alternating`);
  say(`bare pg_receivewal --endpos into a directory : ${fmt(best(bare))} s`);
  say(`plakar backup DIR (plakar's own ingest)      : ${fmt(best(ingest))} s`);
  say(`plakar backup postgres+wal:// (ours)         : ${fmt(best(ours))} s`);
  say(
    `ours / (bare receive + plakar's ingest)      : ${
      fmt(best(ours) / (best(bare) + best(ingest)))
    } (below 1: the capture stores while it receives)`,
  );
}

if (import.meta.main) await benchWal();
