// Many small databases, end to end through plakar (part of `deno task bench`,
// or alone: `deno run -A tasks/bench_many.ts`). Here the cost is per
// database (a connection, catalog reads, one pg_dump each) rather than per
// byte: BENCH_DBS databases of two tables, three indexes, a foreign key and a
// few dozen rows each, backed up
//
// - by a bare `for db in …; do pg_dump -Fc -Z0 -d "$db" > /dev/null; done`
//   over every database that allows connections (what the importer dumps);
// - by `plakar backup postgres://…` of the whole cluster through our package
//   (and through the reference Go plugin when BENCH_GO_PTAR names its .ptar);
//
// and the manifest alone (buildManifest, which connects to every database).
// Best of N alternating rounds; every round is printed too, since the ratio
// is what means something on a shared machine.
//
// Environment: BENCH_DBS (300), BENCH_ROUNDS (3), BENCH_GO_PTAR (optional).

import { Cluster } from "../harness/cluster.ts";
import { ok, PlakarUser } from "../harness/e2e.ts";
import { best, fmt, freshStore, say, seconds, sh } from "./bench_util.ts";
import { buildManifest } from "../src/pg/manifest.ts";

const DBS = Number(Deno.env.get("BENCH_DBS") ?? "300");
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
const GO_PTAR = Deno.env.get("BENCH_GO_PTAR");
const BIN = "/usr/lib/postgresql/15/bin";

/** `count` small databases db001…, each with rows of its own, made by one psql session. */
async function populate(c: Cluster, count: number, dir: string): Promise<void> {
  const script: string[] = [];
  for (let i = 1; i <= count; i++) {
    const db = `db${String(i).padStart(3, "0")}`;
    script.push(
      `CREATE DATABASE ${db};`,
      `\\c ${db}`,
      `CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE INDEX customers_email ON customers (email);
CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customers (id),
                     total numeric(10, 2), at timestamptz DEFAULT now());
CREATE INDEX orders_customer ON orders (customer);
INSERT INTO customers SELECT g, 'customer ${i}-' || g, 'c' || g || '@${db}.example'
  FROM generate_series(1, 20) g;
INSERT INTO orders (customer, total) SELECT 1 + g % 20, (g * ${i}) % 1000 / 7.0
  FROM generate_series(1, 50) g;`,
      `\\c postgres`,
    );
  }
  const file = `${dir}/many.sql`;
  await Deno.writeTextFile(file, script.join("\n") + "\n");
  await sh(
    `${BIN}/psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p ${c.port} -U postgres -d postgres -f ${file}`,
  );
}

export async function benchMany(): Promise<void> {
  say(`bench: building ${DBS} small databases (PostgreSQL 15)...`);
  await using src = await Cluster.start();
  const dir = await Deno.makeTempDir({ prefix: "plakar-pg-bench-many-" });
  await using ours = await PlakarUser.create();
  const goUser = GO_PTAR ? await PlakarUser.create(GO_PTAR) : undefined;
  try {
    await populate(src, DBS, dir);
    const rounds = await manyRounds(src, ours, goUser);
    const [snap] = await ours.snapshots();
    const dumps = ok(await ours.at("ls", `${snap}:/`), "ls").stdout.split("\n")
      .filter((l) => l.trim().endsWith(".dump")).length;
    report(rounds, dumps);
  } finally {
    await goUser?.[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Section 6's timings, one per round. */
interface Many {
  bare: number[];
  manifest: number[];
  ourBackup: number[];
  goBackup: number[];
}

/** Rounds of the bare pg_dump loop, the manifest alone, and backups through ours (and Go). */
async function manyRounds(src: Cluster, ours: PlakarUser, goUser?: PlakarUser): Promise<Many> {
  const conn = `-h 127.0.0.1 -p ${src.port} -U postgres`;
  const loop = `for db in $(${BIN}/psql -X -At ${conn} -d postgres -c ` +
    `"SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1"); do ` +
    `${BIN}/pg_dump ${conn} -Fc -Z0 -d "$db" > /dev/null || exit 1; done`;
  const uri = `postgres://postgres@127.0.0.1:${src.port}/`;
  const backup = async (u: PlakarUser, what: string) => {
    await freshStore(u);
    return await seconds(async () => ok(await u.at("backup", "-no-progress", uri), what));
  };
  const t: Many = { bare: [], manifest: [], ourBackup: [], goBackup: [] };
  for (let i = 0; i < ROUNDS; i++) {
    t.bare.push(await seconds(() => sh(loop)));
    t.manifest.push(
      await seconds(() =>
        buildManifest({
          conn: {
            host: "127.0.0.1",
            port: src.port,
            username: "postgres",
            sslMode: "prefer",
            connectTimeout: 10,
          },
          connector: "postgresql",
          dumpFormat: "custom",
        })
      ),
    );
    t.ourBackup.push(await backup(ours, "backup"));
    if (goUser) t.goBackup.push(await backup(goUser, "go backup"));
  }
  return t;
}

function report({ bare, manifest, ourBackup, goBackup }: Many, dumps: number): void {
  say("");
  say(`== ${DBS} small databases, ${dumps} dumps (best of ${ROUNDS}, alternating)`);
  say(`bare pg_dump loop > /dev/null     : ${fmt(best(bare))} s`);
  say(`manifest alone (buildManifest)    : ${fmt(best(manifest))} s`);
  say(
    `plakar backup postgres:// (ours)  : ${fmt(best(ourBackup))} s  (${
      fmt(best(ourBackup) / best(bare))
    }x the bare loop; target <= 1.30)`,
  );
  if (goBackup.length) {
    say(
      `plakar backup postgres:// (Go)    : ${fmt(best(goBackup))} s  (${
        fmt(best(goBackup) / best(bare))
      }x the bare loop)`,
    );
    say(`ours / Go                         : ${fmt(best(ourBackup) / best(goBackup))}`);
  }
  const list = (xs: number[]) => xs.map((x) => fmt(x)).join(" ");
  say(
    `every round (s): bare ${list(bare)}; manifest ${list(manifest)}; ours ${list(ourBackup)}${
      goBackup.length ? `; Go ${list(goBackup)}` : ""
    }`,
  );
}

if (import.meta.main) await benchMany();
