// The package as users get it: the root manifest as plakar reads it, the
// install / uninstall / reinstall / package tasks against the real plakar
// (each with its own HOME), and the installed launcher package backing up and
// restoring with neither node nor deno on PATH.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { ok, PlakarUser } from "../../harness/e2e.ts";
import { makeAppDb, makeRoles, snapshotDb } from "../../harness/fixtures.ts";
import { plakarBin } from "../../harness/plakar.ts";
import { CONNECTORS } from "../../harness/package_manifest.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const PG_BIN = "/usr/lib/postgresql/15/bin";
const dec = new TextDecoder();

/** A temp dir removed on dispose. */
async function tempDir(prefix: string): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

async function exec(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    clearEnv: opts.clearEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** Deno's cache, kept when HOME changes (else the tasks would fetch every npm package again). */
async function denoDir(): Promise<string> {
  const r = await exec(Deno.execPath(), ["info", "--json"]);
  return JSON.parse(r.out).denoDir;
}

async function denoVersion(): Promise<string> {
  return `v${JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).version}`;
}

Deno.test("plakar pkg create accepts the root manifest.yaml as it stands", async () => {
  await using tmp = await tempDir("plakar-pg-manifest-");
  await Deno.copyFile(`${ROOT}/manifest.yaml`, `${tmp.path}/manifest.yaml`);
  await Deno.mkdir(`${tmp.path}/schemas`);
  for (const f of Deno.readDirSync(`${ROOT}/schemas`)) {
    await Deno.copyFile(`${ROOT}/schemas/${f.name}`, `${tmp.path}/schemas/${f.name}`);
  }
  // plakar requires the executables to exist with an execute bit: stand-ins.
  for (const c of CONNECTORS) {
    await Deno.writeTextFile(`${tmp.path}/${c.executable}`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  }
  const r = await exec(await plakarBin(), ["pkg", "create", "./manifest.yaml", "v0.0.1"], {
    cwd: tmp.path,
    env: { HOME: tmp.path, XDG_CACHE_HOME: `${tmp.path}/.cache` },
  });
  assertEquals(r.code, 0, r.out + r.err);
  const made = [...Deno.readDirSync(tmp.path)].map((f) => f.name).filter((n) =>
    n.endsWith(".ptar")
  );
  assertEquals(made.length, 1, made.join(", "));
  assertMatch(made[0], /^postgresql_v0\.0\.1_[a-z]+_[a-z0-9]+\.ptar$/);
});

Deno.test("deno task install, uninstall, reinstall and package work against the real plakar", async () => {
  await using home = await tempDir("plakar-pg-tasks-home-");
  await using dist = await tempDir("plakar-pg-tasks-dist-");
  const env = {
    HOME: home.path,
    XDG_CACHE_HOME: `${home.path}/.cache`,
    PLAKAR: await plakarBin(), // as the reference integration's Makefile takes PLAKAR=
    PLAKAR_PG_DIST: dist.path,
    DENO_DIR: await denoDir(),
    NO_COLOR: "1",
  };
  const task = (args: string[], extra: Record<string, string> = {}) =>
    exec(Deno.execPath(), ["task", "-q", ...args], { env: { ...env, ...extra } });
  const installed = async () => {
    const r = await exec(env.PLAKAR, ["pkg", "list"], { env });
    assertEquals(r.code, 0, r.err);
    return r.out.split("\n").filter((l) => l.startsWith("postgresql@"));
  };
  const v = await denoVersion();

  let r = await task(["uninstall"]);
  assertEquals(r.code, 0, r.out + r.err);
  assertStringIncludes(r.out, "postgresql was not installed");

  r = await task(["install", "--kind=launchers"]);
  assertEquals(r.code, 0, r.out + r.err);
  assertStringIncludes(r.err, "launchers, NOT compiled");
  assertEquals(await installed(), [`postgresql@${v}`]);

  r = await task(["install", "--kind=launchers"]);
  assertEquals(r.code, 1, r.out + r.err);
  assertStringIncludes(r.err, "already installed: deno task reinstall replaces it");

  r = await task(["reinstall", "--kind=launchers"], { VERSION: "v0.9.1" });
  assertEquals(r.code, 0, r.out + r.err);
  assertStringIncludes(r.out, `uninstalled postgresql@${v}`);
  assertEquals(await installed(), ["postgresql@v0.9.1"]);

  // The argument wins over VERSION; the .ptar is named for the host.
  r = await task(["package", "0.9.2", "--kind=launchers"], { VERSION: "v0.9.1" });
  assertEquals(r.code, 0, r.out + r.err);
  const ptar = r.out.trim().split("\n").pop()!;
  assertMatch(ptar, /\/postgresql_v0\.9\.2_linux_amd64\.ptar$/);
  await Deno.stat(ptar);

  r = await task(["package", "not-a-version", "--kind=launchers"]);
  assertEquals(r.code, 1, r.out + r.err);
  assertStringIncludes(r.err, "is not a version");

  r = await task(["uninstall"]);
  assertEquals(r.code, 0, r.out + r.err);
  assertStringIncludes(r.out, "uninstalled postgresql@v0.9.1");
  assertEquals(await installed(), []);
});

Deno.test("the installed launcher package backs up and restores with neither node nor deno on PATH", async () => {
  await using dist = await tempDir("plakar-pg-bare-dist-");
  await using bin = await tempDir("plakar-pg-bare-path-");
  const pkg = await exec(Deno.execPath(), ["task", "-q", "package", "--kind=launchers"], {
    env: { PLAKAR_PG_DIST: dist.path, NO_COLOR: "1" },
  });
  assertEquals(pkg.code, 0, pkg.out + pkg.err);
  const ptar = pkg.out.trim().split("\n").pop()!;

  // PATH holds the PostgreSQL client tools only; the launchers need /bin/sh alone.
  for (const tool of ["pg_dump", "pg_dumpall", "pg_restore", "psql", "pg_basebackup"]) {
    await Deno.symlink(`${PG_BIN}/${tool}`, `${bin.path}/${tool}`);
  }
  const sh = (script: string) => exec("/bin/sh", ["-c", script], { env: { PATH: bin.path } });
  assert((await sh("command -v deno")).code !== 0, "deno is on the stripped PATH");
  assert((await sh("command -v node")).code !== 0, "node is on the stripped PATH");
  assertEquals((await sh("command -v pg_dump")).out.trim(), `${bin.path}/pg_dump`);

  await using src = await Cluster.start({ password: "secret" });
  await using dst = await Cluster.start({ password: "secret" });
  await using u = await PlakarUser.create(ptar);
  await makeRoles(src);
  await makeAppDb(src, "myapp");
  await makeRoles(dst);

  // Only what plakar is given: its HOME and the stripped PATH.
  const bare = async (...args: string[]) => {
    const r = await exec(u.bin, args, {
      cwd: u.home,
      clearEnv: true,
      env: { ...u.env(), PATH: bin.path },
    });
    return { code: r.code, stdout: r.out, stderr: r.err };
  };
  const hp = `127.0.0.1:${src.port}`;
  ok(
    await bare("source", "add", "src", `postgres://postgres@${hp}/myapp`, "password=secret"),
    "add",
  );
  ok(await bare("at", u.store, "backup", "@src"), "backup");
  const [snap] = await u.snapshots();
  assertStringIncludes(ok(await u.at("ls", `${snap}:/`), "ls").stdout, "00001-myapp.dump");

  const target = `postgres://postgres@127.0.0.1:${dst.port}/`;
  ok(await bare("destination", "add", "dst", target, "password=secret", "recreate=true"), "dest");
  ok(await bare("at", u.store, "restore", "-to", "@dst", snap), "restore");
  assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));

  // The physical importer (pg_basebackup) starts the same way.
  ok(await bare("source", "add", "bin", `postgres+bin://postgres@${hp}`, "password=secret"), "add");
  ok(await bare("at", u.store, "backup", "@bin"), "physical backup");
  const [physical] = await u.snapshots();
  assertStringIncludes(ok(await u.at("ls", `${physical}:/`), "ls").stdout, "PG_VERSION");
});
