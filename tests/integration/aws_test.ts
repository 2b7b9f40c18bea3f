// postgres+aws:// connectors driven directly against a real PostgreSQL 15
// behind the IAM proxy (tests/helpers/iam_proxy.ts), which accepts only valid,
// unexpired RDS IAM tokens signed with the test identity and records each
// one with the process that presented it. No AWS: signing is local.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { exportAll, importAll, params } from "../helpers/connectors.ts";
import { makeAppDb, makeRoles, snapshotDb } from "../../harness/fixtures.ts";
import { IamProxy, parseToken, type TestCredentials } from "../helpers/iam_proxy.ts";
import { withAwsEnv } from "../helpers/aws_endpoints.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";
import { createLogicalExporter } from "../../src/logical/restore/exporter.ts";

const REGION = "eu-west-3";
const IDENTITY: TestCredentials = {
  accessKeyId: "AKIAPLAKARINTEGRATION",
  secretAccessKey: "integration/secret/0000000000000000000000",
};
const ENV = {
  AWS_ACCESS_KEY_ID: IDENTITY.accessKeyId,
  AWS_SECRET_ACCESS_KEY: IDENTITY.secretAccessKey,
};

/** A trust-auth cluster with the IAM user `myuser` (a superuser, like an RDS master user). */
async function rdsLike(): Promise<Cluster> {
  const c = await Cluster.start();
  await c.psql(
    "CREATE ROLE rds_iam NOLOGIN; CREATE ROLE myuser LOGIN SUPERUSER; GRANT rds_iam TO myuser;",
  );
  return c;
}

function awsConfig(proxy: IamProxy, path = "", extra: Record<string, string> = {}) {
  return {
    location: `postgres+aws://myuser@${proxy.host}:${proxy.port}/${path}`,
    region: REGION,
    ssl_mode: "disable",
    ...extra,
  };
}

async function backup(config: Record<string, string>) {
  const imp = await createLogicalImporter(params("postgres+aws", config));
  try {
    return await importAll(imp);
  } finally {
    await imp.close();
  }
}

Deno.test("each tool process and each catalog connection of a backup presents its own fresh token", async () => {
  await using src = await rdsLike();
  await makeRoles(src);
  for (const db of ["alpha", "beta", "gamma"]) await makeAppDb(src, db, "app_owner", 10);
  // Each accepted connection is held 1.1 s, so tools started one after the
  // other sign in different seconds; a token older than 3 s is refused, so a
  // token signed once for the whole backup (which lasts longer) would fail.
  await using proxy = new IamProxy({
    backendPort: src.port,
    region: REGION,
    identities: [IDENTITY],
    acceptDelayMs: 1100,
    maxAgeSeconds: 3,
  });
  const started = Date.now();
  const { files, errors } = await withAwsEnv(ENV, () => backup(awsConfig(proxy)));
  assertEquals(errors, new Map());
  assertEquals([...files.keys()], [
    "/manifest.json",
    "/00000-globals.sql",
    "/00001-alpha.dump",
    "/00002-beta.dump",
    "/00003-gamma.dump",
    "/00004-postgres.dump",
    "/00005-template1.dump",
  ]);
  assert(Date.now() - started > 3000, "the backup was too short to outlive a token");

  const auths = proxy.authentications;
  assertEquals(auths.filter((a) => a.refused), []);
  const tools = auths.filter((a) => a.client && a.client.program !== "deno");
  // One pg_dumpall (globals) and one pg_dump per database, each its own process.
  assertEquals(tools.map((a) => a.client!.program).sort(), [
    "pg_dump",
    "pg_dump",
    "pg_dump",
    "pg_dump",
    "pg_dump",
    "pg_dumpall",
  ]);
  assertEquals(new Set(tools.map((a) => a.client!.pid)).size, tools.length);
  // Started one after the other, each more than a second apart: distinct tokens.
  assertEquals(new Set(tools.map((a) => a.token)).size, tools.length);
  for (const a of auths) {
    const age = a.at.getTime() - parseToken(a.token).date.getTime();
    assert(age >= 0 && age < 3000, `a token ${age} ms old at use`);
  }
  // The catalog connections (the database list, the manifest and its
  // per-database details) are this process's own, each with a token too.
  const catalog = auths.filter((a) => a.client?.program === "deno");
  assert(catalog.length >= 2 + 3, `only ${catalog.length} catalog connections`);
  assertEquals(catalog.length + tools.length, auths.length);
});

