import { assertEquals } from "../../helpers/assert.ts";
import { idempotentRoleLine, idempotentRoles, peek } from "../../../src/logical/sql_stream.ts";

const enc = (s: string) => new TextEncoder().encode(s);
async function collect(s: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(s).text();
}
function chunked(text: string, size: number): ReadableStream<Uint8Array> {
  const bytes = enc(text);
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + size));
      off += size;
    },
  });
}

Deno.test("peek() returns the head and a stream that still yields every byte", async () => {
  const text = "0123456789".repeat(100);
  const { head, stream } = await peek(chunked(text, 7), 20);
  assertEquals(head.length >= 20, true);
  assertEquals(await collect(stream), text);
  const short = await peek(chunked("abc", 2), 512);
  assertEquals(new TextDecoder().decode(short.head), "abc");
  assertEquals(await collect(short.stream), "abc");
});

Deno.test("idempotentRoleLine() wraps CREATE ROLE so an existing role is skipped", () => {
  assertEquals(
    idempotentRoleLine("CREATE ROLE app_owner;"),
    "DO $plakar_role$ BEGIN CREATE ROLE app_owner; EXCEPTION WHEN duplicate_object THEN NULL; END $plakar_role$;",
  );
  assertEquals(
    idempotentRoleLine(`CREATE ROLE "we""ird";`).includes(`CREATE ROLE "we""ird";`),
    true,
  );
  assertEquals(idempotentRoleLine("ALTER ROLE x WITH LOGIN;"), "ALTER ROLE x WITH LOGIN;");
  assertEquals(idempotentRoleLine("CREATE ROLE x WITH LOGIN;"), "CREATE ROLE x WITH LOGIN;");
});

Deno.test("idempotentRoles() rewrites whole lines across chunk boundaries and stops at \\connect", async () => {
  const script =
    'SET a;\nCREATE ROLE r1;\nCREATE ROLE "名前";\n\\connect app\nCREATE ROLE notouch;\n';
  for (const size of [1, 3, 1000]) {
    const out = await collect(chunked(script, size).pipeThrough(idempotentRoles()));
    assertEquals(out.split("\n").length, script.split("\n").length);
    assertEquals(out.includes("DO $plakar_role$ BEGIN CREATE ROLE r1;"), true);
    assertEquals(out.includes(`DO $plakar_role$ BEGIN CREATE ROLE "名前";`), true);
    assertEquals(out.endsWith("\\connect app\nCREATE ROLE notouch;\n"), true);
  }
});
