// The logical importer and exporter against real PostgreSQL 15 clusters,
import { Buffer } from "node:buffer";
// driven directly (the protocol layer has its own tests; plakar end to end
// is in tests/e2e).

import { Cluster } from "../../harness/cluster.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "../helpers/assert.ts";
import { importAll, params, restoreFiles } from "../helpers/connectors.ts";
import {
  AWKWARD_DB,
  canLogin,
  ident,
  makeAppDb,
  makeRoles,
  makeSource,
  snapshotDb,
} from "../../harness/fixtures.ts";
import { assertSameClusters } from "../helpers/same_clusters.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";
import { encodeDbName } from "../../src/pg/names.ts";
import { contentStream } from "../../src/kloset/connector.ts";

const PW = "Sup3r-secret!pw";

async function backup(config: Record<string, string>) {
  const imp = await createLogicalImporter(params("postgres", config));
  try {
    return await importAll(imp);
  } finally {
    await imp.close();
  }
}

const restore = restoreFiles;

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b ?? new Uint8Array());

Deno.test("a full backup restored with recreate=true into an empty cluster reproduces tables, roles and ownership", async () => {
  await using src = await Cluster.start({ password: PW });
  await using dst = await Cluster.start({ password: PW });
  const dbs = await makeSource(src);
  const { files, errors } = await backup({ location: src.uri() });
  assertEquals(errors.size, 0, [...errors.values()].join("\n"));
  const sortedDbs = ["app", "billing", "postgres", "template1", AWKWARD_DB].sort((a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b))
  );
  assertEquals([...files.keys()], [
    "/manifest.json",
    "/00000-globals.sql",
    ...sortedDbs.map((d, i) => `/${String(i + 1).padStart(5, "0")}-${encodeDbName(d)}.dump`),
  ]);
  assert(!text(files.get("/00000-globals.sql")).includes(PW), "password in globals as clear text");
  for (const [path, bytes] of files) {
    assert(!text(bytes).includes(PW), `clear-text password found in ${path}`);
  }

  const r = await restore({ location: dst.uri(), recreate: "true" }, files);
  assertEquals(r.errors.size, 0, [...r.errors.values()].join("\n"));
  assertEquals(r.finishError, undefined);
  await assertSameClusters(src, dst, dbs);
  assert(await canLogin(dst, "app_owner", "owner-pass-123"), "role password not restored");
});

Deno.test("a single database is chosen by the URI path or database=, and a missing one is a clear error", async () => {
  await using src = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  await makeAppDb(src, "other");
  const byPath = await backup({ location: src.uri("app") });
  assertEquals([...byPath.files.keys()], [
    "/manifest.json",
    "/00000-globals.sql",
    "/00001-app.dump",
  ]);
  const byOption = await backup({ location: src.uri(), database: "other" });
  assertEquals([...byOption.files.keys()], [
    "/manifest.json",
    "/00000-globals.sql",
    "/00001-other.dump",
  ]);

  const imp = await createLogicalImporter(
    params("postgres", { location: src.uri("nope") }),
  );
  const e = await assertRejects(() => importAll(imp));
  assertMatch(e.message, /database "nope" does not exist/);
  await imp.close();
});

Deno.test("exclude_databases skips databases in a full backup", async () => {
  await using src = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  await makeAppDb(src, "rdsadmin");
  const { files } = await backup({ location: src.uri(), exclude_databases: "rdsadmin, postgres" });
  assertEquals([...files.keys()], [
    "/manifest.json",
    "/00000-globals.sql",
    "/00001-app.dump",
    "/00002-template1.dump",
  ]);
});

Deno.test("dumps are uncompressed by default and compressed with compress=true", async () => {
  await using src = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app", "app_owner", 2000);
  const plain = (await backup({ location: src.uri("app") })).files.get("/00001-app.dump")!;
  const packed = (await backup({ location: src.uri("app"), compress: "true" })).files.get(
    "/00001-app.dump",
  )!;
  assertStringIncludes(text(plain), "customer 1999");
  assert(!text(packed).includes("customer 1999"), "compressed dump holds clear text");
  assert(packed.length < plain.length / 2, `compressed ${packed.length} vs ${plain.length}`);
});

