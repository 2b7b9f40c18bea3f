// postgres:// end to end through the real plakar: our package installed with
// plakar pkg add, backups and restores run by plakar itself, results checked
// on real clusters.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import {
  AWKWARD_DB,
  makeAppDb,
  makeRoles,
  makeSource,
  snapshotDb,
} from "../../harness/fixtures.ts";
import { assertSameClusters } from "../helpers/same_clusters.ts";

const SECRET = "secret"; // the reference integration's documented examples use postgres:secret

/** `plakar destination rm mypgdst`, then `plakar destination add mypgdst URI key=value…`. */
async function replaceDestination(u: PlakarUser, uri: string, ...options: string[]) {
  ok(await u.run(["destination", "rm", "mypgdst"]), "dest rm");
  ok(await u.run(["destination", "add", "mypgdst", uri, ...options]), "dest add");
}

Deno.test("the logical examples of the reference integration's documentation work verbatim through plakar (host and port adapted)", async () => {
  await using src = await Cluster.start({ password: SECRET });
  await using dst = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  await makeRoles(src);
  await makeAppDb(src, "myapp");
  await makeRoles(dst);
  const hp = `127.0.0.1:${src.port}`;
  const dhp = `127.0.0.1:${dst.port}`;

  // Back up a single database
  ok(
    await u.run(["source", "add", "mypg", `postgres://postgres:secret@${hp}/myapp`]),
    "source add",
  );
  ok(await u.run(["at", u.store, "backup", "@mypg"]), "backup @mypg");
  const [single] = await u.snapshots();
  const listing = ok(await u.at("ls", `${single}:/`), "ls").stdout;
  for (const f of ["manifest.json", "00000-globals.sql", "00001-myapp.dump"]) {
    assert(listing.includes(f), `${f} missing from:\n${listing}`);
  }
  assert(!listing.includes("00002-"), "a single-database backup dumped more than one database");
  const manifest = JSON.parse(ok(await u.at("cat", `${single}:/manifest.json`), "cat").stdout);
  assertEquals(manifest.version, 2);
  assertEquals(manifest.database, "myapp");
  assertEquals(manifest.port, String(src.port));

  // Back up all databases (roles, tablespaces, and data)
  ok(await u.run(["source", "rm", "mypg"]), "source rm");
  ok(await u.run(["source", "add", "mypg", `postgres://postgres:secret@${hp}/`]), "source add");
  ok(await u.run(["at", u.store, "backup", "@mypg"]), "backup all");
  const [full] = await u.snapshots();
  assertMatch(ok(await u.at("ls", `${full}:/`), "ls").stdout, /00003-template1\.dump/);

  // Restore into an existing database (default — database must already exist)
  await dst.query("CREATE DATABASE myapp OWNER app_owner");
  ok(
    await u.run(["destination", "add", "mypgdst", `postgres://postgres:secret@${dhp}/myapp`]),
    "dest add",
  );
  ok(await u.run(["at", u.store, "restore", "-to", "@mypgdst", single]), "restore default");
  assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));

  // Restore, dropping objects first so stale objects do not linger (database must exist)
  await dst.psql("DELETE FROM sales.customers", "myapp");
  await replaceDestination(u, `postgres://postgres:secret@${dhp}/myapp`, "clean=true");
  ok(await u.run(["at", u.store, "restore", "-to", "@mypgdst", single]), "restore clean");
  assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));

  // Restore, dropping and recreating the database entirely
  await dst.psql("DELETE FROM sales.customers; CREATE TABLE leftover (x int);", "myapp");
  await replaceDestination(u, `postgres://postgres:secret@${dhp}/`, "recreate=true");
  ok(await u.run(["at", u.store, "restore", "-to", "@mypgdst", single]), "restore recreate");
  assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));

  // Restore a single database from a full backup
  await dst.query("DROP DATABASE myapp");
  await replaceDestination(
    u,
    `postgres://postgres:secret@${dhp}/`,
    "databases=myapp",
    "recreate=true",
  );
  ok(await u.run(["at", u.store, "restore", "-to", "@mypgdst", full]), "restore databases=");
  assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));

  // Restore, skipping owner assignment (e.g. roles differ on target)
  await using bare = await Cluster.start({ password: SECRET });
  await bare.query("CREATE DATABASE myapp");
  // GRANTs to the source's roles fail on this target
  await replaceDestination(
    u,
    `postgres://postgres:secret@127.0.0.1:${bare.port}/myapp`,
    "no_owner=true",
    "no_globals=true",
    "allow_partial=true",
  );
  ok(await u.run(["at", u.store, "restore", "-to", "@mypgdst", single]), "restore no_owner");
  assertEquals(
    await bare.query(
      "SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relname = 'customers'",
      "myapp",
    ),
    [{ o: "postgres" }],
  );
});

