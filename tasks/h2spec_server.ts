// Serves our HTTP/2 layer on a TCP port for h2spec (docs/H2SPEC.md): every
// connection gets an H2Connection whose calls, whatever their path, answer
// with one 64-byte message, echo each request message, and end with OK; the
// path /t/ConnectionError makes a connection error (INTERNAL_ERROR).
// Usage: deno run -A tasks/h2spec_server.ts [port]   (default 8443)

import { H2Connection } from "../src/kloset/h2/connection.ts";
import { Call } from "../src/kloset/rpc.ts";

const port = Number(Deno.args[0] ?? 8443);
const listener = Deno.listen({ hostname: "127.0.0.1", port });
console.error(`h2spec server on 127.0.0.1:${port}`);

async function handle(call: Call): Promise<void> {
  try {
    await call.send(new Uint8Array(64).fill(0x61));
    for (;;) {
      const m = await call.read();
      if (m === null) break;
      await call.send(m);
    }
    call.end();
  } catch (e) {
    call.fail(e);
  }
}

for await (const conn of listener) {
  const h2 = new H2Connection({
    read: (b) => conn.read(b),
    write: (b) => conn.write(b),
  }, (stream) => {
    // For checking what a client sees of a connection error (GOAWAY).
    if (stream.headers.get(":path") === "/t/ConnectionError") throw new Error("asked for it");
    void handle(new Call(stream));
  });
  h2.serve()
    .catch((e) => console.error(`connection error: ${(e as Error).message}`))
    .finally(() => {
      try {
        conn.close();
      } catch { /* already closed */ }
    });
}
