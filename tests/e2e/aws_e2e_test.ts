// postgres+aws:// end to end through the real plakar, without AWS: a real
// PostgreSQL 15 behind the IAM proxy (tests/helpers/iam_proxy.ts), which
// accepts only valid, unexpired RDS IAM tokens for its host, port, user and
// region, signed by a known test identity, and records every token with the
// process that presented it. Credentials reach the plugin the ways the
// reference integration's documentation lists: environment variables, the shared credentials and config files,
// and the EC2 and ECS endpoints (local stand-ins, tests/helpers/aws_endpoints.ts).
// Every plakar run gets exactly the AWS_* variables it names: plakar passes
// its environment on to the plugin.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { ok, type PlakarResult, PlakarUser } from "../../harness/e2e.ts";
import { makeAppDb, makeRoles, snapshotDb } from "../../harness/fixtures.ts";
import {
  type Authentication,
  IamProxy,
  parseToken,
  type TestCredentials,
} from "../helpers/iam_proxy.ts";
import { ContainerCredentials, Ec2Metadata } from "../helpers/aws_endpoints.ts";

// The example credentials of the reference integration's documentation, verbatim.
const DOC: TestCredentials = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const DOC_SESSION: TestCredentials = { ...DOC, sessionToken: "AQoDYXdzEJr..." };
// Other identities, one per credential source, so a token tells where it came from.
const PROFILE: TestCredentials = {
  accessKeyId: "AKIAPLAKARMYPROFILE1",
  secretAccessKey: "myprofile/secret/000000000000000000000000",
};
const IMDS: TestCredentials = {
  accessKeyId: "ASIAPLAKARINSTANCE01",
  secretAccessKey: "instance/role/secret/0000000000000000000",
  sessionToken: "instance-session-token",
};
const ECS: TestCredentials = {
  accessKeyId: "ASIAPLAKARECSTASK001",
  secretAccessKey: "ecs/task/role/secret/0000000000000000000",
  sessionToken: "ecs-session-token",
};
const IDENTITIES = [DOC, DOC_SESSION, PROFILE, IMDS, ECS];
const DOC_ENV = {
  AWS_ACCESS_KEY_ID: DOC.accessKeyId,
  AWS_SECRET_ACCESS_KEY: DOC.secretAccessKey,
};
const TLS_WARNING = /ssl_mode=disable: RDS IAM authentication needs an encrypted connection/g;

