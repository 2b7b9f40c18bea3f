// Inline PEM options (ssl_cert_data, ssl_key_data, ssl_root_cert_data) become
// 0600 temp files, because libpq and the tools only read certificates from
// paths. The files live until the connector closes.

import type { ConnConfig } from "./conn.ts";
import type { InlinePem } from "./config.ts";

/** Temp files holding inline PEM content; dispose to remove them. */
export class PemFiles implements AsyncDisposable {
  readonly #dir: string | undefined;
  private constructor(dir: string | undefined) {
    this.#dir = dir;
  }

  /** Writes each inline PEM to a 0600 file and points `conn` at it. */
  static async write(conn: ConnConfig, pems: InlinePem[]): Promise<PemFiles> {
    if (pems.length === 0) return new PemFiles(undefined);
    const dir = await Deno.makeTempDir({ prefix: "plakar-pg-tls-" });
    await Deno.chmod(dir, 0o700);
    for (const { option, field, pem } of pems) {
      const path = `${dir}/${option}.pem`;
      await Deno.writeTextFile(path, pem.endsWith("\n") ? pem : pem + "\n", { mode: 0o600 });
      conn[field] = path;
    }
    return new PemFiles(dir);
  }

  async remove(): Promise<void> {
    if (this.#dir) await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}
