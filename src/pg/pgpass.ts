// libpq's password file (~/.pgpass, or the file PGPASSFILE names), read the
// way libpq reads it, so that the catalog connection (npm:pg) and the client
// tools (libpq itself) take the same password from the same file for the
// same host:port:database:user. npm:pg has its own reader (the pgpass
// package, deprecated) whose comment and permission rules differ slightly
// from libpq's; we never let it run.

import { userInfo } from "node:os";

/** What a connection is matched on, as libpq sees it. */
export interface PgpassKey {
  host: string;
  port: number;
  database: string;
  user: string;
}

/** The outcome of a lookup: the file consulted, and the password or why there is none. */
export interface PgpassLookup {
  /** The password file that was (or would have been) read. */
  file: string;
  /** The matching entry's password; undefined when no line matched or the file was skipped. */
  password?: string;
  /** Why the file was not used (missing, not a plain file, group/world access), if it was not. */
  skipped?: string;
}

/** The login name of the effective user (getpwuid), libpq's default user and home. */
function osUser(): { username: string; homedir: string } {
  try {
    const u = userInfo();
    return { username: u.username, homedir: u.homedir };
  } catch {
    return { username: "", homedir: "" };
  }
}

/** The user a connection logs in as: the explicit one, else PGUSER, else the OS user (libpq's rule). */
export function effectiveUser(username: string | undefined): string {
  if (username) return username;
  const env = Deno.env.get("PGUSER");
  return env ? env : osUser().username;
}

/**
 * The password file libpq uses: PGPASSFILE when set, else `.pgpass` in the
 * home directory ($HOME, else the account's home, as libpq 15 and later do).
 */
export function passwordFilePath(): string {
  const explicit = Deno.env.get("PGPASSFILE");
  if (explicit) return explicit;
  const home = Deno.env.get("HOME") || osUser().homedir;
  return `${home.replace(/\/+$/, "")}/.pgpass`;
}

/**
 * Matches one field of a line against `value` at `pos`: `*` matches
 * anything, otherwise the field (with `\` escaping the next character) must
 * equal `value`. Returns the position after the field's `:`, or -1.
 */
function matchField(line: string, pos: number, value: string): number {
  if (line.startsWith("*:", pos)) return pos + 2;
  let i = pos;
  let j = 0;
  while (i < line.length && line[i] !== ":") {
    if (line[i] === "\\" && i + 1 < line.length) i++;
    if (j >= value.length || line[i] !== value[j]) return -1;
    i++;
    j++;
  }
  return i < line.length && j === value.length ? i + 1 : -1;
}

/** The password of the first line that matches `key`, in libpq's format; undefined if none. */
export function findPassword(text: string, key: PgpassKey): string | undefined {
  // A Unix-socket directory (or no host) is looked up as "localhost".
  const host = key.host === "" || key.host.startsWith("/") ? "localhost" : key.host;
  const fields = [host, String(key.port), key.database, key.user];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line === "" || line.startsWith("#")) continue;
    let pos = 0;
    for (const value of fields) {
      pos = matchField(line, pos, value);
      if (pos < 0) break;
    }
    if (pos < 0) continue;
    // The password runs to the end of the line or the next unescaped ':'.
    let password = "";
    for (let i = pos; i < line.length && line[i] !== ":"; i++) {
      if (line[i] === "\\" && i + 1 < line.length) i++;
      password += line[i];
    }
    return password;
  }
  return undefined;
}

/**
 * Looks `key` up in the password file. Like libpq, a file that is not a plain
 * file or that the group or others can access is ignored, and a missing file
 * is no password.
 */
export async function lookupPassword(key: PgpassKey): Promise<PgpassLookup> {
  const file = passwordFilePath();
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(file);
  } catch {
    return { file, skipped: "it does not exist or cannot be read" };
  }
  if (!stat.isFile) return { file, skipped: "it is not a plain file" };
  if (stat.mode !== null && (stat.mode & 0o077) !== 0) {
    return {
      file,
      skipped: "the group or others can access it (chmod 0600 it, as libpq requires)",
    };
  }
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch {
    return { file, skipped: "it cannot be read" };
  }
  const password = findPassword(text, key);
  return password ? { file, password } : { file };
}
