// Errors are told apart by their class, kind or SQLSTATE, never by their
// words: a reworded message must not change what the code does. The words
// are read only where nothing else exists, each in one named function: the
// client tools' stderr (they print no SQLSTATE), and npm:pg's and the AWS
// SDK's errors that carry no code.

import { assertEquals } from "../helpers/assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The functions allowed to read an error's words, by file. */
const READERS: Record<string, string[]> = {
  "src/pg/tools.ts": ["toolFailure", "ToolError"],
  "src/pg/errors.ts": ["isConnectTimeout", "tlsFailure"],
  "src/pg/iam.ts": ["noCredentialsFound"],
};

/** A line that decides something on an error's words. */
const READS_WORDS = [
  /\.test\([^)]*\b(message|reason|stderr|detail|why)\b/,
  /\b(message|reason|stderr|detail|why)\??\.(includes|startsWith|endsWith|match)\(/,
  /\.message\s*[!=]==/,
];

function* sources(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "gen") yield* sources(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

/** The function or class a line is in: the nearest declaration above it. */
function enclosing(lines: string[], at: number): string | undefined {
  for (let i = at; i >= 0; i--) {
    const m = /^(?:export\s+)?(?:async\s+)?(?:function\*?|class)\s+(\w+)/.exec(lines[i]);
    if (m) return m[1];
  }
  return undefined;
}

/** Each line of `text` that reads an error's words outside the allowed readers. */
export function wordReaders(file: string, text: string): string[] {
  const lines = text.split("\n");
  const allowed = READERS[file] ?? [];
  return lines.flatMap((line, i) => {
    if (line.trimStart().startsWith("//") || line.trimStart().startsWith("*")) return [];
    if (!READS_WORDS.some((re) => re.test(line))) return [];
    const fn = enclosing(lines, i);
    return fn && allowed.includes(fn) ? [] : [`${file}:${i + 1} (${fn ?? "top level"})`];
  });
}

Deno.test("no code in src/ branches on an error's message outside the named readers", () => {
  const found = [...sources(`${ROOT}src`)].flatMap((f) =>
    wordReaders(f.slice(ROOT.length), Deno.readTextFileSync(f))
  );
  assertEquals(found, []);
});

Deno.test("the check finds a branch on a message", () => {
  const source = [
    "export function retry(e: Error): boolean {",
    '  if (e.message.includes("deadlock")) return true;',
    "  return /timeout/.test(e.message);",
    "}",
  ].join("\n");
  assertEquals(wordReaders("src/x.ts", source), ["src/x.ts:2 (retry)", "src/x.ts:3 (retry)"]);
});
