import { assert, assertEquals, assertMatch } from "../../../helpers/assert.ts";
import {
  newRestrictKey,
  PSQL_REFUSED,
  refusalMessage,
  restrictSupported,
  scriptGuard,
  type ScriptGuardOptions,
  ScriptRefusedError,
} from "../../../../src/logical/restore/psql_guard.ts";
import { psqlArgs } from "../../../../src/logical/restore/psql_argv.ts";
import { parseExportConfig } from "../../../../src/pg/config.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Outcome {
  out?: string;
  /** "line N \\cmd" (or "line N" and the start of the reason) when refused. */
  refused?: string;
  statements: number;
}

/** Runs `script` through the guard cut into the given chunks. */
function guard(script: string | Uint8Array, cuts: number[] = [], opts: ScriptGuardOptions = {}) {
  const bytes = typeof script === "string" ? enc.encode(script) : script;
  const g = scriptGuard(opts);
  const w = g.transform.writable.getWriter();
  const r = g.transform.readable.getReader();
  const parts: Uint8Array[] = [];
  const reading = (async () => {
    for (;;) {
      const { value, done } = await r.read();
      if (done) return;
      parts.push(value);
    }
  })();
  return (async (): Promise<Outcome> => {
    let refused: string | undefined;
    try {
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        await w.write(bytes.slice(at, cut));
        at = cut;
      }
      await w.close();
      await reading;
    } catch (e) {
      if (!(e instanceof ScriptRefusedError)) throw e;
      refused = `line ${e.line} ${e.command ?? e.detail.slice(0, 20)}`;
      await reading.catch(() => {});
    }
    const out = refused ? undefined : dec.decode(concat(parts));
    return { out, refused, statements: g.result().statements };
  })();
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * The outcome of `script` whole, asserting it is the same cut at every byte
 * and byte by byte (but for how many statements were passed on before a
 * refusal, which depends on the cuts).
 */
async function everyCut(script: string, opts: ScriptGuardOptions = {}): Promise<Outcome> {
  const whole = await guard(script, [], opts);
  const same = (o: Outcome) => ({ out: o.out, refused: o.refused });
  const n = enc.encode(script).length;
  for (let k = 1; k < n; k++) {
    assertEquals(
      same(await guard(script, [k], opts)),
      same(whole),
      `cut at byte ${k} of ${JSON.stringify(script)}`,
    );
  }
  const bytes = Array.from({ length: n - 1 }, (_, i) => i + 1);
  assertEquals(same(await guard(script, bytes, opts)), same(whole));
  return whole;
}

async function passes(script: string, opts: ScriptGuardOptions = {}) {
  const r = await everyCut(script, opts);
  assertEquals(r.refused, undefined, `refused ${JSON.stringify(script)}`);
  if (opts.restrictKey === undefined) assertEquals(r.out, script, "changed the script");
}

async function refuses(script: string, expected: string, opts: ScriptGuardOptions = {}) {
  const r = await everyCut(script, opts);
  assertEquals(r.refused, expected, `for ${JSON.stringify(script)}`);
}

Deno.test("scriptGuard() lets backslashes in strings, identifiers, dollar quotes and comments through", async () => {
  await passes("SELECT 'a \\! b', \"c \\o d\";\n");
  await passes("SELECT E'it\\'s \\\\ \\! x';\nSELECT 'x''\\! y';\n");
  await passes("DO $f$ BEGIN RAISE NOTICE '\\!'; END $f$;\nSELECT $$ \\i /etc/passwd $$;\n");
  await passes("SELECT $a$ $b$ \\! $b$ \\! $a$;\n"); // another tag inside does not end it
  await passes("-- \\! a comment\n/* \\! /* nested */ \\o |x */ SELECT 1;\n");
  await passes("SELECT 1 \\; SELECT 2;\nSELECT 'a' \\:x;\n"); // "\;" and "\:" are not commands
  await passes("SELECT arr[1:n], x::text, :'FOO', :\"FOO\" FROM t;\n"); // slices, casts, quoted values
  // psql continues E'...' over whitespace holding a carriage return: \' is still escaped.
  await passes("SELECT E'a'\r'\\' \\! x';\n");
});

Deno.test("scriptGuard() refuses a meta-command outside literals, naming its line", async () => {
  await refuses("SELECT 1;\n\\! touch /tmp/x\n", "line 2 \\!");
  await refuses("SELECT 1 \\g |touch /tmp/x\n", "line 1 \\g");
  await refuses("SELECT 1;\nSELECT 2 \\gx\n", "line 2 \\gx");
  await refuses("SELECT E'a\\\\' \\! x\n", "line 1 \\!"); // E'a\\' ends: the backslash was escaped
  await refuses("SELECT x$$ \\! y $$;\n", "line 1 \\!"); // x$$ is an identifier, not a dollar quote
  await refuses("SELECT $1 \\o |x\n", "line 1 \\o");
  await refuses("-- comment\r\\! x\n", "line 1 \\!"); // psql's -- comment ends at a carriage return
  await refuses("/* a */ */ \\w /tmp/x\n", "line 1 \\w");
  // No continuation across a line: '\' is a whole string ('a\' is left to the next test).
  await refuses("SELECT 'a'\n'\\' \\! x';\n", "line 2 \\!", { restrictKey: "K" });
  await refuses("SELECT E'a'\n'\\' \\! x';\n", "line 2 \\!", { restrictKey: "K" });
  await refuses("SELECT 1;\n\\\n", "line 2 \\");
  await refuses("SELECT 1;\n\\copy t from program 'id'", "line 2 \\copy");
});