Deno.test("a full cluster (three databases, one awkwardly named, roles with passwords and grants) restores with recreate=true into an empty cluster", async () => {
  await using src = await Cluster.start({ password: SECRET });
  await using dst = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  const dbs = await makeSource(src);
  ok(await u.at("backup", `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/`), "backup");
  const [snap] = await u.snapshots();
  ok(await u.at("check", snap), "check");
  // The manifest read back through plakar describes the cluster.
  const m = JSON.parse(ok(await u.at("cat", `${snap}:/manifest.json`), "cat").stdout);
  assertEquals([m.version, m.connector, m.dump_format, m.in_recovery], [
    2,
    "postgresql",
    "custom",
    false,
  ]);
  assertMatch(m.pg_dump_version, /^pg_dump \(PostgreSQL\) 15\./);
  assertMatch(m.cluster_system_identifier, /^\d+$/);
  assertEquals(
    m.databases.map((d: { name: string }) => d.name).sort(),
    [...dbs, "postgres"].sort(),
  );
  const reader = m.roles.find((r: { name: string }) => r.name === "app_reader");
  assertEquals([reader.can_login, reader.connection_limit, reader.member_of], [true, 5, [
    "app_group",
  ]]);
  const app = m.databases.find((d: { name: string }) => d.name === "app");
  const customers = app.relations.find((r: { name: string }) => r.name === "customers");
  assertEquals([customers.schema, customers.owner, customers.has_primary_key], [
    "sales",
    "app_owner",
    true,
  ]);
  assertEquals(customers.columns.map((c: { name: string }) => c.name), ["id", "name", "note"]);
  assert(!JSON.stringify(m).includes(SECRET), "password in the manifest");
  const ls = ok(await u.at("ls", `${snap}:/`), "ls").stdout;
  assert(ls.includes(AWKWARD_DB.replace("/", "%2F").replace("%41", "%2541")), ls);
  ok(
    await u.at(
      "restore",
      "-o",
      "recreate=true",
      "-to",
      `postgres://postgres:${SECRET}@127.0.0.1:${dst.port}/`,
      snap,
    ),
    "restore",
  );
  await assertSameClusters(src, dst, dbs);
});

Deno.test("a backup of a PostgreSQL 14 server restores into a PostgreSQL 17 server", async () => {
  await using src = await Cluster.start({ major: 14 });
  await using dst = await Cluster.start({ major: 17 });
  await using u = await PlakarUser.create();
  const dbs = await makeSource(src);
  ok(await u.at("backup", `postgres://postgres@127.0.0.1:${src.port}/`), "backup from 14");
  const [snap] = await u.snapshots();
  ok(
    await u.at(
      "restore",
      "-o",
      "recreate=true",
      "-to",
      `postgres://postgres@127.0.0.1:${dst.port}/`,
      snap,
    ),
    "restore into 17",
  );
  assertMatch(String((await dst.query("SHOW server_version"))[0].server_version), /^17\./);
  // PostgreSQL 17 adds the MAINTAIN privilege (m) to an owner's default rights.
  const norm = (x: unknown) => JSON.parse(JSON.stringify(x).replaceAll("=arwdDxtm/", "=arwdDxt/"));
  for (const db of dbs) {
    assertEquals(norm(await snapshotDb(dst, db)), norm(await snapshotDb(src, db)));
  }
});

Deno.test("pg_dump refuses a PostgreSQL 17 server: the backup fails with the version mismatch said clearly", async () => {
  await using src = await Cluster.start({ major: 17 });
  await using u = await PlakarUser.create();
  const r = await u.at("backup", `postgres://postgres@127.0.0.1:${src.port}/postgres`);
  assert(r.code !== 0, "backup of a newer server succeeded");
  assertMatch(r.stderr, /cannot dump a PostgreSQL 17 server.*pg_bin_dir/);
  assertEquals(await u.snapshots(), []);
});

async function bigSource(): Promise<Cluster> {
  const src = await Cluster.start({ password: SECRET });
  await makeRoles(src);
  await makeAppDb(src, "big", "app_owner", 10);
  await src.psql(
    "INSERT INTO public.items (label, payload) SELECT 'x', decode(repeat(md5(g::text), 64), 'hex') FROM generate_series(1, 400000) g",
    "big",
  );
  return src;
}

/** Stops the server as soon as pg_dump is streaming rows (COPY) from it. */
async function stopDuringDump(src: Cluster): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const rows = await src.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'plakar-postgresql' AND query LIKE 'COPY%'",
    ).catch(() => [{ n: 0 }]);
    if (rows[0].n > 0) {
      await src.stop("immediate");
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("pg_dump never started its COPY");
}

