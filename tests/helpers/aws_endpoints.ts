// Local stand-ins for the AWS credential endpoints the SDK's default chain
// asks on EC2 and ECS, on 127.0.0.1, for tests without AWS. The SDK is
// pointed at them with its own override variables:
// - EC2 instance metadata (IMDSv2): AWS_EC2_METADATA_SERVICE_ENDPOINT. A PUT
//   /latest/api/token hands out a session token; the credential paths answer
//   only requests that carry it (v1 requests get 401, as with IMDSv2 required).
// - ECS container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI (the SDK
//   accepts a loopback address there), with AWS_CONTAINER_AUTHORIZATION_TOKEN
//   checked when the server is given one.
// Both serve the same shape of temporary credentials: key, secret, session
// token and an expiry an hour ahead. Each counts the credential requests it
// answered.

import type { TestCredentials } from "./iam_proxy.ts";

/** A local HTTP server; dispose to stop it. */
abstract class LocalEndpoint implements AsyncDisposable {
  /** Credential documents handed out. */
  served = 0;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly port: number;

  constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => this.handle(req),
    );
    this.port = this.#server.addr.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected abstract handle(req: Request): Response | Promise<Response>;

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server.shutdown();
  }
}

/** The credentials document both endpoints return. */
function document(creds: TestCredentials, extra: Record<string, string> = {}): string {
  return JSON.stringify({
    ...extra,
    AccessKeyId: creds.accessKeyId,
    SecretAccessKey: creds.secretAccessKey,
    Token: creds.sessionToken ?? "",
    Expiration: new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, "Z"),
  });
}

/** EC2 instance metadata, IMDSv2 only, with one role. */
export class Ec2Metadata extends LocalEndpoint {
  readonly role = "plakar-test-role";
  readonly #sessions = new Set<string>();
  constructor(readonly credentials: TestCredentials) {
    super();
  }

  handle(req: Request): Response {
    const path = new URL(req.url).pathname;
    if (req.method === "PUT" && path === "/latest/api/token") {
      if (!req.headers.get("x-aws-ec2-metadata-token-ttl-seconds")) {
        return new Response("missing ttl", { status: 400 });
      }
      const token = crypto.randomUUID();
      this.#sessions.add(token);
      return new Response(token);
    }
    if (!this.#sessions.has(req.headers.get("x-aws-ec2-metadata-token") ?? "")) {
      return new Response("", { status: 401 });
    }
    const base = "/latest/meta-data/iam/security-credentials/";
    if (req.method === "GET" && path === base) return new Response(this.role);
    if (req.method === "GET" && path === base + this.role) {
      this.served++;
      return new Response(
        document(this.credentials, {
          Code: "Success",
          LastUpdated: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          Type: "AWS-HMAC",
        }),
      );
    }
    return new Response("", { status: 404 });
  }
}

/** The ECS container credentials endpoint (what AWS_CONTAINER_CREDENTIALS_FULL_URI names). */
export class ContainerCredentials extends LocalEndpoint {
  readonly path = "/v2/credentials/plakar-test";
  constructor(readonly credentials: TestCredentials, readonly authorization?: string) {
    super();
  }

  get fullUri(): string {
    return `${this.url}${this.path}`;
  }

  handle(req: Request): Response {
    if (new URL(req.url).pathname !== this.path || req.method !== "GET") {
      return new Response("", { status: 404 });
    }
    if (this.authorization && req.headers.get("authorization") !== this.authorization) {
      return new Response(JSON.stringify({ Code: "AccessDenied", Message: "bad token" }), {
        status: 403,
      });
    }
    this.served++;
    return new Response(document(this.credentials));
  }
}

/**
 * Runs `fn` in this process with exactly `vars` as its AWS_* environment (the
 * others removed, instance metadata disabled unless `vars` says otherwise)
 * and an empty HOME, so no credentials of the machine leak into a test.
 */
export async function withAwsEnv<T>(
  vars: Record<string, string>,
  fn: () => Promise<T>,
): Promise<T> {
  const saved = Deno.env.toObject();
  const home = await Deno.makeTempDir({ prefix: "iam-test-home-" });
  for (const k of Object.keys(saved)) if (k.startsWith("AWS_")) Deno.env.delete(k);
  Deno.env.set("HOME", home);
  Deno.env.set("AWS_EC2_METADATA_DISABLED", "true");
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(Deno.env.toObject())) {
      if (k.startsWith("AWS_") && !(k in saved)) Deno.env.delete(k);
    }
    for (const [k, v] of Object.entries(saved)) Deno.env.set(k, v);
    await Deno.remove(home, { recursive: true });
  }
}

/** The environment of a plugin run by plakar: PATH and HOME, plus exactly these AWS_* variables. */
export function cleanAwsEnv(home: string, vars: Record<string, string>): Record<string, string> {
  return { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: home, ...vars };
}