Deno.test("scriptGuard() skips COPY ... FROM stdin data up to its \\. line, and only then", async () => {
  const copy = "COPY t (a) FROM stdin;\nx\\\\y\n\\N\n\\! not a command here\n\\.\n";
  await passes(copy);
  await passes(`${copy}SELECT 1;\n`);
  await refuses(`${copy}\\! x\n`, "line 6 \\!");
  await passes("copy t from STDIN with (format csv);\r\n\\x,\\y\r\n\\.\r\n");
  // The rest of the COPY line runs after the data; two COPYs on one line read two blocks.
  await passes("COPY a FROM stdin; COPY b FROM stdin;\n\\N\n\\.\n\\N\n\\.\nSELECT 1;\n");
  await refuses("COPY a FROM stdin; COPY b FROM stdin;\n\\N\n\\.\n\\N\n\\.\n\\! x\n", "line 6 \\!");
  // Not COPY FROM stdin: the next lines are script.
  await refuses("COPY t FROM 'stdin';\n\\! x\n", "line 2 \\!");
  await refuses("COPY (SELECT 1) TO stdout;\n\\! x\n", "line 2 \\!");
  await refuses("SELECT 'COPY t FROM stdin;';\n\\! x\n", "line 2 \\!");
  // A semicolon inside an SQL-standard function body does not send the statement (psql 14+).
  const body = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC; COPY t FROM stdin;\n";
  await refuses(`${body}\\! x\nEND;\n`, "line 2 \\!");
  // psql 13 has no such rule: the COPY is sent, and its data follows.
  await passes(`${body}\\! x\n\\.\n`, { psqlMajor: 13 });
});

Deno.test("scriptGuard() refuses psql variables whose value psql would read as script", async () => {
  await refuses("SELECT :LAST_ERROR_MESSAGE;\n", "line 1 :LAST_ERROR_MESSAGE");
  await refuses("SELECT 1;\nSELECT :DBNAME\n", "line 2 :DBNAME");
  // This one even in a string, a comment or COPY data: psql may read those as script.
  await refuses("SELECT 1;\nSELECT ':LAST_ERROR_MESSAGE';\n", "line 2 :LAST_ERROR_MESSAGE");
  await refuses("COPY t FROM stdin;\na:LAST_ERROR_MESSAGE\n\\.\n", "line 2 :LAST_ERROR_MESSAGE");
  await passes("SELECT :lower, ':LAST_ERROR_CODE', :'LAST_ERROR_MESSAGE';\n");
});

Deno.test("scriptGuard() allows \\connect and \\encoding only as pg_dump writes them", async () => {
  await passes('SELECT 1;\n\\connect app\n\\c "Upper"\n');
  await passes(
    "\\encoding SQL_ASCII\n\\connect -reuse-previous=on \"dbname='we\\'ird\\\\\\\\db'\"\nSELECT 1;\n",
  );
  for (
    const bad of [
      '\\connect "host=evil dbname=app"',
      "\\connect app postgres evil.example",
      "\\connect -reuse-previous=on \"dbname='app' host=evil\"",
      "\\c postgresql://evil/app",
      "\\connect `id`",
      "\\connect :DBNAME",
      "\\connect app \\! x",
      "\\encoding `id`",
      "\\restrict `id`",
    ]
  ) {
    const name = bad.slice(0, bad.search(/[ ]/));
    await refuses(`SELECT 1;\n${bad}\n`, `line 2 ${name}`);
  }
  await refuses("SELECT 1;\n \\connect app\n", "line 2 \\connect"); // not at the line's start
  await refuses("SELECT\n\\connect app\n1;\n", "line 2 \\connect"); // inside a statement
  await refuses("SELECT 1; \\connect app\n", "line 1 \\connect");
});

Deno.test("scriptGuard() drops pg_dump's \\restrict lines and wraps allowed lines in its own restricted mode", async () => {
  const script = "\\restrict AbC123\nSELECT 1;\n\\unrestrict AbC123\n\\connect app\nSELECT 2;\n";
  assertEquals((await everyCut(script)).out, "\nSELECT 1;\n\n\\connect app\nSELECT 2;\n");
  const key = newRestrictKey();
  assertMatch(key, /^[A-Za-z0-9]{48}$/);
  assert(key !== newRestrictKey());
  const wrapped = await everyCut(script, { restrictKey: key });
  assertEquals(
    wrapped.out,
    `\\restrict ${key}\n\nSELECT 1;\n\n\\unrestrict ${key}\n\\connect app\n\\restrict ${key}\nSELECT 2;\n`,
  );
  // At the very end, without a newline.
  assertEquals(
    (await guard("\\c app", [], { restrictKey: "K" })).out,
    "\\restrict K\n\\unrestrict K\n\\c app\n\\restrict K",
  );
});

