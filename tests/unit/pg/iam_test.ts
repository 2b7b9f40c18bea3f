// postgres+aws://: its configuration, and RDS IAM tokens checked against an
// independent recomputation of their SigV4 signature (no AWS needed: signing
// is local).

import { assert, assertEquals, assertMatch, assertThrows } from "../../helpers/assert.ts";
import { parseExportConfig, parseImportConfig } from "../../../src/pg/config.ts";
import { acceptedNames } from "../../../src/pg/options.ts";
import { ConfigError } from "../../../src/errors.ts";
import {
  credentialSources,
  describeTokenError,
  hostRegion,
  iamPasswordProvider,
  IamTokenError,
  regionMismatchWarning,
  weakTlsWarning,
} from "../../../src/pg/iam.ts";
import { describeConnectError } from "../../../src/pg/errors.ts";
import type { ConnConfig } from "../../../src/pg/conn.ts";
import { parseToken, type TestCredentials, tokenProblem } from "../../helpers/iam_proxy.ts";
import { withAwsEnv } from "../../helpers/aws_endpoints.ts";

const AWS = { location: "postgres+aws://iam_user@db.example.com:5433/app", region: "eu-west-3" };

function configError(fn: () => unknown, option: string, includes: string): void {
  const e = assertThrows(fn, ConfigError);
  assertEquals(e.option, option);
  assert(e.message.includes(includes), `"${e.message}" lacks "${includes}"`);
  assert(!e.message.includes("\n"), "a config error is one line");
}

Deno.test("postgres+aws:// takes user, host, port and database from the URI and region from region=", () => {
  for (const parse of [parseImportConfig, parseExportConfig]) {
    const o = parse(AWS, "postgres+aws");
    assertEquals(
      [o.conn.username, o.conn.host, o.conn.port, o.database, o.iam?.region, o.conn.password],
      ["iam_user", "db.example.com", 5433, "app", "eu-west-3", undefined],
    );
  }
  const o = parseImportConfig(
    { location: "postgres+aws://db.example.com", username: "iam_user", region: "us-east-1" },
    "postgres+aws",
  );
  assertEquals([o.conn.username, o.conn.port, o.database], ["iam_user", 5432, undefined]);
});

Deno.test("postgres+aws:// refuses a password, in the URI or as an option, naming password", () => {
  for (const parse of [parseImportConfig, parseExportConfig]) {
    configError(
      () =>
        parse(
          { ...AWS, location: "postgres+aws://iam_user:pw@db.example.com/app" },
          "postgres+aws",
        ),
      "location",
      "no password",
    );
    configError(() => parse({ ...AWS, password: "pw" }, "postgres+aws"), "password", "IAM token");
    configError(() => parse({ ...AWS, password: "" }, "postgres+aws"), "password", "remove it");
  }
  assert(!acceptedNames("importer:postgres+aws").includes("password"));
  assert(acceptedNames("exporter:postgres+aws").includes("region"));
  assert(!acceptedNames("importer:postgres").includes("region"));
});

/** Runs `fn` with AWS_REGION set to `value` (or removed), restoring it after. */
function withRegionEnv<T>(value: string | undefined, fn: () => T): T {
  const saved = Deno.env.get("AWS_REGION");
  if (value === undefined) Deno.env.delete("AWS_REGION");
  else Deno.env.set("AWS_REGION", value);
  try {
    return fn();
  } finally {
    if (saved === undefined) Deno.env.delete("AWS_REGION");
    else Deno.env.set("AWS_REGION", saved);
  }
}

Deno.test("postgres+aws:// requires region and username", () => {
  const { region: _, ...noRegion } = AWS;
  withRegionEnv(undefined, () => {
    configError(() => parseImportConfig(noRegion, "postgres+aws"), "region", "required");
    configError(() => parseExportConfig(noRegion, "postgres+aws"), "region", "AWS_REGION");
  });
  configError(
    () => parseImportConfig({ ...AWS, region: "Paris" }, "postgres+aws"),
    "region",
    "e.g.",
  );
  configError(
    () =>
      parseImportConfig(
        { location: "postgres+aws://db.example.com", region: "eu-west-3" },
        "postgres+aws",
      ),
    "username",
    "required",
  );
});