/** Runs plakar as `u` with PATH, the user's own variables and exactly `aws` as AWS_* environment. */
async function plakar(
  u: PlakarUser,
  aws: Record<string, string>,
  ...args: string[]
): Promise<PlakarResult> {
  const out = await new Deno.Command(u.bin, {
    args,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...u.env(), ...aws },
    cwd: u.home,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A trust-auth cluster with the IAM user of the reference integration's documentation: CREATE USER myuser WITH LOGIN; GRANT rds_iam TO myuser. */
async function rdsLike(): Promise<Cluster> {
  const c = await Cluster.start();
  // A superuser here, like an RDS master user, so that it can dump and recreate everything.
  await c.psql(
    "CREATE ROLE rds_iam NOLOGIN; CREATE USER myuser WITH LOGIN SUPERUSER; GRANT rds_iam TO myuser;",
  );
  return c;
}

/** The authentications a run added, all of which must have been accepted. */
function since(proxy: IamProxy, mark: number): Authentication[] {
  const added = proxy.authentications.slice(mark);
  assertEquals(added.filter((a) => a.refused).map((a) => a.refused), []);
  assert(added.length > 0, "nothing authenticated through the proxy");
  return added;
}

/** Every token of `auths` names this identity (key id and session token). */
function signedBy(auths: Authentication[], who: TestCredentials): void {
  for (const a of auths) {
    const t = parseToken(a.token);
    assertEquals([t.accessKeyId, t.securityToken], [who.accessKeyId, who.sessionToken]);
  }
}

/** What plakar printed, both streams (a status message may go to either). */
function said(r: PlakarResult): string {
  return r.stdout + r.stderr;
}

async function listing(u: PlakarUser, snap: string): Promise<string> {
  return ok(await u.at("ls", `${snap}:/`), "ls").stdout;
}

Deno.test("the postgres+aws examples of the reference integration's documentation work verbatim through plakar (host and port adapted, ssl_mode=disable against the local IAM proxy)", async () => {
  await using src = await rdsLike();
  await using dst = await rdsLike();
  await using u = await PlakarUser.create();
  await makeRoles(src);
  await makeAppDb(src, "myapp");
  await src.query("CREATE DATABASE rdsadmin"); // as on RDS: skipped by default
  await makeRoles(dst);
  await using euWest3 = new IamProxy({
    backendPort: src.port,
    region: "eu-west-3",
    identities: IDENTITIES,
  });
  await using usEast1 = new IamProxy({
    backendPort: src.port,
    region: "us-east-1",
    identities: IDENTITIES,
  });
  await using dstUsEast1 = new IamProxy({
    backendPort: dst.port,
    region: "us-east-1",
    identities: IDENTITIES,
  });
  const eu = `127.0.0.1:${euWest3.port}`;

  // Environment variables.
  const env = { ...DOC_ENV, AWS_REGION: "eu-west-3" };
  ok(
    await plakar(
      u,
      env,
      "source",
      "add",
      "myrds",
      `postgres+aws://myuser@${eu}/myapp`,
      "region=eu-west-3",
      "ssl_mode=disable",
    ),
    "source add",
  );
  let mark = euWest3.authentications.length;
  ok(await plakar(u, env, "source", "ping", "myrds"), "source ping");
  signedBy(since(euWest3, mark), DOC);
  mark = euWest3.authentications.length;
  const r = ok(await plakar(u, env, "at", u.store, "backup", "@myrds"), "backup (environment)");
  signedBy(since(euWest3, mark), DOC);
  assertEquals(r.stderr.match(TLS_WARNING)?.length, 1, r.stderr);
  const [fromEnv] = await u.snapshots();
  const ls = await listing(u, fromEnv);
  for (const f of ["manifest.json", "00000-globals.sql", "00001-myapp.dump"]) {
    assert(ls.includes(f), `${f} missing from:\n${ls}`);
  }

  // "export AWS_REGION=eu-west-3 # or set region= in the source config"
  mark = euWest3.authentications.length;
  ok(
    await plakar(
      u,
      env,
      "at",
      u.store,
      "backup",
      "-o",
      "ssl_mode=disable",
      `postgres+aws://myuser@${eu}/myapp`,
    ),
    "backup (region from AWS_REGION)",
  );
  signedBy(since(euWest3, mark), DOC);

  // A session token (assumed role, aws sts assume-role).
  mark = euWest3.authentications.length;
  ok(
    await plakar(
      u,
      { ...env, AWS_SESSION_TOKEN: DOC_SESSION.sessionToken! },
      "at",
      u.store,
      "backup",
      "@myrds",
    ),
    "backup (session token)",
  );
  signedBy(since(euWest3, mark), DOC_SESSION);

  // ~/.aws/credentials and ~/.aws/config, no environment variables.
  await Deno.mkdir(`${u.home}/.aws`);
  await Deno.writeTextFile(
    `${u.home}/.aws/credentials`,
    `[default]\naws_access_key_id = ${DOC.accessKeyId}\naws_secret_access_key = ${DOC.secretAccessKey}\n` +
      `[myprofile]\naws_access_key_id = ${PROFILE.accessKeyId}\naws_secret_access_key = ${PROFILE.secretAccessKey}\n`,
  );
  await Deno.writeTextFile(
    `${u.home}/.aws/config`,
    "[default]\nregion = eu-west-3\n[profile myprofile]\nregion = eu-west-3\n",
  );
  mark = euWest3.authentications.length;
  ok(await plakar(u, {}, "at", u.store, "backup", "@myrds"), "backup (default profile)");
  signedBy(since(euWest3, mark), DOC);
  // A named profile.
  mark = euWest3.authentications.length;
  ok(
    await plakar(u, { AWS_PROFILE: "myprofile" }, "at", u.store, "backup", "@myrds"),
    "backup (AWS_PROFILE)",
  );
  signedBy(since(euWest3, mark), PROFILE);
  await Deno.remove(`${u.home}/.aws`, { recursive: true });

  // An EC2 instance role: no credentials anywhere, instance metadata (IMDSv2)
  // answers (here a local one, named by AWS_EC2_METADATA_SERVICE_ENDPOINT).
  await using imds = new Ec2Metadata(IMDS);
  mark = euWest3.authentications.length;
  ok(
    await plakar(
      u,
      { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url },
      "at",
      u.store,
      "backup",
      "@myrds",
    ),
    "backup (instance metadata)",
  );
  signedBy(since(euWest3, mark), IMDS);
  assert(imds.served > 0);

  // Back up a single RDS database using IAM authentication
  const us = `127.0.0.1:${usEast1.port}`;
  ok(await plakar(u, DOC_ENV, "source", "rm", "myrds"), "source rm");
  ok(
    await plakar(
      u,
      DOC_ENV,
      "source",
      "add",
      "myrds",
      `postgres+aws://myuser@${us}/myapp`,
      "region=us-east-1",
      "ssl_mode=disable",
    ),
    "source add",
  );
  ok(await plakar(u, DOC_ENV, "at", u.store, "backup", "@myrds"), "backup single");
  const [single] = await u.snapshots();
  assert(!(await listing(u, single)).includes("00002-"), "more than one database dumped");

  // Back up all databases on an RDS instance
  ok(await plakar(u, DOC_ENV, "source", "rm", "myrds"), "source rm");
  ok(
    await plakar(
      u,
      DOC_ENV,
      "source",
      "add",
      "myrds",
      `postgres+aws://myuser@${us}/`,
      "region=us-east-1",
      "ssl_mode=disable",
    ),
    "source add",
  );
  ok(await plakar(u, DOC_ENV, "at", u.store, "backup", "@myrds"), "backup all");
  const [full] = await u.snapshots();
  const all = await listing(u, full);
  for (const f of ["00001-myapp.dump", "00002-postgres.dump", "00003-template1.dump"]) {
    assert(all.includes(f), `${f} missing from:\n${all}`);
  }
  assert(!all.includes("rdsadmin"), `rdsadmin was dumped:\n${all}`);
  const manifest = JSON.parse(ok(await u.at("cat", `${full}:/manifest.json`), "cat").stdout);
  assertEquals(manifest.version, 2);

  // Restore into an existing database on RDS using IAM authentication
  const d = `127.0.0.1:${dstUsEast1.port}`;
  const destination = async (uri: string, ...options: string[]) => {
    await plakar(u, DOC_ENV, "destination", "rm", "myrds");
    ok(
      await plakar(
        u,
        DOC_ENV,
        "destination",
        "add",
        "myrds",
        uri,
        "region=us-east-1",
        "ssl_mode=disable",
        ...options,
      ),
      "destination add",
    );
  };
  await dst.query("CREATE DATABASE myapp OWNER app_owner");
  await destination(`postgres+aws://myuser@${d}/myapp`);
  mark = dstUsEast1.authentications.length;
  ok(
    await plakar(u, DOC_ENV, "at", u.store, "restore", "-to", "@myrds", single),
    "restore existing",
  );
  signedBy(since(dstUsEast1, mark), DOC);
  assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));

  // Restore, dropping and recreating the database entirely
  await dst.psql("DELETE FROM sales.customers; CREATE TABLE leftover (x int);", "myapp");
  await destination(`postgres+aws://myuser@${d}/`, "recreate=true");
  ok(
    await plakar(u, DOC_ENV, "at", u.store, "restore", "-to", "@myrds", single),
    "restore recreate",
  );
  assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));

  // Restore, skipping owner assignment (e.g. roles differ on target)
  await dst.query("DROP DATABASE myapp");
  await dst.query("CREATE DATABASE myapp");
  await destination(`postgres+aws://myuser@${d}/myapp`, "no_owner=true");
  ok(
    await plakar(u, DOC_ENV, "at", u.store, "restore", "-to", "@myrds", single),
    "restore no_owner",
  );
  assertEquals(
    await dst.query(
      "SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relname = 'customers'",
      "myapp",
    ),
    [{ o: "myuser" }],
  );
  assertEquals(
    await dst.query("SELECT count(*)::int AS n FROM sales.customers", "myapp"),
    await src.query("SELECT count(*)::int AS n FROM sales.customers", "myapp"),
  );
});

