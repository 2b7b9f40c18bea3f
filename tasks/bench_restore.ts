// Restore through plakar the way a DBA runs it (part of `deno task bench`,
// section 8, or alone: `deno run -A tasks/bench_restore.ts`):
//
// `plakar restore -o recreate=true -to postgres://…` of one database's
// custom-format dump (a table with a primary key and a text index), through
// this package and through the reference Go plugin (BENCH_GO_PTAR), against
// bare `pg_restore -C` of the very same dump file, with the peak RSS of each
// exporter process. Best of N alternating rounds.
//
// Environment: BENCH_ROUNDS (3), BENCH_RESTORE_MB (table size, 374),
// BENCH_GO_PTAR (the reference integration's .ptar).

import { Cluster } from "../harness/cluster.ts";
import { ok, PlakarUser } from "../harness/e2e.ts";
import { best, fmt, say, seconds, sh } from "./bench_util.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
const MB = Number(Deno.env.get("BENCH_RESTORE_MB") ?? "374");
const GO_PTAR = Deno.env.get("BENCH_GO_PTAR");
const BIN = "/usr/lib/postgresql/15/bin";
const DB = "orders";

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Peak RSS (VmHWM) of every process whose command line names `needle`,
 * sampled every 20 ms while it lives; the largest one seen.
 */
export class PeakRss {
  #peak = 0;
  #timer: ReturnType<typeof setInterval>;

  constructor(readonly needle: string) {
    this.#timer = setInterval(() => this.#sample(), 20);
  }

  #sample(): void {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
        if (!cmd.includes(this.needle)) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${e.name}/status`));
        if (hwm) this.#peak = Math.max(this.#peak, Number(hwm[1]) * 1024);
      } catch { /* gone */ }
    }
  }

  /** Stops sampling; the peak in MiB. */
  stop(): number {
    this.#sample();
    clearInterval(this.#timer);
    return this.#peak / 1024 ** 2;
  }
}

/** One table of about `mb` MiB with a primary key and an index on text. */
async function populate(c: Cluster, mb: number): Promise<void> {
  await c.query(`CREATE DATABASE ${DB}`);
  const rows = Math.ceil((mb * 1024 * 1024) / 260);
  await c.psql(
    `CREATE TABLE orders (id bigint PRIMARY KEY, customer text, note text, placed timestamptz);
     INSERT INTO orders SELECT g, 'customer ' || (g % 50000), repeat(md5(g::text), 5),
       timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, ${rows}) g;
     CREATE INDEX orders_customer ON orders (customer);`,
    DB,
  );
}

interface Side {
  name: string;
  user: PlakarUser;
  snap: string;
  times: number[];
  rss: number[];
}

export async function benchRestore(): Promise<void> {
  say(`bench: restore with recreate=true of a ${MB} MiB table (primary key, text index)...`);
  await using c = await Cluster.start({ conf: ["shared_buffers = 256MB", "max_wal_size = 4GB"] });
  await populate(c, MB);
  const dir = await Deno.makeTempDir({ prefix: "plakar-bench-restore-" });
  const sides: Side[] = [];
  try {
    await backUpSides(c, sides);
    // The bare restore's file is made as the importer makes its dumps (-Fc -Z0).
    const file = `${dir}/${DB}.dump`;
    await sh(`${BIN}/pg_dump -h 127.0.0.1 -p ${c.port} -U postgres -Fc -Z0 -f ${file} ${DB}`);
    const size = (await Deno.stat(file)).size;
    const bare = await restoreRounds(c, sides, file);
    report(sides, bare, size);
  } finally {
    for (const s of sides) await s.user[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A snapshot of the database through ours (and the Go plugin), each added to `sides` once made. */
async function backUpSides(c: Cluster, sides: Side[]): Promise<void> {
  const users: [string, PlakarUser][] = [["ours", await PlakarUser.create()]];
  if (GO_PTAR) users.push(["Go", await PlakarUser.create(GO_PTAR)]);
  for (const [name, user] of users) {
    ok(await user.at("backup", "-no-progress", c.uri(DB)), `${name} backup`);
    const [snap] = await user.snapshots();
    sides.push({ name, user, snap, times: [], rss: [] });
  }
}

/**
 * Restores of each side and bare pg_restore -C of `file`: one warm-up each,
 * then ROUNDS rounds; the sides' figures go into them, the bare timings are
 * returned.
 */
async function restoreRounds(c: Cluster, sides: Side[], file: string): Promise<number[]> {
  const bare: number[] = [];
  const restoreBare = () =>
    seconds(async () => {
      await c.query(`DROP DATABASE IF EXISTS ${DB}`);
      await sh(`${BIN}/pg_restore -h 127.0.0.1 -p ${c.port} -U postgres -C -d postgres ${file}`);
    });
  const restoreThrough = async (s: Side) => {
    const meter = new PeakRss("postgresqlExporter");
    s.times.push(
      await seconds(async () =>
        ok(
          await s.user.at(
            "restore",
            "-o",
            "recreate=true",
            "-to",
            c.uri(),
            `${s.snap}:/00001-${DB}.dump`,
          ),
          `${s.name} restore`,
        )
      ),
    );
    s.rss.push(meter.stop());
  };
  // One warm-up restore each (the first run of a package writes Deno's code
  // cache), then rounds in a rotating order: what runs first in a round
  // inherits the checkpoint debt of the round before.
  for (const s of sides) await restoreThrough(s);
  for (const s of sides) s.times.length = s.rss.length = 0;
  const runs: (() => Promise<void>)[] = [
    async () => void bare.push(await restoreBare()),
    ...sides.map((s) => () => restoreThrough(s)),
  ];
  for (let i = 0; i < ROUNDS; i++) {
    for (let k = 0; k < runs.length; k++) await runs[(i + k) % runs.length]();
  }
  return bare;
}

function report(sides: Side[], bare: number[], size: number): void {
  say("");
  say(
    `== restore recreate=true through plakar, ${
      fmt(size / 1024 ** 2, 0)
    } MiB dump (best of ${ROUNDS}, alternating)`,
  );
  say(
    `bare pg_restore -C from a file   : ${fmt(best(bare))} s  (rounds: ${
      bare.map((t) => fmt(t)).join(", ")
    })`,
  );
  for (const s of sides) {
    say(
      `plakar restore (${s.name.padEnd(4)})           : ${fmt(best(s.times))} s  (${
        fmt(best(s.times) / best(bare))
      }x bare; rounds: ${s.times.map((t) => fmt(t)).join(", ")}), exporter peak RSS ${
        fmt(Math.max(...s.rss), 0)
      } MiB`,
    );
  }
  if (sides.length === 2) {
    say(
      `ours / Go                        : ${
        fmt(best(sides[0].times) / best(sides[1].times))
      } best, ${
        fmt(median(sides[0].times) / median(sides[1].times))
      } median  (target <= 1.00; ours peak RSS target < 120 MiB)`,
    );
  }
}

if (import.meta.main) await benchRestore();