Deno.test("AWS_REGION stands in for region= (the reference integration's documentation: 'or set region= in the source config'); the option wins", () => {
  const { region: _, ...noRegion } = AWS;
  withRegionEnv("ap-southeast-2", () => {
    assertEquals(parseImportConfig(noRegion, "postgres+aws").iam?.region, "ap-southeast-2");
    assertEquals(parseExportConfig(AWS, "postgres+aws").iam?.region, "eu-west-3");
  });
  withRegionEnv("Sydney", () => {
    configError(() => parseImportConfig(noRegion, "postgres+aws"), "region", "(from AWS_REGION)");
  });
});

Deno.test("a region that is not the one in the RDS host name is warned about", () => {
  const host = "mydb.cluster-xyz.eu-west-3.rds.amazonaws.com";
  assertEquals(hostRegion(host), "eu-west-3");
  assertEquals(hostRegion("db.example.com"), undefined);
  assertEquals(regionMismatchWarning(host, "eu-west-3"), undefined);
  assertEquals(regionMismatchWarning("127.0.0.1", "us-east-1"), undefined);
  assertMatch(
    regionMismatchWarning(host, "us-east-1") ?? "",
    /^region=us-east-1 but the host .* is in eu-west-3: .*set region=eu-west-3$/,
  );
});

Deno.test("postgres+aws:// excludes rdsadmin unless exclude_databases says otherwise", () => {
  assertEquals(parseImportConfig(AWS, "postgres+aws").excludeDatabases, ["rdsadmin"]);
  assertEquals(
    parseImportConfig({ ...AWS, exclude_databases: "" }, "postgres+aws").excludeDatabases,
    [],
  );
  assertEquals(
    parseImportConfig({ ...AWS, exclude_databases: "a, b" }, "postgres+aws").excludeDatabases,
    ["a", "b"],
  );
  assertEquals(
    parseImportConfig({ location: "postgres://h/" }, "postgres").excludeDatabases,
    [],
  );
});

Deno.test("an ssl_mode weaker than require gets one warning that IAM authentication needs TLS", () => {
  const conn = (sslMode: ConnConfig["sslMode"]): ConnConfig => ({
    host: "h",
    port: 5432,
    sslMode,
    connectTimeout: 10,
  });
  for (const mode of ["disable", "allow", "prefer"] as const) {
    const w = weakTlsWarning(conn(mode));
    assertMatch(w ?? "", new RegExp(`^ssl_mode=${mode}: RDS IAM authentication needs .*require`));
  }
  for (const mode of ["require", "verify-ca", "verify-full"] as const) {
    assertEquals(weakTlsWarning(conn(mode)), undefined);
  }
  // The default (prefer) warns: the reference integration's documented examples all set ssl_mode=require.
  assertEquals(parseImportConfig(AWS, "postgres+aws").conn.sslMode, "prefer");
});

const CREDS: TestCredentials = {
  accessKeyId: "AKIAPLAKARTEST0001",
  secretAccessKey: "plakar/test/secret/key/0000000000000000",
};

const CONN: ConnConfig = {
  host: "mydb.cluster-xyz.eu-west-3.rds.amazonaws.com",
  port: 5432,
  username: "myuser",
  sslMode: "require",
  connectTimeout: 10,
};
const EXPECT = {
  host: CONN.host,
  port: CONN.port,
  user: "myuser",
  region: "eu-west-3",
  credentials: CREDS,
};

