// A CA certificate that signed nothing a test cluster serves: given as
// ssl_root_cert, it makes certificate verification fail the way a wrong CA
// file does in production (the cluster's own CA comes from cluster.ts).

import { makeCa } from "../../harness/cluster.ts";

/** A fresh self-signed CA in a temp dir; dispose to remove it. */
export async function strangerCa(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "plakar-pg-stranger-ca-" });
  try {
    await makeCa(dir, "stranger-ca");
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  return {
    path: `${dir}/ca.crt`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}
