// The option documentation, generated from the option table
// (src/pg/options.ts): the option reference docs/options.md, whose option
// tables and syntax of list values sit between markers such as
//
//   <!-- options:importer:postgres -->
//   …
//   <!-- /options -->
//
// (only those regions are rewritten; the rest of the page is prose), and the
// man page postgresql.1 (mdoc) at the repository root. `deno task docs`
// rewrites both and the JSON Schemas; tests/unit/docs_test.ts fails when any
// of them drifts from the table.

import {
  describe,
  listSyntax,
  type OptionDecl,
  OPTIONS,
  optionsFor,
  REFUSALS,
  type Scheme,
  schemeOf,
  type Scope,
  SCOPES,
} from "../src/pg/options.ts";
import { writeSchemas } from "./schemas.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The date the man page states; bump it when the page changes. */
export const MAN_DATE = "December 7, 2026";

// ---- Markdown ----

/** A Markdown table, padded as deno fmt pads it. */
function markdownTable(header: string[], rows: string[][]): string {
  const width = header.map((h, i) => Math.max(h.length, 3, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i])).join(" | ")} |`;
  return [line(header), `| ${width.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)]
    .join("\n");
}

function defaultCell(decl: OptionDecl): string {
  if (decl.default !== undefined) return decl.default === "" ? "(empty)" : `\`${decl.default}\``;
  return decl.defaultText ?? "—";
}

/** A Markdown table cell: no pipe may end the cell early. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

/** The option table of one protocol and connector type; `link` rewrites each description's links. */
export function optionTable(scope: Scope, link = (s: string) => s): string {
  return markdownTable(
    ["Option", "Default", "Description"],
    [
      ...optionsFor(scope).map((
        d,
      ) => [`\`${d.name}\``, defaultCell(d), cell(link(describe(d, scope)))]),
      ...REFUSALS.filter((r) => r.scopes.includes(scope)).map((r) => [
        `\`${r.name}\``,
        "—",
        cell(link(r.doc)),
      ]),
    ],
  );
}

/**
 * What postgres+aws:// changes from postgres://: the options declared for it
 * alone, the ones it refuses, with the importer's or exporter's meaning.
 */
export function awsDifferencesTable(link = (s: string) => s): string {
  const rows: string[][] = [];
  const seen = new Set<OptionDecl>();
  const names = new Set<string>();
  for (const type of ["importer", "exporter"] as const) {
    const aws = `${type}:postgres+aws` as const;
    for (const d of optionsFor(aws)) {
      if (d.scopes.includes(`${type}:postgres`) || seen.has(d)) continue;
      seen.add(d);
      names.add(d.name);
      rows.push([`\`${d.name}\``, defaultCell(d), cell(link(describe(d, aws)))]);
    }
  }
  for (const r of REFUSALS) {
    if (!r.scopes.some((s) => schemeOf(s) === "postgres+aws") || names.has(r.name)) continue;
    rows.push([`\`${r.name}\``, "—", cell(link(r.doc))]);
  }
  const order = OPTIONS.map((d) => d.name);
  const rank = (row: string[]) => {
    const i = order.indexOf(row[0].slice(1, -1));
    return i < 0 ? order.length : i;
  };
  rows.sort((a, b) => rank(a) - rank(b));
  return markdownTable(["Option", "Default", "`postgres+aws://`"], rows);
}

/**
 * A paragraph wrapped at `width` as deno fmt wraps Markdown prose (a
 * code span is never broken), so that formatting the page leaves the
 * generated region as it is.
 */
export function wrapProse(text: string, width = 100): string {
  // Words are separated by spaces outside code spans.
  const words = text.match(/(?:`[^`]*`|[^\s`])+/g) ?? [];
  const lines: string[] = [];
  let line = "";
  for (const w of words) {
    if (line !== "" && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line === "" ? w : `${line} ${w}`;
  }
  if (line !== "") lines.push(line);
  return lines.join("\n");
}

/** The page that holds the generated option regions, relative to the root. */
export const OPTIONS_PAGE = "docs/options.md";