Deno.test("a token is a presigned rds-db connect request whose signature recomputes independently", async () => {
  const before = Math.floor(Date.now() / 1000) * 1000;
  const token = await withAwsEnv({
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
  }, () => iamPasswordProvider(CONN, "eu-west-3")());
  const after = Date.now();
  const t = parseToken(token);
  assertEquals(
    [t.host, t.port, t.user, t.region, t.service, t.action, t.expires, t.signedHeaders],
    [CONN.host, 5432, "myuser", "eu-west-3", "rds-db", "connect", 900, "host"],
  );
  assertEquals(t.accessKeyId, CREDS.accessKeyId);
  assertEquals(t.securityToken, undefined);
  assert(t.date.getTime() >= before && t.date.getTime() <= after, `X-Amz-Date ${t.amzDate}`);
  assertEquals(t.scopeDate, t.amzDate.slice(0, 8));
  assertEquals(await tokenProblem(token, EXPECT), undefined);
});

Deno.test("a token is refused for another secret, host, port, user or region, and once expired", async () => {
  const token = await withAwsEnv({
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
  }, () => iamPasswordProvider(CONN, "eu-west-3")());
  const t = parseToken(token);
  const problem = (change: Partial<typeof EXPECT> & { now?: Date; maxAgeSeconds?: number }) =>
    tokenProblem(token, { ...EXPECT, ...change });
  assertEquals(
    await problem({ credentials: { ...CREDS, secretAccessKey: "wrong" } }),
    "signature mismatch",
  );
  assertMatch(await problem({ host: "other.example.com" }) ?? "", /^host /);
  assertMatch(await problem({ port: 5433 }) ?? "", /^port /);
  assertMatch(await problem({ user: "postgres" }) ?? "", /^user /);
  assertMatch(await problem({ region: "us-east-1" }) ?? "", /^region /);
  assertEquals(await problem({ now: new Date(t.date.getTime() + 899_000) }), undefined);
  assertEquals(await problem({ now: new Date(t.date.getTime() + 900_000) }), "expired");
  assertEquals(
    await problem({ now: new Date(t.date.getTime() + 3000), maxAgeSeconds: 2 }),
    "older than 2s",
  );
  // A tampered token: same parts, one character of the signature changed.
  const flipped = token.replace(
    /X-Amz-Signature=(.)/,
    (_, c) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`,
  );
  assertEquals(await tokenProblem(flipped, EXPECT), "signature mismatch");
});

Deno.test("temporary credentials put AWS_SESSION_TOKEN in the token, and it is signed", async () => {
  const creds = { ...CREDS, sessionToken: "FwoGZXIvYXdzEBYaDPLAKARTESTSESSION" };
  const token = await withAwsEnv({
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_SESSION_TOKEN: creds.sessionToken,
  }, () => iamPasswordProvider(CONN, "eu-west-3")());
  assertEquals(parseToken(token).securityToken, creds.sessionToken);
  assertEquals(await tokenProblem(token, { ...EXPECT, credentials: creds }), undefined);
  assertEquals(await tokenProblem(token, EXPECT), "unexpected session token");
});

Deno.test("each call signs anew: tokens signed in different seconds differ", async () => {
  const tokens = await withAwsEnv({
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
  }, async () => {
    const provider = iamPasswordProvider(CONN, "eu-west-3");
    const first = await provider();
    // X-Amz-Date has one-second resolution: wait into the next second.
    await new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
    return [first, await provider()];
  });
  assert(tokens[0] !== tokens[1], "the second call returned the first token");
  assert(parseToken(tokens[1]).date > parseToken(tokens[0]).date);
  for (const t of tokens) assertEquals(await tokenProblem(t, EXPECT), undefined);
});

Deno.test("no credentials: one line that lists where the chain looked", async () => {
  const err = await withAwsEnv({}, async () => {
    try {
      await iamPasswordProvider(CONN, "eu-west-3")();
    } catch (e) {
      return e;
    }
    throw new Error("a token was signed without credentials");
  });
  assert(err instanceof IamTokenError);
  const m = err.message;
  assert(!m.includes("\n"), m);
  assertMatch(
    m,
    /^cannot sign an RDS IAM token for user "myuser" in eu-west-3: no AWS credentials found; looked in: /,
  );
  for (
    const where of [
      "AWS_ACCESS_KEY_ID",
      "AWS_SESSION_TOKEN",
      "/.aws/credentials",
      "/.aws/config",
      "AWS_PROFILE",
      "AWS_WEB_IDENTITY_TOKEN_FILE",
      "AWS_CONTAINER_CREDENTIALS_FULL_URI",
      "EC2 instance metadata",
    ]
  ) assert(m.includes(where), `"${where}" missing from: ${m}`);
  // The connection error path passes it on as is.
  assertEquals(describeConnectError(CONN, "postgres", err), m);
});

Deno.test("the sources listed follow the override variables", () => {
  const env: Record<string, string> = {
    HOME: "/home/u",
    AWS_PROFILE: "backup",
    AWS_SHARED_CREDENTIALS_FILE: "/etc/aws/creds",
    AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://127.0.0.1:1",
  };
  const s = credentialSources((n) => env[n]);
  assertMatch(s, /profile "backup" in \/etc\/aws\/creds and \/home\/u\/\.aws\/config/);
  assertMatch(s, /EC2 instance metadata at http:\/\/127\.0\.0\.1:1/);
  assertMatch(
    credentialSources((n) => ({ AWS_EC2_METADATA_DISABLED: "true" } as Record<string, string>)[n]),
    /disabled by AWS_EC2_METADATA_DISABLED/,
  );
  // A source that failed (a profile not in the files) keeps the SDK's reason.
  const failed = Object.assign(new Error("Could not resolve credentials using profile: [x]"), {
    name: "CredentialsProviderError",
  });
  assertMatch(
    describeTokenError(failed, "u", "us-east-1", (n) => env[n]),
    /: the AWS credential source failed: Could not resolve credentials using profile: \[x\] \(sources in order: /,
  );
});

Deno.test("a token the server refuses says to enable IAM authentication and grant rds_iam", () => {
  const iam: ConnConfig = { ...CONN, passwordProvider: () => Promise.resolve("t") };
  const refused = Object.assign(new Error('PAM authentication failed for user "myuser"'), {
    code: "28P01",
  });
  const m = describeConnectError(iam, "postgres", refused);
  assertMatch(
    m,
    /^cannot connect to .*:5432 \(database "postgres"\) as user "myuser": PAM authentication failed for user "myuser"; the server refused the IAM token: enable IAM database authentication on the RDS instance, GRANT rds_iam TO the user/,
  );
  assert(!m.includes("\n"));
  // postgres:// keeps the server's reason alone.
  assertEquals(
    describeConnectError(CONN, "postgres", refused),
    `cannot connect to ${CONN.host}:5432 (database "postgres") as user "myuser": PAM authentication failed for user "myuser"`,
  );
});

Deno.test("the SDK's own warnings come out on one line (AWS_PROFILE and static keys both set: the profile wins)", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/credentials`;
  const other = { accessKeyId: "AKIAPLAKARPROFILE002", secretAccessKey: "profile/secret/0000" };
  await Deno.writeTextFile(
    file,
    `[p]\naws_access_key_id = ${other.accessKeyId}\naws_secret_access_key = ${other.secretAccessKey}\n`,
  );
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  let token: string;
  try {
    token = await withAwsEnv({
      AWS_PROFILE: "p",
      AWS_SHARED_CREDENTIALS_FILE: file,
      AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    }, () => iamPasswordProvider(CONN, "eu-west-3")());
  } finally {
    console.error = original;
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(await tokenProblem(token, { ...EXPECT, credentials: other }), undefined);
  const sdk = lines.filter((l) => l.includes("AWS SDK"));
  assertEquals(sdk.length, 1, lines.join("\n"));
  assertMatch(sdk[0], /^postgresql: warning: AWS SDK: .*Multiple credential sources detected/);
  assert(!sdk[0].includes("\n"));
});
