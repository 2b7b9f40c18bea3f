// `deno task demo`: the main job on throwaway local clusters. A source
// cluster gets sample data (three databases, roles with passwords, grants),
// plakar backs it up through this package, restores it with recreate=true
// into a second, empty cluster, and the demo prints what it verified.

import { Cluster } from "../harness/cluster.ts";
import { ok, PlakarUser } from "../harness/e2e.ts";
import { canLogin, makeSource, snapshotDb, snapshotRoles } from "../harness/fixtures.ts";
import { isDeepStrictEqual } from "node:util";

const say = (s: string) => console.log(`demo: ${s}`);

async function main(): Promise<number> {
  say("starting two throwaway PostgreSQL 15 clusters (source, target)");
  await using src = await Cluster.start({ password: "demo-secret" });
  await using dst = await Cluster.start({ password: "demo-secret" });
  const dbs = await makeSource(src);
  say(`source on port ${src.port}: databases ${dbs.map((d) => JSON.stringify(d)).join(", ")}`);

  say("building this package and installing it into plakar (own HOME)");
  await using u = await PlakarUser.create();
  say(`plakar ${u.bin}, store ${u.store}`);

  // The password goes into plakar's source configuration, never on the
  // backup command line (plakar records that line in every snapshot).
  const source = `postgres://postgres@127.0.0.1:${src.port}/`;
  say(`plakar source add demo-src ${source} password=***`);
  ok(await u.run(["source", "add", "demo-src", source, "password=demo-secret"]), "source add");
  say("plakar backup @demo-src");
  ok(await u.at("backup", "@demo-src"), "plakar backup");
  const [snap] = await u.snapshots();
  console.log(ok(await u.at("ls", `${snap}:/`), "plakar ls").stdout.trimEnd());
  const manifest = JSON.parse(ok(await u.at("cat", `${snap}:/manifest.json`), "plakar cat").stdout);
  say(
    `manifest: version ${manifest.version}, server ${manifest.server_version}, ${
      manifest.databases?.length ?? 0
    } databases, ${manifest.roles?.length ?? 0} roles`,
  );

  const target = `postgres://postgres@127.0.0.1:${dst.port}/`;
  say(`plakar destination add demo-dst ${target} password=*** recreate=true`);
  ok(
    await u.run([
      "destination",
      "add",
      "demo-dst",
      target,
      "password=demo-secret",
      "recreate=true",
    ]),
    "destination add",
  );
  say(`plakar restore -to @demo-dst ${snap}`);
  ok(await u.at("restore", "-to", "@demo-dst", snap), "plakar restore");

  let failures = 0;
  const check = (what: string, good: boolean) => {
    say(`${good ? "OK  " : "FAIL"} ${what}`);
    if (!good) failures++;
  };
  check(
    "roles, attributes and memberships",
    isDeepStrictEqual(await snapshotRoles(dst), await snapshotRoles(src)),
  );
  for (const db of dbs) {
    check(
      `database ${JSON.stringify(db)}: tables, owners, grants and every row`,
      isDeepStrictEqual(await snapshotDb(dst, db), await snapshotDb(src, db)),
    );
  }
  const info = ok(await u.at("info", snap), "plakar info").stdout;
  check("the snapshot does not hold the password", !info.includes("demo-secret"));
  check(
    "role password restored (app_owner can log in)",
    await canLogin(dst, "app_owner", "owner-pass-123"),
  );
  say(failures === 0 ? "all checks passed" : `${failures} check(s) failed`);
  return failures === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`demo: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
