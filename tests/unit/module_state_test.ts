// No module-level mutable state outside src/main/: what a process shares
// lives in the Runtime that an entry makes (src/proc/runtime.ts), or in the
// connector instance, and is passed down (docs/DESIGN.md, "Where state
// lives"). This check reads every src/**/*.ts but src/main/ and the generated
// src/kloset/gen/, and flags, at the top level:
// - `let` and `var`;
// - a `const` made with `new Map`, `new Set`, `new WeakMap`, `new WeakSet`,
//   `new Array`, or an array or object literal, unless its declared type is
//   readonly (`ReadonlySet`, `ReadonlyMap`, `readonly T[]`, `Readonly<...>`)
//   or its value is `as const` or `Object.freeze(...)`. A literal that only
//   starts an expression (`[...].join("\n")`) is the expression's value.
// Top level is column 0: deno fmt indents everything nested.

import { assertEquals } from "./../helpers/assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Folders the check skips: the entries (which own the process) and generated code. */
const SKIPPED: readonly string[] = ["src/main/", "src/kloset/gen/"];

/** One flagged declaration. */
interface Finding {
  /** file:line */
  at: string;
  text: string;
}

function* files(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* files(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

const MUTABLE_INIT = /^(?:new\s+(?:Map|Set|WeakMap|WeakSet|Array)\b|\[|\{)/;
const READONLY_TYPE = /\bReadonly(?:Set|Map|Array)?\b|\breadonly\s/;

/** Index of the initialiser's `=` in a declaration (not `=>`, `==`, `<=`, ...), or -1. */
function assignmentAt(decl: string): number {
  let depth = 0;
  for (let i = 0; i < decl.length; i++) {
    const c = decl[i];
    if ("<([{".includes(c)) depth++;
    else if (">)]}".includes(c) && decl[i - 1] !== "=") depth--;
    else if (
      c === "=" && depth === 0 && decl[i + 1] !== ">" && decl[i + 1] !== "=" &&
      !"=!<>".includes(decl[i - 1])
    ) return i;
  }
  return -1;
}

/** The lines of the statement that starts at `lines[start]`: up to a column-0 line ending in `;`. */
function statementAt(lines: string[], start: number): string {
  let end = start;
  while (end < lines.length - 1 && !lines[end].trimEnd().endsWith(";")) {
    end++;
    if (/^\S/.test(lines[end]) && lines[end].trimEnd().endsWith(";")) break;
  }
  return lines.slice(start, end + 1).join("\n");
}

/**
 * Where the bracket opened at `text[open]` closes, skipping strings, comments
 * and regular expressions; -1 if it does not.
 */
function closingAt(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === "`") i = quoteEnd(text, i);
    else if (c === "/" && text[i + 1] === "/") {
      i = text.indexOf("\n", i) < 0 ? text.length : text.indexOf("\n", i);
    } else if (c === "/" && text[i + 1] === "*") i = text.indexOf("*/", i + 2) + 1;
    else if (c === "/" && /[[,(=:!&|?{};]\s*$/.test(text.slice(0, i))) i = regexEnd(text, i);
    else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c) && --depth === 0) return i;
  }
  return -1;
}

/** The index of the quote closing the string opened at `text[start]`. */
function quoteEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === text[start]) return i;
  }
  return text.length;
}

/** The index of the slash closing the regular expression opened at `text[start]`. */
function regexEnd(text: string, start: number): number {
  let inClass = false;
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") i++;
    else if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
    else if (c === "/" && !inClass) return i;
  }
  return text.length;
}

/**
 * Whether `init` is a literal array or object as a whole (what follows its
 * closing bracket, if anything, is `as const` or `satisfies`), not the
 * start of an expression such as `[...].join("\n")`.
 */
function wholeLiteral(init: string): boolean {
  const close = closingAt(init, 0);
  if (close < 0) return true;
  const rest = init.slice(close + 1).replace(/\/\/.*$/gm, "").trim();
  return rest === "" || /^(?:as|satisfies)\b/.test(rest);
}

/** Why the top-level declaration `statement` is mutable module state, or undefined. */
function mutability(statement: string): string | undefined {
  const m = statement.match(/^(?:export\s+)?(let|var|const)\s/);
  if (!m) return undefined;
  if (m[1] !== "const") return `top-level ${m[1]}`;
  const eq = assignmentAt(statement);
  if (eq < 0) return undefined;
  const type = statement.slice(0, eq);
  const init = statement.slice(eq + 1).trim().replace(/;\s*$/, "");
  if (!MUTABLE_INIT.test(init)) return undefined;
  if (/^[[{]/.test(init) && !wholeLiteral(init)) return undefined;
  if (READONLY_TYPE.test(type)) return undefined;
  if (/\bas\s+const\b/.test(init.slice(init.lastIndexOf("as const")))) return undefined;
  return "top-level const holding a mutable collection or object (type it readonly)";
}

/** Every top-level mutable declaration in `source`, named as `file`:line. */
export function moduleState(file: string, source: string): Finding[] {
  const lines = source.split("\n");
  const found: Finding[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^(?:export\s+)?(?:let|var|const)\s/.test(lines[i])) continue;
    const why = mutability(statementAt(lines, i));
    if (why) found.push({ at: `${file}:${i + 1}`, text: `${why}: ${lines[i].trim()}` });
  }
  return found;
}

Deno.test("the check flags mutable module state and lets constants through", () => {
  const source = [
    "let counter = 0;",
    "export var legacy = 1;",
    "const cache = new Map<string, boolean>();",
    "const live = new Set<string>();",
    "const seen = new WeakMap<object, number>();",
    "const queue: string[] = [];",
    "const table = {",
    "  a: 1,",
    "};",
    "const SIZES = new Array(3);",
    'const NAMES: ReadonlySet<string> = new Set(["a"]);',
    "const BY_NAME: ReadonlyMap<string, number> = new Map();",
    'const LIST: readonly string[] = ["a"];',
    "const CODES = {",
    "  OK: 0,",
    "} as const;",
    'const FROZEN = Object.freeze(["a"]);',
    "const RECORD: Readonly<Record<string, number>> = { a: 1 };",
    "const LIMIT = 1024;",
    "const enc = new TextEncoder();",
    "const fn = (x: number) => [x];",
    "const SCRIPT = [",
    '  "SELECT 1; -- [x]",',
    '].join("\\n");',
    "const TABLE = [",
    '  [/[(]/, "paren"],',
    "];",
    "function f() {",
    "  let local = 0;",
    "  const inner = new Map();",
    "  return [local, inner];",
    "}",
  ].join("\n");
  assertEquals(moduleState("x.ts", source).map((f) => f.at), [
    "x.ts:1",
    "x.ts:2",
    "x.ts:3",
    "x.ts:4",
    "x.ts:5",
    "x.ts:6",
    "x.ts:7",
    "x.ts:10",
    "x.ts:25",
  ]);
});

Deno.test("src/ outside src/main/ holds no mutable module state", () => {
  const found: string[] = [];
  for (const file of files(`${ROOT}src`)) {
    const rel = file.slice(ROOT.length);
    if (SKIPPED.some((s) => rel.startsWith(s))) continue;
    for (const f of moduleState(rel, Deno.readTextFileSync(file))) found.push(`${f.at}: ${f.text}`);
  }
  assertEquals(found, []);
});