Deno.test("scriptGuard() without psql's restricted mode also refuses what psql could read differently", async () => {
  // The end of 'C:\' depends on standard_conforming_strings, which a script can turn off.
  await refuses("SELECT 'C:\\';\n", "line 1 a string literal end");
  await passes("SELECT 'C:\\';\n", { restrictKey: "K" });
  await passes("SELECT 'C:\\\\';\n"); // an even run cannot end differently
  // In SJIS a backslash byte can end a character psql would not split.
  await refuses("SELECT E'\u00e9\\'';\n", "line 1 a non-ASCII characte");
  await passes("SELECT E'\u00e9\\'';\n", { restrictKey: "K" });
  await refuses(
    new TextDecoder().decode(new Uint8Array([0x53, 0x0a, 0x00, 0x0a])),
    "line 2 a NUL byte: psql wou",
  );
});

Deno.test("scriptGuard() counts the statements psql was sent and the script's own transaction ends", async () => {
  const r = scriptGuard({ foldsTransactionLines: true });
  const script =
    "SELECT 1;\nBEGIN;\nSELECT 2\\; SELECT 3;\nCOMMIT;\n  COMMIT;  \nSELECT ';';\nend;\nSELECT 4";
  await new Response(new Blob([script]).stream().pipeThrough(r.transform)).text();
  // Whole "COMMIT;" lines are folded downstream; "end;" is not.
  assertEquals(r.result(), { statements: 7, transactionEnd: { line: 7, statement: "END" } });
  const g = scriptGuard();
  await new Response(new Blob(["COMMIT;\n"]).stream().pipeThrough(g.transform)).text();
  assertEquals(g.result().transactionEnd, { line: 1, statement: "COMMIT" });
  // Refused: only the statements of the chunks passed on before count.
  assertEquals(
    await guard("SELECT 1;\nSELECT 2;\nSELECT 3;\n\\! x\n", [10, 20]),
    { out: undefined, refused: "line 4 \\!", statements: 2 },
  );
});

Deno.test("refusalMessage() says what psql may have applied", () => {
  const e = new ScriptRefusedError(12, "psql meta-command \\! is not allowed", "\\!");
  const what = "SQL script /x.sql";
  assertEquals(
    refusalMessage(what, e, { statements: 0 }),
    "SQL script /x.sql line 12: psql meta-command \\! is not allowed; nothing of this file was applied",
  );
  assertMatch(
    refusalMessage(what, e, { statements: 3 }, { atomic: true }),
    /; nothing of this file was applied$/,
  );
  assertMatch(
    refusalMessage(what, e, { statements: 3 }, { atomic: false, breaker: "\\connect" }),
    /the part before line 12 was applied \(after \\connect it cannot run in one transaction\)/,
  );
  assertMatch(
    refusalMessage(what, e, { statements: 3, transactionEnd: { line: 4, statement: "COMMIT" } }, {
      atomic: true,
    }),
    /its own COMMIT at line 4 ended the transaction/,
  );
  assertMatch(
    refusalMessage(what, e, { statements: 3 }),
    /statements before line 12 may have been applied/,
  );
});

Deno.test("restrictSupported() knows the releases with \\restrict; PSQL_REFUSED matches psql's refusals", () => {
  const v = (s: string) => restrictSupported(`psql (PostgreSQL) ${s}`);
  assertEquals(
    ["13.21", "13.22", "14.18", "14.19", "15.13", "15.14 (Debian)", "16.9", "16.10", "17.5", "17.6"]
      .map(v),
    [false, true, false, true, false, true, false, true, false, true],
  );
  assertEquals(["18beta2", "18beta3", "18.0", "19devel", "12.22"].map(v), [
    false,
    true,
    true,
    true,
    false,
  ]);
  assertEquals(restrictSupported("not psql"), false);
  assert(PSQL_REFUSED.test("backslash commands are restricted; only \\unrestrict is allowed"));
  assert(PSQL_REFUSED.test("psql:<stdin>:3: error: invalid command \\foo"));
  assert(PSQL_REFUSED.test("\\unrestrict: wrong key"));
  assert(!PSQL_REFUSED.test(" a row \\x"));
});

Deno.test("psqlArgs(): a psql without restricted mode stops at the first error, a failed COPY among them", () => {
  const opts = parseExportConfig({ location: "postgres://u@h/" }, "postgres");
  for (const guarded of [false, true]) {
    const args = psqlArgs(opts, "app", guarded, false);
    assertEquals(args.slice(-4), ["-v", "ON_ERROR_STOP=1", "-d", "dbname='app'"]);
    assert(!args.includes("ON_ERROR_ROLLBACK=on"));
    assert(!psqlArgs(opts, "app", guarded, true).includes("ON_ERROR_STOP=1"));
  }
});
