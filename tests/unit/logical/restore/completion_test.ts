import { assertEquals } from "../../../helpers/assert.ts";
import { chunked, collectText } from "../../../helpers/streams.ts";
import { completionGuard, expectedCompletion } from "../../../../src/logical/restore/completion.ts";

const enc = (s: string) => new TextEncoder().encode(s);

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
  const out = await collectText(chunked(script, size).pipeThrough(guard.transform));
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
