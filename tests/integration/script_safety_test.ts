// A snapshot is data, never a program: `.sql` records restored through the
// logical exporter (driven directly) into a real PostgreSQL 15 cluster by the
// real psql 15.18, which has the restricted mode. Every meta-command that runs
// a program or touches a local file is refused before psql reads it, in a
// hand-made script, in one with pg_dump's header and completion line, and in
// a globals file with pg_dumpall's header; psql's restricted mode holds behind
// our allowed \connect; real pg_dump and pg_dumpall scripts still restore.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { restoreFiles } from "../helpers/connectors.ts";
import { AWKWARD_DB, ident, makeAppDb, makeRoles, snapshotDb } from "../../harness/fixtures.ts";
import { filesIn, FRAMINGS, includedFile, PAYLOADS, refusal } from "../helpers/script_payloads.ts";
import { scriptGuard } from "../../src/logical/restore/psql_guard.ts";

const BIN = "/usr/lib/postgresql/15/bin";
const enc = new TextEncoder();

Deno.test("a .sql record runs no program and touches no local file; real dumps still restore", async (t) => {
  await using src = await Cluster.start();
  await using dst = await Cluster.start();
  await dst.query("CREATE DATABASE app");
  await t.step(
    "every meta-command that does is refused, naming its line, and nothing of the script is applied",
    () => refusesEach(dst),
  );
  await t.step(
    "psql's restricted mode still holds after an allowed \\connect",
    () => restrictedBehindConnect(dst),
  );
  await t.step(
    "real pg_dump and pg_dumpall scripts restore through the guard",
    () => realDumpsRestore(src, dst),
  );
});

async function refusesEach(dst: Cluster) {
  const markers = await Deno.makeTempDir({ prefix: "plakar-markers-" });
  const included = await Deno.makeTempFile({ prefix: "plakar-included-", suffix: ".sql" });
  try {
    await Deno.writeTextFile(included, includedFile(`${markers}/by-include`));
    for (const [shape, framing] of Object.entries(FRAMINGS)) {
      for (const [n, payload] of PAYLOADS.entries()) {
        const marker = `${markers}/${shape}-${n}`;
        const { text, line } = framing.script(payload.lines(marker, included));
        const path = `/${framing.file}`;
        const r = await restoreFiles({ location: dst.uri() }, new Map([[path, enc.encode(text)]]));
        const message = r.errors.get(path) ?? "";
        assertMatch(message, refusal(framing.what(path), line, payload.command), `${shape} ${n}`);
        // The refused line came in the file's first chunk: psql got none of it.
        assertMatch(message, /; nothing of this file was applied$/);
        assertMatch(r.finishError ?? "", /restore failed for 1 file/);
      }
      assertEquals(await filesIn(markers), [], `${shape}: a payload ran on the restoring host`);
    }
    const before = "SELECT to_regclass('dump_before') AS d, to_regclass('hand_before') AS h";
    assertEquals(await dst.query(before, "app"), [{ d: null, h: null }]);
    assertEquals(await dst.query("SELECT 1 FROM pg_roles WHERE rolname = 'globals_before'"), []);
  } finally {
    await Deno.remove(markers, { recursive: true });
    await Deno.remove(included);
  }
}

