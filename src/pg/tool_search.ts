// Finding client tools that can talk to the server. pg_dump refuses a server
// of a newer major, and the pg_dump on PATH is often the distribution's
// default while the server was upgraded (or runs elsewhere): the matching
// tools are usually installed side by side in well-known places. When
// pg_bin_dir is not set and the tool on PATH is older than the server (or
// missing), the directories of `pg_bin_search` are tried; `N` in an entry
// stands for a major version and matches any installed one.

import { ToolError, toolVersionLine } from "./tools.ts";
import { PluginError } from "../errors.ts";

/** Where packages install each major's tools: Debian/Ubuntu, RHEL (PGDG), Homebrew (ARM, Intel). */
export const DEFAULT_BIN_SEARCH: readonly string[] = [
  "/usr/lib/postgresql/N/bin",
  "/usr/pgsql-N/bin",
  "/opt/homebrew/opt/postgresql@N/bin",
  "/usr/local/opt/postgresql@N/bin",
];

/** Splits pg_bin_search: directories or patterns, separated by `:` or `,`. */
export function parseBinSearch(value: string): string[] {
  return value.split(/[:,]/).map((s) => s.trim()).filter((s) => s !== "");
}

/** The major version of a `--version` line ("pg_dump (PostgreSQL) 15.18 ..."). */
export function versionMajor(versionLine: string): number | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(versionLine);
  if (!m) return undefined;
  const major = Number(m[1]);
  return major >= 10 ? major : Number(`${m[1]}.${m[2] ?? 0}`);
}

/** `N` standing alone between separators (`/`, `-`, `@`, `_`, `.`) in a path component. */
const N_TOKEN = /(^|[-@_.])N(?=$|[-@_.])/;

/** A directory a search entry names, with the major its name claims (when it has N). */
export interface Candidate {
  dir: string;
  major?: number;
}

/** Expands one entry: `N` matched against the entries of the parent directory. */
export async function expandEntry(entry: string): Promise<Candidate[]> {
  const parts = entry.split("/");
  const at = parts.findIndex((p) => N_TOKEN.test(p));
  if (at < 0) return [{ dir: entry }];
  const parent = parts.slice(0, at).join("/") || "/";
  const [before, after] = splitAtN(parts[at]);
  const name = new RegExp(`^${escape(before)}(\\d+)${escape(after)}$`);
  const out: Candidate[] = [];
  try {
    for await (const e of Deno.readDir(parent)) {
      const m = name.exec(e.name);
      if (!m) continue;
      const dir = [...parts.slice(0, at), e.name, ...parts.slice(at + 1)].join("/");
      out.push({ dir, major: Number(m[1]) });
    }
  } catch { /* no such directory: nothing there */ }
  return out.sort((a, b) => a.major! - b.major!);
}

function splitAtN(component: string): [string, string] {
  const m = N_TOKEN.exec(component)!;
  const i = m.index + m[1].length;
  return [component.slice(0, i), component.slice(i + 1)];
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** What was found for one tool: its directory (undefined: PATH), version line and major. */
export interface ToolChoice {
  binDir?: string;
  versionLine: string;
  major?: number;
  /** True when the directory came from the search list, not PATH. */
  searched: boolean;
  /**
   * The directory to run the tools from: `binDir`, or, when PATH's tool is
   * Debian's pg_wrapper, the directory of the program it would run
   * (`wrappedToolDir`: the same program without the wrapper's Perl). Unset:
   * run them by name from PATH.
   */
  execDir?: string;
}

/** Where Debian's postgresql-common installs each major's programs (`<root>/<major>/bin`). */
const DEBIAN_BIN_ROOT = "/usr/lib/postgresql";

/**
 * When `tool` on PATH is Debian's pg_wrapper (postgresql-common's
 * `/usr/bin/pg_dump` and friends), the directory of the program it runs for
 * us, else undefined. Our tools always get `-h`, and for an explicit host the
 * wrapper runs the newest installed major that has the program. Running it
 * from there directly gives the same program without a Perl start per call
 * (50-100 ms each on a busy machine, six calls in a `recreate=true` restore),
 * and its `--version` is the program's own: the wrapper's `--version`, with no
 * `-h`, may answer for the default local cluster's major instead.
 */
export async function wrappedToolDir(
  tool: string,
  path = Deno.env.get("PATH") ?? "",
  root = DEBIAN_BIN_ROOT,
): Promise<string | undefined> {
  let target: string | undefined;
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      target = await Deno.realPath(`${dir}/${tool}`);
      break;
    } catch { /* not in this directory */ }
  }
  if (!target || !target.endsWith("/pg_wrapper")) return undefined;
  let best: { major: number; dir: string } | undefined;
  try {
    for await (const e of Deno.readDir(root)) {
      if (!/^\d+(\.\d+)?$/.test(e.name)) continue;
      const dir = `${root}/${e.name}/bin`;
      const info = await Deno.stat(`${dir}/${tool}`).catch(() => undefined);
      if (!info?.isFile) continue;
      const major = Number(e.name);
      if (!best || major > best.major) best = { major, dir };
    }
  } catch { /* no such root: leave the wrapper to it */ }
  return best?.dir;
}