/**
 * Where each section an option's description links to (`[…](#anchor)`, as
 * written in src/pg/options.ts) lives, seen from docs/options.md: a section of
 * another page, or of the option reference itself (absent here).
 */
export const LINKED_SECTIONS: Record<string, { page: string; man: string }> = {
  "passwords": { page: "../README.md", man: "in the README" },
  "safe-clean-and-recreate": { page: "restore.md", man: "in docs/restore.md" },
  "parallel-restore-jobsn": { page: "restore.md", man: "in docs/restore.md" },
  "point-in-time-recovery": { page: "../README.md", man: "in the README" },
};

/** A description's links to sections, pointed at the page each section lives in. */
export function relink(markdown: string): string {
  return markdown.replace(/\]\(#([^)]*)\)/g, (link, anchor: string) => {
    const target = LINKED_SECTIONS[anchor];
    return target === undefined ? link : `](${target.page}#${anchor})`;
  });
}

/** The content of each option region of docs/options.md, by its marker name. */
export function optionRegions(): Map<string, string> {
  return new Map([
    ["importer:postgres", optionTable("importer:postgres", relink)],
    ["exporter:postgres", optionTable("exporter:postgres", relink)],
    ["postgres+aws", awsDifferencesTable(relink)],
    ["importer:postgres+bin", optionTable("importer:postgres+bin", relink)],
    ["importer:postgres+wal", optionTable("importer:postgres+wal", relink)],
    ["lists", wrapProse(relink(listSyntax()))],
  ]);
}

const REGION = /<!-- options:([a-z+:]+) -->\n[\s\S]*?<!-- \/options -->/g;

/** The option reference with every option region rewritten; throws on a missing or unknown region. */
export function renderOptionsPage(page: string): string {
  const regions = optionRegions();
  const found = new Set<string>();
  const out = page.replace(REGION, (_, name: string) => {
    const body = regions.get(name);
    if (body === undefined) {
      throw new RangeError(`Cannot render ${OPTIONS_PAGE}: no region ${name}`);
    }
    found.add(name);
    return `<!-- options:${name} -->\n\n${body}\n\n<!-- /options -->`;
  });
  const missing = [...regions.keys()].filter((k) => !found.has(k));
  if (missing.length) {
    throw new RangeError(`Cannot render ${OPTIONS_PAGE}: no marker for ${missing.join(", ")}`);
  }
  return out;
}

// ---- mdoc ----

/** Escapes text for a roff text line. */
function roffText(s: string): string {
  let t = s.replaceAll("\\", "\\e").replaceAll("—", "\\(em");
  // "e.g." at the end of a line is not the end of a sentence.
  if (/\be\.g\.$/.test(t)) t += "\\&";
  return /^[.']/.test(t) ? `\\&${t}` : t;
}

/** One macro argument, taken literally (never as a macro name or delimiter). */
function roffArg(s: string): string {
  const t = s.replaceAll("\\", "\\e").replaceAll('"', "\\(dq");
  return /\s/.test(t) ? `"\\&${t}"` : `\\&${t}`;
}

const CLOSING = /^[.,:;)\]?!]/;

/**
 * Sections that the man page has as well, under DESCRIPTION: a link to one
 * points the reader up the page instead of to another document.
 */
const MAN_SECTIONS = new Set(["option-values"]);

/** Where the man page sends the reader for a linked section. */
function manWhere(anchor: string): string {
  if (MAN_SECTIONS.has(anchor)) return "above";
  return LINKED_SECTIONS[anchor]?.man ?? "in the README";
}

/**
 * Markdown inline text (`code`, [link](#anchor)) as mdoc lines: code in
 * `.Li`, punctuation against it as delimiters, links as their text.
 */
