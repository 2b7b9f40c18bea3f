// postgres+aws://: the password is a short-lived RDS IAM token, generated
// in-process with the standard AWS credential chain before every connection
// or tool run (tokens last 15 minutes; a long backup outlives one).

import type { ConnConfig } from "./conn.ts";

/** A password provider that signs a fresh RDS IAM token each time it is called. */
export function iamPasswordProvider(conn: ConnConfig, region: string): () => Promise<string> {
  return async () => {
    // Loaded on first use: the AWS SDK is large and only postgres+aws needs it.
    const { Signer } = await import("@aws-sdk/rds-signer");
    const signer = new Signer({
      hostname: conn.host,
      port: conn.port,
      username: conn.username!,
      region,
    });
    try {
      return await signer.getAuthToken();
    } catch (e) {
      throw new Error(
        `cannot get an RDS IAM token for user ${JSON.stringify(conn.username)} in ${region}: ${
          (e as Error).message ?? e
        } (check AWS credentials: AWS_ACCESS_KEY_ID/AWS_PROFILE/instance role)`,
      );
    }
  };
}