Deno.test("credentials from the ECS container endpoint; the snapshot restores with postgres:// too", async () => {
  await using src = await rdsLike();
  await using dst = await Cluster.start();
  await using u = await PlakarUser.create();
  await makeRoles(src);
  await makeAppDb(src, "myapp");
  await makeRoles(dst);
  await using proxy = new IamProxy({
    backendPort: src.port,
    region: "eu-west-3",
    identities: IDENTITIES,
  });
  await using ecs = new ContainerCredentials(ECS, "Bearer ecs-task-authorization");
  const aws = {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: ecs.fullUri,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: "Bearer ecs-task-authorization",
  };
  ok(
    await plakar(
      u,
      aws,
      "at",
      u.store,
      "backup",
      "-o",
      "region=eu-west-3",
      "-o",
      "ssl_mode=disable",
      `postgres+aws://myuser@127.0.0.1:${proxy.port}/myapp`,
    ),
    "backup (ECS)",
  );
  signedBy(since(proxy, 0), ECS);
  assert(ecs.served > 0);
  const [snap] = await u.snapshots();
  // The postgres:// exporter restores it (the layout is the same).
  ok(
    await plakar(
      u,
      {},
      "at",
      u.store,
      "restore",
      "-o",
      "recreate=true",
      "-to",
      `postgres://postgres@127.0.0.1:${dst.port}/`,
      snap,
    ),
    "restore with postgres://",
  );
  assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));
});