export function mdocInline(markdown: string): string[] {
  const text = markdown.replace(
    /\[([^\]]+)\]\(#([^)]*)\)/g,
    (_, title: string, anchor: string) => `${title} ${manWhere(anchor)}`,
  );
  const parts = text.split("`");
  const lines: string[] = [];
  let pendingText = parts[0];
  // A macro line still open: the next code joins it when nothing separates them.
  let macro: string[] = [];
  for (let i = 1; i < parts.length; i += 2) {
    const code = parts[i];
    let before = pendingText;
    let open = false;
    if (macro.length > 0 && before === "") {
      macro.push("Ns");
    } else {
      if (macro.length > 0) lines.push(`.${macro.join(" ")}`);
      macro = [];
      // An opening parenthesis or a word glued to the code joins its line.
      open = /\($/.test(before);
      if (open) before = before.slice(0, -1);
      const glued = /(\S+)$/.exec(before);
      if (glued) {
        before = before.slice(0, glued.index);
        macro.push("No", roffArg(glued[1]), "Ns");
      }
      if (before.trim() !== "") lines.push(roffText(before.trim()));
    }
    macro.push("Li");
    if (open) macro.push("(");
    macro.push(roffArg(code));
    let after = parts[i + 1] ?? "";
    while (CLOSING.test(after)) {
      macro.push(after[0]);
      after = after.slice(1);
    }
    const word = /^[^\s`]+/.exec(after);
    if (word) {
      macro.push("Ns", roffArg(word[0]));
      after = after.slice(word[0].length);
    }
    pendingText = after;
  }
  if (macro.length > 0) lines.push(`.${macro.join(" ")}`);
  if (pendingText.trim() !== "") lines.push(roffText(pendingText.trim()));
  return lines;
}

function mdocOptionList(scope: Scope, decls: OptionDecl[], refused: string[] = []): string[] {
  const out = [".Bl -tag -width Ds"];
  for (const d of decls) {
    out.push(`.It Cm ${d.name}`);
    out.push(...mdocInline(describe(d, scope)));
    if (d.default !== undefined) out.push(...mdocInline(`Default: \`${d.default}\`.`));
    else if (d.defaultText !== undefined) out.push(...mdocInline(`Default: ${d.defaultText}.`));
  }
  for (const name of refused) {
    const r = REFUSALS.find((x) => x.name === name && x.scopes.includes(scope))!;
    out.push(`.It Cm ${name}`, ...mdocInline(r.doc));
  }
  out.push(".El");
  return out;
}

function refusedIn(scope: Scope): string[] {
  return REFUSALS.filter((r) => r.scopes.includes(scope)).map((r) => r.name);
}

const SCHEME_TEXT: Record<Scheme, string> = {
  "postgres":
    "Logical backups: `pg_dumpall --globals-only` for roles and tablespaces, then one `pg_dump -Fc` archive per database; restored with `pg_restore` and `psql`.",
  "postgres+aws":
    "The same logical backups and restores on Amazon RDS, authenticated by a short-lived IAM token instead of a password.",
  "postgres+bin":
    "Physical backups of the whole cluster with `pg_basebackup`: the snapshot is the data directory, restored by any file-restore connector.",
  "postgres+wal":
    "WAL captures with `pg_receivewal`, kept on the server by two replication slots until two captures hold it: with the base backups, a cluster recovers to any moment they cover.",
};

const TYPE_NAME: Record<string, string> = {
  "importer": "Importer",
  "exporter": "Exporter",
};

/** The man page, postgresql.1, in mdoc. */
export function renderManPage(): string {
  return [...manHead(), ...manOptions(), ...manExamples()].join("\n") + "\n";
}

/** The man page's title, NAME, SYNOPSIS and DESCRIPTION (the protocols, how values are written). */
function manHead(): string[] {
  const l: string[] = [
    `.\\" Generated by tasks/docs.ts from src/pg/options.ts: do not edit.`,
    `.Dd ${MAN_DATE}`,
    ".Dt PLAKAR-POSTGRESQL 1",
    ".Os",
    ".Sh NAME",
    ".Nm plakar-postgresql",
    ".Nd PostgreSQL backups and restores for plakar",
    ".Sh SYNOPSIS",
    ".Nm plakar",
    ".Cm source add",
    ".Ar name",
    ".Ar location",
    ".Op Ar option Ns = Ns Ar value ...",
    ".Nm plakar",
    ".Cm destination add",
    ".Ar name",
    ".Ar location",
    ".Op Ar option Ns = Ns Ar value ...",
    ".Sh DESCRIPTION",
    "The",
    ".Nm",
    "package gives plakar four protocols:",
    ".Bl -tag -width Ds",
  ];
  for (const p of ["postgres", "postgres+aws", "postgres+bin", "postgres+wal"] as const) {
    l.push(`.It Li ${p}://`, ...mdocInline(SCHEME_TEXT[p]));
  }
  l.push(
    ".El",
    ".Ss Option values",
    "Every option is a",
    ".Ar key Ns = Ns Ar value",
    "pair.",
    "An empty value means the default.",
    "Booleans take",
    ".Li true",
    "and",
    ".Li false",
    "(also",
    ".Li 1 , t , yes , on",
    "and",
    ".Li 0 , f , no , off ) .",
    "An unknown option, a value out of range and options that exclude each other",
    "are refused before anything runs, with a message naming the option.",
    ".Pp",
    ...mdocInline(listSyntax()),
  );
  return l;
}