/** A meta-command the guard would have missed, after its output: psql refuses it. */
async function restrictedBehindConnect(c: Cluster) {
  const markers = await Deno.makeTempDir({ prefix: "plakar-markers-" });
  try {
    const guard = scriptGuard({ restrictKey: "Key0fThisRun" });
    const guarded = await new Response(
      new Blob(["SELECT 1;\n\\connect postgres\n"]).stream().pipeThrough(guard.transform),
    ).arrayBuffer();
    // As if the guard had missed it: appended after its output.
    const script = new Blob([
      guarded,
      `\\! touch ${markers}/ran\nSELECT 'now in ' || current_database();\n`,
    ]);
    const out = await new Deno.Command(`${BIN}/psql`, {
      args: ["-X", "-q", "-At", "-h", c.host, "-p", String(c.port), "-U", "postgres", "-d", "app"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = out.stdin.getWriter();
    await w.write(new Uint8Array(await script.arrayBuffer()));
    await w.close();
    const res = await out.output();
    const stdout = new TextDecoder().decode(res.stdout);
    const stderr = new TextDecoder().decode(res.stderr);
    assertEquals(await filesIn(markers), []);
    assertMatch(stderr, /backslash commands are restricted; only \\unrestrict is allowed/);
    assertMatch(stdout, /now in postgres/, "our \\connect did not run");
  } finally {
    await Deno.remove(markers, { recursive: true });
  }
}

/** \restrict lines, \connect forms, COPY data with backslashes, function bodies. */
async function realDumpsRestore(src: Cluster, dst: Cluster) {
  await makeRoles(src);
  for (const db of ["shop", AWKWARD_DB]) await makeAppDb(src, db, "app_owner", 20);
  await src.query(`CREATE DATABASE "Upper"`);
  await src.psql(
    String.raw`CREATE TABLE odd (id int PRIMARY KEY, v text);
     INSERT INTO odd VALUES (1, E'a\\b\tc\nd'), (2, E'\\.'), (3, E'\\! not a command'), (4, 'it''s'), (5, NULL);
     CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN '\! x $$'; END $body$;
     CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT a + 1; SELECT a + 2; END;
     CREATE VIEW slice AS SELECT (ARRAY[1,2,3])[1:2] AS s;
     COMMENT ON TABLE odd IS 'ends with a backslash \';
     SELECT lo_from_bytea(0, 'large');`,
    "shop",
  );
  const dump = async (tool: string, ...args: string[]) => {
    const out = await new Deno.Command(`${BIN}/${tool}`, {
      args: ["-h", src.host, "-p", String(src.port), "-U", "postgres", ...args],
      stdout: "piped",
    }).output();
    assert(out.success, `${tool} failed`);
    return out.stdout;
  };
  const all = await dump("pg_dumpall");
  const text = new TextDecoder().decode(all);
  // What the guard must let through, as pg_dumpall 15.18 writes it.
  assertMatch(text, /^\\restrict [A-Za-z0-9]+$/m);
  assertMatch(text, /^\\encoding SQL_ASCII\n\\connect -reuse-previous=on "dbname='we""ird/m);
  assertMatch(text, /^\\connect "Upper"$/m);

  const r = await restoreFiles({ location: dst.uri() }, new Map([["/all.sql", all]]));
  assertEquals([...r.errors.values()], []);
  for (const db of ["shop", AWKWARD_DB]) {
    assertEquals(await snapshotDb(dst, db), await snapshotDb(src, db), `database ${db} differs`);
  }
  const odd =
    "SELECT id, v, f() AS f, g(1) AS g, obj_description('odd'::regclass) AS c FROM odd ORDER BY id";
  assertEquals(await dst.query(odd, "shop"), await src.query(odd, "shop"));
  assertEquals(await dst.query(`SELECT 1 FROM pg_database WHERE datname = 'Upper'`), [{
    "?column?": 1,
  }]);

  // pg_dump -Fp into another database, and pg_dumpall --globals-only again.
  await dst.query(`CREATE DATABASE ${ident("shop copy")}`);
  const files = new Map([
    ["/00000-globals.sql", await dump("pg_dumpall", "--globals-only")],
    ["/00001-shop.sql", await dump("pg_dump", "-Fp", "shop")],
  ]);
  const r2 = await restoreFiles({ location: dst.uri(), database: "shop copy" }, files);
  assertEquals([...r2.errors.values()], []);
  assertEquals(await dst.query(odd, "shop copy"), await src.query(odd, "shop"));
  assertEquals(
    await dst.query("SELECT count(*)::int AS n FROM pg_largeobject_metadata", "shop copy"),
    [{ n: 1 }],
  );
}