Deno.test("schema_only restores no rows; data_only skips globals and restores rows into an existing schema", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  const schema = await backup({ location: src.uri("app"), schema_only: "true" });
  assertEquals(schema.errors.size, 0);
  await dst.query("CREATE DATABASE app");
  let r = await restore({ location: dst.uri(), no_owner: "true" }, schema.files);
  assertEquals(r.finishError, undefined);
  assertEquals(await dst.query("SELECT count(*)::int AS n FROM sales.customers", "app"), [{
    n: 0,
  }]);

  const data = await backup({ location: src.uri("app"), data_only: "true" });
  assertEquals([...data.files.keys()], ["/manifest.json", "/00001-app.dump"]);
  r = await restore({ location: dst.uri(), data_only: "true" }, data.files);
  assertEquals(r.finishError, undefined);
  assertEquals(await dst.query("SELECT count(*)::int AS n FROM sales.customers", "app"), [{
    n: 100,
  }]);
});

Deno.test("pg_bin_dir selects the tools; a wrong one is a clear error", async () => {
  await using src = await Cluster.start();
  const ok = await backup({
    location: src.uri("postgres"),
    pg_bin_dir: "/usr/lib/postgresql/15/bin",
  });
  assertEquals(ok.errors.size, 0);
  const imp = await createLogicalImporter(
    params("postgres", { location: src.uri("postgres"), pg_bin_dir: "/nonexistent/bin" }),
  );
  const e = await assertRejects(() => importAll(imp));
  assertMatch(e.message, /pg_dump.*not found.*pg_bin_dir/);
  await imp.close();
});

Deno.test("a scram server: the right password works, a wrong one fails ping with the server's reason", async () => {
  await using src = await Cluster.start({ password: PW });
  const good = await createLogicalImporter(
    params("postgres", { location: src.uri("postgres") }),
  );
  await good.ping(new AbortController().signal);
  await good.close();
  const bad = await createLogicalImporter(
    params("postgres", {
      location: `postgres://postgres@127.0.0.1:${src.port}/postgres`,
      password: "wrong",
    }),
  );
  const e = await assertRejects(() => bad.ping(new AbortController().signal));
  assertMatch(e.message, /password authentication failed for user "postgres"/);
  assert(!e.message.includes("wrong"), "password leaked into the error");
  await bad.close();
});

Deno.test("TLS: verify-full with a CA file or inline PEM, client certificates, and require against a cleartext server", async () => {
  await using tls = await Cluster.start({ password: PW, tls: true });
  await makeRoles(tls);
  await makeAppDb(tls, "app");
  const base = { location: tls.uri("app").replace("127.0.0.1", "localhost") };
  const viaFile = await backup({
    ...base,
    ssl_mode: "verify-full",
    ssl_root_cert: tls.tls!.caCert,
  });
  assertEquals(viaFile.errors.size, 0, [...viaFile.errors.values()].join());
  const viaInline = await backup({
    ...base,
    ssl_mode: "verify-ca",
    ssl_root_cert_data: await Deno.readTextFile(tls.tls!.caCert),
    ssl_cert_data: await Deno.readTextFile(tls.tls!.clientCert),
    ssl_key_data: await Deno.readTextFile(tls.tls!.clientKey),
  });
  assertEquals(viaInline.errors.size, 0, [...viaInline.errors.values()].join());
  assert(text(viaInline.files.get("/00001-app.dump")).includes("customer 99"));
  const sessions = await tls.query<{ ssl: boolean }>(
    "SELECT bool_and(ssl) AS ssl FROM pg_stat_ssl",
  );
  assertEquals(sessions[0].ssl, true);

  await using plain = await Cluster.start();
  const imp = await createLogicalImporter(
    params("postgres", { location: plain.uri("postgres"), ssl_mode: "require" }),
  );
  const e = await assertRejects(() => imp.ping(new AbortController().signal));
  assertMatch(e.message, /SSL|ssl/);
  await imp.close();
});