/** OPTIONS: one list per scope; postgres+aws's lists only what differs from postgres://. */
function manOptions(): string[] {
  const l = [".Sh OPTIONS"];
  for (const scope of SCOPES) {
    const scheme = schemeOf(scope);
    const type = scope.slice(0, scope.indexOf(":"));
    l.push(`.Ss ${TYPE_NAME[type]}, ${scheme}://`);
    if (scheme === "postgres+aws") {
      l.push(
        ...mdocInline(
          `As for \`postgres://\`, except for the options below; \`password\` is refused.`,
        ),
      );
      const differ = optionsFor(scope).filter((d) =>
        !d.scopes.includes(`${type}:postgres` as Scope)
      );
      l.push(...mdocOptionList(scope, differ, refusedIn(scope)));
    } else {
      l.push(...mdocOptionList(scope, optionsFor(scope), refusedIn(scope)));
    }
  }
  return l;
}

/** EXAMPLES and SEE ALSO. */
function manExamples(): string[] {
  return [
    ".Sh EXAMPLES",
    "Back up every database of a server, then restore the snapshot into another one,",
    "replacing its databases:",
    ".Bd -literal -offset indent",
    "$ plakar source add mypg postgres://postgres@db.example.com password=secret",
    "$ plakar backup @mypg",
    "$ plakar destination add target postgres://postgres@db2.example.com \\e",
    "    password=secret recreate=true",
    "$ plakar restore -to @target <snapid>",
    ".Ed",
    ".Pp",
    "Back up one database on Amazon RDS with an IAM token:",
    ".Bd -literal -offset indent",
    "$ plakar source add myrds \\e",
    "    postgres+aws://backup@mydb.abc.eu-west-3.rds.amazonaws.com/app \\e",
    "    region=eu-west-3 ssl_mode=verify-full",
    "$ plakar backup @myrds",
    ".Ed",
    ".Pp",
    "Copy a whole cluster, then restore it to a directory:",
    ".Bd -literal -offset indent",
    "$ plakar source add cluster postgres+bin://replicator@db.example.com",
    "$ plakar backup @cluster",
    "$ plakar restore -to ./pgdata <snapid>",
    ".Ed",
    ".Sh SEE ALSO",
    ".Xr plakar 1 ,",
    ".Xr pg_basebackup 1 ,",
    ".Xr pg_dump 1 ,",
    ".Xr pg_dumpall 1 ,",
    ".Xr pg_restore 1 ,",
    ".Xr psql 1",
  ];
}

/** Every generated documentation file, by path relative to the root, from the current option reference. */
export async function renderDocs(root = ROOT): Promise<Map<string, string>> {
  const page = await Deno.readTextFile(`${root}/${OPTIONS_PAGE}`);
  return new Map([
    [OPTIONS_PAGE, renderOptionsPage(page)],
    ["postgresql.1", renderManPage()],
  ]);
}

/** `deno task docs`: rewrites the option reference, the man page and the JSON Schemas. */
export async function main(): Promise<void> {
  for (const [path, text] of await renderDocs()) {
    await Deno.writeTextFile(`${ROOT}/${path}`, text);
    console.log(`${ROOT}/${path}`);
  }
  for (const f of await writeSchemas()) console.log(f);
}
