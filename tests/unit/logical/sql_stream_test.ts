import { assertEquals } from "../../helpers/assert.ts";
import { completionGuard, expectedCompletion } from "../../../src/logical/restore/completion.ts";
import { peek } from "../../../src/logical/restore/peek.ts";
import {
  idempotentRoleLine,
  idempotentRoles,
  keptRoleLine,
} from "../../../src/logical/restore/roles.ts";

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

Deno.test("idempotentRoles() skips the connected role's ALTER ROLE ... WITH, quoted or not, and only that", async () => {
  const script = [
    "CREATE ROLE app;",
    "ALTER ROLE app WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:a$b:c';",
    "CREATE ROLE postgres;",
    "ALTER ROLE postgres WITH SUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:x$y:z';",
    "ALTER ROLE postgres SET work_mem TO '8MB';",
    'ALTER ROLE "Admin ""x""" WITH NOLOGIN PASSWORD \'md5abc\';',
    "",
  ].join("\n");
  for (const size of [1, 5, 4096]) {
    let kept = 0;
    const out = await collect(
      chunked(script, size).pipeThrough(
        idempotentRoles({ keep: "postgres", onKept: () => kept++ }),
      ),
    );
    assertEquals(kept, 1);
    assertEquals(out.includes("ALTER ROLE postgres WITH SUPERUSER"), false);
    assertEquals(out.includes("x$y:z"), false);
    assertEquals(out.includes("ALTER ROLE app WITH NOSUPERUSER LOGIN PASSWORD"), true);
    assertEquals(out.includes("ALTER ROLE postgres SET work_mem TO '8MB';"), true);
    assertEquals(out.split("\n").length, script.split("\n").length);
  }
  assertEquals(
    keptRoleLine('ALTER ROLE "Admin ""x""" WITH NOLOGIN;', 'Admin "x"')?.startsWith("-- "),
    true,
  );
  assertEquals(keptRoleLine("ALTER ROLE admin WITH NOLOGIN;", "Admin"), undefined);
  assertEquals(keptRoleLine("ALTER ROLE postgresx WITH LOGIN;", "postgres"), undefined);
});

const DUMP = [
  "--",
  "-- PostgreSQL database dump",
  "--",
  "",
  "\\restrict KEY",
  "SET statement_timeout = 0;",
  "CREATE TABLE public.t (id integer, v text);",
  "COPY public.t (id, v) FROM stdin;",
  "1\tone",
  "-- PostgreSQL database dump complete",
  "\\.",
  "BEGIN;",
  "SELECT pg_catalog.lo_open('16391', 131072);",
  "COMMIT;",
  "",
  "--",
  "-- PostgreSQL database dump complete",
  "--",
  "",
  "\\unrestrict KEY",
  "",
].join("\n");

async function guarded(script: string, size: number, header = script) {
  const completion = expectedCompletion(enc(header))!;
  const guard = completionGuard(completion);
  const out = await collect(chunked(script, size).pipeThrough(guard.transform));
  return { out, ...guard.result() };
}

Deno.test("expectedCompletion() knows pg_dump's and pg_dumpall's headers, and nothing else", () => {
  assertEquals(expectedCompletion(enc(DUMP))?.line, "-- PostgreSQL database dump complete");
  assertEquals(
    expectedCompletion(enc("--\r\n-- PostgreSQL database cluster dump\r\n--\r\n"))?.line,
    "-- PostgreSQL database cluster dump complete",
  );
  assertEquals(expectedCompletion(enc("CREATE TABLE t (x int);\n")), undefined);
  assertEquals(expectedCompletion(enc("-- my notes on PostgreSQL database dump\n")), undefined);
});

Deno.test("completionGuard() wraps a complete script in one transaction and folds its own BEGIN/COMMIT into it", async () => {
  for (const size of [1, 3, 17, 100000]) {
    const r = await guarded(DUMP, size);
    assertEquals([r.complete, r.atomic], [true, true]);
    assertEquals(r.out.startsWith("BEGIN;\n--\n"), true);
    assertEquals(r.out.endsWith("\\unrestrict KEY\n\nCOMMIT;\n"), true);
    assertEquals(r.out.includes("\nBEGIN;\n"), false);
    assertEquals(r.out.includes("\nCOMMIT;\n\n--"), false);
    // Every other line passes as it was, the line count unchanged.
    assertEquals(r.out.split("\n").length, DUMP.split("\n").length + 3);
  }
});

Deno.test("completionGuard() never commits a script cut anywhere before its completion line", async () => {
  const end = DUMP.lastIndexOf("-- PostgreSQL database dump complete");
  for (const cut of [10, 60, DUMP.indexOf("1\tone") + 3, DUMP.indexOf("\\.") + 1, end, end + 20]) {
    const r = await guarded(DUMP.slice(0, cut), 7, DUMP);
    assertEquals(r.complete, false, `cut at ${cut}`);
    assertEquals(r.out.includes("COMMIT;\n"), false, `cut at ${cut}`);
  }
  // A completion line inside COPY data is data.
  const inCopy = DUMP.slice(0, DUMP.indexOf("\\.\n"));
  assertEquals((await guarded(inCopy, 4)).complete, false);
});

Deno.test("completionGuard() commits before CREATE DATABASE or \\connect and reports the script as not atomic", async () => {
  const script = [
    "--",
    "-- PostgreSQL database cluster dump",
    "--",
    "CREATE ROLE app;",
    "\\connect template1",
    "CREATE DATABASE app;",
    "--",
    "-- PostgreSQL database cluster dump complete",
    "--",
    "",
  ].join("\n");
  for (const size of [2, 1000]) {
    const r = await guarded(script, size);
    assertEquals([r.complete, r.atomic, r.breaker], [true, false, "\\connect"]);
    assertEquals(r.out.includes("CREATE ROLE app;\nCOMMIT;\n\\connect template1\n"), true);
    assertEquals(r.out.match(/COMMIT;/g)?.length, 1);
  }
});

Deno.test("completionGuard() reads COPY lines and data lines longer than its window", async () => {
  const cols = Array.from({ length: 60 }, (_, i) => `column_${i}`).join(", ");
  const long = "x".repeat(5000);
  const script = [
    "--",
    "-- PostgreSQL database dump",
    "--",
    `COPY public.wide (${cols}) FROM stdin;`,
    `1\t${long}`,
    "-- PostgreSQL database dump complete",
    "\\.",
    `COMMENT ON TABLE public.wide IS '${long}';`,
    "--",
    "-- PostgreSQL database dump complete",
    "--",
    "",
  ].join("\n");
  for (const size of [1, 50, 129, 1 << 16]) {
    const r = await guarded(script, size);
    assertEquals(r.complete, true, `chunk ${size}`);
    assertEquals(r.out, `BEGIN;\n${script}\nCOMMIT;\n`);
    const cut = await guarded(script.slice(0, script.indexOf("\\.")), size);
    assertEquals(cut.complete, false, `chunk ${size}`);
  }
});
