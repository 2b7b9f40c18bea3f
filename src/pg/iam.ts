// postgres+aws://: the password is a short-lived RDS IAM token, signed
// in-process with the AWS SDK's standard credential chain. A token lives 15
// minutes and a long backup outlives one, so a fresh token is signed for every
// tool process and every catalog connection (toolEnv and connect both call
// the connection's passwordProvider).

import type { ConnConfig } from "./conn.ts";
import { warn } from "../log.ts";
import { oneLine, PluginError } from "../errors.ts";

/** The SDK could not sign a token: no credentials, or a credential source that failed. */
export class IamTokenError extends PluginError {
  constructor(message: string, options?: ErrorOptions) {
    super("unauthenticated", message, options);
    this.name = "IamTokenError";
  }
}

/** ssl_mode values that do not insist on TLS, which RDS IAM authentication needs. */
const WEAK_SSL_MODES: ReadonlySet<string> = new Set(["disable", "allow", "prefer"]);

/** The warning Init prints when ssl_mode does not insist on TLS; undefined when it does. */
export function weakTlsWarning(conn: ConnConfig): string | undefined {
  if (!WEAK_SSL_MODES.has(conn.sslMode)) return undefined;
  return `ssl_mode=${conn.sslMode}: RDS IAM authentication needs an encrypted connection (the token is a credential valid for 15 minutes and must not travel in cleartext); set ssl_mode=require, verify-ca or verify-full`;
}

/** The region in an RDS endpoint's host name (`….eu-west-3.rds.amazonaws.com`), if any. */
export function hostRegion(host: string): string | undefined {
  return /\.([a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com(?:\.cn)?\.?$/i.exec(host)?.[1]
    .toLowerCase();
}

/** The warning Init prints when region differs from the one in the RDS host name. */
export function regionMismatchWarning(host: string, region: string): string | undefined {
  const named = hostRegion(host);
  if (named === undefined || named === region) return undefined;
  return `region=${region} but the host ${host} is in ${named}: the token is signed for ${region} and the instance will refuse it; set region=${named}`;
}

/** Where the default credential chain looks, in its order, for the "none found" message. */
export function credentialSources(env: (name: string) => string | undefined): string {
  const home = env("HOME") ?? "~";
  const profile = env("AWS_PROFILE") ?? "default";
  const credentials = env("AWS_SHARED_CREDENTIALS_FILE") ?? `${home}/.aws/credentials`;
  const config = env("AWS_CONFIG_FILE") ?? `${home}/.aws/config`;
  const imds = env("AWS_EC2_METADATA_DISABLED") && env("AWS_EC2_METADATA_DISABLED") !== "false"
    ? "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"
    : `EC2 instance metadata at ${
      env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? "http://169.254.169.254"
    }`;
  return [
    "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary credentials)",
    `profile ${
      JSON.stringify(profile)
    } in ${credentials} and ${config} (AWS_PROFILE picks another)`,
    "web identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)",
    "the ECS container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI)",
    imds,
  ].join("; ");
}

/**
 * Whether the SDK's default chain found no credentials at all. Its last link
 * throws a CredentialsProviderError like any source that failed, so only its
 * words tell the two apart; they are read here alone.
 */
function noCredentialsFound(message: string): boolean {
  return /Could not load credentials from any providers/i.test(message);
}

/** One line for a failure of the credential chain or of signing. */
export function describeTokenError(
  err: unknown,
  username: string,
  region: string,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): string {
  const e = err as { name?: string; message?: string };
  const message = oneLine(String(e?.message ?? err));
  const what = `cannot sign an RDS IAM token for user ${JSON.stringify(username)} in ${region}`;
  if (noCredentialsFound(message)) {
    return `${what}: no AWS credentials found; looked in: ${
      credentialSources(env)
    }. Set one of them (the instance's or task's IAM role needs rds-db:connect)`;
  }
  if (e?.name === "CredentialsProviderError" || e?.name === "ProviderError") {
    return `${what}: the AWS credential source failed: ${message} (sources in order: ${
      credentialSources(env)
    })`;
  }
  return `${what}: ${message}`;
}

type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

/** The SDK's log calls: warnings and errors as one stderr line each, the rest dropped. */
const SDK_LOGGER: Readonly<Record<LogLevel, (...args: unknown[]) => void>> = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (...args: unknown[]) => warn(`AWS SDK: ${args.map(String).join(" ")}`),
  error: (...args: unknown[]) => warn(`AWS SDK: ${args.map(String).join(" ")}`),
};

/** The part of the SDK's Signer we use. */
interface TokenSigner {
  getAuthToken(): Promise<string>;
}

/**
 * A password provider that signs a fresh RDS IAM token each time it is
 * called, and prints once, now, the warnings for an ssl_mode weaker than
 * require and for a region that is not the host name's. One signer per
 * connection: the SDK's credential chain is resolved on first use and kept
 * until the credentials near their expiry (then resolved again), while the
 * token itself is signed anew on every call.
 */
export function iamPasswordProvider(conn: ConnConfig, region: string): () => Promise<string> {
  for (const w of [weakTlsWarning(conn), regionMismatchWarning(conn.host, region)]) {
    if (w) warn(w);
  }
  let signer: Promise<TokenSigner> | undefined;
  return async () => {
    signer ??= (async () => {
      // Loaded on first use: the AWS SDK is large and only postgres+aws needs it.
      const [{ Signer }, { fromNodeProviderChain }] = await Promise.all([
        import("@aws-sdk/rds-signer"),
        import("@aws-sdk/credential-providers"),
      ]);
      return new Signer({
        hostname: conn.host,
        port: conn.port,
        username: conn.username!,
        region,
        // The Signer's own default chain, with the SDK's warnings (AWS_PROFILE
        // and static keys both set, stale instance credentials) on one line.
        credentials: fromNodeProviderChain({ logger: SDK_LOGGER }),
      });
    })();
    try {
      return await (await signer).getAuthToken();
    } catch (e) {
      throw new IamTokenError(describeTokenError(e, conn.username ?? "", region), { cause: e });
    }
  };
}

/**
 * Whether a connection failure is the server refusing the password (for IAM:
 * the token). A password method fails with invalid_password; PAM, which RDS
 * uses for IAM, with invalid_authorization_specification from auth_failed
 * (the same SQLSTATE from elsewhere means no pg_hba.conf entry).
 */
export function isAuthRefused(err: unknown): boolean {
  const e = err as { code?: string; routine?: string } | undefined;
  return e?.code === "28P01" || (e?.code === "28000" && e?.routine === "auth_failed");
}

/** What to do when the server refuses a token that was signed without error. */
export const IAM_REFUSED_HINT =
  "the server refused the IAM token: enable IAM database authentication on the RDS instance, GRANT rds_iam TO the user (and give it no password), allow rds-db:connect on arn:aws:rds-db:REGION:ACCOUNT_ID:dbuser:DB_RESOURCE_ID/USER to the AWS identity in use, and check that region, host and port are the instance's";