Deno.test("a role that cannot read pg_authid gets globals without role passwords and a warning", async () => {
  await using src = await Cluster.start({ password: PW });
  await makeRoles(src);
  await makeAppDb(src, "app");
  // The database owner can dump its own database but not read pg_authid.
  const { files, errors } = await backup({
    location: `postgres://app_owner@127.0.0.1:${src.port}/app`,
    password: "owner-pass-123",
  });
  assertEquals(errors.size, 0, [...errors.values()].join());
  const globals = text(files.get("/00000-globals.sql"));
  assertStringIncludes(globals, "CREATE ROLE app_owner");
  assert(!globals.includes("SCRAM-SHA-256$"), "role passwords present");
});

Deno.test("restore modes: default into an existing database, clean replaces the dump's objects, databases= filters, no_globals", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  await makeAppDb(src, "billing");
  const { files } = await backup({ location: src.uri() });

  // Default: the database must exist (here owned as on the source).
  await makeRoles(dst);
  await dst.query("CREATE DATABASE app OWNER app_owner");
  let r = await restore({ location: dst.uri(), databases: "app" }, files);
  assertEquals(r.finishError, undefined, [...r.errors.values()].join("\n"));
  assertEquals(await snapshotDb(dst, "app"), await snapshotDb(src, "app"));
  assertEquals((await dst.query("SELECT 1 FROM pg_database WHERE datname = 'billing'")).length, 0);

  // clean: the dump's objects are dropped and recreated, so changed rows come back.
  // (Objects that are not in the dump are left alone: recreate=true removes those.)
  await dst.psql(
    "DELETE FROM sales.customers WHERE id > 10; UPDATE public.items SET label = 'x';",
    "app",
  );
  r = await restore({
    location: dst.uri("app"),
    clean: "true",
    databases: "app",
    no_globals: "true",
  }, files);
  assertEquals(r.finishError, undefined, [...r.errors.values()].join("\n"));
  assertEquals(await snapshotDb(dst, "app"), await snapshotDb(src, "app"));

  // Default without clean onto existing objects fails and says so.
  r = await restore({ location: dst.uri(), databases: "app", no_globals: "true" }, files);
  assert(r.finishError !== undefined, "a restore with errors was reported as good");
  assertMatch(r.errors.get("/00001-app.dump") ?? "", /pg_restore .* exited with status 1/);
});

Deno.test("no_owner restores into a cluster lacking the source's roles; without it the restore fails", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  const { files } = await backup({ location: src.uri("app") });
  await dst.query("CREATE DATABASE app");
  const failed = await restore({ location: dst.uri(), no_globals: "true" }, files);
  assert(failed.finishError !== undefined);
  await dst.query("DROP DATABASE app");
  await dst.query("CREATE DATABASE app");
  const ok = await restore({ location: dst.uri(), no_globals: "true", no_owner: "true" }, files);
  // GRANTs to app_reader still fail without the role: pg_restore reports them.
  const owners = await dst.query<{ o: string }>(
    "SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relname = 'customers'",
    "app",
  );
  assertEquals(owners, [{ o: "postgres" }]);
  assertEquals(await dst.query("SELECT count(*)::int AS n FROM sales.customers", "app"), [{
    n: 100,
  }]);
  assert(ok.errors.size <= 1);
});

Deno.test("exit_on_error stops at the first error; globals restore into a populated cluster without errors", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  await makeRoles(dst); // the roles already exist on the target
  const { files } = await backup({ location: src.uri("app") });
  await dst.query("CREATE DATABASE app");
  await dst.psql("CREATE SCHEMA sales", "app"); // conflicts with the dump
  const r = await restore({ location: dst.uri(), exit_on_error: "true" }, files);
  assertEquals(r.errors.has("/00000-globals.sql"), false, r.errors.get("/00000-globals.sql"));
  assertMatch(r.errors.get("/00001-app.dump") ?? "", /already exists/);
  assertEquals(
    (await dst.query("SELECT 1 FROM pg_tables WHERE tablename = 'customers'", "app")).length,
    0,
    "pg_restore went on after the first error",
  );
});

