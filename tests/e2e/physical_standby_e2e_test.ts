// postgres+bin:// of a streaming standby, end to end through the real plakar:
// the copy holds standby.signal and the standby's primary_conninfo, password
// included, so restored it would start as a standby of the same primary.
// The backup says so on stderr and in manifest.json (never the password), a
// backup of the primary says nothing, and the README's way to start such a
// copy as a primary works.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch, assertNotMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import { RestoredServer, runAs } from "../helpers/restored.ts";

// A quote in it: pg_basebackup -R escapes it in postgresql.auto.conf twice
// (libpq's \' inside the configuration file's '').
const SECRET = "pr1mary'Secret";

function binUri(c: Cluster): string {
  return `postgres+bin://postgres:${encodeURIComponent(SECRET)}@127.0.0.1:${c.port}`;
}

async function backup(u: PlakarUser, c: Cluster) {
  const r = ok(await u.at("backup", binUri(c)), `backup of ${c.port}`);
  const [snap] = await u.snapshots();
  const text = ok(await u.at("cat", `${snap}:/manifest.json`), "cat manifest").stdout;
  return { r, snap, text, manifest: JSON.parse(text) as Record<string, unknown> };
}

Deno.test("postgres+bin of a standby warns that the copy is a standby holding its primary_conninfo with a password, records it in manifest.json without the password, and starts as a primary once standby.signal and primary_conninfo are removed", async () => {
  await using primary = await Cluster.start({ password: SECRET });
  await using standby = await Cluster.start({ standbyOf: primary });
  await using u = await PlakarUser.create();
  await primary.query("CREATE TABLE t AS SELECT 1 AS id");
  // Streamed to the standby before its copy is made.
  for (let i = 0; !(await standby.query("SELECT to_regclass('t') IS NOT NULL AS ok"))[0].ok; i++) {
    assert(i < 200, "the standby never replayed the primary's table");
    await new Promise((r) => setTimeout(r, 50));
  }
  // The helper's pg_basebackup -R wrote the primary's password into the
  // standby's primary_conninfo: the case this test is about.
  const auto = await Deno.readTextFile(`${standby.dataDir}/postgresql.auto.conf`);
  assertMatch(auto, /^primary_conninfo = '.*password=/m);
  assertEquals((await standby.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r"))[0].r, true);

  const s = await backup(u, standby);
  const out = s.r.stdout + s.r.stderr;
  assertMatch(
    s.r.stderr,
    new RegExp(
      `postgresql: warning: 127\\.0\\.0\\.1:${standby.port} is a standby: the copy holds standby\\.signal and its primary_conninfo, password included, in postgresql\\.auto\\.conf; restored, it starts as a standby of that primary\\. To start it as a primary, remove standby\\.signal and primary_conninfo`,
    ),
  );
  assertEquals(
    [
      s.manifest.in_recovery,
      s.manifest.standby_signal,
      s.manifest.primary_conninfo_has_password,
      s.manifest.primary_conninfo_files,
    ],
    [true, true, true, ["postgresql.auto.conf"]],
  );
  // Neither the password, nor its escaped forms, nor the connection string.
  for (const secret of [SECRET, "pr1mary", "Secret"]) {
    assert(!s.text.includes(secret), `${secret} in manifest.json`);
    assert(!out.includes(secret), `${secret} in plakar's output`);
  }
  assertNotMatch(s.text, /conninfo"?\s*:\s*"/);

  const p = await backup(u, primary);
  assertEquals(
    [p.manifest.in_recovery, p.manifest.standby_signal, p.manifest.primary_conninfo_has_password],
    [false, false, false],
  );
  assertNotMatch(p.r.stderr, /is a standby|standby\.signal/);

  // The README's way to start the standby's copy as a primary.
  const tmp = await Deno.makeTempDir({ prefix: "plakar-pg-restore-" });
  try {
    await Deno.chmod(tmp, 0o755);
    const pgdata = `${tmp}/pgdata`;
    ok(await u.at("restore", "-to", pgdata, s.snap), "restore the standby's copy");
    await Deno.remove(`${pgdata}/standby.signal`);
    const sed = await runAs(
      "sed",
      ["-i", "/^primary_conninfo *=/d", `${pgdata}/postgresql.auto.conf`],
      {},
      false,
    );
    assert(sed.ok, sed.out);
    assert(!(await Deno.readTextFile(`${pgdata}/postgresql.auto.conf`)).includes("password"));
    await RestoredServer.prepare(pgdata);
    await using dst = await RestoredServer.start(pgdata, 15, SECRET);
    assertEquals((await dst.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r"))[0].r, false);
    // Writable, with the primary's data.
    await dst.query("INSERT INTO t VALUES (2)");
    assertEquals(await dst.query("SELECT count(*)::int AS n FROM t"), [{ n: 2 }]);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
