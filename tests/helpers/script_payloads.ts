// psql meta-commands that run programs or touch local files, each written so
// that, run, it leaves a marker file; and the three shapes of `.sql` record
// they can hide in. Shared by the integration and end-to-end tests of
// src/logical/restore/psql_guard.ts.

export interface Payload {
  /** The meta-command, as the refusal names it. */
  command: string;
  /** The script line(s) holding it (the first one is refused); `marker` must not appear. */
  lines: (marker: string, included: string) => string[];
}

export const PAYLOADS: Payload[] = [
  { command: "\\!", lines: (m) => [`\\! touch ${m}`] },
  { command: "\\o", lines: (m) => [`\\o |touch ${m}`, "SELECT 1;"] },
  { command: "\\g", lines: (m) => [`SELECT 1 \\g |touch ${m}`] },
  { command: "\\copy", lines: (m) => [`\\copy (SELECT 1) TO PROGRAM 'touch ${m}'`] },
  { command: "\\copy", lines: (m) => [`\\copy pg_am FROM PROGRAM 'touch ${m}'`] },
  // \setenv alone leaves nothing behind: the \! after it would, were it reached.
  { command: "\\setenv", lines: (m) => ["\\setenv PAGER cat", `\\! touch ${m}`] },
  { command: "\\i", lines: (_m, inc) => [`\\i ${inc}`] },
  { command: "\\ir", lines: (_m, inc) => [`\\ir ${inc}`] },
  { command: "\\w", lines: (m) => [`\\w ${m}`] },
];

/** A local file for `\i`: run, it leaves `marker`. */
export function includedFile(marker: string): string {
  return `\\! touch ${marker}\n`;
}

export interface Framing {
  /** What the exporter calls the file in its messages, e.g. `SQL script /app.sql`. */
  what: (path: string) => string;
  /** The snapshot path's base name. */
  file: string;
  /** The script with the payload lines, and the line number of the first one. */
  script: (payload: string[]) => { text: string; line: number };
}

/** Lines before the payload: a statement the refusal must keep from being committed. */
export const FRAMINGS: Record<"hand" | "pg_dump" | "globals", Framing> = {
  hand: {
    what: (p) => `SQL script ${p}`,
    file: "app.sql",
    script: (p) => ({ text: ["CREATE TABLE hand_before (x int);", ...p, ""].join("\n"), line: 2 }),
  },
  pg_dump: {
    what: (p) => `SQL script ${p}`,
    file: "app.sql",
    script: (p) => ({
      text: [
        "--",
        "-- PostgreSQL database dump",
        "--",
        "",
        "CREATE TABLE dump_before (x int);",
        ...p,
        "CREATE TABLE dump_after (x int);",
        "",
        "--",
        "-- PostgreSQL database dump complete",
        "--",
        "",
      ].join("\n"),
      line: 6,
    }),
  },
  globals: {
    what: (p) => `globals ${p}`,
    file: "00000-globals.sql",
    script: (p) => ({
      text: [
        "--",
        "-- PostgreSQL database cluster dump",
        "--",
        "",
        "CREATE ROLE globals_before;",
        ...p,
        "",
        "--",
        "-- PostgreSQL database cluster dump complete",
        "--",
        "",
      ].join("\n"),
      line: 6,
    }),
  },
};

/** The refusal the exporter must report for `command` on `line` of a file. */
export function refusal(what: string, line: number, command: string): RegExp {
  const esc = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
  return new RegExp(
    `^${esc(what)} line ${line}: psql meta-command ${
      esc(command)
    } is not allowed in a restored script \\(a snapshot is data, never a program\\); `,
  );
}

/** Files in `dir` (markers a refused script must not have left). */
export async function filesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}