Deno.test("postgres+aws:// failures say what to do, on one line: wrong secret, no credentials, no region, a password", async () => {
  await using src = await rdsLike();
  await using u = await PlakarUser.create();
  await using proxy = new IamProxy({
    backendPort: src.port,
    region: "eu-west-3",
    identities: IDENTITIES,
  });
  const uri = `postgres+aws://myuser@127.0.0.1:${proxy.port}/postgres`;
  const backup = (aws: Record<string, string>, ...options: string[]) =>
    plakar(
      u,
      aws,
      "at",
      u.store,
      "backup",
      ...options.flatMap((o) => ["-o", o]),
      uri,
    );

  // The secret key is wrong: the server refuses the token.
  const wrong = await backup(
    { ...DOC_ENV, AWS_SECRET_ACCESS_KEY: "wrong-secret" },
    "region=eu-west-3",
    "ssl_mode=disable",
  );
  assert(wrong.code !== 0, "a backup with a wrong secret succeeded");
  assertMatch(
    said(wrong),
    /PAM authentication failed for user "myuser"; the server refused the IAM token: enable IAM database authentication on the RDS instance, GRANT rds_iam TO the user/,
  );
  assertEquals(proxy.authentications.map((a) => a.refused), ["signature mismatch"]);

  // No credentials anywhere (instance metadata: a local port nobody listens on).
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const nobody = `http://127.0.0.1:${(closed.addr as Deno.NetAddr).port}`;
  closed.close();
  const none = await backup(
    { AWS_EC2_METADATA_SERVICE_ENDPOINT: nobody },
    "region=eu-west-3",
    "ssl_mode=disable",
  );
  assert(none.code !== 0, "a backup without credentials succeeded");
  assertMatch(
    said(none),
    /cannot sign an RDS IAM token for user "myuser" in eu-west-3: no AWS credentials found; looked in: environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY .*; profile "default" in .*\.aws\/credentials and .*\.aws\/config .*; web identity .*; the ECS container endpoint .*; EC2 instance metadata at http:\/\/127\.0\.0\.1:\d+\. Set one of them/,
  );

  // No region.
  const noRegion = await backup(DOC_ENV, "ssl_mode=disable");
  assert(noRegion.code !== 0);
  assertMatch(
    said(noRegion),
    /region: required for postgres\+aws:\/\/ \(the AWS region of the RDS instance, e\.g\. region=eu-west-3, or AWS_REGION in the environment\)/,
  );

  // A password, as an option or in the URI.
  const pw = await backup(DOC_ENV, "region=eu-west-3", "password=secret");
  assert(pw.code !== 0);
  assertMatch(
    said(pw),
    /password: not accepted by postgres\+aws:\/\/ \(the IAM token is the password\); remove it/,
  );
  const inUri = await plakar(
    u,
    DOC_ENV,
    "at",
    u.store,
    "backup",
    "-o",
    "region=eu-west-3",
    `postgres+aws://myuser:secret@127.0.0.1:${proxy.port}/postgres`,
  );
  assert(inUri.code !== 0);
  // plakar itself repeats the URI it was given; our own message does not.
  const ours = said(inUri).slice(said(inUri).indexOf("location: "));
  assertMatch(
    ours,
    /^location: postgres\+aws:\/\/ takes no password in the URI \(the IAM token is the password\); remove it/,
  );
  assert(!ours.includes("secret"), "the URI's password was echoed");
  assertEquals(await u.snapshots(), []);
});

