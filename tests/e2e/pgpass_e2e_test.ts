// Passwords through the real plakar. plakar records each backup's command
// line in the snapshot (`plakar info` → CommandLine), so the README keeps
// passwords out of it: `password=` stored with `plakar source add`, or
// libpq's password file, which reaches the plugin because plakar spawns it
// with its own environment (HOME, PGPASSFILE).

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import { makeAppDb, makeRoles, snapshotDb } from "../../harness/fixtures.ts";
import { withEnv } from "../helpers/env.ts";

const PW = "E2e-pgpass-s3cret";

/** The newest snapshot's `plakar info`, after checking it holds the dump. */
async function newestInfo(u: PlakarUser, dump: string): Promise<string> {
  const [snap] = await u.snapshots();
  const listing = ok(await u.at("ls", `${snap}:/`), "ls").stdout;
  assert(listing.includes(dump), `${dump} missing from:\n${listing}`);
  return ok(await u.at("info", snap), "info").stdout;
}

Deno.test("through plakar: password= with source add, ~/.pgpass and PGPASSFILE back up a password-only server, and no snapshot holds the password", async () => {
  await using src = await Cluster.start({ password: PW });
  await using dst = await Cluster.start({ password: PW });
  await using u = await PlakarUser.create();
  await makeRoles(src);
  await makeAppDb(src, "myapp");
  await makeRoles(dst);
  const hp = `127.0.0.1:${src.port}`;
  const dhp = `127.0.0.1:${dst.port}`;
  const noPassword = { PGPASSWORD: undefined, PGPASSFILE: undefined };

  await withEnv(noPassword, async () => {
    // The README's form: the password is stored with the source, not typed in the backup.
    ok(
      await u.run(["source", "add", "mypg", `postgres://postgres@${hp}/myapp`, `password=${PW}`]),
      "source add",
    );
    ok(await u.at("backup", "@mypg"), "backup @mypg");
    const info = await newestInfo(u, "00001-myapp.dump");
    assertMatch(info, /CommandLine:.*backup @mypg/);
    assert(!info.includes(PW), `the password is in plakar info:\n${info}`);

    // And restored the README's way, through a destination holding password=.
    ok(
      await u.run([
        "destination",
        "add",
        "mypgdst",
        `postgres://postgres@${dhp}/`,
        `password=${PW}`,
        "recreate=true",
      ]),
      "destination add",
    );
    const [snap] = await u.snapshots();
    ok(await u.at("restore", "-to", "@mypgdst", snap), "restore -to @mypgdst");
    assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));

    // ~/.pgpass in the HOME plakar runs with: no password anywhere else.
    await Deno.writeTextFile(`${u.home}/.pgpass`, `127.0.0.1:${src.port}:*:postgres:${PW}\n`);
    await Deno.chmod(`${u.home}/.pgpass`, 0o600);
    ok(await u.run(["source", "add", "viafile", `postgres://postgres@${hp}/myapp`]), "source add");
    ok(await u.at("backup", "@viafile"), "backup @viafile (~/.pgpass)");
    assert(!(await newestInfo(u, "00001-myapp.dump")).includes(PW));
    // A location typed on the command line is recorded, but it holds no password.
    ok(await u.at("backup", `postgres://postgres@${hp}/myapp`), "backup URI (~/.pgpass)");
    const typed = await newestInfo(u, "00001-myapp.dump");
    assertMatch(typed, new RegExp(`CommandLine:.*postgres://postgres@${hp}/myapp`));
    assert(!typed.includes(PW));
    await Deno.remove(`${u.home}/.pgpass`);
  });

  // PGPASSFILE in plakar's environment.
  const file = `${u.home}/pgpass-elsewhere`;
  await Deno.writeTextFile(
    file,
    `*:${src.port}:myapp:postgres:${PW}\n*:${src.port}:postgres:postgres:${PW}\n`,
  );
  await Deno.chmod(file, 0o600);
  await withEnv({ ...noPassword, PGPASSFILE: file }, async () => {
    ok(await u.at("backup", "@viafile"), "backup @viafile (PGPASSFILE)");
    assert(!(await newestInfo(u, "00001-myapp.dump")).includes(PW));
  });

  // A wrong entry: the backup fails, saying where the password came from.
  const before = (await u.snapshots()).length;
  await Deno.writeTextFile(file, `*:*:*:*:not-the-password\n`);
  const r = await withEnv({ ...noPassword, PGPASSFILE: file }, () => u.at("backup", "@viafile"));
  assert(r.code !== 0, `backup with a wrong password file exited 0:\n${r.stderr}`);
  assertMatch(r.stderr, /password authentication failed for user "postgres"/);
  assertMatch(r.stderr, new RegExp(`password file ${file}`));
  assert(!r.stderr.includes("not-the-password"), "password leaked into plakar's output");
  assertEquals((await u.snapshots()).length, before, "a snapshot was written");
});
