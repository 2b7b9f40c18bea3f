// A parsed connection made usable by the client tools and the catalog client:
// postgres+aws:// is postgres:// with a password provider attached (a fresh
// IAM token per connection), and inline PEM options become files because
// libpq reads certificates only from paths.

import type { ParsedConn } from "./config.ts";
import { iamPasswordProvider } from "./iam.ts";
import { PemFiles } from "./pem_files.ts";

/** Attaches the password provider the configuration asks for, and writes inline PEM to files. */
export async function prepareConnection(parsed: ParsedConn): Promise<PemFiles> {
  if (parsed.iam) {
    parsed.conn.passwordProvider = iamPasswordProvider(parsed.conn, parsed.iam.region);
  }
  return await PemFiles.write(parsed.conn, parsed.inlinePem);
}