Deno.test("a backup that outlives its first token still works: every tool process signs its own", async () => {
  await using src = await rdsLike();
  await using u = await PlakarUser.create();
  await makeRoles(src);
  for (const db of ["alpha", "beta", "gamma", "delta"]) await makeAppDb(src, db, "app_owner", 10);
  // Each accepted connection is held 1.1 s, and a token older than 3 s is
  // refused: the backup lasts longer than that, so one token signed at its
  // start could not have served the later tools (RDS: 15 minutes).
  await using proxy = new IamProxy({
    backendPort: src.port,
    region: "eu-west-3",
    identities: IDENTITIES,
    acceptDelayMs: 1100,
    maxAgeSeconds: 3,
  });
  ok(
    await plakar(
      u,
      DOC_ENV,
      "at",
      u.store,
      "backup",
      "-o",
      "region=eu-west-3",
      "-o",
      "ssl_mode=disable",
      `postgres+aws://myuser@127.0.0.1:${proxy.port}/`,
    ),
    "backup",
  );
  const auths = since(proxy, 0);
  const tools = auths.filter((a) => a.client && a.client.program !== "deno");
  assertEquals(
    tools.map((a) => a.client!.program).sort(),
    [...Array(6).fill("pg_dump"), "pg_dumpall"],
  );
  assertEquals(new Set(tools.map((a) => a.client!.pid)).size, tools.length);
  // Tokens signed within one second are identical (X-Amz-Date has a
  // one-second resolution), and a dump may start one file ahead of plakar,
  // so two processes can present the same token; what proves the refresh is
  // below: no token was older than 3 s at use while the backup's connections
  // spanned more than that, so no single token could have served them all.
  assert(new Set(tools.map((a) => a.token)).size >= 2, "every tool presented one token");
  const span = auths.at(-1)!.at.getTime() - auths[0].at.getTime();
  assert(span > 3000, `the backup's connections spanned only ${span} ms`);
  for (const a of auths) {
    const age = a.at.getTime() - parseToken(a.token).date.getTime();
    assert(age >= 0 && age < 3000, `a token ${age} ms old at use`);
  }
});