Deno.test("a restore through the proxy signs a token for each psql and pg_restore", async () => {
  await using src = await rdsLike();
  await using dst = await rdsLike();
  await makeRoles(src);
  await makeAppDb(src, "myapp");
  await using sp = new IamProxy({ backendPort: src.port, region: REGION, identities: [IDENTITY] });
  await using dp = new IamProxy({ backendPort: dst.port, region: REGION, identities: [IDENTITY] });
  const { files, errors } = await withAwsEnv(ENV, () => backup(awsConfig(sp, "myapp")));
  assertEquals(errors, new Map());
  const exp = await withAwsEnv(
    ENV,
    () => createLogicalExporter(params("postgres+aws", awsConfig(dp, "", { recreate: "true" }))),
  );
  const result = await withAwsEnv(ENV, async () => {
    try {
      return await exportAll(exp, files);
    } finally {
      await exp.close();
    }
  });
  assertEquals(result.errors, new Map());
  assertEquals(await snapshotDb(dst, "myapp"), await snapshotDb(src, "myapp"));
  const programs = new Set(dp.authentications.map((a) => a.client?.program));
  assert(programs.has("psql") && programs.has("pg_restore"), [...programs].join(","));
  assertEquals(dp.authentications.filter((a) => a.refused), []);
});

Deno.test("a token signed with the wrong secret is refused, and the error says to enable IAM authentication and grant rds_iam", async () => {
  await using src = await rdsLike();
  await using proxy = new IamProxy({
    backendPort: src.port,
    region: REGION,
    identities: [IDENTITY],
  });
  const wrong = { ...ENV, AWS_SECRET_ACCESS_KEY: "not/the/secret" };
  const err = await withAwsEnv(wrong, async () => {
    try {
      await backup(awsConfig(proxy));
    } catch (e) {
      return e as Error;
    }
    throw new Error("the backup succeeded with a wrong secret");
  });
  assertMatch(
    err.message,
    /^cannot connect to 127\.0\.0\.1:\d+ \(database "postgres"\) as user "myuser": PAM authentication failed for user "myuser"; the server refused the IAM token: enable IAM database authentication on the RDS instance, GRANT rds_iam TO the user/,
  );
  assert(!err.message.includes("\n"));
  assertEquals(proxy.authentications.map((a) => a.refused), ["signature mismatch"]);

  // The exporter says the same, once, before any tool runs.
  const exp = await withAwsEnv(
    wrong,
    () => createLogicalExporter(params("postgres+aws", awsConfig(proxy, "app"))),
  );
  const ping = await withAwsEnv(
    wrong,
    () => exp.ping(new AbortController().signal).then(() => undefined, (e) => e as Error),
  );
  await exp.close();
  assertMatch(ping?.message ?? "", /PAM authentication failed.*GRANT rds_iam TO the user/);
});

Deno.test("without credentials the backup fails at once, listing where the chain looked", async () => {
  await using src = await rdsLike();
  await using proxy = new IamProxy({
    backendPort: src.port,
    region: REGION,
    identities: [IDENTITY],
  });
  const err = await withAwsEnv({}, () => backup(awsConfig(proxy)).then(() => undefined, (e) => e));
  assertMatch(
    (err as Error).message,
    /^cannot sign an RDS IAM token for user "myuser" in eu-west-3: no AWS credentials found; looked in: environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.*AWS_CONTAINER_CREDENTIALS_FULL_URI.*EC2 instance metadata \(disabled by AWS_EC2_METADATA_DISABLED\)/,
  );
  assertEquals(proxy.authentications, []);
});

Deno.test("without credentials a restore fails before any tool runs, with the same one line", async () => {
  await using src = await rdsLike();
  await using dst = await rdsLike();
  await makeRoles(src);
  await makeAppDb(src, "myapp");
  await using sp = new IamProxy({ backendPort: src.port, region: REGION, identities: [IDENTITY] });
  await using dp = new IamProxy({ backendPort: dst.port, region: REGION, identities: [IDENTITY] });
  const { files } = await withAwsEnv(ENV, () => backup(awsConfig(sp, "myapp")));
  const result = await withAwsEnv({}, async () => {
    const exp = await createLogicalExporter(
      params("postgres+aws", awsConfig(dp, "", { recreate: "true" })),
    );
    try {
      return await exportAll(exp, files);
    } finally {
      await exp.close();
    }
  });
  // Every file fails at once with the one reason (said once on stderr), no tool started.
  const reasons = new Set(result.errors.values());
  assertEquals(result.errors.size, 2);
  assertEquals(reasons.size, 1);
  assertMatch(
    [...reasons][0],
    /^cannot sign an RDS IAM token for user "myuser" in eu-west-3: no AWS credentials found; looked in: /,
  );
  assertEquals(dp.authentications, []);
});