/** Why no tool fits, with where the search looked (for one error line). */
export class NoFittingToolError extends PluginError {
  constructor(
    readonly tool: string,
    readonly serverMajor: number,
    readonly onPath: string | undefined,
    readonly looked: string[],
  ) {
    super(
      "failed-precondition",
      `${onPath ?? `${tool} not found on PATH`}; no ${tool} of major ${serverMajor} or newer in ${
        looked.join(", ")
      }`,
    );
    this.name = "NoFittingToolError";
  }
}

/**
 * The tool as configured, with no search: pg_bin_dir's when set, else PATH's
 * (run from the program's own directory when PATH's is Debian's pg_wrapper).
 * Throws the ToolError of its `--version` (exit code null: not found).
 */
export async function configuredTool(tool: string, pgBinDir?: string): Promise<ToolChoice> {
  if (pgBinDir) {
    const dir = pgBinDir.replace(/\/+$/, "");
    const versionLine = await toolVersionLine(`${dir}/${tool}`);
    return {
      binDir: dir,
      execDir: dir,
      versionLine,
      major: versionMajor(versionLine),
      searched: false,
    };
  }
  const wrapped = await wrappedToolDir(tool);
  const versionLine = await toolVersionLine(wrapped ? `${wrapped}/${tool}` : tool);
  return {
    versionLine,
    major: versionMajor(versionLine),
    searched: false,
    ...(wrapped ? { execDir: wrapped } : {}),
  };
}

/**
 * The tool to use against a server of `serverMajor`: pg_bin_dir when set (as
 * is: the user chose it), else the one on PATH when it is recent enough, else
 * the best match of the search list: the server's own major, else the
 * closest newer one. Each candidate's `--version` is what decides, not its
 * directory's name. Throws NoFittingToolError listing where it looked.
 */
export async function chooseTool(
  tool: string,
  serverMajor: number,
  where: { pgBinDir?: string; pgBinSearch?: string[] },
): Promise<ToolChoice> {
  if (where.pgBinDir) return await configuredTool(tool, where.pgBinDir);
  let onPath: string | undefined;
  try {
    const choice = await configuredTool(tool);
    onPath = choice.versionLine;
    if (choice.major === undefined || choice.major >= serverMajor) return choice;
  } catch (e) {
    if (!(e instanceof ToolError) || e.exitCode !== null) throw e;
    // Not found on PATH: the search list may have it.
  }
  const looked: string[] = [];
  const found: { dir: string; versionLine: string; major: number }[] = [];
  for (const entry of where.pgBinSearch ?? DEFAULT_BIN_SEARCH) {
    const candidates = await expandEntry(entry);
    const seen: string[] = [];
    for (const c of candidates) {
      if (c.major !== undefined && c.major < serverMajor) {
        seen.push(String(c.major));
        continue;
      }
      let versionLine: string;
      try {
        versionLine = await toolVersionLine(`${c.dir}/${tool}`);
      } catch {
        continue; // no such tool there, or it does not run
      }
      const major = versionMajor(versionLine);
      if (major === undefined) continue;
      seen.push(String(major));
      if (major >= serverMajor) found.push({ dir: c.dir, versionLine, major });
    }
    looked.push(seen.length ? `${entry} (found ${[...new Set(seen)].join(", ")})` : entry);
  }
  found.sort((a, b) => a.major - b.major);
  const best = found[0];
  if (!best) throw new NoFittingToolError(tool, serverMajor, onPath, looked);
  return {
    binDir: best.dir,
    execDir: best.dir,
    versionLine: best.versionLine,
    major: best.major,
    searched: true,
  };
}

/** The server's major from server_version_num (90600 → 9.6, 150004 → 15). */
export function serverMajor(versionNum: number): number {
  const major = Math.floor(versionNum / 10000);
  return versionNum >= 100000 ? major : major + (Math.floor(versionNum / 100) % 100) / 10;
}