Deno.test("a file named like a connection string restores into the database of that exact name", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  const dump = (await backup({ location: src.uri("app") })).files.get("/00001-app.dump")!;
  const evil = "host=evil dbname=x";
  await makeRoles(dst);
  await dst.query(`CREATE DATABASE ${ident(evil)}`);
  await dst.query(`CREATE DATABASE x`);
  const files = new Map([[`/00001-${evil}.dump`, dump]]);
  const r = await restore({ location: dst.uri(), no_owner: "true" }, files);
  assertEquals(r.finishError, undefined, [...r.errors.values()].join());
  assertEquals(await dst.query("SELECT count(*)::int AS n FROM sales.customers", evil), [{
    n: 100,
  }]);
  assertEquals(
    (await dst.query("SELECT 1 FROM pg_tables WHERE tablename = 'customers'", "x")).length,
    0,
  );
});

Deno.test("hand-made snapshots (globals.sql, <db>.dump, all.sql, plain <db>.sql) restore by content and name", async () => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "app");
  await makeAppDb(src, "shop");
  const tool = async (bin: string, args: string[]) => {
    const out = await new Deno.Command(`/usr/lib/postgresql/15/bin/${bin}`, {
      args: ["-h", src.host, "-p", String(src.port), "-U", "postgres", ...args],
      stdout: "piped",
    }).output();
    assert(out.success, `${bin} failed`);
    return out.stdout;
  };
  const files = new Map<string, Uint8Array>([
    ["/globals.sql", await tool("pg_dumpall", ["--globals-only"])],
    ["/app.dump", await tool("pg_dump", ["-Fc", "app"])],
    ["/shop.sql", await tool("pg_dump", ["shop"])],
  ]);
  // "/globals.sql" sorts after "/app.dump": restore it first (SNAP:/globals.sql), then the rest.
  const globals = new Map([["/globals.sql", files.get("/globals.sql")!]]);
  let r = await restore({ location: dst.uri() }, globals);
  assertEquals(r.finishError, undefined, [...r.errors.values()].join("\n"));
  await dst.query("CREATE DATABASE app OWNER app_owner");
  await dst.query("CREATE DATABASE shop OWNER app_owner");
  r = await restore({ location: dst.uri(), no_globals: "true" }, files);
  assertEquals(r.finishError, undefined, [...r.errors.values()].join("\n"));
  await assertSameClusters(src, dst, ["app", "shop"]);

  await using dst2 = await Cluster.start();
  const all = new Map([["/all.sql", await tool("pg_dumpall", [])]]);
  const r2 = await restore({ location: dst2.uri() }, all);
  assertEquals(r2.finishError, undefined, [...r2.errors.values()].join("\n"));
  await assertSameClusters(src, dst2, ["app", "shop"]);
});

Deno.test("a dump that fails mid-stream errors its stream with the database named", async () => {
  await using src = await Cluster.start();
  await makeRoles(src);
  await makeAppDb(src, "big", "app_owner", 10);
  await src.psql(
    "INSERT INTO public.items (label, payload) SELECT 'x', decode(repeat(md5(g::text), 64), 'hex') FROM generate_series(1, 300000) g",
    "big",
  );
  const imp = await createLogicalImporter(
    params("postgres", { location: src.uri("big") }),
  );
  let failure = "";
  for await (const entry of imp.entries(new AbortController().signal)) {
    if (!entry.pathname.endsWith(".dump")) continue;
    const reader = (contentStream(await entry.open!())).getReader();
    let read = 0;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        read += value.length;
        if (read > 1 << 20 && read - value.length <= 1 << 20) await src.stop("immediate");
      }
    } catch (e) {
      failure = (e as Error).message;
    }
  }
  await imp.close();
  assertMatch(failure, /pg_dump of database "big" exited with status 1/);
});

Deno.test("connect_timeout bounds how long a server that never answers can hold the ping", async () => {
  // A listener that accepts TCP connections but never speaks PostgreSQL.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (silent.addr as Deno.NetAddr).port;
  try {
    const imp = await createLogicalImporter(
      params("postgres", {
        location: `postgres://postgres@127.0.0.1:${port}/app`,
        connect_timeout: "1",
      }),
    );
    const t0 = performance.now();
    const e = await assertRejects(() => imp.ping(new AbortController().signal));
    const seconds = (performance.now() - t0) / 1000;
    assertMatch(
      e.message,
      /cannot connect to 127\.0\.0\.1:\d+ \(database "app"\).*timed out after 1s/,
    );
    assert(seconds < 5, `ping took ${seconds}s`);
    await imp.close();
  } finally {
    silent.close();
  }
});