Deno.test("a pg_dump that fails mid-stream fails plakar backup: exit non-zero, the database named, no snapshot", async () => {
  await using src = await bigSource();
  await using u = await PlakarUser.create();
  const uri = `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/big`;
  const [r] = await Promise.all([u.at("backup", uri), stopDuringDump(src)]);
  assert(r.code !== 0, `plakar backup exited 0:\n${r.stdout}\n${r.stderr}`);
  assertMatch(r.stderr, /postgresql: error: .*pg_dump of database "big"/);
  assertEquals(await u.snapshots(), []);
});

Deno.test("with allow_partial=true a failed dump leaves a snapshot whose error summary names the file", async () => {
  await using src = await bigSource();
  await using u = await PlakarUser.create();
  const uri = `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/big`;
  const [r] = await Promise.all([
    u.at("backup", "-o", "allow_partial=true", uri),
    stopDuringDump(src),
  ]);
  assertMatch(r.stdout + r.stderr, /00001-big\.dump/);
  assertMatch(r.stdout + r.stderr, /completed with 1 error|errors?/);
  assertEquals((await u.snapshots()).length, 1);
});

Deno.test("snapshots made by hand per plakar's pg_dump guide restore through the exporter", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await using u = await PlakarUser.create();
  await makeRoles(src);
  await makeAppDb(src, "app");
  const tool = async (bin: string, args: string[]) => {
    const out = await new Deno.Command(`/usr/lib/postgresql/15/bin/${bin}`, {
      args: ["-h", src.host, "-p", String(src.port), "-U", "postgres", ...args],
      stdout: "piped",
    }).output();
    assert(out.success);
    return out.stdout;
  };
  // Piped into plakar backup stdin://, one snapshot per file.
  ok(
    await u.run(
      ["at", u.store, "backup", "stdin://globals.sql"],
      await tool("pg_dumpall", ["--globals-only"]),
    ),
    "globals",
  );
  const [globalsSnap] = await u.snapshots();
  ok(
    await u.run(
      ["at", u.store, "backup", "stdin://app.dump"],
      await tool("pg_dump", ["-Fc", "app"]),
    ),
    "app",
  );
  const [appSnap] = await u.snapshots();
  const dsturi = `postgres://postgres@127.0.0.1:${dst.port}/`;
  ok(await u.at("restore", "-to", dsturi, globalsSnap), "restore globals");
  ok(await u.at("restore", "-o", "recreate=true", "-to", dsturi, appSnap), "restore app");
  await assertSameClusters(src, dst, ["app"]);

  // A directory of them, backed up with plakar's file importer.
  await using dst2 = await Cluster.start();
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/00000-globals.sql`, await tool("pg_dumpall", ["--globals-only"]));
  await Deno.writeFile(`${dir}/app.dump`, await tool("pg_dump", ["-Fc", "app"]));
  ok(await u.at("backup", dir), "backup dir");
  const [dirSnap] = await u.snapshots();
  ok(
    await u.at(
      "restore",
      "-o",
      "recreate=true",
      "-to",
      `postgres://postgres@127.0.0.1:${dst2.port}/`,
      `${dirSnap}:${dir}`,
    ),
    "restore dir",
  );
  await assertSameClusters(src, dst2, ["app"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("configuration errors are one line naming the option, shown by plakar backup and restore", async () => {
  await using u = await PlakarUser.create();
  const cases: [string[], RegExp][] = [
    [
      ["backup", "-o", "ssl_mode=maybe", "postgres://h/db"],
      /ssl_mode: invalid value "maybe" \(accepted: disable, allow, prefer, require, verify-ca, verify-full\)/,
    ],
    [
      ["backup", "-o", "schema_only=true", "-o", "data_only=true", "postgres://h/db"],
      /schema_only and data_only are mutually exclusive/,
    ],
    [
      ["backup", "-o", "compress=perhaps", "postgres://h/db"],
      /compress: invalid value "perhaps" \(accepted: true, false\)/,
    ],
    [["backup", "-o", "colour=blue", "postgres://h/db"], /colour: unknown option \(accepted: /],
    [
      ["backup", "postgres://h:99999/db"],
      /location: invalid port in the URI \(accepted: an integer from 1 to 65535/,
    ],
  ];
  for (const [args, re] of cases) {
    const r = await u.at(...args);
    assert(r.code !== 0, `${args.join(" ")} succeeded`);
    assertMatch(r.stdout + r.stderr, re);
  }
  // A restore needs a snapshot: make an empty one from a directory.
  const dir = await Deno.makeTempDir();
  ok(await u.at("backup", dir), "backup");
  const [snap] = await u.snapshots();
  const restoreCases: [string[], RegExp][] = [
    [["-o", "clean=true", "-o", "recreate=true"], /clean and recreate are mutually exclusive/],
    [["-o", "recreate=true", "-o", "database=x"], /database: not used with recreate=true/],
    [["-o", "exit_on_error=maybe"], /exit_on_error: invalid value "maybe"/],
  ];
  for (const [opts, re] of restoreCases) {
    const r = await u.at("restore", ...opts, "-to", "postgres://127.0.0.1:1/", snap);
    assert(r.code !== 0, `restore ${opts.join(" ")} succeeded`);
    assertMatch(r.stdout + r.stderr, re);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the password never appears in any process's argv, in plakar's output, or in the snapshot", async () => {
  const password = "Zq9-unique-Pa55word-7731";
  await using src = await Cluster.start({ password });
  await makeRoles(src);
  await makeAppDb(src, "big", "app_owner", 10);
  await src.psql(
    "INSERT INTO public.items (label, payload) SELECT 'x', decode(repeat(md5(g::text), 16), 'hex') FROM generate_series(1, 100000) g",
    "big",
  );
  await using u = await PlakarUser.create();
  let seenDump = false;
  const leaks: string[] = [];
  let running = true;
  const watcher = (async () => {
    while (running) {
      for await (const e of Deno.readDir("/proc")) {
        if (!/^\d+$/.test(e.name)) continue;
        const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
        if (cmd.includes("pg_dump")) seenDump = true;
        if (cmd.includes(password)) leaks.push(cmd.replaceAll("\0", " "));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const r = await u.at(
    "backup",
    "-o",
    `password=${password}`,
    `postgres://postgres@127.0.0.1:${src.port}/big`,
  );
  running = false;
  await watcher;
  ok(r, "backup");
  assert(seenDump, "never saw pg_dump running");
  // plakar's own argv holds what the user typed; no child of ours may.
  assertEquals(leaks.filter((c) => !c.includes("plakar") || c.includes("pg_")), []);
  assert(!r.stdout.includes(password) && !r.stderr.includes(password), "password in plakar output");
  const [snap] = await u.snapshots();
  for (const f of ["/manifest.json", "/00000-globals.sql", "/00001-big.dump"]) {
    const c = ok(await u.at("cat", `${snap}:${f}`), `cat ${f}`).stdout;
    assert(!c.includes(password), `password stored in ${f}`);
  }
  // A failing connection's message does not echo it either.
  const bad = await u.at(
    "backup",
    "-o",
    `password=${password}x`,
    `postgres://postgres@127.0.0.1:${src.port}/big`,
  );
  assert(bad.code !== 0);
  assert(!(bad.stdout + bad.stderr).includes(password), "password in an error message");
});

Deno.test("a restore that fails makes plakar restore exit non-zero and says which file", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await using u = await PlakarUser.create();
  await makeRoles(src);
  await makeAppDb(src, "app");
  ok(await u.at("backup", `postgres://postgres@127.0.0.1:${src.port}/app`), "backup");
  const [snap] = await u.snapshots();
  // The target database does not exist: the default mode cannot restore.
  const r = await u.at("restore", "-to", `postgres://postgres@127.0.0.1:${dst.port}/`, snap);
  assert(r.code !== 0, `plakar restore exited 0:\n${r.stdout}\n${r.stderr}`);
  assertMatch(r.stdout + r.stderr, /00001-app\.dump/);
  assertMatch(r.stderr, /database "app" does not exist/);
});

Deno.test("plakar source ping makes a real connection and shows the server's reason when it fails", async () => {
  await using src = await Cluster.start({ password: SECRET });
  await using u = await PlakarUser.create();
  await src.query("CREATE DATABASE app");
  ok(
    await u.run([
      "source",
      "add",
      "good",
      `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/app`,
    ]),
    "add",
  );
  ok(await u.run(["source", "ping", "good"]), "ping good");
  ok(
    await u.run(["source", "add", "badpw", `postgres://postgres:nope@127.0.0.1:${src.port}/app`]),
    "add",
  );
  const bad = await u.run(["source", "ping", "badpw"]);
  assert(bad.code !== 0, "ping with a wrong password succeeded");
  assertMatch(bad.stdout + bad.stderr, /password authentication failed for user "postgres"/);
  ok(
    await u.run([
      "source",
      "add",
      "nodb",
      `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/missing`,
    ]),
    "add",
  );
  const nodb = await u.run(["source", "ping", "nodb"]);
  assert(nodb.code !== 0, "ping of a missing database succeeded");
  assertMatch(nodb.stdout + nodb.stderr, /database "missing" does not exist/);
  ok(
    await u.run([
      "destination",
      "add",
      "dst",
      `postgres://postgres:${SECRET}@127.0.0.1:${src.port}/`,
    ]),
    "add",
  );
  ok(await u.run(["destination", "ping", "dst"]), "destination ping");
});
